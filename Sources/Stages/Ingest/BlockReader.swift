#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Reads a file forward in large blocks into one buffer. Parsers work on
/// `buffer[pos..<count]`; `refill` moves the unread tail to the front and
/// reads more, growing the buffer only when one record is larger than it.
/// Reads stop near `limit` (the shard's end) and then go on in small steps,
/// just far enough to finish the shard's last record.
final class BlockReader {
    let path: String
    private let fd: Int32
    private(set) var buffer: UnsafeMutablePointer<UInt8>
    private(set) var capacity: Int
    /// Valid bytes in the buffer.
    private(set) var count = 0
    /// The next unparsed byte.
    var pos = 0
    /// File offset of `buffer[0]`.
    private(set) var base: Int64
    private(set) var eof = false
    private let limit: Int64
    private let maxRecordBytes: Int

    init(path: String, start: Int64, limit: Int64, blockBytes: Int, maxRecordBytes: Int = 1 << 30) throws {
        self.path = path
        fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw IngestError.io(file: path, message: "cannot open for reading", errno: errno) }
        capacity = max(4096, blockBytes)
        buffer = .allocate(capacity: capacity + 8)
        base = start
        self.limit = limit
        self.maxRecordBytes = maxRecordBytes
    }

    deinit {
        close(fd)
        buffer.deallocate()
    }

    /// File offset of `buffer[pos]`.
    var offset: Int64 { base + Int64(pos) }

    /// Reads past a record too long to hold, from `pos` to its end by the
    /// toggle rule (every quote toggles, a line feed outside quotes ends it;
    /// `quote` nil: the next line feed). Keeps the first `keep` bytes for
    /// the quarantine. Returns them, the line feeds crossed and the length.
    func skipRecord(quote: UInt8?, keep: Int) throws -> (prefix: [UInt8], newlines: Int, bytes: Int64) {
        let prefix = Array(UnsafeBufferPointer(start: buffer + pos, count: min(keep, count - pos)))
        var inQuote = false
        var newlines = 0
        var length: Int64 = 0
        while true {
            while pos < count {
                let c = buffer[pos]
                pos += 1
                length += 1
                if c == quote {
                    inQuote.toggle()
                } else if c == 10 {
                    newlines += 1
                    if !inQuote { return (prefix, newlines, length) }
                }
            }
            if eof { return (prefix, newlines, length) }
            try refill()
        }
    }

    /// Reads more bytes after `count`, keeping `buffer[pos...]`. Sets `eof`
    /// when the file has no more.
    func refill() throws {
        if pos > 0 {
            let keep = count - pos
            if keep > 0 { memmove(buffer, buffer + pos, keep) }
            base += Int64(pos)
            count = keep
            pos = 0
        }
        if count == capacity {
            guard capacity < maxRecordBytes else {
                throw IngestError.invalidSource(
                    file: path,
                    message: "a record at byte \(base) is longer than \(maxRecordBytes >> 20) MiB (an unterminated quote?)")
            }
            let bigger = UnsafeMutablePointer<UInt8>.allocate(capacity: capacity * 2 + 8)
            bigger.update(from: buffer, count: count)
            buffer.deallocate()
            buffer = bigger
            capacity *= 2
        }
        let fileEnd = base + Int64(count)
        var want = capacity - count
        if fileEnd < limit {
            want = Int(min(Int64(want), limit - fileEnd))
        } else {
            want = min(want, 64 << 10)
        }
        while true {
            let n = pread(fd, buffer + count, want, off_t(fileEnd))
            if n < 0 {
                if errno == EINTR { continue }
                throw IngestError.io(file: path, message: "cannot read at byte \(fileEnd)", errno: errno)
            }
            if n == 0 { eof = true }
            count += n
            return
        }
    }
}
