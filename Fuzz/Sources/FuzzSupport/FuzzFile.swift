#if canImport(Glibc)
import Glibc
#endif

/// A scratch folder for targets whose code under test reads or writes files
/// (the CSV ingest, the Parquet reader): `$BIS_FUZZ_TMP` when set (ops/fuzz
/// sets it and removes it afterwards), else a fresh folder in /dev/shm or
/// /tmp. One per process; libFuzzer runs inputs one at a time.
public final class FuzzFile: @unchecked Sendable {
    public static let shared = FuzzFile()

    public let directory: String

    private init() {
        if let dir = getenv("BIS_FUZZ_TMP").map({ String(cString: $0) }), !dir.isEmpty {
            mkdir(dir, 0o700)
            var template = Array("\(dir)/p\(getpid())-XXXXXX".utf8CString)
            directory = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)!) }
        } else {
            let base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp"
            var template = Array("\(base)/bis-fuzz-XXXXXX".utf8CString)
            directory = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)!) }
        }
    }

    /// Writes `size` bytes to `name` in the scratch folder (replacing it) and
    /// returns its path.
    public func write(_ data: UnsafePointer<UInt8>, _ size: Int, name: String = "input") -> String {
        let path = directory + "/" + name
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        precondition(fd >= 0, "cannot create \(path)")
        var done = 0
        while done < size {
            let n = Glibc.write(fd, data + done, size - done)
            precondition(n > 0, "cannot write \(path)")
            done += n
        }
        close(fd)
        return path
    }

    /// A path in the scratch folder (for outputs).
    public func path(_ name: String) -> String { directory + "/" + name }
}
