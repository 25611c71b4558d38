import Columnar
import Foundation
import Testing
@testable import Stages

/// Dedupe during the sorted merge (key a prefix of sort_by) against the hash
/// pass (`forceHashDedupe`): the same inputs must give byte-identical chunks.
@Suite struct SortedDedupeTests {
    /// Shard `s`: few distinct keys (many duplicates within and across
    /// shards), nulls in every key column, doubles with -0.0/+0.0/NaN,
    /// a `by` date with many ties and nulls.
    static func shard(_ s: Int, rows: Int, seed: UInt64) throws -> ColumnBatch {
        var rng = OpRandom(seed: seed &+ UInt64(s) &* 7919)
        let doubles: [Double] = [0.0, -0.0, 1.5, .nan, -2.25, .infinity]
        return try opBatch([
            ("k", .int64, (0..<rows).map { _ in .int(Int64(rng.int(0...12))) }),
            ("name", .string, (0..<rows).map { _ in rng.chance(0.15) ? nil : .string(["b", "a", "ä", "", "zz"][rng.int(0...4)]) }),
            ("x", .double, (0..<rows).map { _ in rng.chance(0.1) ? nil : .double(doubles[rng.int(0...5)]) }),
            ("at", .date, (0..<rows).map { _ in rng.chance(0.2) ? nil : .int(Int64(rng.int(19_000...19_003))) }),
            ("line", .int32, (0..<rows).map { _ in rng.chance(0.1) ? nil : .int(Int64(rng.int(1...4))) }),
            ("shard", .int64, (0..<rows).map { _ in .int(Int64(s)) }),
            ("row", .int64, (0..<rows).map { .int(Int64($0)) }),
        ])
    }

    static func inputs(_ dir: OpTempDir, count: Int, rows: Int, seed: UInt64) throws -> [String] {
        try (0..<count).map { s in
            try opWriteChunk(dir.file("in-\(s).parquet"), [try shard(s, rows: rows + 37 * s, seed: seed)],
                             rowGroupRows: 61 + 13 * s).path
        }
    }

    struct Case: CustomStringConvertible, Sendable {
        let key: [String]
        let sortBy: [String]
        let keep: DedupeRule.Keep
        var description: String { "key \(key) sort_by \(sortBy) keep \(keep)" }
    }

    static let cases: [Case] = [
        Case(key: ["k", "name"], sortBy: ["k", "name"], keep: .first),
        Case(key: ["k", "name"], sortBy: ["k", "name"], keep: .latest(by: "at")),
        Case(key: ["k", "x"], sortBy: ["x", "k"], keep: .latest(by: "line")),
        // sort_by longer than the key: input order rides along as an ordinal.
        Case(key: ["k", "name"], sortBy: ["name", "k", "line", "at"], keep: .first),
        Case(key: ["k", "name"], sortBy: ["k", "name", "at"], keep: .latest(by: "at")),
        Case(key: ["k"], sortBy: ["k", "x", "name"], keep: .latest(by: "x")),
        Case(key: ["k", "line"], sortBy: ["k", "line"], keep: .latest(by: "name")),
    ]

    @Test(arguments: cases, [1 << 30, 4096, 700])
    func mergeDedupeIsByteIdenticalToTheHashPass(c: Case, budget: Int) throws {
        let dir = try OpTempDir()
        defer { dir.cleanup() }
        let inputs = try Self.inputs(dir, count: 4, rows: 300, seed: UInt64(budget) &+ UInt64(c.sortBy.count))
        #expect(DedupeRule(key: c.key, keep: c.keep).prefixLength(of: c.sortBy) != nil)
        var results = [ConsolidateResult]()
        var files = [[Data]]()
        for force in [true, false] {
            var o = ConsolidateOptions()
            o.memoryBudgetBytes = budget
            o.mergeFanIn = 3   // with a tiny budget, several merge passes
            o.rowsPerChunk = 50
            o.rowGroupRows = 16
            o.forceHashDedupe = force
            let r = try consolidate(inputChunks: inputs, partitionBy: ["k"], sortBy: c.sortBy,
                                    dedupe: DedupeRule(key: c.key, keep: c.keep),
                                    outputDir: try dir.sub(force ? "hash" : "merge"), options: o)
            results.append(r)
            files.append(try r.chunks.map { try Data(contentsOf: URL(fileURLWithPath: $0.path)) })
        }
        #expect(results[0].rowsIn == results[1].rowsIn)
        #expect(results[0].rowsOut == results[1].rowsOut)
        #expect(results[0].duplicatesRemoved == results[1].duplicatesRemoved && results[1].duplicatesRemoved > 0)
        #expect(results[1].chunks.map { ($0.path as NSString).lastPathComponent }
                == results[0].chunks.map { ($0.path as NSString).lastPathComponent })
        #expect(!files[0].isEmpty)
        #expect(files[0] == files[1])
        if budget < 5000 { #expect(results[1].spilledRuns > 3) }
    }

    @Test func keyNotAPrefixOfSortByIsNotMergeDeduped() {
        #expect(DedupeRule(key: ["k", "line"], keep: .first).prefixLength(of: ["k"]) == nil)
        #expect(DedupeRule(key: ["k", "line"], keep: .first).prefixLength(of: ["k", "at", "line"]) == nil)
        #expect(DedupeRule(key: ["line", "k"], keep: .first).prefixLength(of: ["k", "line", "at"]) == 2)
        #expect(DedupeRule(key: ["k"], keep: .first).prefixLength(of: []) == nil)
    }

    /// A key run that straddles many sorter output batches (one key for all
    /// rows) still yields one row: the right one.
    @Test(arguments: [1 << 30, 600])
    func oneKeyAcrossManyBatches(budget: Int) throws {
        let dir = try OpTempDir()
        defer { dir.cleanup() }
        let n = 20_000
        let b = try opBatch([
            ("k", .int64, (0..<n).map { _ in .int(7) }),
            ("at", .date, (0..<n).map { .int(Int64($0 % 1000 == 999 ? 5 : $0 % 3)) }),
            ("row", .int64, (0..<n).map { .int(Int64($0)) }),
        ])
        let inputs = [try opWriteChunk(dir.file("a.parquet"), [b], rowGroupRows: 1000).path]
        var o = ConsolidateOptions()
        o.memoryBudgetBytes = budget
        let latest = try consolidate(inputChunks: inputs, partitionBy: ["k"], sortBy: ["k"],
                                     dedupe: DedupeRule(key: ["k"], keep: .latest(by: "at")),
                                     outputDir: try dir.sub("latest"), options: o)
        #expect(opInts(try ParquetReader(path: latest.chunks[0].path).read()["row"]) == [19_999])
        let first = try consolidate(inputChunks: inputs, partitionBy: ["k"], sortBy: ["k"],
                                    dedupe: DedupeRule(key: ["k"], keep: .first),
                                    outputDir: try dir.sub("first"), options: o)
        #expect(opInts(try ParquetReader(path: first.chunks[0].path).read()["row"]) == [0])
        #expect(first.rowsOut == 1 && first.duplicatesRemoved == Int64(n - 1))
    }
}
