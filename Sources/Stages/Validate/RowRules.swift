import Columnar
import FleetCore

/// A spec rule compiled against the chunks' schema: column indices found,
/// bounds and values typed to the column's actual type, the regex and the
/// expression compiled. `failures` runs one typed loop over the column's
/// buffers per batch; reasons are built only for the rows that fail.
final class CompiledRule {
    let name: String
    /// Columns the rule reads, shown in examples.
    let columns: [String]
    private let kind: Kind
    /// Keys already seen by a unique rule, across the partition's batches.
    private var seen = Set<[UInt8]>()

    private enum Kind {
        case notNull(Int)
        case unique([Int])
        case range(Int, min: Bound?, max: Bound?)
        case allowed(Int, AllowedSet, texts: [String])
        case regex(Int, Regex<AnyRegexOutput>, pattern: String)
        case expression(TypedExpression)
    }

    /// A bound as a comparison on the column's storage.
    private struct Bound {
        let text: String
        let exclusive: Bool
        /// Integer storage: compare `value * valueScale` with `rhs` exactly.
        let rhs: Int128
        let valueScale: Int128
        /// Double storage.
        let double: Double
    }

    private enum AllowedSet {
        case ints(Set<Int64>)
        case doubles(Set<Double>)
        case bools(Set<Bool>)
        case strings(Set<[UInt8]>)
    }

    init(_ rule: RowRule, schema: Schema) throws {
        name = rule.name
        let context = "validate rule '\(rule.name)'"
        func column(_ c: String) throws -> Int { try schema.requireColumn(c, context) }
        switch rule.check {
        case .notNull(let c):
            kind = .notNull(try column(c))
            columns = [c]
        case .unique(let cs):
            kind = .unique(try cs.map(column))
            columns = cs
        case .range(let r):
            let i = try column(r.column)
            let type = schema.fields[i].type
            func bound(_ b: RangeBound?) throws -> Bound? {
                guard let b else { return nil }
                guard let literal = RuleLiteral.bound(b.text, for: type) else {
                    throw OperatorError.wrongType(column: r.column, type: type,
                                                  expected: "a column that '\(b.text)' can bound", context: context)
                }
                let columnScale: Int
                if case .decimal(_, let s) = type { columnScale = s } else { columnScale = 0 }
                switch literal {
                case .double(let d):
                    return Bound(text: b.text, exclusive: b.exclusive, rhs: 0, valueScale: 1, double: d)
                case .int(let v):
                    return Bound(text: b.text, exclusive: b.exclusive, rhs: Int128(v), valueScale: 1, double: Double(v))
                case .decimal(let u, let t):
                    let m = max(columnScale, t)
                    return Bound(text: b.text, exclusive: b.exclusive, rhs: Int128(u) * pow10(m - t),
                                 valueScale: pow10(m - columnScale), double: 0)
                }
            }
            kind = .range(i, min: try bound(r.min), max: try bound(r.max))
            columns = [r.column]
        case .allowed(let a):
            let i = try column(a.column)
            let type = schema.fields[i].type
            var scalars: [Scalar] = []
            for t in a.texts {
                guard let s = AllowedCheck.value(t, as: type) else {
                    throw OperatorError.wrongType(column: a.column, type: type,
                                                  expected: "a column that holds '\(t)'", context: context)
                }
                scalars.append(s)
            }
            let set: AllowedSet
            switch type.storage {
            case .int64, .int32: set = .ints(Set(scalars.compactMap { if case .int(let v) = $0 { v } else { nil } }))
            case .double: set = .doubles(Set(scalars.compactMap { if case .double(let v) = $0 { v } else { nil } }))
            case .bool: set = .bools(Set(scalars.compactMap { if case .bool(let v) = $0 { v } else { nil } }))
            case .bytes: set = .strings(Set(scalars.compactMap { if case .bytes(let v) = $0 { v } else { nil } }))
            }
            kind = .allowed(i, set, texts: a.texts)
            columns = [a.column]
        case .regex(let c, let pattern):
            let i = try column(c)
            guard schema.fields[i].type == .string else {
                throw OperatorError.wrongType(column: c, type: schema.fields[i].type, expected: "string", context: context)
            }
            do {
                kind = .regex(i, try Regex(pattern), pattern: pattern)
            } catch {
                throw OperatorError.invalidSetting("\(context): pattern '\(pattern)' does not compile: \(error)")
            }
            columns = [c]
        case .expression(let e):
            let typed: TypedExpression
            do {
                typed = try Expression.parse(e.text).check(schema)
            } catch {
                throw OperatorError.invalidSetting("\(context): expression '\(e.text)' at \(e.location): \(error)")
            }
            guard typed.type == .bool else {
                throw OperatorError.invalidSetting("\(context): expression '\(e.text)' is \(typed.type), not bool")
            }
            kind = .expression(typed)
            columns = typed.inputs.map(\.name)
        }
    }

    /// The rows of `batch` that fail, ascending.
    func failures(_ batch: ColumnBatch) throws -> [Int] {
        var out = [Int]()
        let n = batch.rowCount
        switch kind {
        case .notNull(let i):
            guard let v = batch.columns[i].validity else { return [] }
            for r in 0..<n where !v[r] { out.append(r) }

        case .unique(let indices):
            let cols = indices.map { batch.columns[$0] }
            for r in 0..<n {
                if cols.contains(where: { $0.isNull(r) }) { continue }
                var key = [UInt8]()
                for c in cols { KeyEncoding.encode(c, row: r, into: { key.append($0) }) }
                if !seen.insert(key).inserted { out.append(r) }
            }

        case .range(let i, let lo, let hi):
            let c = batch.columns[i]
            let valid = c.validity
            func check(_ value: (Int) -> Int128) {
                for r in 0..<n where valid?[r] ?? true {
                    if let lo {
                        let x = value(r) * lo.valueScale
                        if lo.exclusive ? !(x > lo.rhs) : !(x >= lo.rhs) { out.append(r); continue }
                    }
                    if let hi {
                        let x = value(r) * hi.valueScale
                        if hi.exclusive ? !(x < hi.rhs) : !(x <= hi.rhs) { out.append(r) }
                    }
                }
            }
            switch c.values {
            case .int64(let v): check { Int128(v[$0]) }
            case .int32(let v): check { Int128(v[$0]) }
            case .double(let v):
                for r in 0..<n where valid?[r] ?? true {
                    let x = v[r]
                    let okLo = lo.map { $0.exclusive ? x > $0.double : x >= $0.double } ?? !x.isNaN
                    let okHi = hi.map { $0.exclusive ? x < $0.double : x <= $0.double } ?? !x.isNaN
                    if !(okLo && okHi) { out.append(r) }
                }
            default: break
            }

        case .allowed(let i, let set, _):
            let c = batch.columns[i]
            let valid = c.validity
            switch (c.values, set) {
            case (.int64(let v), .ints(let s)): for r in 0..<n where (valid?[r] ?? true) && !s.contains(v[r]) { out.append(r) }
            case (.int32(let v), .ints(let s)):
                for r in 0..<n where (valid?[r] ?? true) && !s.contains(Int64(v[r])) { out.append(r) }
            case (.double(let v), .doubles(let s)): for r in 0..<n where (valid?[r] ?? true) && !s.contains(v[r]) { out.append(r) }
            case (.bool(let v), .bools(let s)): for r in 0..<n where (valid?[r] ?? true) && !s.contains(v[r]) { out.append(r) }
            case (.bytes(let v), .strings(let s)):
                for r in 0..<n where (valid?[r] ?? true) && !s.contains(Array(v.bytes(at: r))) { out.append(r) }
            default: break
            }

        case .regex(let i, let regex, _):
            let c = batch.columns[i]
            guard case .bytes(let v) = c.values else { return [] }
            for r in 0..<n where !c.isNull(r) {
                let s = String(decoding: v.bytes(at: r), as: UTF8.self)
                if (try? regex.wholeMatch(in: s)) == nil { out.append(r) }
            }

        case .expression(let typed):
            let result = try typed.evaluate(batch)
            guard case .bool(let v) = result.values else { return [] }
            for r in 0..<n where !v[r] && !result.isNull(r) { out.append(r) }
        }
        return out
    }

    /// Why row `r` of `batch` failed, for quarantine and examples.
    func reason(_ batch: ColumnBatch, row r: Int) -> String {
        func text(_ i: Int) -> String { RowText.value(batch.columns[i], row: r) }
        func name(_ i: Int) -> String { batch.schema.fields[i].name }
        switch kind {
        case .notNull(let i):
            return "\(name(i)) is null"
        case .unique(let indices):
            return indices.map { "\(name($0))=\(text($0))" }.joined(separator: ", ") + " appeared in an earlier row"
        case .range(let i, let lo, let hi):
            let value = text(i)
            if case .double(let v) = batch.columns[i].values, v[r].isNaN {
                return "\(name(i)) is NaN, which no range holds"
            }
            if let lo, fails(batch.columns[i], row: r, lower: lo) {
                return "\(name(i)) \(value) is " + (lo.exclusive ? "not above exclusive min \(lo.text)" : "below min \(lo.text)")
            }
            if let hi {
                return "\(name(i)) \(value) is " + (hi.exclusive ? "not below exclusive max \(hi.text)" : "above max \(hi.text)")
            }
            return "\(name(i)) \(value) is out of range"
        case .allowed(let i, _, let texts):
            let shown = texts.prefix(10).joined(separator: ", ") + (texts.count > 10 ? ", …" : "")
            return "\(name(i)) \(RowText.quoted(batch.columns[i], row: r)) is not one of \(shown)"
        case .regex(let i, _, let pattern):
            return "\(name(i)) \(RowText.quoted(batch.columns[i], row: r)) does not match \(pattern)"
        case .expression(let typed):
            return "\(typed.text) is false"
        }
    }

    /// Whether row `r` of `c` is below the lower bound `lo`.
    private func fails(_ c: Column, row r: Int, lower lo: Bound) -> Bool {
        let x: Int128
        switch c.values {
        case .int64(let v): x = Int128(v[r])
        case .int32(let v): x = Int128(v[r])
        case .double(let v): return lo.exclusive ? !(v[r] > lo.double) : !(v[r] >= lo.double)
        default: return false
        }
        let scaled = x * lo.valueScale
        return lo.exclusive ? !(scaled > lo.rhs) : !(scaled >= lo.rhs)
    }
}

private func pow10(_ n: Int) -> Int128 {
    var r: Int128 = 1
    for _ in 0..<max(0, n) { r *= 10 }
    return r
}

/// How values appear in reasons, examples and the quarantine's JSON rows.
enum RowText {
    /// Exact text (`0.10`, `2026-01-31`, `2026-01-31T12:00:00Z`), `null` for null.
    static func value(_ column: Column, row: Int) -> String {
        guard let s = column.scalar(at: row) else { return "null" }
        return ValueText.format(s, as: column.type)
    }

    /// As `value`, with strings in single quotes.
    static func quoted(_ column: Column, row: Int) -> String {
        let t = value(column, row: row)
        return column.type == .string && !column.isNull(row) ? "'\(t)'" : t
    }

    /// The row as one JSON object, keys in column order: numbers and
    /// decimals as JSON numbers (decimals exact), bools, null, and strings,
    /// dates and timestamps as JSON strings; NaN and infinities as strings.
    /// The provenance columns are left out: the quarantine names file and
    /// line in columns of their own.
    static func json(_ batch: ColumnBatch, row: Int) -> String {
        var out = "{"
        var first = true
        for (i, field) in batch.schema.fields.enumerated() where !Provenance.isReserved(field.name) {
            if !first { out += "," }
            first = false
            out += jsonString(field.name) + ":"
            let c = batch.columns[i]
            guard let s = c.scalar(at: row) else { out += "null"; continue }
            switch (c.type, s) {
            case (.int64, _), (.int32, _), (.decimal, _), (.bool, _): out += ValueText.format(s, as: c.type)
            case (.double, .double(let d)): out += d.isFinite ? String(d) : jsonString(String(d))
            default: out += jsonString(ValueText.format(s, as: c.type))
            }
        }
        return out + "}"
    }

    static func jsonString(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if u.value < 0x20 {
                    let h = String(u.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - h.count) + h
                } else {
                    out.unicodeScalars.append(u)
                }
            }
        }
        return out + "\""
    }
}
