import CYaml
import Yams

/// A bound on how large a spec's YAML document may become once its aliases
/// are expanded. Aliases make a small text stand for a huge tree (each level
/// of `&a [*b, *b, …]` multiplies it), and the loader walks the expanded
/// tree: 532 bytes of nested aliases took 9 s and 945 MB, a little more
/// killed the process. A real pipeline spec has a few hundred values.
enum SpecSize {
    static let maxValues = 100_000

    /// Columns one source may declare, and normalize operations a spec may
    /// have (each derived, cast, filled or renamed column counts as one; a
    /// select, drop, trim, upper, lower or filter step as one). Checking a
    /// spec and compiling its normalize steps costs operations × columns:
    /// found by fuzzing, a 430 KB spec deriving 20,000 columns kept the loader
    /// busy for minutes (every worker compiles it again). Real specs stay far
    /// below; with both bounds the work stays under a few million steps.
    static let maxColumns = 1_000
    static let maxNormalizeOperations = 1_000

    /// The location of the value at which the expanded document passes
    /// `limit` values, or nil when it stays within. Stops counting there, so
    /// the check itself costs at most `limit` steps whatever the document.
    static func overflow(_ root: Node, limit: Int = maxValues) -> SpecLocation? {
        var pending = [root]
        var count = 0
        while let node = pending.popLast() {
            count += 1
            if count > limit { return SpecLocation(node.mark) }
            switch node {
            case .scalar, .alias: break
            case .sequence(let seq): pending.append(contentsOf: seq)
            case .mapping(let map):
                for (key, value) in map {
                    pending.append(key)
                    pending.append(value)
                }
            }
        }
        return nil
    }

    static func overflowError(file: String, at: SpecLocation) -> SpecError {
        SpecError(file: file, location: at, message: "the spec expands to more than "
            + "\(maxValues) YAML values once its aliases are repeated; a pipeline spec is far smaller "
            + "(aliases inside aliases multiply: use each anchor for a small value)")
    }

    /// Where the document passes `limit` values once its aliases are
    /// expanded, counted from libyaml's events before Yams builds a tree: the
    /// count is linear in the text, however the aliases nest. `overflow(_:)`
    /// alone comes too late for one shape: Yams checks a mapping for duplicate
    /// keys while composing it, by hashing every key, and a key that is an
    /// alias of nested aliases (`{*l9: x}`) hashed a billion nodes (found by
    /// fuzzing: 737 bytes, more than 10 s). nil when the text stays within,
    /// or when libyaml cannot parse it (Yams then reports the error).
    static func aliasOverflow(_ yaml: String, limit: Int = maxValues) -> SpecLocation? {
        var parser = yaml_parser_t()
        guard yaml_parser_initialize(&parser) == 1 else { return nil }
        defer { yaml_parser_delete(&parser) }
        let bytes = Array(yaml.utf8)
        return bytes.withUnsafeBufferPointer { buffer -> SpecLocation? in
            yaml_parser_set_input_string(&parser, buffer.baseAddress, buffer.count)
            yaml_parser_set_encoding(&parser, YAML_UTF8_ENCODING)
            // Expanded size of each anchored node, and of each collection
            // still open (with its anchor).
            var anchors: [String: Int] = [:]
            var open: [(size: Int, anchor: String?)] = []
            var total = 0
            func anchorName(_ p: UnsafeMutablePointer<yaml_char_t>?) -> String? {
                p.map { String(cString: UnsafeRawPointer($0).assumingMemoryBound(to: CChar.self)) }
            }
            var event = yaml_event_t()
            while true {
                guard yaml_parser_parse(&parser, &event) == 1 else { return nil }
                defer { yaml_event_delete(&event) }
                let mark = SpecLocation(line: Int(event.start_mark.line) + 1, column: Int(event.start_mark.column) + 1)
                var added = 0
                switch event.type {
                case YAML_STREAM_END_EVENT:
                    return nil
                case YAML_SCALAR_EVENT:
                    added = 1
                    if let name = anchorName(event.data.scalar.anchor) { anchors[name] = 1 }
                case YAML_ALIAS_EVENT:
                    added = anchorName(event.data.alias.anchor).flatMap { anchors[$0] } ?? 1
                case YAML_SEQUENCE_START_EVENT:
                    open.append((1, anchorName(event.data.sequence_start.anchor)))
                case YAML_MAPPING_START_EVENT:
                    open.append((1, anchorName(event.data.mapping_start.anchor)))
                case YAML_SEQUENCE_END_EVENT, YAML_MAPPING_END_EVENT:
                    guard let closed = open.popLast() else { return nil }
                    if let name = closed.anchor { anchors[name] = closed.size }
                    if var parent = open.popLast() {
                        parent.size = min(parent.size + closed.size, limit + 1)
                        open.append(parent)
                    }
                    continue
                default:
                    continue
                }
                // Sizes saturate just past the limit, so no sum can overflow.
                total = min(total + added, limit + 1)
                if total > limit { return mark }
                if var parent = open.popLast() {
                    parent.size = min(parent.size + added, limit + 1)
                    open.append(parent)
                }
            }
        }
    }
}
