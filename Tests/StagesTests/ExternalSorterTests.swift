import Columnar
import Testing
@testable import Stages

/// The sorter directly: however its last run ends — merged from memory,
/// empty because the last batch filled the budget, or spilled because the
/// merge already has `fanIn` runs — the rows come out as a stable sort.
@Suite struct ExternalSorterTests {
    /// `batches` batches of 100 rows: a key with many ties and the input
    /// position, so the expected order is (key, position).
    static func batches(_ count: Int, seed: UInt64) throws -> [ColumnBatch] {
        var rng = OpRandom(seed: seed)
        return try (0..<count).map { b in
            try opBatch([
                ("k", .int64, (0..<100).map { _ in .int(Int64(rng.int(0...9))) }),
                ("at", .int64, (0..<100).map { .int(Int64(b * 100 + $0)) }),
            ])
        }
    }

    /// (batches, budget, fanIn, spilled runs): a row costs 16 bytes of
    /// values and 32 of sort overhead, so a 100-row batch counts 4,800
    /// bytes and a 9,600-byte budget spills every second batch.
    @Test(arguments: [
        (11, 9_600, 64, 5),  // one batch left in memory, merged from there
        (10, 9_600, 64, 5),  // the last batch spilled: nothing left in memory
        (11, 9_600, 3, 6),   // the merge is full: the last run is spilled too, then merge passes
        (21, 9_600, 64, 11), // more spilled runs than memoryRunMaxSpilled (8): the last is spilled too
        (3, 1 << 30, 64, 0), // no spill at all
    ])
    func everyEndingGivesTheStableOrder(_ count: Int, _ budget: Int, _ fanIn: Int, _ runs: Int) throws {
        let dir = try OpTempDir()
        defer { dir.cleanup() }
        let input = try Self.batches(count, seed: UInt64(count * 31 + fanIn))
        let sorter = ExternalSorter(schema: input[0].schema, keyIndices: [0], budgetBytes: budget,
                                    tempDir: try dir.sub("spill"), runRowGroupRows: 64, mergeBatchRows: 50,
                                    fanIn: fanIn)
        for b in input { try sorter.add(b) }
        var keys = [Int64?](), positions = [Int64?]()
        try sorter.finish { batch in
            // A merge flushes once it has 50 rows, after a block of at
            // most one run row group (64 rows).
            #expect(batch.rowCount > 0 && batch.rowCount < 50 + 64)
            keys += opInts(batch.columns[0])
            positions += opInts(batch.columns[1])
        }
        #expect(sorter.spilledRuns == runs)
        var expected = [(key: Int64, at: Int64)]()
        for b in input {
            let k = opInts(b.columns[0]), at = opInts(b.columns[1])
            for r in 0..<b.rowCount { expected.append((k[r]!, at[r]!)) }
        }
        expected.sort { a, b in a.key != b.key ? a.key < b.key : a.at < b.at }
        #expect(keys == expected.map { Optional($0.key) })
        #expect(positions == expected.map { Optional($0.at) })
    }

    /// Strings and nulls through spills whose buffers are reused from run to
    /// run (offsets and validity emptied, capacity kept), and the last run
    /// merged from memory: every value stays with its row.
    @Test func stringsAndNullsSurviveReusedBuffers() throws {
        let dir = try OpTempDir()
        defer { dir.cleanup() }
        var rng = OpRandom(seed: 7)
        let input = try (0..<12).map { b in
            try opBatch([
                ("k", .int64, (0..<100).map { _ in rng.int(0...9) == 0 ? nil : .int(Int64(rng.int(0...9))) }),
                ("s", .string, (0..<100).map { r in (b * 100 + r) % 7 == 0 ? nil : .string(String(repeating: "v", count: r % 13) + "\(b * 100 + r)") }),
                ("at", .int64, (0..<100).map { .int(Int64(b * 100 + $0)) }),
            ])
        }
        let sorter = ExternalSorter(schema: input[0].schema, keyIndices: [0], budgetBytes: 12_000,
                                    tempDir: try dir.sub("spill"), runRowGroupRows: 64, mergeBatchRows: 50)
        for b in input { try sorter.add(b) }
        var got = [(k: Int64?, s: String?, at: Int64)]()
        try sorter.finish { batch in
            let k = opInts(batch.columns[0]), s = opStrings(batch.columns[1]), at = opInts(batch.columns[2])
            for r in 0..<batch.rowCount { got.append((k[r], s[r], at[r]!)) }
        }
        #expect(sorter.spilledRuns >= 3 && sorter.spilledRuns <= ExternalSorter.memoryRunMaxSpilled)
        var expected = [(k: Int64?, s: String?, at: Int64)]()
        for b in input {
            let k = opInts(b.columns[0]), s = opStrings(b.columns[1]), at = opInts(b.columns[2])
            for r in 0..<b.rowCount { expected.append((k[r], s[r], at[r]!)) }
        }
        // Nulls first, then by key; ties in input order.
        expected.sort { a, b in a.k != b.k ? (a.k ?? .min) < (b.k ?? .min) : a.at < b.at }
        #expect(got.count == expected.count)
        #expect(got.map(\.at) == expected.map(\.at))
        #expect(got.map(\.s) == expected.map(\.s))
        #expect(got.map(\.k) == expected.map(\.k))
    }
}
