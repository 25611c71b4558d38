import Columnar

/// De-duplication on the sorted stream, used when the record key is a prefix
/// of the sort key (as a set: `sort_by` starts with the key's columns in any
/// order). Rows with equal keys are then adjacent in the sorter's output, so
/// one winner per run of equal keys is picked as the rows go by: no hash
/// table, no second pass over the inputs, memory of one row.
///
/// The sort is stable (see `ExternalSorter`), so within a run of equal keys
/// the rows are in input order when `sort_by` has no column beyond the key.
/// Otherwise they are ordered by the remaining sort columns first, and the
/// input order comes from an `ordinal` column (the row's position in the
/// inputs) that the caller carries through the sort.
///
/// The winners are the same rows as `DedupeIndex` picks, and they come out
/// in the same order (sorted, ties in input order), so the chunks written
/// are byte-identical to those of the hash pass.
final class SortedDeduper {
    private let keyIndices: [Int]
    private let byIndex: Int?
    private let ordinalIndex: Int?
    private let emit: (ColumnBatch) throws -> Void
    /// The best row so far of the key run still open at the end of the last
    /// batch (a one-row copy); nil before the first row.
    private var pending: ColumnBatch?
    private(set) var rowsOut: Int64 = 0

    /// `keyIndices`: the record key's columns in the stream's schema (in the
    /// order they appear in `sort_by`); `byIndex`: the `latest` column;
    /// `ordinalIndex`: an int64 column of input positions, nil when the
    /// stream's ties are already in input order within a key.
    init(keyIndices: [Int], byIndex: Int?, ordinalIndex: Int?, emit: @escaping (ColumnBatch) throws -> Void) {
        self.keyIndices = keyIndices
        self.byIndex = byIndex
        self.ordinalIndex = ordinalIndex
        self.emit = emit
    }

    /// A view of one batch's columns used to compare rows.
    private struct View {
        let keys: SortKeys
        let by: SortKeys?
        let ordinals: [Int64]?

        init(_ batch: ColumnBatch, _ keyIndices: [Int], _ byIndex: Int?, _ ordinalIndex: Int?) {
            keys = SortKeys(batch, indices: keyIndices)
            by = byIndex.map { SortKeys(batch, indices: [$0]) }
            if let ordinalIndex, case .int64(let v) = batch.columns[ordinalIndex].values {
                ordinals = v
            } else {
                ordinals = nil
            }
        }
    }

    /// True when row `r` of `a` should replace row `b` of `bv` as its key's
    /// winner; `a`'s row comes later in the stream.
    @inline(__always)
    private func beats(_ a: View, _ r: Int, _ bv: View, _ b: Int) -> Bool {
        if let by = a.by {
            // latest: the greater `by`; ties go to the later row in input order.
            let c = by.compare(r, bv.by!, b)
            if c != 0 { return c > 0 }
            if let x = a.ordinals, let y = bv.ordinals { return x[r] > y[b] }
            return true
        }
        // first: the earlier row in input order.
        if let x = a.ordinals, let y = bv.ordinals { return x[r] < y[b] }
        return false
    }

    /// Takes the next rows of the sorted stream.
    func add(_ batch: ColumnBatch) throws {
        let n = batch.rowCount
        guard n > 0 else { return }
        let view = View(batch, keyIndices, byIndex, ordinalIndex)
        let pendingView = pending.map { View($0, keyIndices, byIndex, ordinalIndex) }
        var winners = [Int]()
        var closedPending: ColumnBatch?
        // The open run's best row: an index into `batch`, or -1 for `pending`.
        var best = -1
        for r in 0..<n {
            let same: Bool
            if r > 0 {
                same = view.keys.compare(r, view.keys, r - 1) == 0
            } else if let pendingView {
                same = view.keys.compare(0, pendingView.keys, 0) == 0
            } else {
                same = false
            }
            if !same {
                if r == 0 {
                    closedPending = pending
                } else if best >= 0 {
                    winners.append(best)
                } else {
                    closedPending = pending
                }
                best = r
            } else if best >= 0 {
                if beats(view, r, view, best) { best = r }
            } else if beats(view, r, pendingView!, 0) {
                best = r
            }
        }
        if best >= 0 { pending = Gather.batch(batch, [best]) }
        if let closedPending { try send(closedPending) }
        if !winners.isEmpty { try send(Gather.batch(batch, winners)) }
    }

    /// Emits the last key's winner.
    func finish() throws {
        if let p = pending {
            pending = nil
            try send(p)
        }
    }

    private func send(_ batch: ColumnBatch) throws {
        rowsOut += Int64(batch.rowCount)
        try emit(batch)
    }
}

extension DedupeRule {
    /// How many leading `sortBy` columns hold exactly the key's columns, or
    /// nil when the key is not a prefix of `sortBy` (as a set).
    func prefixLength(of sortBy: [String]) -> Int? {
        let key = Set(self.key)
        guard !key.isEmpty, sortBy.count >= key.count, Set(sortBy.prefix(key.count)) == key else { return nil }
        return key.count
    }
}
