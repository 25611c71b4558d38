import Columnar
import Testing
@testable import Stages

@Suite struct ConsolidateTests {
    /// Shard `s` of a random partition: keys with duplicates across shards,
    /// a `by` column with ties and nulls, strings, nulls in the sort key.
    static func shard(_ s: Int, rows: Int, seed: UInt64) throws -> ColumnBatch {
        var rng = OpRandom(seed: seed &+ UInt64(s))
        return try opBatch([
            ("k", .int64, (0..<rows).map { _ in .int(Int64(rng.int(0...60))) }),
            ("line", .int32, (0..<rows).map { _ in .int(Int64(rng.int(1...3))) }),
            ("name", .string, (0..<rows).map { _ in rng.chance(0.1) ? nil : .string(["b", "a", "ä", "", "zz"][rng.int(0...4)]) }),
            ("at", .date, (0..<rows).map { _ in rng.chance(0.1) ? nil : .int(Int64(rng.int(19_000...19_005))) }),
            ("shard", .int64, (0..<rows).map { _ in .int(Int64(s)) }),
            ("row", .int64, (0..<rows).map { .int(Int64($0)) }),
        ])
    }

    static func writeShards(_ dir: OpTempDir, count: Int, rows: Int, seed: UInt64) throws -> [String] {
        try (0..<count).map { s in
            try opWriteChunk(dir.file("shard-\(s).parquet"), [try shard(s, rows: rows, seed: seed)], rowGroupRows: 97).path
        }
    }

    /// The expected result computed naively from the input rows.
    static func reference(_ paths: [String], sortBy: [Int], dedupe: (key: [Int], latestBy: Int?)?) throws -> [[Scalar?]] {
        var rows = try opReadRows(paths)
        if let dedupe {
            var best = [String: Int]()
            for (i, row) in rows.enumerated() {
                let key = dedupe.key.map { "\(String(describing: row[$0]))" }.joined(separator: "|")
                guard let current = best[key] else { best[key] = i; continue }
                if let by = dedupe.latestBy, compare(row[by], rows[current][by]) >= 0 { best[key] = i }
            }
            rows = best.values.sorted().map { rows[$0] }
        }
        return rows.enumerated().sorted { a, b in
            for c in sortBy {
                let x = compare(a.element[c], b.element[c])
                if x != 0 { return x < 0 }
            }
            return a.offset < b.offset
        }.map(\.element)
    }

    static func compare(_ a: Scalar?, _ b: Scalar?) -> Int {
        switch (a, b) {
        case (nil, nil): return 0
        case (nil, _): return -1
        case (_, nil): return 1
        case let (x?, y?): return Scalar.compare(x, y)!
        }
    }

    @Test func mergesShardsSortedWithNullsFirstAndStable() throws {
        let dir = try OpTempDir()
        defer { dir.cleanup() }
        let inputs = try Self.writeShards(dir, count: 4, rows: 800, seed: 10)
        let r = try consolidate(inputChunks: inputs, partitionBy: ["k"], sortBy: ["name", "k"], dedupe: nil,
                                outputDir: try dir.sub("out"))
        #expect(r.rowsIn == 3200 && r.rowsOut == 3200 && r.duplicatesRemoved == 0 && r.spilledRuns == 0)
        #expect(r.chunks.count == 1)
        let got = try opReadRows(r.chunks.map(\.path))
        #expect(got.count == 3200)
        #expect(got.map { "\($0)" } == (try Self.reference(inputs, sortBy: [2, 0], dedupe: nil)).map { "\($0)" })
        #expect(got.first?[2] == nil)  // null names first
        #expect(!dir.entries("out").contains(".spill"))
    }

    @Test func spillingGivesByteIdenticalChunks() throws {
        let dir = try OpTempDir()
        defer { dir.cleanup() }
        let inputs = try Self.writeShards(dir, count: 5, rows: 1000, seed: 20)
        func run(_ name: String, budget: Int, fanIn: Int = 64) throws -> ConsolidateResult {
            var o = ConsolidateOptions()
            o.mergeFanIn = fanIn
            o.memoryBudgetBytes = budget
            o.rowsPerChunk = 1500
            o.rowGroupRows = 400
            return try consolidate(inputChunks: inputs, partitionBy: ["k"], sortBy: ["k", "at"], dedupe: nil,
                                   outputDir: try dir.sub(name), options: o)
        }
        let memory = try run("memory", budget: 1 << 30)
        let again = try run("again", budget: 1 << 30)
        let spilled = try run("spilled", budget: 4096)
        let passes = try run("passes", budget: 4096, fanIn: 3)
        #expect(memory.spilledRuns == 0)
        #expect(spilled.spilledRuns > 5)
        #expect(memory.chunks.count == 4)  // 5000 rows, 1500 per chunk
        #expect(memory.chunks.map(\.rows) == [1500, 1500, 1500, 500])
        #expect(memory.chunks.map(\.sha256) == again.chunks.map(\.sha256))
        #expect(memory.chunks.map(\.sha256) == spilled.chunks.map(\.sha256))
        #expect(memory.chunks.map(\.sha256) == passes.chunks.map(\.sha256))
        for c in spilled.chunks { #expect(try sha256(ofFile: c.path) == c.sha256) }
        #expect(try opReadRows(spilled.chunks.map(\.path)).map { "\($0)" }
                == (try Self.reference(inputs, sortBy: [0, 3], dedupe: nil)).map { "\($0)" })
        #expect(dir.entries("spilled") == ["consolidated-00000.parquet", "consolidated-00001.parquet",
                                           "consolidated-00002.parquet", "consolidated-00003.parquet"])
    }

    @Test func dedupeKeepFirstTakesTheEarliestShardAndRow() throws {
        let dir = try OpTempDir()
        defer { dir.cleanup() }
        let inputs = try Self.writeShards(dir, count: 3, rows: 400, seed: 30)
        let r = try consolidate(inputChunks: inputs, partitionBy: ["k"], sortBy: ["k", "line"],
                                dedupe: DedupeRule(key: ["k", "line"], keep: .first), outputDir: try dir.sub("out"))
        let got = try opReadRows(r.chunks.map(\.path))
        let want = try Self.reference(inputs, sortBy: [0, 1], dedupe: (key: [0, 1], latestBy: nil))
        #expect(got.map { "\($0)" } == want.map { "\($0)" })
        #expect(Int64(got.count) == r.rowsOut && r.rowsIn - r.rowsOut == r.duplicatesRemoved && r.duplicatesRemoved > 0)
        // keys are unique and each kept row is the first occurrence: shard 0 where present.
        #expect(Set(got.map { "\(String(describing: $0[0]))|\(String(describing: $0[1]))" }).count == got.count)
    }

    @Test(arguments: [1 << 30, 2048])
    func dedupeLatestBreaksTiesByTheLastRowAndRanksNullLowest(budget: Int) throws {
        let dir = try OpTempDir()
        defer { dir.cleanup() }
        // Hand-made ties: key 1 has two rows with the same greatest date, the later wins;
        // key 2 has only a null and a value: the value wins; key 3 only nulls: the last wins.
        let s0 = try opBatch([("k", .int64, [.int(1), .int(2), .int(1), .int(3)]),
                            ("at", .date, [.int(5), nil, .int(9), nil]),
                            ("tag", .string, [.string("a"), .string("b"), .string("c"), .string("d")])])
        let s1 = try opBatch([("k", .int64, [.int(1), .int(2), .int(3), .int(1)]),
                            ("at", .date, [.int(9), .int(1), nil, .int(2)]),
                            ("tag", .string, [.string("e"), .string("f"), .string("g"), .string("h")])])
        let inputs = [try opWriteChunk(dir.file("s0.parquet"), [s0]).path, try opWriteChunk(dir.file("s1.parquet"), [s1]).path]
        var o = ConsolidateOptions()
        o.memoryBudgetBytes = budget
        let r = try consolidate(inputChunks: inputs, partitionBy: ["k"], sortBy: ["k"],
                                dedupe: DedupeRule(key: ["k"], keep: .latest(by: "at")), outputDir: try dir.sub("out"), options: o)
        let got = try ParquetReader(path: r.chunks[0].path).read()
        #expect(opInts(got["k"]) == [1, 2, 3])
        #expect(opStrings(got["tag"]) == ["e", "f", "g"])
        #expect(r.duplicatesRemoved == 5)
    }

    @Test func dedupeLatestMatchesTheReferenceOnRandomData() throws {
        let dir = try OpTempDir()
        defer { dir.cleanup() }
        let inputs = try Self.writeShards(dir, count: 4, rows: 500, seed: 40)
        var o = ConsolidateOptions()
        o.memoryBudgetBytes = 3000
        let r = try consolidate(inputChunks: inputs, partitionBy: ["k"], sortBy: ["k", "line"],
                                dedupe: DedupeRule(key: ["k", "line"], keep: .latest(by: "at")), outputDir: try dir.sub("out"), options: o)
        #expect(r.spilledRuns > 1)
        let want = try Self.reference(inputs, sortBy: [0, 1], dedupe: (key: [0, 1], latestBy: 3))
        #expect(try opReadRows(r.chunks.map(\.path)).map { "\($0)" } == want.map { "\($0)" })
    }

    @Test func emptyInputsWriteNothing() throws {
        let dir = try OpTempDir()
        defer { dir.cleanup() }
        let none = try consolidate(inputChunks: [], partitionBy: ["k"], sortBy: ["k"], dedupe: nil, outputDir: try dir.sub("a"))
        #expect(none.chunks.isEmpty && none.rowsOut == 0)
        let empty = try opWriteChunk(dir.file("e.parquet"), [ColumnBatch.empty(try Self.shard(0, rows: 1, seed: 1).schema)])
        let r = try consolidate(inputChunks: [empty.path, empty.path], partitionBy: ["k"], sortBy: ["k"],
                                dedupe: DedupeRule(key: ["k"], keep: .first), outputDir: try dir.sub("b"))
        #expect(r.chunks.isEmpty && r.rowsIn == 0)
        #expect(dir.entries("b").isEmpty)
    }

    @Test func settingErrorsNameTheColumn() throws {
        let dir = try OpTempDir()
        defer { dir.cleanup() }
        let inputs = try Self.writeShards(dir, count: 1, rows: 10, seed: 50)
        let out = try dir.sub("out")
        let noPartitionKey = opErrorText {
            _ = try consolidate(inputChunks: inputs, partitionBy: ["k"], sortBy: ["k"],
                                dedupe: DedupeRule(key: ["line"], keep: .first), outputDir: out)
        }
        #expect(noPartitionKey.contains("'k'") && noPartitionKey.contains("partition"))
        #expect(opErrorText {
            _ = try consolidate(inputChunks: inputs, partitionBy: ["k"], sortBy: ["nme"], dedupe: nil, outputDir: out)
        }.contains("'nme'"))
        #expect(opErrorText {
            _ = try consolidate(inputChunks: inputs, partitionBy: ["k"], sortBy: ["k"],
                                dedupe: DedupeRule(key: ["k"], keep: .latest(by: "when")), outputDir: out)
        }.contains("'when'"))
        let other = try opWriteChunk(dir.file("other.parquet"), [try opBatch([("k", .string, [.string("x")])])])
        let mismatch = opErrorText {
            _ = try consolidate(inputChunks: inputs + [other.path], partitionBy: ["k"], sortBy: ["k"], dedupe: nil, outputDir: out)
        }
        #expect(mismatch.contains("other.parquet"))
        #expect(dir.entries("out").isEmpty)
    }

    @Test func nullabilityUnionsAcrossInputs() throws {
        let dir = try OpTempDir()
        defer { dir.cleanup() }
        let required = try ColumnBatch(schema: Schema([Field("k", .int64, nullable: false)]), columns: [try Column(.int64, scalars: [.int(2)])])
        let optional = try opBatch([("k", .int64, [nil, .int(1)])])
        let inputs = [try opWriteChunk(dir.file("a.parquet"), [required]).path, try opWriteChunk(dir.file("b.parquet"), [optional]).path]
        let r = try consolidate(inputChunks: inputs, partitionBy: ["k"], sortBy: ["k"], dedupe: nil, outputDir: try dir.sub("o"))
        #expect(r.schema?.fields[0].nullable == true)
        #expect(opInts(try ParquetReader(path: r.chunks[0].path).read()["k"]) == [nil, 1, 2])
    }

    /// All keys equal, or already sorted: the spilled merge must still give
    /// input order for ties and take long blocks from one run intact.
    @Test(arguments: [false, true])
    func spilledMergeIsStableForTiesAndSortedInput(sorted: Bool) throws {
        let dir = try OpTempDir()
        defer { dir.cleanup() }
        let n = 6000
        let input = try opBatch([
            ("k", .int64, (0..<n).map { sorted ? .int(Int64($0 / 3)) : .int(7) }),
            ("seq", .int64, (0..<n).map { .int(Int64($0)) }),
        ])
        let a = try opWriteChunk(dir.file("a.parquet"), [input.slice(0..<2500)], rowGroupRows: 300)
        let b = try opWriteChunk(dir.file("b.parquet"), [input.slice(2500..<n)], rowGroupRows: 300)
        var o = ConsolidateOptions()
        o.memoryBudgetBytes = 8000
        o.mergeFanIn = 4
        let r = try consolidate(inputChunks: [a.path, b.path], partitionBy: ["k"], sortBy: ["k"], dedupe: nil,
                                outputDir: try dir.sub("out"), options: o)
        #expect(r.spilledRuns >= 10)
        let out = try ParquetReader(path: r.chunks[0].path).read()
        #expect(opInts(out["seq"]) == (0..<Int64(n)).map { $0 })
    }
}
