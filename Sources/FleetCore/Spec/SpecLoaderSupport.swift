import Columnar
import Yams

/// A mapping entry with its key as text.
struct Entry {
    var key: String
    var keyNode: Node
    var value: Node
}

/// A value with the place it was written.
struct Located<Value> {
    var value: Value
    var location: SpecLocation
}

/// Small decoders shared by every part of the spec. Each reports a wrong
/// shape or value at the node's place and returns nil.
extension SpecLoader {
    func mappingEntries(_ map: Node.Mapping) -> [Entry] {
        map.map { Entry(key: $0.key.scalar?.string ?? "", keyNode: $0.key, value: $0.value) }
    }

    mutating func mapping(_ node: Node, _ what: String) -> [Entry]? {
        guard let map = node.mapping else {
            if case .scalar(let s) = node, s.string.isEmpty, !node.isQuotedScalar {
                sink.add(node.location, "\(what) is empty; it must be a mapping")
            } else {
                sink.add(node.location, "\(what) must be a mapping, not \(node.kindName)")
            }
            return nil
        }
        let entries = mappingEntries(map)
        for entry in entries where entry.keyNode.scalar == nil {
            sink.add(entry.keyNode.location, "keys in \(what) must be plain names, not \(entry.keyNode.kindName)")
        }
        return entries.filter { $0.keyNode.scalar != nil }
    }

    mutating func sequence(_ node: Node, _ what: String) -> [Node]? {
        guard let seq = node.sequence else {
            sink.add(node.location, "\(what) must be a list, not \(node.kindName)")
            return nil
        }
        return Array(seq)
    }

    mutating func checkKeys(_ entries: [Entry], allowed: [String], in context: String) {
        for entry in entries where !allowed.contains(entry.key) {
            let hint = suggestion(for: entry.key, among: allowed).map { "; did you mean '\($0)'?" }
                ?? "; expected one of \(allowed.joined(separator: ", "))"
            sink.add(entry.keyNode.location, "unknown key '\(entry.key)' in \(context)\(hint)")
        }
    }

    mutating func string(_ node: Node, _ what: String) -> String? {
        guard case .scalar(let scalar) = node else {
            sink.add(node.location, "\(what) must be a single value, not \(node.kindName)")
            return nil
        }
        return scalar.string
    }

    mutating func bool(_ node: Node, _ what: String) -> Bool? {
        guard let text = string(node, what) else { return nil }
        switch node.isQuotedScalar ? "" : text {
        case "true", "True", "TRUE": return true
        case "false", "False", "FALSE": return false
        default:
            sink.add(node.location, "\(what) must be true or false, not '\(text)'")
            return nil
        }
    }

    mutating func int(_ node: Node, _ what: String, range: ClosedRange<Int>) -> Int? {
        guard let text = string(node, what) else { return nil }
        guard let value = Int(text), range.contains(value) else {
            sink.add(node.location, "\(what) must be a whole number from \(range.lowerBound) to \(range.upperBound), not '\(text)'")
            return nil
        }
        return value
    }

    mutating func singleByte(_ node: Node, _ what: String) -> UInt8? {
        guard let text = string(node, what) else { return nil }
        let bytes = Array(text.utf8)
        guard bytes.count == 1, bytes[0] != UInt8(ascii: "\n"), bytes[0] != UInt8(ascii: "\r") else {
            sink.add(node.location, "\(what) must be a single one-byte character (quote it, as in \"\\t\" or \";\"), not '\(text)'")
            return nil
        }
        return bytes[0]
    }

    mutating func choice<T: RawRepresentable & CaseIterable>(_ node: Node, _ what: String) -> T? where T.RawValue == String {
        guard let text = string(node, what) else { return nil }
        if let value = T(rawValue: text) { return value }
        let names = T.allCases.map(\.rawValue)
        sink.add(node.location, "\(what) must be \(names.joined(separator: " or ")), not '\(text)'")
        return nil
    }

    mutating func byteSize(_ node: Node, _ what: String) -> ByteSize? {
        guard let text = string(node, what) else { return nil }
        guard let size = ByteSize(parsing: text), size.bytes > 0 else {
            sink.add(node.location, "\(what) must be a positive size such as 64MiB or 1GB, not '\(text)'")
            return nil
        }
        return size
    }

    mutating func columnType(_ node: Node, _ what: String) -> ColumnType? {
        guard let text = string(node, "the type of \(what)") else { return nil }
        switch ColumnTypeName.parse(text) {
        case .success(let type): return type
        case .failure(let error):
            sink.add(node.location, "\(what): \(error.message)")
            return nil
        }
    }

    /// A list of strings; with `allowSingle`, one plain value counts as a
    /// list of one.
    mutating func stringList(_ node: Node, _ what: String, allowSingle: Bool) -> [Located<String>] {
        if case .scalar(let scalar) = node, allowSingle {
            return [Located(value: scalar.string, location: node.location)]
        }
        guard let seq = node.sequence else {
            sink.add(node.location, "\(what) must be a list, not \(node.kindName)")
            return []
        }
        var result: [Located<String>] = []
        for item in seq {
            if let text = string(item, "an entry of \(what)") {
                result.append(Located(value: text, location: item.location))
            }
        }
        return result
    }

    /// A list of column names that must all exist after normalize.
    mutating func columnList(_ node: Node, _ what: String, tracker: SchemaTracker, allowSingle: Bool) -> [Located<String>] {
        let names = stringList(node, "'\(what)'", allowSingle: allowSingle)
        var seen = Set<String>()
        var result: [Located<String>] = []
        for name in names {
            if what == "partition_by", tracker.index(of: name.value) == nil, let removal = tracker.removed[name.value] {
                sink.add(removal.location, "\(removal.by) removes '\(name.value)', the consolidate partition key "
                         + "(partition_by at \(name.location)); keep it, or partition by another column")
                continue
            }
            guard requireColumn(name.value, at: name.location, in: what, tracker) != nil else { continue }
            guard seen.insert(name.value).inserted else {
                sink.add(name.location, "'\(name.value)' appears twice in \(what)")
                continue
            }
            result.append(name)
        }
        return result
    }

    /// The column named, or an "unknown column" error with help.
    mutating func requireColumn(_ name: String, at location: SpecLocation, in what: String, _ tracker: SchemaTracker) -> SpecColumn? {
        if let i = tracker.index(of: name) { return tracker.columns[i] }
        if tracker.acceptsAnyName { return SpecColumn(name: name, type: nil) }
        var message = "unknown column '\(name)' in \(what)"
        if let removal = tracker.removed[name] {
            message += "; \(removal.by) at \(removal.location) removed it"
        } else if let near = suggestion(for: name, among: tracker.columns.map(\.name)) {
            message += "; did you mean '\(near)'?"
        }
        sink.add(location, message)
        return nil
    }

    func isDatasetName(_ name: String) -> Bool {
        !name.isEmpty && name.unicodeScalars.allSatisfy {
            ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "_" || $0 == "-"
        }
    }

    func literalHint(_ type: ColumnType) -> String {
        switch type {
        case .date: return " (write dates as YYYY-MM-DD)"
        case .timestamp: return " (write timestamps as YYYY-MM-DD HH:MM:SS[.ffffff])"
        case .decimal(let p, let s): return " (at most \(p) digits, \(s) after the point)"
        case .bool: return " (true or false)"
        default: return ""
        }
    }
}

func quotedList(_ names: [String]) -> String {
    names.map { "'\($0)'" }.joined(separator: ", ")
}

/// The columns as normalize changes them, and where each removed column
/// went, so later errors can say which step removed it.
struct SchemaTracker {
    private(set) var columns: [SpecColumn]
    private(set) var removed: [String: (location: SpecLocation, by: String)] = [:]
    /// Set when the starting columns are unknown (the sources could not be
    /// read): then no name can be called unknown.
    var acceptsAnyName = false

    init(_ columns: [SpecColumn]) {
        self.columns = columns
    }

    func index(of name: String) -> Int? {
        columns.firstIndex { $0.name == name }
    }

    /// A Columnar schema for the expression checker; nil while a column's
    /// type is unknown.
    var schema: Schema? {
        var fields: [Field] = []
        for column in columns {
            guard let type = column.type else { return nil }
            fields.append(Field(column.name, type, nullable: column.nullable))
        }
        return Schema(fields)
    }

    mutating func rename(_ from: String, to: String, at location: SpecLocation) {
        guard let i = index(of: from) else { return }
        columns[i].name = to
        removed[to] = nil
        removed[from] = (location, "rename")
    }

    mutating func select(_ kept: [SpecColumn], at location: SpecLocation) {
        for column in columns where !kept.contains(where: { $0.name == column.name }) {
            removed[column.name] = (location, "select")
        }
        columns = kept
    }

    mutating func remove(_ name: String, at location: SpecLocation, by step: String) {
        columns.removeAll { $0.name == name }
        removed[name] = (location, step)
    }

    mutating func setType(_ name: String, _ type: ColumnType) {
        if let i = index(of: name) { columns[i].type = type }
    }

    mutating func setNullable(_ name: String, _ nullable: Bool) {
        if let i = index(of: name) { columns[i].nullable = nullable }
    }

    mutating func derive(_ name: String, type: ColumnType?) {
        if let i = index(of: name) {
            columns[i].type = type
            columns[i].nullable = true
        } else {
            columns.append(SpecColumn(name: name, type: type))
            removed[name] = nil
        }
    }
}

extension SpecLoader {
    /// Whether an unknown key in `entries` is a near miss for `key`: then
    /// "unknown key ...; did you mean" already says what "needs 'key'"
    /// would, so the second message is left out.
    func isTypo(_ key: String, _ entries: [Entry], _ allowed: [String]) -> Bool {
        entries.contains { !allowed.contains($0.key) && suggestion(for: $0.key, among: allowed) == key }
    }

    /// Reports a missing required key, unless a near-miss key already
    /// drew a "did you mean" for it.
    mutating func reportMissing(_ key: String, in entries: [Entry], allowed: [String], at location: SpecLocation,
                                _ message: String) {
        if !isTypo(key, entries, allowed) { sink.add(location, message) }
    }
}

extension Node {
    /// `key:` with nothing after it, which YAML reads as null.
    var isEmptyPlainScalar: Bool {
        if case .scalar(let s) = self { return s.string.isEmpty && !isQuotedScalar }
        return false
    }
}
