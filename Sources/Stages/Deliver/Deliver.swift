import Columnar
import FleetCore
import Foundation

/// Delivers a run's files (its report files and dataset manifest) to the
/// target the spec names, and returns the receipt.
///
/// - Refuses a run that needs approval (`requireApproval`) and has none.
/// - Refuses an input whose sha256 is not the one given with it, before
///   anything is written.
/// - Directory targets: each file is copied into `<target>/<run>/` under a
///   temp name, fsynced, checked against its sha256 and renamed into place;
///   then `receipt.json` is written the same way. A directory target must lie
///   under `dataRoot` (symlinks resolved).
/// - HTTP targets: the receipt is POSTed as JSON with an `Idempotency-Key`
///   header (the receipt's `idempotencyKey`) and `Authorization: Bearer`
///   from the environment variable the target names. 2xx is delivered; 409
///   means the endpoint already has this key, which counts as delivered too.
///
/// Delivering again with the same inputs changes nothing: a directory target
/// that holds a receipt with the same idempotency key keeps it (and its
/// files), and that receipt is returned as it is; a file left out by an
/// interrupted delivery is copied. A file already on the target with other
/// bytes is never overwritten: that is `DeliveryError.targetFileDiffers`,
/// naming the file and both hashes.
///
/// Throws `DeliveryError`. `environment` is where `tokenEnv` is looked up.
public func deliver(
    files: [DeliveryFile],
    run: String,
    dataset: String,
    version: String,
    approval: Approval?,
    requireApproval: Bool,
    target: DeliveryTarget,
    dataRoot: String,
    now: Date,
    environment: [String: String] = ProcessInfo.processInfo.environment,
    timeout: TimeInterval = 30
) async throws -> DeliveryReceipt {
    guard isPlainName(run) else {
        throw DeliveryError.input("run id '\(run)' cannot name a folder; it may not be empty, '.', '..' or contain '/'")
    }
    if requireApproval, approval == nil { throw DeliveryError.needsApproval(run: run) }
    guard !files.isEmpty else { throw DeliveryError.input("nothing to deliver for run \(run): give the report files and the dataset manifest") }

    var seen = Set<String>()
    var described: [DeliveryReceipt.File] = []
    for file in files {
        guard isPlainName(file.name), file.name != receiptName, !file.name.hasPrefix(".") else {
            throw DeliveryError.input("\(file.path): '\(file.name)' cannot be delivered under that name "
                                      + "(no '/', no leading '.', and \(receiptName) is the receipt's)")
        }
        guard seen.insert(file.name).inserted else {
            throw DeliveryError.input("two files to deliver are both named '\(file.name)'; each name may be delivered once per run")
        }
        described.append(try describe(file))
    }

    let receipt = DeliveryReceipt(run: run, dataset: dataset, version: version, files: described,
                                  approval: requireApproval ? approval : nil, deliveredAt: now,
                                  target: target.description)
    switch target {
    case .directory(let folder):
        let dir = try deliveryDirectory(folder, run: run, dataRoot: dataRoot)
        return try DirectoryDelivery(directory: dir).deliver(files, receipt: receipt)
    case .http(let url, let tokenEnv):
        var token: String?
        if let tokenEnv {
            guard let t = environment[tokenEnv], !t.isEmpty else {
                throw DeliveryError.invalidTarget("the deliver endpoint's token_env \(tokenEnv) is not set; "
                                                  + "export \(tokenEnv) with the endpoint's token")
            }
            token = t
        }
        try await HTTPDelivery(url: url, token: token, timeout: timeout).post(receipt)
        return receipt
    }
}

let receiptName = "receipt.json"

func isPlainName(_ name: String) -> Bool {
    !name.isEmpty && name != "." && name != ".." && !name.contains("/") && !name.contains("\0")
}

/// Name, size and sha256 of an input, checked against the hash it came with.
func describe(_ file: DeliveryFile) throws -> DeliveryReceipt.File {
    var isDir: ObjCBool = false
    guard FileManager.default.fileExists(atPath: file.path, isDirectory: &isDir), !isDir.boolValue else {
        throw DeliveryError.input("\(file.path): no such file to deliver")
    }
    let hash: String
    let bytes: Int64
    do {
        hash = try sha256(ofFile: file.path)
        bytes = (try FileManager.default.attributesOfItem(atPath: file.path)[.size] as? NSNumber)?.int64Value ?? 0
    } catch {
        throw DeliveryError.input("\(file.path): cannot read it: \(error)")
    }
    if let expected = file.sha256, expected != hash {
        throw DeliveryError.input("\(file.path) has sha256 \(hash), but \(expected) was expected; "
                                  + "it changed since it was written, so it is not delivered")
    }
    return DeliveryReceipt.File(name: file.name, bytes: bytes, sha256: hash)
}

/// `<dataRoot>/<folder>/<run>`, created, and checked to lie under the data
/// root once symlinks are resolved.
func deliveryDirectory(_ folder: String, run: String, dataRoot: String) throws -> String {
    guard let root = realPath(dataRoot) else {
        throw DeliveryError.invalidTarget("the data root \(dataRoot) does not exist")
    }
    guard let confined = DeliverSpec.confinedDirectory(folder) else {
        throw DeliveryError.invalidTarget("deliver to '\(folder)' must be a folder under the data root such as outbox/finance")
    }
    let base = confined.hasPrefix("/") ? confined : root + "/" + confined
    guard isUnder(base, root: root) else {
        throw DeliveryError.invalidTarget("deliver to '\(folder)' is outside the data root \(root)")
    }
    // One level at a time, each checked before the next is created, so a
    // symbolic link out of the data root is refused before anything is
    // created through it.
    var current = root
    for part in (base.dropFirst(root.count) + "/" + run).split(separator: "/") {
        current += "/" + part
        if !FileManager.default.fileExists(atPath: current) {
            guard mkdir(current, 0o755) == 0 || errno == EEXIST else {
                throw DeliveryError.io("cannot create the delivery folder \(current): \(errnoText())")
            }
        }
        guard let resolved = realPath(current), isUnder(resolved, root: root), resolved != root else {
            throw DeliveryError.invalidTarget("deliver to '\(folder)' leads outside the data root \(root) through a symbolic link at \(current)")
        }
        current = resolved
    }
    return current
}

func realPath(_ path: String) -> String? {
    guard let p = realpath(path, nil) else { return nil }
    defer { free(p) }
    return String(cString: p)
}

func isUnder(_ path: String, root: String) -> Bool {
    path == root || path.hasPrefix(root == "/" ? "/" : root + "/")
}
