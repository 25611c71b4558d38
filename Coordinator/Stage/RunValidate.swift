import Columnar
import FleetCore
import Foundation
import Stages

extension StageCommand.Run {
    /// `bis stage run validate --input CHUNK_OR_DIR… --partition N`: checks
    /// the partition's consolidated chunks against the spec's row rules,
    /// writes the validated chunks, the quarantine and
    /// `OUT/validate-result.json` (the `ValidateResult` the coordinator
    /// would store), and decides the spec's gates as if this partition
    /// were the whole run. A failed gate is reported, not an error: the
    /// operator did its work (exit 0).
    func runValidate(_ pipeline: PipelineSpec) throws -> StageReport {
        let p = partition ?? 0
        let partitions = pipeline.consolidate?.partitions ?? 1
        guard p >= 0, p < partitions else {
            throw UsageError("--partition \(p) is outside 0..<\(partitions)")
        }
        let chunks = try chunkInputs(named: { $0.hasPrefix("consolidated-") && $0.hasSuffix(".parquet") },
                                     what: "consolidated-*.parquet")
        let settings = SpecOperators.validate(pipeline)
        let r = try Stages.validate(inputChunks: chunks, rules: settings.rules, partition: p, outputDir: out,
                             summaries: settings.summaries,
                             metadata: [KeyValue("bis.stage", "validate"), KeyValue("bis.partition", String(p))],
                             options: settings.options)
        // The result, and the summaries' partial aggregates in the form
        // publish reads, so the stages chain by hand: `bis stage run publish --input OUT…`.
        let (resultPath, partialsPath) = try r.writeFiles(to: out)

        var report = StageReport(stage: "validate")
        report.rowsIn = r.rowsIn
        report.rowsOut = r.rowsPassed
        report.rowsQuarantined = r.rowsFailed
        report.outputs = r.chunks.map { .init($0, partition: p) }
        if let q = r.quarantine { report.quarantine = [.init(q, partition: p)] }
        report.result = resultPath
        report.partials = partialsPath
        switch GateDecision.decide(results: [r], gates: pipeline.validate.gates) {
        case .pass(let summary): report.gate = .init(passed: true, message: summary.description)
        case .fail(let message): report.gate = .init(passed: false, message: message)
        }
        return report
    }
}

extension StageReport.Output {
    init(_ c: ChunkRecord, partition: Int?) {
        path = c.path
        sha256 = c.sha256
        rows = c.rows
        bytes = c.bytes
        self.partition = partition
        input = nil
    }
}
