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
        // The result and the summaries' partial aggregates are written in
        // the form publish reads, so the stages chain by hand:
        // `bis stage run publish --input OUT…`.
        let r = try StageInvocation.validate(pipeline, partition: p, chunks: chunks, outputDir: out,
                                             metadata: [KeyValue("bis.stage", "validate"), KeyValue("bis.partition", String(p))])
        var report = StageReport(stage: "validate")
        report.add(r)
        let results = r.outputs(.result)
        report.result = results.first { $0.name == "validate-result" }?.path
        report.partials = results.first { $0.name == "partials" }?.path
        guard let validated = r.validated else { throw UsageError("validate wrote no result") }
        switch GateDecision.decide(results: [validated], gates: pipeline.validate.gates) {
        case .pass(let summary): report.gate = .init(passed: true, message: summary.description)
        case .fail(let message): report.gate = .init(passed: false, message: message)
        }
        return report
    }
}
