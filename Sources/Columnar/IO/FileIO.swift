#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A file written through a buffer, hashed as it goes, made visible under
/// its final name only by `commit` (fsync, rename, fsync of the directory).
final class AtomicFileSink {
    let finalPath: String
    let tempPath: String
    private var fd: Int32
    private var buffer: [UInt8] = []
    private let bufferLimit = 1 << 20
    /// Nil for a scratch file, which nobody identifies by its hash.
    private var hasher: Checksum?
    private(set) var offset: Int64 = 0

    init(path: String, hashing: Bool = true) throws {
        hasher = hashing ? Checksum() : nil
        finalPath = path
        let (dir, name) = splitPath(path)
        var rng = SystemRandomNumberGenerator()
        let tag = String(rng.next() as UInt64, radix: 16)
        tempPath = (dir.isEmpty ? "" : dir + "/") + ".\(name).tmp-\(getpid())-\(tag)"
        fd = open(tempPath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw ColumnarError.io("cannot create \(tempPath)", errno: errno) }
        buffer.reserveCapacity(bufferLimit)
    }

    deinit {
        if fd >= 0 {
            close(fd)
            unlink(tempPath)
        }
    }

    func write(_ bytes: [UInt8]) throws {
        if hasher != nil { bytes.withUnsafeBytes { hasher!.update($0) } }
        offset += Int64(bytes.count)
        // Pages (usually tens of KiB and more) go straight to the file;
        // page headers and footers gather in the buffer.
        if bytes.count >= 64 << 10 {
            try flushBuffer()
            try bytes.withUnsafeBytes { try writeAll($0) }
            return
        }
        if buffer.count + bytes.count > bufferLimit { try flushBuffer() }
        buffer.append(contentsOf: bytes)
    }

    private func flushBuffer() throws {
        guard !buffer.isEmpty else { return }
        try buffer.withUnsafeBytes { try writeAll($0) }
        buffer.removeAll(keepingCapacity: true)
    }

    private func writeAll(_ data: UnsafeRawBufferPointer) throws {
        var done = 0
        while done < data.count {
            let n = Glibc.write(fd, data.baseAddress! + done, data.count - done)
            if n < 0 {
                if errno == EINTR { continue }
                throw ColumnarError.io("cannot write \(tempPath)", errno: errno)
            }
            done += n
        }
    }

    /// Flushes, fsyncs (unless `durable` is false), renames to the final
    /// path; returns the sha256 hex, or "" when the sink does not hash.
    func commit(durable: Bool = true) throws -> String {
        try flushBuffer()
        guard !durable || fsync(fd) == 0 else { throw ColumnarError.io("cannot fsync \(tempPath)", errno: errno) }
        guard close(fd) == 0 else {
            fd = -1
            unlink(tempPath)
            throw ColumnarError.io("cannot close \(tempPath)", errno: errno)
        }
        fd = -1
        guard rename(tempPath, finalPath) == 0 else {
            let e = errno
            unlink(tempPath)
            throw ColumnarError.io("cannot rename \(tempPath) to \(finalPath)", errno: e)
        }
        if durable {
            let dir = splitPath(finalPath).dir
            let dfd = open(dir.isEmpty ? "." : dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            if dfd >= 0 {
                _ = fsync(dfd)
                close(dfd)
            }
        }
        return hasher?.finalize() ?? ""
    }

    /// Drops the temp file.
    func abandon() {
        if fd >= 0 {
            close(fd)
            fd = -1
            unlink(tempPath)
        }
    }
}

func splitPath(_ path: String) -> (dir: String, name: String) {
    guard let slash = path.lastIndex(of: "/") else { return ("", path) }
    let dir = String(path[..<slash])
    return (dir.isEmpty ? "/" : dir, String(path[path.index(after: slash)...]))
}

/// A read-only file read by positioned reads.
final class FileSource {
    let path: String
    private let fd: Int32
    let size: Int64

    init(path: String) throws {
        self.path = path
        fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw ColumnarError.io("cannot open \(path)", errno: errno) }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            let e = errno
            close(fd)
            throw ColumnarError.io("cannot stat \(path)", errno: e)
        }
        size = Int64(st.st_size)
    }

    deinit { close(fd) }

    /// Exactly `count` bytes at `offset`; an error if the file is shorter.
    func read(at offset: Int64, count: Int) throws -> [UInt8] {
        guard offset >= 0, count >= 0, offset + Int64(count) <= size else {
            throw ColumnarError.corrupt("range \(offset)+\(count) lies outside the file of \(size) bytes")
        }
        if count == 0 { return [] }
        var failure: ColumnarError?
        let out = [UInt8](unsafeUninitializedCapacity: count) { buf, n in
            var done = 0
            while done < count {
                let r = pread(fd, buf.baseAddress! + done, count - done, off_t(offset) + off_t(done))
                if r < 0 {
                    if errno == EINTR { continue }
                    failure = .io("cannot read \(path)", errno: errno)
                    break
                }
                if r == 0 {
                    failure = .corrupt("file ended while reading")
                    break
                }
                done += r
            }
            n = failure == nil ? count : 0
        }
        if let failure { throw failure }
        return out
    }
}
