#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Columnar

/// Sorts a stream of batches by key columns within a memory budget: rows are
/// accumulated until their estimated bytes reach the budget, sorted (a
/// permutation sort over the buffers) and spilled as a sorted run to a temp
/// Parquet file; at the end the runs are k-way merged into the output.
/// With no spill the rows are sorted in memory and written directly.
///
/// The sort is stable: rows with equal keys keep their input order (in a
/// run by the index tiebreak, across runs by run number, runs being made in
/// input order). So spilling or not gives the same rows in the same order.
final class ExternalSorter {
    let schema: Schema
    let keyIndices: [Int]
    let budgetBytes: Int
    let tempDir: String
    let runRowGroupRows: Int
    let mergeBatchRows: Int
    let fanIn: Int
    private var builders: [ColumnBuilder]
    private var bufferedRows = 0
    private var runs: [String] = []
    /// Sorted runs spilled from memory (merge passes not counted).
    private(set) var spilledRuns = 0

    init(schema: Schema, keyIndices: [Int], budgetBytes: Int, tempDir: String,
         runRowGroupRows: Int = 8192, mergeBatchRows: Int = 8192, fanIn: Int = 64) {
        precondition(fanIn >= 2, "a merge needs at least two runs at a time")
        self.fanIn = fanIn
        self.schema = schema
        self.keyIndices = keyIndices
        self.budgetBytes = budgetBytes
        self.tempDir = tempDir
        self.runRowGroupRows = runRowGroupRows
        self.mergeBatchRows = mergeBatchRows
        builders = schema.fields.map { ColumnBuilder($0.type) }
    }

    /// Bytes a buffered row costs beyond the builders' estimate: the sort's
    /// permutation (a 64-bit prefix and a row index to sort, then the
    /// resulting row index: 32 bytes) and, per string column, the other half
    /// of its 8-byte offset (the builders count 4). Counting them makes the
    /// budget bound what a spill really holds, not only the values.
    private var overheadPerRow: Int {
        32 + 4 * schema.fields.filter { $0.type.storage == .bytes }.count
    }

    private var bufferedBytes: Int {
        builders.reduce(0) { $0 + $1.estimatedBytes } + bufferedRows * overheadPerRow
    }

    func add(_ batch: ColumnBatch) throws {
        guard batch.rowCount > 0 else { return }
        for i in builders.indices { builders[i].append(batch.columns[i], range: 0..<batch.rowCount) }
        bufferedRows += batch.rowCount
        if bufferedBytes >= budgetBytes { try spill() }
    }

    /// Empties the buffer into `emit` in key order, `blockRows` rows at a
    /// time. Each block is gathered from the buffered columns by the sort
    /// permutation, so a sorted copy of the whole buffer is never held.
    private func drainSorted(blockRows: Int, _ emit: (ColumnBatch) throws -> Void) throws {
        let batch = try ColumnBatch(schema: schema, columns: builders.map { $0.build() })
        for i in builders.indices { builders[i] = ColumnBuilder(schema.fields[i].type) }
        bufferedRows = 0
        let perm = SortKeys(batch, indices: keyIndices).sortedPermutation(count: batch.rowCount)
        var start = 0
        while start < perm.count {
            let end = min(perm.count, start + blockRows)
            try emit(Gather.batch(batch, Array(perm[start..<end])))
            start = end
        }
    }

    private func spill() throws {
        guard bufferedRows > 0 else { return }
        let path = tempDir + "/" + ChunkSink.name("run", spilledRuns)
        let w = try ParquetWriter(path: path, schema: schema, options: runOptions)
        try drainSorted(blockRows: runRowGroupRows) { try w.append($0) }
        _ = try w.finish()
        runs.append(path)
        spilledRuns += 1
    }

    private var runOptions: WriterOptions {
        var o = WriterOptions()
        o.rowGroupRows = runRowGroupRows
        o.compression = .zstd(level: 1)
        o.dictionary = false
        return o
    }

    /// Writes every row in key order to `sink`.
    func finish(into sink: some BatchSink) throws {
        try finish { try sink.append($0) }
    }

    /// Passes every row in key order to `emit`, in batches of at most
    /// `mergeBatchRows` rows.
    func finish(emit: (ColumnBatch) throws -> Void) throws {
        if runs.isEmpty {
            try drainSorted(blockRows: mergeBatchRows, emit)
            return
        }
        try spill()
        // At most `fanIn` runs are open at once: merge consecutive groups of
        // runs into longer runs until few enough remain. Merging neighbours
        // in order keeps ties in input order.
        var pass = 0
        while runs.count > fanIn {
            var next = [String]()
            for start in stride(from: 0, to: runs.count, by: fanIn) {
                let group = Array(runs[start..<min(runs.count, start + fanIn)])
                guard group.count > 1 else {
                    next.append(group[0])
                    continue
                }
                let path = tempDir + "/" + ChunkSink.name("pass\(pass)", next.count)
                let w = try ParquetWriter(path: path, schema: schema, options: runOptions)
                try merge(group) { try w.append($0) }
                _ = try w.finish()
                for p in group { unlink(p) }
                next.append(path)
            }
            runs = next
            pass += 1
        }
        try merge(runs, into: emit)
    }

    /// One run being read row group by row group.
    private final class Cursor {
        let reader: ParquetReader
        let run: Int
        var group = 0
        var batch: ColumnBatch
        var keys: SortKeys
        var row = 0

        init(path: String, run: Int, keyIndices: [Int]) throws {
            reader = try ParquetReader(path: path)
            self.run = run
            batch = try reader.readRowGroup(0)
            keys = SortKeys(batch, indices: keyIndices)
        }

        /// Moves to the next row; false when the run is exhausted.
        func advance(_ keyIndices: [Int]) throws -> Bool {
            row += 1
            if row < batch.rowCount { return true }
            group += 1
            guard group < reader.rowGroups.count else { return false }
            batch = try reader.readRowGroup(group)
            keys = SortKeys(batch, indices: keyIndices)
            row = 0
            return true
        }
    }

    /// K-way merge of `runs` with a binary heap ordered by (key, run
    /// number). Memory: one row group per run plus one output batch.
    private func merge(_ runs: [String], into emit: (ColumnBatch) throws -> Void) throws {
        var cursors = [Cursor]()
        for (i, path) in runs.enumerated() {
            cursors.append(try Cursor(path: path, run: i, keyIndices: keyIndices))
        }
        func less(_ a: Cursor, _ b: Cursor) -> Bool {
            let c = a.keys.compare(a.row, b.keys, b.row)
            return c != 0 ? c < 0 : a.run < b.run
        }
        var heap = cursors.filter { $0.batch.rowCount > 0 }
        func siftDown(_ start: Int) {
            var i = start
            while true {
                let l = 2 * i + 1, r = l + 1
                var m = i
                if l < heap.count, less(heap[l], heap[m]) { m = l }
                if r < heap.count, less(heap[r], heap[m]) { m = r }
                if m == i { return }
                heap.swapAt(i, m)
                i = m
            }
        }
        for i in stride(from: heap.count / 2 - 1, through: 0, by: -1) { siftDown(i) }

        var out = schema.fields.map { ColumnBuilder($0.type, capacity: mergeBatchRows) }
        var outRows = 0
        func flush() throws {
            guard outRows > 0 else { return }
            try emit(try ColumnBatch(schema: schema, columns: out.map { $0.build() }))
            for i in out.indices { out[i].removeAll() }
            outRows = 0
        }
        while let top = heap.first {
            // Take every row of the top run's current batch that still sorts
            // before the runner-up's head, in one block copy per column.
            var end = top.row + 1
            if heap.count > 1 {
                let second = heap.count > 2 && less(heap[2], heap[1]) ? heap[2] : heap[1]
                while end < top.batch.rowCount {
                    let c = top.keys.compare(end, second.keys, second.row)
                    guard c < 0 || (c == 0 && top.run < second.run) else { break }
                    end += 1
                }
            } else {
                end = top.batch.rowCount
            }
            for i in out.indices { out[i].append(top.batch.columns[i], range: top.row..<end) }
            outRows += end - top.row
            if outRows >= mergeBatchRows { try flush() }
            top.row = end - 1
            if try top.advance(keyIndices) {
                siftDown(0)
            } else {
                heap.swapAt(0, heap.count - 1)
                heap.removeLast()
                if !heap.isEmpty { siftDown(0) }
            }
        }
        try flush()
    }
}
