import FleetCore
import Foundation
import Stages

// `bis stage run deliver`: deliver a run's report files and manifest to the
// spec's `deliver:` target, as the deliver task will.
extension StageCommand.Run {
    func runDeliver(_ pipeline: PipelineSpec) async throws -> StageReport {
        guard let spec = try pipeline.deliverSpec() else {
            throw UsageError("the spec has no deliver section; add one such as deliver: {to: outbox/finance, approval: required}")
        }
        guard let run = runID else { throw UsageError("deliver needs --run RUN (the run whose files --input names)") }
        guard !inputs.isEmpty else {
            throw UsageError("deliver needs --input FILE… (the report files and the dataset manifest)")
        }
        // Inputs come from the data root (where report and publish wrote
        // them) or the folders inputs may come from.
        var confined = pipeline
        // The data root's published datasets and reports may be delivered; the
        // data root itself must be a real folder, not the file system root.
        guard let root = realPath(out), root != "/" else {
            throw UsageError("--out \(outArgument) cannot be the data root of a delivery")
        }
        if !confined.allowedRoots.contains(root) { confined.allowedRoots.append(root) }
        let files = try inputs.map { DeliveryFile(path: try confined.confinedInput($0)) }
        let target: DeliveryTarget
        do { target = try DeliveryTarget(spec) } catch { throw UsageError(error.description) }
        let now = Date()
        var receiptExisted = false
        if case .directory(let folder) = target {
            receiptExisted = FileManager.default.fileExists(atPath: folderPath(folder, run: run) + "/receipt.json")
        }
        let receipt = try await deliver(
            files: files, run: run, dataset: pipeline.publish?.dataset ?? pipeline.name, version: run,
            approval: approvedBy.map { Approval(approver: $0, approvedAt: now) },
            requireApproval: spec.approval == .required, target: target, dataRoot: out, now: now)
        var report = StageReport(stage: "deliver")
        report.delivery = receipt
        if case .directory(let folder) = target {
            let dir = folderPath(folder, run: run)
            report.outputs = receipt.files.map {
                StageReport.Output(path: dir + "/" + $0.name, sha256: $0.sha256, bytes: $0.bytes)
            }
            // Had the receipt there been another delivery's, deliver would have thrown.
            report.alreadyDelivered = receiptExisted
        }
        return report
    }

    /// `<data root>/<folder>/<run>`.
    private func folderPath(_ folder: String, run: String) -> String {
        let root = realPath(out) ?? out
        return (folder.hasPrefix("/") ? folder : root + "/" + folder) + "/" + run
    }

    private func realPath(_ path: String) -> String? {
        guard let p = realpath(path, nil) else { return nil }
        defer { free(p) }
        return String(cString: p)
    }
}

extension StageReport.Output {
    init(path: String, sha256: String, bytes: Int64) {
        self.path = path
        self.sha256 = sha256
        self.rows = 0
        self.bytes = bytes
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
