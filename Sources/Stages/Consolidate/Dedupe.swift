import Columnar

/// De-duplication by a record key.
public struct DedupeSpec: Sendable, Hashable {
    public enum Keep: Sendable, Hashable {
        /// The first row of each key in input order: inputs in the order
        /// given (shard index order), rows in file order.
        case first
        /// The row with the greatest `by` value (in the sort order of
        /// `SortKeys`: null below every value, NaN above every number). Among
        /// rows with equal `by` values the last in input order wins, the
        /// one written most recently, as with a later load replacing an
        /// earlier one.
        case latest(by: String)
    }

    public var key: [String]
    public var keep: Keep

    public init(key: [String], keep: Keep) {
        self.key = key
        self.keep = keep
    }
}

/// The winning row of each record key, found in one pass over the key (and
/// `by`) columns only. Memory: one entry per distinct key (its canonical
/// bytes, an ordinal and for `latest` the `by` value).
struct DedupeIndex {
    private enum ByValue {
        case null, int(Int64), double(Double), bool(Bool), bytes([UInt8])

        /// Same order as `SortKeys`; both values come from one column.
        static func compare(_ a: ByValue, _ b: ByValue) -> Int {
            switch (a, b) {
            case (.null, .null): return 0
            case (.null, _): return -1
            case (_, .null): return 1
            case (.int(let x), .int(let y)): return SortKeys.three(x, y)
            case (.double(let x), .double(let y)):
                if x.isNaN || y.isNaN { return x.isNaN == y.isNaN ? 0 : (x.isNaN ? 1 : -1) }
                return SortKeys.three(x, y)
            case (.bool(let x), .bool(let y)): return x == y ? 0 : (x ? 1 : -1)
            case (.bytes(let x), .bytes(let y)):
                for (p, q) in zip(x, y) where p != q { return p < q ? -1 : 1 }
                return SortKeys.three(x.count, y.count)
            default: preconditionFailure("by values of different kinds")
            }
        }

        init(_ column: Column, _ row: Int) {
            if column.isNull(row) {
                self = .null
                return
            }
            switch column.values {
            case .int64(let v): self = .int(v[row])
            case .int32(let v): self = .int(Int64(v[row]))
            case .double(let v): self = .double(v[row])
            case .bool(let v): self = .bool(v[row])
            case .bytes(let s): self = .bytes(Array(s.bytes(at: row)))
            }
        }
    }

    private struct Winner {
        var ordinal: Int
        var by: ByValue
    }

    let spec: DedupeSpec
    private var winners: [[UInt8]: Winner] = [:]
    private var nextOrdinal = 0

    init(_ spec: DedupeSpec) {
        self.spec = spec
    }

    var columnsRead: [String] {
        if case .latest(let by) = spec.keep, !spec.key.contains(by) { return spec.key + [by] }
        return spec.key
    }

    /// Adds the next rows in input order; `batch` holds `columnsRead`.
    mutating func add(_ batch: ColumnBatch) {
        let keyColumns = spec.key.map { batch[$0]! }
        let keys = KeyEncoding.rowKeys(keyColumns, rows: batch.rowCount)
        switch spec.keep {
        case .first:
            for (r, key) in keys.enumerated() where winners[key] == nil {
                winners[key] = Winner(ordinal: nextOrdinal + r, by: .null)
            }
        case .latest(let by):
            let byColumn = batch[by]!
            for (r, key) in keys.enumerated() {
                let candidate = Winner(ordinal: nextOrdinal + r, by: ByValue(byColumn, r))
                if let current = winners[key], ByValue.compare(candidate.by, current.by) < 0 { continue }
                winners[key] = candidate
            }
        }
        nextOrdinal += batch.rowCount
    }

    var distinctKeys: Int { winners.count }

    /// The ordinals of the rows to keep, ascending.
    func keptOrdinals() -> [Int] {
        winners.values.map(\.ordinal).sorted()
    }
}
