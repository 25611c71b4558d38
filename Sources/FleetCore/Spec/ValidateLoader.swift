import Columnar
import Yams

/// Decoding and checking of `validate:` (types in ValidateSpec.swift).
extension SpecLoader {
    static let rowRuleKeys = ["not_null", "unique", "range", "allowed", "regex", "expression"]
    static let gateKeys = ["max_failure_rate", "min_rows", "max_rows", "min_rows_per_partition"]
    static var validateKeys: [String] { rowRuleKeys + gateKeys }

    mutating func loadValidate(_ node: Node, tracker: SchemaTracker, consolidate: ConsolidateSpec?) -> ValidateSpec {
        guard let items = sequence(node, "'validate'") else { return ValidateSpec() }
        var spec = ValidateSpec()
        var ruleAt: [String: SpecLocation] = [:]
        var gateAt: [String: SpecLocation] = [:]
        for item in items {
            guard let all = mapping(item, "a validate rule") else { continue }
            let nameEntry = all.first { $0.key == "name" }
            let entries = all.filter { $0.key != "name" }
            guard entries.count == 1, let entry = entries.first else {
                sink.add(item.location, entries.isEmpty
                         ? "a validate rule needs a rule besides 'name', such as 'not_null: [col]'"
                         : "a validate rule is a mapping with one key, such as 'not_null: [col]'")
                continue
            }
            let key = entry.key
            guard Self.validateKeys.contains(key) else {
                sink.add(entry.keyNode.location, "unknown validate rule '\(key)'" + didYouMean(key, Self.validateKeys)
                         + (suggestion(for: key, among: Self.validateKeys) == nil
                            ? "; rules are \(Self.validateKeys.joined(separator: ", "))" : ""))
                continue
            }
            if Self.gateKeys.contains(key) {
                if let n = nameEntry {
                    sink.add(n.keyNode.location, "'name' applies to row rules, not to the gate '\(key)'")
                }
                if let first = gateAt[key] {
                    sink.add(entry.keyNode.location, "'\(key)' is given twice (first at \(first)); keep one")
                    continue
                }
                gateAt[key] = entry.keyNode.location
                loadGate(key, entry.value, into: &spec.gates)
                continue
            }
            var customName: String?
            if let n = nameEntry, let text = string(n.value, "'name' of a validate rule") {
                if text.trimmingSpaces().isEmpty {
                    sink.add(n.value.location, "'name' of a validate rule is empty")
                } else {
                    customName = text
                }
            }
            for var rule in loadRowRule(entry, at: item.location, tracker: tracker, consolidate: consolidate) {
                if let customName {
                    rule.name = isMultiNotNull(entry) ? "\(customName) \(rule.check.columns[0])" : customName
                }
                if let other = ruleAt[rule.name] {
                    sink.add(item.location, "two validate rules are named '\(rule.name)' (the other at \(other)); "
                             + "give one a 'name:'")
                    continue
                }
                ruleAt[rule.name] = item.location
                spec.rules.append(rule)
            }
        }
        if let min = spec.gates.minRows, let max = spec.gates.maxRows, min > max, let at = gateAt["max_rows"] {
            sink.add(at, "max_rows \(max) is less than min_rows \(min); no row count could pass")
        }
        return spec
    }

    private func isMultiNotNull(_ entry: Entry) -> Bool {
        entry.key == "not_null" && (entry.value.sequence?.count ?? 1) > 1
    }

    mutating func loadGate(_ key: String, _ node: Node, into gates: inout QualityGates) {
        guard let text = string(node, "'\(key)'") else { return }
        if key == "max_failure_rate" {
            guard let rate = FailureRate(parsing: text) else {
                sink.add(node.location, "'max_failure_rate' must be a share of rows such as 5% or 0.05 "
                         + "(0% to 100%), not '\(text)'")
                return
            }
            gates.maxFailureRate = rate
            return
        }
        guard let n = Int64(text), n >= 0 else {
            sink.add(node.location, "'\(key)' must be a whole number of rows (0 or more), not '\(text)'")
            return
        }
        switch key {
        case "min_rows": gates.minRows = n
        case "max_rows": gates.maxRows = n
        default: gates.minRowsPerPartition = n
        }
    }

    mutating func loadRowRule(_ entry: Entry, at location: SpecLocation, tracker: SchemaTracker,
                              consolidate: ConsolidateSpec?) -> [RowRule] {
        let key = entry.key
        let value = entry.value
        switch key {
        case "not_null":
            let columns = columnList(value, "not_null", tracker: tracker, allowSingle: true)
            if value.sequence?.isEmpty == true { sink.add(value.location, "'not_null' needs at least one column") }
            return columns.map { RowRule(name: "not_null \($0.value)", check: .notNull(column: $0.value), location: location) }

        case "unique":
            let columns = columnList(value, "unique", tracker: tracker, allowSingle: true)
            if value.sequence?.isEmpty == true {
                sink.add(value.location, "'unique' needs at least one column")
                return []
            }
            let names = columns.map(\.value)
            let missing = (consolidate?.partitionBy ?? []).filter { !names.contains($0) }
            if !names.isEmpty, !missing.isEmpty {
                sink.add(value.location, "each partition checks 'unique' on its own rows, so equal keys must meet in "
                         + "one partition: the columns must include the partition key \(missing.joined(separator: ", ")) "
                         + "(consolidate partition_by); add it to 'unique'")
                return []
            }
            guard !names.isEmpty, names.count == columns.count else { return [] }
            return [RowRule(name: "unique \(names.joined(separator: ", "))", check: .unique(columns: names), location: location)]

        case "range":
            guard let range = loadRange(value, tracker: tracker) else { return [] }
            return [RowRule(name: "range \(range.column)", check: .range(range), location: location)]

        case "allowed":
            guard let allowed = loadAllowed(value, tracker: tracker) else { return [] }
            return [RowRule(name: "allowed \(allowed.column)", check: .allowed(allowed), location: location)]

        case "regex":
            guard let entries = mapping(value, "'regex'") else { return [] }
            checkKeys(entries, allowed: ["column", "pattern"], in: "regex")
            let byKey = Dictionary(entries.map { ($0.key, $0) }, uniquingKeysWith: { a, _ in a })
            let column = ruleColumn(byKey, entries, keys: ["column", "pattern"], "regex", at: value.location, tracker: tracker)
            if let column, let type = column.type, type != .string {
                sink.add(byKey["column"]!.value.location, "regex needs a string column, but '\(column.name)' is \(type); "
                         + "cast it to string in a normalize step if that is what you mean")
            }
            guard let p = byKey["pattern"] else {
                reportMissing("pattern", in: entries, allowed: ["column", "pattern"], at: value.location,
                              "regex needs 'pattern' (the whole value must match it)")
                return []
            }
            guard let pattern = string(p.value, "'pattern' in regex") else { return [] }
            do {
                _ = try Regex(pattern)
            } catch {
                sink.add(p.value.location, "regex pattern '\(pattern)' does not compile: \(error)")
                return []
            }
            guard let column else { return [] }
            return [RowRule(name: "regex \(column.name)", check: .regex(column: column.name, pattern: pattern),
                            location: location)]

        case "expression":
            guard let node = expressionNode(value, "validate expression") else { return [] }
            let text = node.scalar!.string
            if let type = checkExpression(node, what: "validate expression", tracker: tracker), type != .bool {
                sink.add(node.location, "a validate expression must be bool (true for a good row), but this one is \(type)")
                return []
            }
            return [RowRule(name: "expression \(text)", check: .expression(SpecExpression(text, location: node.location)),
                            location: location)]

        default:
            return []
        }
    }

    /// `column:` of a rule's mapping, which must name a column.
    mutating func ruleColumn(_ byKey: [String: Entry], _ entries: [Entry], keys: [String], _ rule: String,
                             at location: SpecLocation, tracker: SchemaTracker) -> SpecColumn? {
        guard let c = byKey["column"] else {
            reportMissing("column", in: entries, allowed: keys, at: location,
                          "\(rule) needs 'column'")
            return nil
        }
        guard let name = string(c.value, "'column' in \(rule)") else { return nil }
        return requireColumn(name, at: c.value.location, in: rule, tracker)
    }

    mutating func loadRange(_ node: Node, tracker: SchemaTracker) -> RangeCheck? {
        let keys = ["column", "min", "max", "exclusive_min", "exclusive_max"]
        guard let entries = mapping(node, "'range'") else { return nil }
        checkKeys(entries, allowed: keys, in: "range")
        let byKey = Dictionary(entries.map { ($0.key, $0) }, uniquingKeysWith: { a, _ in a })
        let column = ruleColumn(byKey, entries, keys: keys, "range", at: node.location, tracker: tracker)
        if let column, let type = column.type, RuleLiteral.bound("0", for: type) == nil, type != .date, type != .timestamp {
            sink.add(byKey["column"]!.value.location, "range needs a number, decimal, date or timestamp column, "
                     + "but '\(column.name)' is \(type); use allowed or regex for other columns")
            return nil
        }
        func bound(_ key: String, _ exclusiveKey: String) -> RangeBound? {
            var exclusive = false
            if let e = byKey[exclusiveKey], let b = bool(e.value, "'\(exclusiveKey)' in range") { exclusive = b }
            guard let entry = byKey[key] else {
                if let e = byKey[exclusiveKey] {
                    sink.add(e.keyNode.location, "'\(exclusiveKey)' in range needs '\(key)'")
                }
                return nil
            }
            guard let text = string(entry.value, "'\(key)' in range") else { return nil }
            var value: RuleLiteral?
            if let column, let type = column.type {
                value = RuleLiteral.bound(text, for: type)
                if value == nil {
                    sink.add(entry.value.location, "range \(key) '\(text)' is not a valid \(type) for column '\(column.name)'"
                             + boundHint(type))
                }
            }
            return RangeBound(text: text, exclusive: exclusive, value: value)
        }
        let min = bound("min", "exclusive_min")
        let max = bound("max", "exclusive_max")
        if byKey["min"] == nil, byKey["max"] == nil {
            if !isTypo("min", entries, keys), !isTypo("max", entries, keys) {
                sink.add(node.location, "range needs 'min', 'max' or both")
            }
            return nil
        }
        if let lo = min?.value, let hi = max?.value, let at = byKey["max"] {
            let c = RuleLiteral.compare(lo, hi)
            if c > 0 || (c == 0 && (min!.exclusive || max!.exclusive)) {
                sink.add(at.value.location, "range max \(max!.text) is \(c > 0 ? "below" : "equal to") min \(min!.text)"
                         + (c == 0 ? " with an exclusive bound" : "") + "; no value could pass")
            }
        }
        guard let column else { return nil }
        return RangeCheck(column: column.name, min: min, max: max)
    }

    func boundHint(_ type: ColumnType) -> String {
        switch type {
        case .decimal: return " (a number with at most 18 digits)"
        case .int64, .int32: return " (a whole number)"
        default: return literalHint(type)
        }
    }

    mutating func loadAllowed(_ node: Node, tracker: SchemaTracker) -> AllowedCheck? {
        let keys = ["column", "values"]
        guard let entries = mapping(node, "'allowed'") else { return nil }
        checkKeys(entries, allowed: keys, in: "allowed")
        let byKey = Dictionary(entries.map { ($0.key, $0) }, uniquingKeysWith: { a, _ in a })
        let column = ruleColumn(byKey, entries, keys: keys, "allowed", at: node.location, tracker: tracker)
        guard let v = byKey["values"] else {
            reportMissing("values", in: entries, allowed: keys, at: node.location, "allowed needs 'values' (a list)")
            return nil
        }
        let texts = stringList(v.value, "'values' in allowed", allowSingle: false)
        if v.value.sequence?.isEmpty == true { sink.add(v.value.location, "'values' in allowed needs at least one value") }
        var values: [Scalar]? = nil
        if let column, let type = column.type {
            values = []
            for t in texts {
                if let s = AllowedCheck.value(t.value, as: type) {
                    values?.append(s)
                } else {
                    sink.add(t.location, "allowed value '\(t.value)' is not a valid \(type) for column '\(column.name)'"
                             + literalHint(type))
                }
            }
        }
        guard let column else { return nil }
        return AllowedCheck(column: column.name, texts: texts.map(\.value), values: values)
    }
}
