import Columnar
import Testing
@testable import Stages

@Suite struct ShuffleTests {
    static func input(rows: Int, seed: UInt64) throws -> ColumnBatch {
        var rng = OpRandom(seed: seed)
        return try opBatch([
            ("k", .int64, (0..<rows).map { _ in rng.chance(0.05) ? nil : .int(Int64(rng.int(0...200))) }),
            ("name", .string, (0..<rows).map { i in .string(" n\(i % 17) ") }),
            ("amount", .decimal(precision: 12, scale: 2), (0..<rows).map { _ in .int(Int64(rng.int(-10_000...10_000))) }),
        ])
    }

    @Test func normalizePartitionsEveryRowByItsKeyHash() throws {
        let dir = try OpTempDir()
        defer { dir.cleanup() }
        let a = try opWriteChunk(dir.file("in-0.parquet"), [try Self.input(rows: 3000, seed: 1)], rowGroupRows: 700)
        let out = try dir.sub("out")
        let result = try normalize(inputChunks: [a.path], steps: [.trim(["name"]), .upper(["name"])],
                                   partitionBy: ["k"], partitions: 5, outputDir: out,
                                   metadata: [KeyValue("bis.run", "r1")])
        #expect(result.rowsIn == 3000 && result.rowsOut == 3000)
        #expect(result.partitions.map(\.partition) == [0, 1, 2, 3, 4])
        #expect(dir.entries("out") == (0..<5).map { ShuffleWriter.fileName(partition: $0) })
        var total = 0
        var seen = [[Scalar?]]()
        for pc in result.partitions {
            let reader = try ParquetReader(path: pc.chunk.path)
            #expect(reader.keyValueMetadata.contains(KeyValue("bis.run", "r1")))
            #expect(try sha256(ofFile: pc.chunk.path) == pc.chunk.sha256)
            let b = try reader.read()
            total += b.rowCount
            #expect(try StableHash.partitions(b, columns: ["k"], count: 5).allSatisfy { $0 == pc.partition })
            #expect(opStrings(b["name"]).allSatisfy { $0!.hasPrefix("N") && !$0!.hasSuffix(" ") })
            seen += try opReadRows([pc.chunk.path])
        }
        #expect(total == 3000)
        // The same multiset of rows, after the steps.
        let expected = try opReadRows([a.path]).map { row -> [Scalar?] in
            var r = row
            if case .bytes(let b)? = r[1] { r[1] = .string(String(decoding: b, as: UTF8.self).trimmingASCII().uppercased()) }
            return r
        }
        #expect(seen.map { "\($0)" }.sorted() == expected.map { "\($0)" }.sorted())
    }

    @Test func rowsKeepInputOrderWithinAPartitionAndOutputIsDeterministic() throws {
        let dir = try OpTempDir()
        defer { dir.cleanup() }
        let input = try opBatch([("k", .int64, (0..<500).map { .int(Int64($0 % 7)) }), ("seq", .int64, (0..<500).map { .int(Int64($0)) })])
        let a = try opWriteChunk(dir.file("in.parquet"), [input], rowGroupRows: 64)
        let r1 = try normalize(inputChunks: [a.path], steps: [], partitionBy: ["k"], partitions: 3, outputDir: try dir.sub("o1"))
        let r2 = try normalize(inputChunks: [a.path], steps: [], partitionBy: ["k"], partitions: 3, outputDir: try dir.sub("o2"))
        #expect(r1.partitions.map(\.chunk.sha256) == r2.partitions.map(\.chunk.sha256))
        for pc in r1.partitions {
            let seq = opInts(try ParquetReader(path: pc.chunk.path).read()["seq"]).map { $0! }
            #expect(seq == seq.sorted())
        }
    }

    @Test func emptyInputWritesNoChunk() throws {
        let dir = try OpTempDir()
        defer { dir.cleanup() }
        let a = try opWriteChunk(dir.file("in.parquet"), [ColumnBatch.empty(try Self.input(rows: 1, seed: 1).schema)])
        let r = try normalize(inputChunks: [a.path], steps: [], partitionBy: ["k"], partitions: 4, outputDir: try dir.sub("o"))
        #expect(r.partitions.isEmpty && r.rowsIn == 0)
        #expect(dir.entries("o").isEmpty)
        let none = try normalize(inputChunks: [], steps: [], partitionBy: ["k"], partitions: 4, outputDir: try dir.sub("o2"))
        #expect(none.partitions.isEmpty)
    }

    @Test func unknownPartitionColumnFailsAndLeavesNoFiles() throws {
        let dir = try OpTempDir()
        defer { dir.cleanup() }
        let a = try opWriteChunk(dir.file("in.parquet"), [try Self.input(rows: 10, seed: 2)])
        let text = opErrorText {
            _ = try normalize(inputChunks: [a.path], steps: [], partitionBy: ["key"], partitions: 2, outputDir: try dir.sub("o"))
        }
        #expect(text.contains("'key'") && text.contains("in.parquet"))
        #expect(dir.entries("o").isEmpty)
        #expect(opErrorText { _ = try ShuffleWriter(partitionBy: ["k"], partitions: 0, outputDir: dir.path) }.contains("at least 1"))
    }
}

/// Normalize three shards, then consolidate each partition across shards:
/// duplicates from different shards meet in one partition and are removed
/// once, and the partitions together hold exactly the de-duplicated rows.
@Suite struct ShuffleThenConsolidateTests {
    @Test func duplicatesAcrossShardsMeetInOnePartition() throws {
        let dir = try OpTempDir()
        defer { dir.cleanup() }
        let p = 3
        var shardOutputs = [[PartitionChunk]]()
        for s in 0..<3 {
            // Every shard holds keys 0..<200, so each key has three copies.
            let b = try opBatch([
                ("k", .int64, (0..<200).map { .int(Int64($0)) }),
                ("v", .int64, (0..<200).map { _ in .int(Int64(s)) }),
            ])
            let input = try opWriteChunk(dir.file("in-\(s).parquet"), [b], rowGroupRows: 50)
            let r = try normalize(inputChunks: [input.path], steps: [], partitionBy: ["k"], partitions: p,
                                  outputDir: try dir.sub("n\(s)"))
            shardOutputs.append(r.partitions)
        }
        var keys = [Int64]()
        for partition in 0..<p {
            let inputs = shardOutputs.compactMap { $0.first { $0.partition == partition }?.chunk.path }
            let r = try consolidate(inputChunks: inputs, partitionBy: ["k"], sortBy: ["k"],
                                    dedupe: DedupeRule(key: ["k"], keep: .first), outputDir: try dir.sub("c\(partition)"))
            #expect(r.duplicatesRemoved == 2 * r.rowsOut)
            let out = try ParquetReader(path: r.chunks[0].path).read()
            #expect(opInts(out["v"]).allSatisfy { $0 == 0 })  // keep first: shard 0's copy
            keys += opInts(out["k"]).map { $0! }
        }
        #expect(keys.sorted() == (0..<200).map { Int64($0) })
    }
}

extension String {
    func trimmingASCII() -> String {
        var s = Substring(self)
        while let c = s.first, c == " " || c == "\t" { s.removeFirst() }
        while let c = s.last, c == " " || c == "\t" { s.removeLast() }
        return String(s)
    }
}

/// A value a `cast` cannot convert is bad data: its row goes to normalize's
/// quarantine chunk, named by the file and line it came from, and the rest
/// of the shard goes on.
@Suite struct NormalizeQuarantineTests {
    @Test func rowsWhoseValueDoesNotCastAreQuarantinedWithTheirOrigin() throws {
        let dir = try OpTempDir()
        defer { dir.cleanup() }
        let input = try opBatch([
            ("k", .int64, [.int(1), .int(2), .int(3), .int(4)]),
            ("qty", .string, [.string("5"), .string("five"), nil, .string("7")]),
            ("_source_file", .string, (0..<4).map { _ in .string("in/orders.csv") }),
            ("_source_line", .int64, [.int(2), .int(3), .int(5), .int(6)]),
        ])
        let a = try opWriteChunk(dir.file("in.parquet"), [input], rowGroupRows: 3)
        let compiledCaster = ExpressionCaster()
        let r = try normalize(inputChunks: [a.path], steps: [.cast(column: "qty", to: .int64)], caster: compiledCaster,
                              partitionBy: ["k"], partitions: 2, outputDir: try dir.sub("out"))
        #expect(r.rowsIn == 4 && r.rowsOut == 3 && r.rowsQuarantined == 1)
        let kept = try opReadRows(r.partitions.map(\.chunk.path))
        #expect(kept.compactMap { $0[0] }.map { "\($0)" }.sorted() == [Scalar.int(1), .int(3), .int(4)].map { "\($0)" })
        let q = try #require(r.quarantine)
        #expect(q.path == dir.file("out/quarantine.parquet"))
        let b = try ParquetReader(path: q.path).read()
        #expect(b.schema.fields.map(\.name) == ["file", "line", "column", "rule", "reason", "raw"])
        #expect(opStrings(b["file"]) == ["in/orders.csv"])
        #expect(opInts(b["line"]) == [3])
        #expect(opStrings(b["column"]) == ["qty"] && opStrings(b["rule"]) == ["cast"] && opStrings(b["raw"]) == ["five"])
        #expect(opStrings(b["reason"]) == ["'five' is not a number (cast to int64)"])
    }

    /// After a filter dropped rows, a rejected row still names its own line.
    @Test func aRowRejectedAfterAFilterNamesItsOwnLine() throws {
        let input = try opBatch([
            ("k", .int64, [.int(0), .int(1), .int(2), .int(3)]),
            ("qty", .string, [.string("x"), .string("1"), .string("y"), .string("2")]),
            ("_source_file", .string, (0..<4).map { _ in .string("a.csv") }),
            ("_source_line", .int64, [.int(10), .int(11), .int(12), .int(13)]),
        ])
        var rejected: [RejectedRow] = []
        let out = try Normalizer(steps: [.filter(GreaterExpression(column: "k", bound: 0)), .cast(column: "qty", to: .int64)],
                                 caster: ExpressionCaster()).apply(input, rejected: &rejected)
        #expect(rejected.map { "\($0.file):\($0.line) \($0.value)" } == ["a.csv:12 y"])
        #expect(opInts(out["k"]) == [1, 3])
        #expect(opInts(out["_source_line"]) == [11, 13])
        #expect(out.schema.fields.map(\.name) == ["k", "qty", "_source_file", "_source_line"])
    }

    @Test func aChunkWithoutProvenanceNamesItselfAndACleanShardWritesNoQuarantine() throws {
        let dir = try OpTempDir()
        defer { dir.cleanup() }
        let a = try opWriteChunk(dir.file("in.parquet"), [try opBatch([("qty", .string, [.string("x"), .string("1")])])], rowGroupRows: 10)
        let r = try normalize(inputChunks: [a.path], steps: [.cast(column: "qty", to: .int64)], caster: ExpressionCaster(),
                              partitionBy: [], partitions: 1, outputDir: try dir.sub("out"))
        let b = try ParquetReader(path: try #require(r.quarantine).path).read()
        #expect(opStrings(b["file"]) == [a.path] && opInts(b["line"]) == [0])

        let clean = try normalize(inputChunks: [a.path], steps: [], partitionBy: [], partitions: 1, outputDir: try dir.sub("clean"))
        #expect(clean.quarantine == nil && clean.rowsQuarantined == 0)
        #expect(!dir.entries("clean").contains("quarantine.parquet"))
    }

    @Test func theStrictApplyStillRefusesARowThatDoesNotFit() throws {
        let input = try opBatch([("qty", .string, [.string("1"), .string("x"), .string("y")])])
        let text = opErrorText { _ = try Normalizer(steps: [.cast(column: "qty", to: .int64)], caster: ExpressionCaster()).apply(input) }
        #expect(text.contains("'x' is not a number") && text.contains("1 more"))
    }
}
