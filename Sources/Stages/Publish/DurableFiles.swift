#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// The POSIX calls publish needs to make its steps durable: fsync of files
/// and folders, write-temp-then-rename, hard link with a copy fallback, and
/// an exclusive lock. Every failure is a `PublishError.io` naming the path
/// and errno.
enum DurableFiles {
    static func check(_ result: Int32, _ what: @autoclosure () -> String) throws {
        if result != 0 { throw PublishError.io(what(), errno: errno) }
    }

    /// fsync of a file or a folder (a folder's fsync makes renames and new
    /// entries in it durable).
    static func sync(_ path: String) throws {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw PublishError.io("cannot open \(path) to fsync it", errno: errno) }
        defer { close(fd) }
        try check(fsync(fd), "cannot fsync \(path)")
    }

    /// Writes `bytes` to `path` atomically: a hidden temp file beside it,
    /// fsync, rename over `path`, fsync of the folder. Readers see the old
    /// content or the new, never a mix.
    static func replace(_ path: String, with bytes: [UInt8]) throws {
        let url = URL(fileURLWithPath: path)
        let dir = url.deletingLastPathComponent().path
        let temp = dir + "/.tmp-" + url.lastPathComponent + "-" + UUID().uuidString
        try create(temp, bytes)
        do {
            try check(rename(temp, path), "cannot rename \(temp) to \(path)")
        } catch {
            unlink(temp)
            throw error
        }
        try sync(dir)
    }

    /// Creates `path` (which must not exist) with `bytes`, fsynced.
    static func create(_ path: String, _ bytes: [UInt8]) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw PublishError.io("cannot create \(path)", errno: errno) }
        var ok = false
        defer {
            close(fd)
            if !ok { unlink(path) }
        }
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + offset, bytes.count - offset) }
            if n < 0 {
                if errno == EINTR { continue }
                throw PublishError.io("cannot write \(path)", errno: errno)
            }
            offset += n
        }
        try check(fsync(fd), "cannot fsync \(path)")
        ok = true
    }

    /// Hard-links `source` to `destination` when both are on one filesystem,
    /// else copies it (and fsyncs the copy). Returns whether it linked.
    /// `source` must already be resolved (link(2) would link a symlink itself).
    static func linkOrCopy(_ source: String, to destination: String) throws -> Bool {
        if link(source, destination) == 0 { return true }
        let e = errno
        // EXDEV: another filesystem; EPERM/EMLINK/ENOTSUP: links refused there.
        guard e == EXDEV || e == EPERM || e == EMLINK || e == ENOTSUP || e == EACCES else {
            throw PublishError.io("cannot link \(source) to \(destination)", errno: e)
        }
        try copy(source, to: destination)
        return false
    }

    static func copy(_ source: String, to destination: String) throws {
        let input = open(source, O_RDONLY | O_CLOEXEC)
        guard input >= 0 else { throw PublishError.io("cannot open \(source)", errno: errno) }
        defer { close(input) }
        let output = open(destination, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard output >= 0 else { throw PublishError.io("cannot create \(destination)", errno: errno) }
        var ok = false
        defer {
            close(output)
            if !ok { unlink(destination) }
        }
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(input, $0.baseAddress!, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw PublishError.io("cannot read \(source)", errno: errno)
            }
            if n == 0 { break }
            var done = 0
            while done < n {
                let w = buffer.withUnsafeBytes { write(output, $0.baseAddress! + done, n - done) }
                if w < 0 {
                    if errno == EINTR { continue }
                    throw PublishError.io("cannot write \(destination)", errno: errno)
                }
                done += w
            }
        }
        try check(fsync(output), "cannot fsync \(destination)")
        ok = true
    }

    /// Kind of the entry at `path` without following a final symlink.
    enum Kind { case missing, directory, file, symlink, other }

    static func kind(_ path: String) -> Kind {
        var st = stat()
        guard lstat(path, &st) == 0 else { return .missing }
        switch st.st_mode & S_IFMT {
        case S_IFDIR: return .directory
        case S_IFREG: return .file
        case S_IFLNK: return .symlink
        default: return .other
        }
    }

    /// Creates `path` as a real folder if missing; refuses a symlink or a
    /// file there, so nothing publish writes can land outside the root.
    static func ensureDirectory(_ path: String) throws {
        switch kind(path) {
        case .directory: return
        case .missing:
            if mkdir(path, 0o755) != 0, errno != EEXIST {
                throw PublishError.io("cannot create folder \(path)", errno: errno)
            }
            guard kind(path) == .directory else { throw PublishError.unsafePath(path, reason: "is not a folder") }
            // The new entry is durable only once its parent folder is synced.
            try sync(URL(fileURLWithPath: path).deletingLastPathComponent().path)
        case .symlink: throw PublishError.unsafePath(path, reason: "is a symlink; publish writes only into real folders under the root")
        default: throw PublishError.unsafePath(path, reason: "is not a folder")
        }
    }

    static func removeTree(_ path: String) throws {
        do {
            try FileManager.default.removeItem(atPath: path)
        } catch {
            throw PublishError.io("cannot remove \(path): \(error.localizedDescription)", errno: 0)
        }
    }

    static func entries(_ dir: String) throws -> [String] {
        do {
            return try FileManager.default.contentsOfDirectory(atPath: dir).sorted()
        } catch {
            throw PublishError.io("cannot list \(dir): \(error.localizedDescription)", errno: 0)
        }
    }

    static func readBytes(_ path: String) -> [UInt8]? {
        FileManager.default.contents(atPath: path).map { Array($0) }
    }

    static func size(_ path: String) throws -> Int64 {
        var st = stat()
        try check(stat(path, &st), "cannot stat \(path)")
        return Int64(st.st_size)
    }

    /// An exclusive advisory lock on `path` (created if needed), held until
    /// `release`: two executions publishing the same dataset (a duplicated
    /// task) take turns instead of racing on its temp folders and pointer.
    final class Lock {
        private var fd: Int32

        /// The lock, or nil when another holder keeps it for longer than
        /// `patience` seconds (tried every 50 ms, without blocking a thread
        /// for longer than that).
        static func attempt(_ path: String, patience: Double) throws -> Lock? {
            let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
            guard fd >= 0 else { throw PublishError.io("cannot open lock file \(path)", errno: errno) }
            let deadline = Date().addingTimeInterval(patience)
            while flock(fd, LOCK_EX | LOCK_NB) != 0 {
                let e = errno
                if e == EINTR { continue }
                guard e == EWOULDBLOCK || e == EAGAIN, Date() < deadline else {
                    close(fd)
                    if e == EWOULDBLOCK || e == EAGAIN { return nil }
                    throw PublishError.io("cannot lock \(path)", errno: e)
                }
                usleep(50_000)
            }
            return Lock(locked: fd)
        }

        private init(locked fd: Int32) {
            self.fd = fd
        }

        init(_ path: String) throws {
            fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
            guard fd >= 0 else { throw PublishError.io("cannot open lock file \(path)", errno: errno) }
            while flock(fd, LOCK_EX) != 0 {
                if errno == EINTR { continue }
                let e = errno
                close(fd)
                fd = -1
                throw PublishError.io("cannot lock \(path)", errno: e)
            }
        }

        func release() {
            if fd >= 0 {
                flock(fd, LOCK_UN)
                close(fd)
                fd = -1
            }
        }

        deinit { release() }
    }
}
