import Columnar
import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Delivery into one run's folder on a directory target. Files appear only
/// under their final names, complete and fsynced; nothing already there is
/// overwritten. Two deliveries of the same run (a duplicated task) take turns
/// on a lock file beside the run's folder (`<target>/.<run>.lock`), so the
/// checks below and the writes that follow them cannot interleave.
struct DirectoryDelivery {
    /// `<target>/<run>`, absolute, existing.
    let directory: String

    private var receiptPath: String { directory + "/" + receiptName }

    func deliver(_ files: [DeliveryFile], receipt: DeliveryReceipt) throws -> DeliveryReceipt {
        let parent = (directory as NSString).deletingLastPathComponent
        let lockPath = parent + "/." + (directory as NSString).lastPathComponent + ".lock"
        let lock: DurableFiles.Lock
        do { lock = try DurableFiles.Lock(lockPath) } catch {
            throw DeliveryError.io("cannot lock \(lockPath): \(error)")
        }
        defer { lock.release() }
        var existing: DeliveryReceipt?
        if FileManager.default.fileExists(atPath: receiptPath) {
            do {
                existing = try DeliveryReceipt.decode(Data(contentsOf: URL(fileURLWithPath: receiptPath)))
            } catch {
                throw DeliveryError.io("\(receiptPath) exists but is not a delivery receipt (\(error)); "
                                       + "it was not overwritten: move it away and deliver again")
            }
        }
        // Every file already there must be the one being delivered, checked
        // before anything is written, so a conflict leaves the target as it was.
        var missing: [(DeliveryFile, DeliveryReceipt.File)] = []
        for (file, described) in zip(files, receipt.files) {
            let path = directory + "/" + described.name
            guard FileManager.default.fileExists(atPath: path) else {
                missing.append((file, described))
                continue
            }
            let found: String
            do { found = try sha256(ofFile: path) } catch {
                throw DeliveryError.io("cannot read \(path) on the target: \(error)")
            }
            if found != described.sha256 {
                throw DeliveryError.targetFileDiffers(path: path, expected: described.sha256, found: found)
            }
        }
        if let existing, existing.idempotencyKey != receipt.idempotencyKey {
            throw DeliveryError.receiptDiffers(path: receiptPath, existingKey: existing.idempotencyKey,
                                               newKey: receipt.idempotencyKey)
        }
        for (file, described) in missing {
            try copy(file.path, to: directory + "/" + described.name, sha256: described.sha256)
        }
        if let existing { return existing }
        let data: Data
        do { data = try receipt.json() } catch { throw DeliveryError.io("cannot encode the receipt: \(error)") }
        try writeAtomically(receiptPath) { fd in try writeAll(fd, [UInt8](data), path: receiptPath) }
        return receipt
    }

    /// Copies `source` to `destination` through a temp file, checking the
    /// copy's sha256 before it gets its final name.
    private func copy(_ source: String, to destination: String, sha256 expected: String) throws {
        let input = open(source, O_RDONLY | O_CLOEXEC)
        guard input >= 0 else { throw DeliveryError.io("cannot open \(source): \(errnoText())") }
        defer { close(input) }
        try writeAtomically(destination, verify: expected) { fd in
            var buffer = [UInt8](repeating: 0, count: 1 << 20)
            while true {
                let n = buffer.withUnsafeMutableBytes { read(input, $0.baseAddress, $0.count) }
                if n < 0 {
                    if errno == EINTR { continue }
                    throw DeliveryError.io("cannot read \(source): \(errnoText())")
                }
                if n == 0 { break }
                try writeAll(fd, Array(buffer[0..<n]), path: destination)
            }
        }
    }

    /// Writes through `.<name>.tmp-<pid>-<random>` beside `path`: fill,
    /// fsync, close, verify the sha256 when asked, rename, fsync the folder.
    private func writeAtomically(_ path: String, verify expected: String? = nil, _ fill: (Int32) throws -> Void) throws {
        let name = (path as NSString).lastPathComponent
        let temp = directory + "/.\(name).tmp-\(getpid())-\(String(UInt64.random(in: 0...UInt64.max), radix: 16))"
        let fd = open(temp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw DeliveryError.io("cannot create \(temp): \(errnoText())") }
        var closed = false
        defer {
            if !closed { close(fd) }
            unlink(temp)   // a no-op after the rename
        }
        try fill(fd)
        guard fsync(fd) == 0 else { throw DeliveryError.io("cannot fsync \(temp): \(errnoText())") }
        closed = true
        guard close(fd) == 0 else { throw DeliveryError.io("cannot close \(temp): \(errnoText())") }
        if let expected {
            let copied: String
            do { copied = try sha256(ofFile: temp) } catch { throw DeliveryError.io("cannot read back \(temp): \(error)") }
            guard copied == expected else {
                throw DeliveryError.io("the copy of \(name) has sha256 \(copied), not \(expected); "
                                       + "the source changed while it was copied or the disk is failing: deliver again")
            }
        }
        guard rename(temp, path) == 0 else { throw DeliveryError.io("cannot rename \(temp) to \(path): \(errnoText())") }
        let dfd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dfd >= 0 {
            _ = fsync(dfd)
            close(dfd)
        }
    }

    private func writeAll(_ fd: Int32, _ bytes: [UInt8], path: String) throws {
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + done, $0.count - done) }
            if n < 0 {
                if errno == EINTR { continue }
                throw DeliveryError.io("cannot write \(path): \(errnoText())")
            }
            done += n
        }
    }
}

func errnoText() -> String { String(cString: strerror(errno)) }
