import Columnar
import FleetCore
import Foundation
import TestSupport
import Testing
@testable import Stages

/// ingest → normalize → consolidate over generated CSV files with nulls,
/// duplicates, quoted line breaks and dirty values, driven by a YAML spec as
/// `bis stage run` drives it, and every output value compared with DuckDB
/// running the equivalent SQL on the same files.
@Suite(.enabled(if: StagesPython.enabled, "no Python with duckdb (set BIS_PYTHON or create .venv)"))
struct PipelineCrossCheckTests {
    static let spec = MessyOrders.specHead(pipeline: "cross-check", consolidateExtra: ["memory_budget: 2KiB"])

    /// The input (`MessyOrders` in TestSupport, as the fleet tests use);
    /// returns how many rows carry a value that cannot be typed.
    static func writeInputs(to dir: String) throws -> Int {
        try MessyOrders.writeInputs(to: dir).dirty
    }

    @Test func ingestNormalizeConsolidateMatchDuckDB() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("bis-pipeline-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: root + "/data", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: root) }
        let dirty = try Self.writeInputs(to: root)
        try Self.spec.write(toFile: root + "/p.yml", atomically: true, encoding: .utf8)
        let spec = try PipelineSpec.load(path: root + "/p.yml")
        let source = try #require(spec.sources.first)

        // Ingest: every file in byte-range shards of 2 KiB.
        var shardChunks: [String] = []
        var quarantined: Int64 = 0
        var read: Int64 = 0
        let ingestSource = SpecOperators.ingestSource(source)
        for file in source.resolvedFiles {
            let size = try FileManager.default.attributesOfItem(atPath: file)[.size] as! Int64
            let shards = try planShards(path: file, size: size, shardSize: Int64(source.shardSize.bytes), source: ingestSource)
            #expect(shards.count > 3, "2 KiB shards should split \(file)")
            for shard in shards {
                let r = try ingest(shard: shard, source: ingestSource, outputDir: root + "/ingest/\(shardChunks.count)")
                shardChunks.append(r.chunk.path)
                quarantined += r.rowsQuarantined
                read += r.rowsRead
            }
        }
        #expect(read == 1200)
        #expect(quarantined == Int64(dirty))

        // Normalize each shard into partitions, then consolidate each partition.
        let settings = try #require(SpecOperators.consolidate(spec))
        let byPartition = try normalizeShards(shardChunks, spec: spec, partitions: 4, root: root)
        var outputs: [String] = []
        var spilled = 0
        for p in byPartition.keys.sorted() {
            let r = try consolidate(inputChunks: byPartition[p]!, partitionBy: settings.partitionBy, sortBy: settings.sortBy,
                                    dedupe: settings.dedupe, outputDir: root + "/consolidate/\(p)", options: settings.options)
            outputs += r.chunks.map(\.path)
            spilled += r.spilledRuns
        }
        #expect(spilled > 0, "a 2 KiB memory budget should make consolidate spill sorted runs")

        let csvs = source.resolvedFiles.joined(separator: ",")
        let result = try StagesPython.script("check_pipeline.py", [csvs, outputs.joined(separator: ",")])
        #expect(result.status == 0, "\(result.output)")
        let json = try JSONSerialization.jsonObject(with: Data(result.output.utf8)) as? [String: Any]
        #expect(json?["ok"] as? Bool == true, "\(result.output)")
        #expect(json?["quarantined"] as? Int == dirty, "DuckDB and the generator disagree on the dirty rows: \(result.output)")
        #expect((json?["rows"] as? Int ?? 0) > 200)
    }
}
