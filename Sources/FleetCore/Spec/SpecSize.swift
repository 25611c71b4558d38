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
}
