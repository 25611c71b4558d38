#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import FleetCore
import Foundation

/// What delivering a run to its spec's target did.
public struct RunDelivery: Sendable {
    public let receipt: DeliveryReceipt
    /// Directory targets: the absolute folder the files and `receipt.json`
    /// are in (`<target>/<run>`); nil for HTTP targets.
    public let folder: String?
    /// The target already held this delivery's receipt: nothing changed.
    public let alreadyDelivered: Bool
}

/// Delivers a run's files to the target the spec's `deliver:` names, as
/// `bis stage run deliver` and the worker's deliver task both do: inputs
/// must lie in the data root (where report and publish wrote them) or the
/// spec's allowed folders; the data root must be a real folder other than
/// `/`. Throws `SpecErrors` for an input outside those folders and
/// `DeliveryError` for everything else (see `deliver`).
public func deliverRun(
    _ pipeline: PipelineSpec, files: [DeliveryFile], run: String, approval: Approval?, dataRoot: String, now: Date,
    environment: [String: String] = ProcessInfo.processInfo.environment
) async throws -> RunDelivery {
    guard let spec = try pipeline.deliverSpec() else {
        throw DeliveryError.input("the spec has no deliver section; add one such as deliver: {to: outbox/finance, approval: required}")
    }
    guard let root = resolvedPath(dataRoot), root != "/" else {
        throw DeliveryError.invalidTarget("\(dataRoot) cannot be the data root of a delivery")
    }
    var confined = pipeline
    if !confined.allowedRoots.contains(root) { confined.allowedRoots.append(root) }
    let checked = try files.map { f in DeliveryFile(path: try confined.confinedInput(f.path), name: f.name, sha256: f.sha256) }
    let target = try DeliveryTarget(spec)
    var folder: String?
    if case .directory(let dir) = target { folder = (dir.hasPrefix("/") ? dir : root + "/" + dir) + "/" + run }
    let existed = folder.map { FileManager.default.fileExists(atPath: $0 + "/receipt.json") } ?? false
    let receipt = try await deliver(
        files: checked, run: run, dataset: pipeline.publish?.dataset ?? pipeline.name, version: run,
        approval: approval, requireApproval: spec.approval == .required, target: target, dataRoot: dataRoot,
        now: now, environment: environment)
    // Had the receipt there been another delivery's, deliver would have thrown.
    return RunDelivery(receipt: receipt, folder: folder, alreadyDelivered: existed)
}

private func resolvedPath(_ path: String) -> String? {
    guard let p = realpath(path, nil) else { return nil }
    defer { free(p) }
    return String(cString: p)
}
