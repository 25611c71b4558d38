import FleetCore
import Foundation
import Stages

// `bis stage run deliver`: deliver a run's report files and manifest to the
// spec's `deliver:` target, as the deliver task will.
extension StageCommand.Run {
    func runDeliver(_ pipeline: PipelineSpec) async throws -> StageReport {
        guard try pipeline.deliverSpec() != nil else {
            throw UsageError("the spec has no deliver section; add one such as deliver: {to: outbox/finance, approval: required}")
        }
        guard let run = runID else { throw UsageError("deliver needs --run RUN (the run whose files --input names)") }
        guard !inputs.isEmpty else {
            throw UsageError("deliver needs --input FILE… (the report files and the dataset manifest)")
        }
        let now = Date()
        let r = try await StageInvocation.deliver(
            pipeline, files: inputs.map { DeliveryFile(path: $0) }, run: run,
            approval: approvedBy.map { Approval(approver: $0, approvedAt: now) }, dataRoot: out, now: now)
        var report = StageReport(stage: "deliver")
        if let delivery = r.delivery {
            report.delivery = delivery.receipt
            if delivery.folder != nil {
                // The delivered files; the receipt is printed as a whole.
                report.outputs = r.outputs(.delivery).filter { $0.name != "receipt" }.map { StageReport.Output($0) }
                report.alreadyDelivered = delivery.alreadyDelivered
            }
        }
        return report
    }
}

extension StageReport {
    /// What `bis stage run deliver` prints.
    var deliveryText: String? {
        guard let d = delivery else { return nil }
        var lines = ["deliver: run \(d.run) (\(d.dataset) \(d.version)) "
            + ((alreadyDelivered ?? false) ? "was already delivered to \(d.target); nothing changed"
                                           : "delivered to \(d.target)")]
        for f in d.files { lines.append("  \(f.name)  \(f.bytes) B  sha256 \(f.sha256)") }
        if let a = d.approval { lines.append("  approved by \(a.approver) at \(a.approvedAt)") }
        lines.append("  idempotency key \(d.idempotencyKey)")
        return lines.joined(separator: "\n")
    }
}
