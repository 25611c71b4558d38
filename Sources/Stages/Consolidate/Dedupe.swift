import Columnar

/// De-duplication by a record key.
public struct DedupeRule: Sendable, Hashable {
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
/// `by`) columns only. Used when the key is not a prefix of `sort_by` (else
/// `SortedDeduper` drops duplicates from the sorted stream with no table).
/// Memory: per distinct key its canonical bytes (in one flat arena), its
/// arena offset, an ordinal, a 32-bit hash-chain link, one hash-table entry,
/// and only for `latest` the `by` value. Rows are matched by the stable hash of their key and compared
/// byte for byte in a reused scratch buffer, so a row whose key was seen
/// before allocates nothing.
struct DedupeIndex {
    enum ByValue {
        case null, int(Int64), double(Double), bool(Bool), bytes([UInt8])

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

        /// Row `row` of `column` against this value (same column type), in
        /// `SortKeys` order: null lowest, NaN above every number.
        func compare(row: Int, of column: Column) -> Int {
            let rowNull = column.isNull(row)
            switch self {
            case .null: return rowNull ? 0 : 1
            case _ where rowNull: return -1
            default: break
            }
            switch (self, column.values) {
            case (.int(let x), .int64(let v)): return SortKeys.three(v[row], x)
            case (.int(let x), .int32(let v)): return SortKeys.three(Int64(v[row]), x)
            case (.double(let x), .double(let v)):
                let y = v[row]
                if x.isNaN || y.isNaN { return x.isNaN == y.isNaN ? 0 : (y.isNaN ? 1 : -1) }
                return SortKeys.three(y, x)
            case (.bool(let x), .bool(let v)): return v[row] == x ? 0 : (v[row] ? 1 : -1)
            case (.bytes(let x), .bytes(let s)):
                let y = s.bytes(at: row)
                for (p, q) in zip(y, x) where p != q { return p < q ? -1 : 1 }
                return SortKeys.three(y.count, x.count)
            default: preconditionFailure("by values of different kinds")
            }
        }
    }

    let spec: DedupeRule
    private var arena: [UInt8] = []
    private var starts: [Int] = [0]
    private var ordinals: [Int] = []
    private var byValues: [ByValue] = []
    /// Hash → first key with that hash; `chain[k]` the next one, or -1.
    private var heads: [UInt64: Int] = [:]
    private var chain: [Int32] = []
    private var scratch: [UInt8] = []
    private var nextOrdinal = 0

    init(_ spec: DedupeRule) {
        self.spec = spec
    }

    /// Sizes the tables for up to `rows` distinct keys (the inputs' row
    /// count), so a large partition is not rehashed and copied as it grows;
    /// the key arena too when every key column has a fixed encoded width.
    mutating func reserve(rows: Int, schema: Schema) throws {
        guard rows < Int(Int32.max) else {
            throw OperatorError.invalidSetting("dedupe: a partition of \(rows) rows is too large for one task; use more partitions")
        }
        heads.reserveCapacity(rows)
        chain.reserveCapacity(rows)
        ordinals.reserveCapacity(rows)
        starts.reserveCapacity(rows + 1)
        if case .latest = spec.keep { byValues.reserveCapacity(rows) }
        var width = 0
        for name in spec.key {
            guard let i = schema.index(of: name) else { return }
            let type = schema.fields[i].type
            switch type.storage {
            case .bytes: return   // strings: the arena grows with their lengths
            case .bool: width += 2
            case .int64: if case .decimal = type { width += 10 } else { width += 9 }
            case .int32, .double: width += 9
            }
        }
        arena.reserveCapacity(rows * width)
    }

    var columnsRead: [String] {
        if case .latest(let by) = spec.keep, !spec.key.contains(by) { return spec.key + [by] }
        return spec.key
    }

    /// Adds the next rows in input order; `batch` holds `columnsRead`.
    mutating func add(_ batch: ColumnBatch) throws {
        let keyColumns = spec.key.map { batch[$0]! }
        let hashes = try StableHash.rowHashes(batch, columns: spec.key)
        var byColumn: Column?
        if case .latest(let by) = spec.keep { byColumn = batch[by]! }
        for r in 0..<batch.rowCount {
            scratch.removeAll(keepingCapacity: true)
            for c in keyColumns { KeyEncoding.encode(c, row: r) { scratch.append($0) } }
            let ordinal = nextOrdinal + r
            var k = heads[hashes[r]] ?? -1
            while k >= 0, !sameKey(k) { k = Int(chain[k]) }
            if k < 0 {
                k = ordinals.count
                arena.append(contentsOf: scratch)
                starts.append(arena.count)
                ordinals.append(ordinal)
                if let byColumn { byValues.append(ByValue(byColumn, r)) }
                chain.append(Int32(heads[hashes[r]] ?? -1))
                heads[hashes[r]] = k
            } else if let byColumn, byValues[k].compare(row: r, of: byColumn) >= 0 {
                // latest: a greater or equal `by` replaces (ties go to the later row).
                ordinals[k] = ordinal
                byValues[k] = ByValue(byColumn, r)
            }
        }
        nextOrdinal += batch.rowCount
    }

    private func sameKey(_ k: Int) -> Bool {
        let a = starts[k], b = starts[k + 1]
        guard b - a == scratch.count else { return false }
        return arena.withUnsafeBufferPointer { p in
            scratch.withUnsafeBufferPointer { q in
                for i in 0..<q.count where p[a + i] != q[i] { return false }
                return true
            }
        }
    }

    var distinctKeys: Int { ordinals.count }

    /// The ordinals of the rows to keep, ascending.
    func keptOrdinals() -> [Int] {
        ordinals.sorted()
    }
}
