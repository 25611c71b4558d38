import Columnar
import FleetCore
import Foundation
import Testing
@testable import Stages

/// The whole chain, ingest (2 KiB shards) → normalize → consolidate (dedupe)
/// → validate → publish with `provenance: true`, over the generated CSV files
/// of `PipelineCrossCheckTests`; then Python's csv module finds, for every
/// published row (read by DuckDB), the record at its `_source_file` and
/// `_source_line` and checks it has the row's id and day, and the same for
/// every row validate quarantined.
@Suite(.enabled(if: StagesPython.enabled, "no Python with duckdb (set BIS_PYTHON or create .venv)"))
struct ProvenanceCrossCheckTests {
    static let spec = PipelineCrossCheckTests.spec + """
    validate:
      - range: {column: qty, max: 15}
    publish:
      dataset: orders
      provenance: true

    """

    @Test func everyPublishedAndQuarantinedRowPointsAtItsRecord() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("bis-provenance-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: root + "/data", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: root) }
        _ = try PipelineCrossCheckTests.writeInputs(to: root)
        try Self.spec.write(toFile: root + "/p.yml", atomically: true, encoding: .utf8)
        let spec = try PipelineSpec.load(path: root + "/p.yml")
        let source = try #require(spec.sources.first)
        #expect(spec.publish?.provenance == true)

        let ingestSource = SpecOperators.ingestSource(source)
        var shardChunks: [String] = []
        for file in source.resolvedFiles {
            let size = try FileManager.default.attributesOfItem(atPath: file)[.size] as! Int64
            for shard in try planShards(path: file, size: size, shardSize: Int64(source.shardSize.bytes), source: ingestSource) {
                shardChunks.append(try ingest(shard: shard, source: ingestSource,
                                              outputDir: root + "/ingest/\(shardChunks.count)").chunk.path)
            }
        }
        let settings = try #require(SpecOperators.consolidate(spec))
        let byPartition = try normalizeShards(shardChunks, spec: spec, partitions: 4, root: root)
        let rules = SpecOperators.validate(spec)
        var validated: [String] = []
        var quarantine: [String] = []
        var failed: Int64 = 0
        for p in byPartition.keys.sorted() {
            let c = try consolidate(inputChunks: byPartition[p]!, partitionBy: settings.partitionBy, sortBy: settings.sortBy,
                                    dedupe: settings.dedupe, outputDir: root + "/consolidate/\(p)", options: settings.options)
            let v = try validate(inputChunks: c.chunks.map(\.path), rules: rules.rules, partition: p,
                                 outputDir: root + "/validate/\(p)", options: rules.options)
            validated += v.chunks.map(\.path)
            quarantine += v.quarantine.map { [$0.path] } ?? []
            failed += v.rowsFailed
        }
        #expect(failed > 10, "qty above 15 should fail some rows")
        let publishSpec = try #require(spec.publish)
        let result = try publish(dataset: publishSpec.dataset, run: "r1", pipeline: spec.name, chunks: validated,
                                 summaries: [:], root: root + "/root", retention: 1, now: Date(),
                                 provenance: publishSpec.provenance)
        #expect(result.dataset.manifest.schema.suffix(2).map(\.name) == [Provenance.file, Provenance.line])

        let check = try StagesPython.script("check_provenance.py", [
            source.resolvedFiles.joined(separator: ","), result.dataset.files.joined(separator: ","),
            quarantine.joined(separator: ","),
        ])
        #expect(check.status == 0, "\(check.output)")
        let json = try JSONSerialization.jsonObject(with: Data(check.output.utf8)) as? [String: Any]
        #expect(json?["ok"] as? Bool == true, "\(check.output)")
        #expect(json?["rows"] as? Int == Int(result.dataset.manifest.rows))
        #expect(json?["quarantined"] as? Int == Int(failed))
        #expect((json?["rows"] as? Int ?? 0) > 200)
    }
}
