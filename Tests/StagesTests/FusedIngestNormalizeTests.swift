import Columnar
import FleetCore
import Foundation
import Testing
@testable import Stages

/// ingest with its batches going straight into normalize's steps and
/// shuffle (`ingest(…, into:)` and `NormalizeWriter`, as a fused task runs
/// them) gives what ingest's chunk then normalize over it give, writes no
/// ingest chunk, and keeps both stages' quarantines with file, line, column.
@Suite struct FusedIngestNormalizeTests {
    /// Rows: a bad `k` (ingest quarantines it), a `qty` a cast cannot convert
    /// (normalize quarantines it), the rest good; more rows than one batch.
    static let csvText = """
        k,qty
        1,5
        2,five
        x,3
        4,7
        5,8
        6,9
        7,ten
        8,1
        9,2

        """

    let source = IngestSource(format: .csv, columns: [Field("k", .int64), Field("qty", .string)], header: true)
    let steps: [NormalizeOp] = [.cast(column: "qty", to: .int64)]

    func options() -> IngestOptions {
        var o = IngestOptions()
        o.batchRows = 3
        o.rowGroupRows = 4
        return o
    }

    func quarantine(_ w: WriteResult?) throws -> [[Scalar?]] {
        guard let w else { return [] }
        return try opReadRows([w.path])
    }

    @Test func fusedGivesTheRowsCountsAndQuarantinesOfIngestThenNormalize() throws {
        let dir = try OpTempDir()
        defer { dir.cleanup() }
        let path = dir.file("orders.csv")
        try Self.csvText.write(toFile: path, atomically: true, encoding: .utf8)

        let i = try ingest(shard: Shard(path: path), source: source, outputDir: try dir.sub("i"), options: options())
        let n = try normalize(inputChunks: [i.chunk.path], steps: steps, caster: ExpressionCaster(), partitionBy: ["k"],
                              partitions: 3, outputDir: try dir.sub("n"))

        let out = try dir.sub("fused")
        var writer: NormalizeWriter?
        let fi = try ingest(shard: Shard(path: path), source: source, outputDir: out, options: options()) { _ in
            let w = try NormalizeWriter(steps: steps, caster: ExpressionCaster(), partitionBy: ["k"], partitions: 3,
                                        outputDir: out, quarantineName: "normalize-quarantine.parquet")
            w.fallbackFile = path
            writer = w
            return w
        }
        let fn = try #require(writer).finish()

        // Counts per logical stage.
        #expect((fi.rowsRead, fi.rowsWritten, fi.rowsQuarantined) == (i.rowsRead, i.rowsWritten, i.rowsQuarantined))
        #expect((fi.rowsRead, fi.rowsWritten, fi.rowsQuarantined) == (9, 8, 1))
        #expect((fn.rowsIn, fn.rowsOut, fn.rowsQuarantined) == (n.rowsIn, n.rowsOut, n.rowsQuarantined))
        #expect((fn.rowsIn, fn.rowsOut, fn.rowsQuarantined) == (8, 6, 2))
        // The same rows in each partition, in the same order, with their provenance.
        #expect(fn.partitions.map(\.partition) == n.partitions.map(\.partition))
        for (a, b) in zip(fn.partitions, n.partitions) {
            #expect(try opReadRows([a.chunk.path]) == (try opReadRows([b.chunk.path])))
            #expect(a.chunk.rows == b.chunk.rows)
        }
        // Ingest's quarantine: the same file, line and column as unfused.
        #expect(try quarantine(fi.quarantine) == (try quarantine(i.quarantine)))
        let iq = try ParquetReader(path: try #require(fi.quarantine).path).read()
        #expect(opStrings(iq["file"]) == [path] && opInts(iq["line"]) == [4] && opStrings(iq["column"]) == ["k"])
        // Normalize's quarantine: the same rows; each names the source file, line and column.
        #expect(try quarantine(fn.quarantine) == (try quarantine(n.quarantine)))
        let nq = try ParquetReader(path: try #require(fn.quarantine).path).read()
        #expect(opStrings(nq["file"]) == [path, path] && opInts(nq["line"]) == [3, 8])
        #expect(opStrings(nq["column"]) == ["qty", "qty"] && opStrings(nq["rule"]) == ["cast", "cast"])
        // No ingest chunk in the fused folder: ingest's quarantine, normalize's parts and quarantine.
        let names = dir.entries("fused")
        #expect(!names.contains("ingest.parquet"))
        #expect(names == (["normalize-quarantine.parquet", "quarantine.parquet"] + fn.partitions.map {
            ShuffleWriter.fileName(partition: $0.partition) }).sorted(), "\(names)")
    }

    @Test func aFusedRunAgainWritesTheSameBytes() throws {
        let dir = try OpTempDir()
        defer { dir.cleanup() }
        let path = dir.file("orders.csv")
        try Self.csvText.write(toFile: path, atomically: true, encoding: .utf8)
        var results: [NormalizeResult] = []
        for name in ["a", "b"] {
            let out = try dir.sub(name)
            var writer: NormalizeWriter?
            _ = try ingest(shard: Shard(path: path), source: source, outputDir: out, options: options()) { _ in
                let w = try NormalizeWriter(steps: steps, caster: ExpressionCaster(), partitionBy: ["k"], partitions: 3,
                                            outputDir: out, quarantineName: "normalize-quarantine.parquet")
                writer = w
                return w
            }
            results.append(try #require(writer).finish())
        }
        #expect(results[0].partitions.map(\.chunk.sha256) == results[1].partitions.map(\.chunk.sha256))
        #expect(results[0].quarantine?.sha256 == results[1].quarantine?.sha256)
    }
}
