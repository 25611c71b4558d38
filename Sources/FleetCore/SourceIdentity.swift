#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import Columnar

/// A source file's identity without reading it at submit (issue 15).
///
/// `bis submit` records a cheap placeholder, `stat:<size>:<mtime_ns>:<inode>`,
/// as the source chunk's sha256; task messages carry it and each ingest
/// checks the file's stat against it (a file changed since submit fails the
/// task permanently). Each ingest of a CSV or JSON Lines file hashes its
/// shard's byte range and reports it in its result; when the file's last
/// ingest commits, the coordinator replaces the placeholder with the file's
/// content identity, `identity(of:)` of the ranges. Parquet files are still
/// hashed whole at submit (their shards are row groups, not byte ranges).
public enum SourceIdentity {
    public static let placeholderPrefix = "stat:"

    /// The placeholder for a file as it is now.
    public static func placeholder(ofFile path: String) throws -> String {
        var st = stat()
        guard stat(path, &st) == 0 else {
            throw SourceIdentityError("cannot stat \(path): \(String(cString: strerror(errno)))")
        }
        #if canImport(Darwin)
        let ns = Int64(st.st_mtimespec.tv_sec) * 1_000_000_000 + Int64(st.st_mtimespec.tv_nsec)
        #else
        let ns = Int64(st.st_mtim.tv_sec) * 1_000_000_000 + Int64(st.st_mtim.tv_nsec)
        #endif
        return "\(placeholderPrefix)\(Int64(st.st_size)):\(ns):\(UInt64(st.st_ino))"
    }

    public static func isPlaceholder(_ sha256: String) -> Bool { sha256.hasPrefix(placeholderPrefix) }

    /// One shard's byte range and the SHA-256 of its bytes.
    public struct Range: Codable, Sendable, Hashable {
        public var start: Int64
        public var end: Int64
        public var sha256: String
        public init(start: Int64, end: Int64, sha256: String) {
            self.start = start
            self.end = end
            self.sha256 = sha256
        }
    }

    /// The file's identity from its ranges: the one range's hash when it
    /// covers the file (then the file's SHA-256), else SHA-256 over the
    /// ordered lines "start-end sha256\n". Nil unless the ranges, sorted,
    /// cover `0..<size` exactly.
    public static func identity(of ranges: [Range], size: Int64) -> String? {
        let sorted = Set(ranges).sorted { ($0.start, $0.end) < ($1.start, $1.end) }
        var at: Int64 = 0
        for r in sorted {
            guard r.start == at, r.end >= r.start else { return nil }
            at = r.end
        }
        guard at == size, !sorted.isEmpty || size == 0 else { return nil }
        if sorted.count == 1 { return sorted[0].sha256 }
        if sorted.isEmpty { return Checksum.sha256([]) }
        return Checksum.sha256(utf8: sorted.map { "\($0.start)-\($0.end) \($0.sha256)\n" }.joined())
    }

    /// SHA-256 of `range` of a file (all of it when nil).
    public static func sha256(ofFile path: String, range: Swift.Range<Int64>?) throws -> Range {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw SourceIdentityError("cannot open \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw SourceIdentityError("cannot stat \(path): \(String(cString: strerror(errno)))") }
        let start = range?.lowerBound ?? 0
        let end = min(range?.upperBound ?? Int64(st.st_size), Int64(st.st_size))
        var checksum = Checksum()
        let block = 4 << 20
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: block, alignment: 16)
        defer { buffer.deallocate() }
        var offset = start
        while offset < end {
            let want = Int(min(Int64(block), end - offset))
            let n = pread(fd, buffer, want, off_t(offset))
            if n < 0 {
                if errno == EINTR { continue }
                throw SourceIdentityError("cannot read \(path) at byte \(offset): \(String(cString: strerror(errno)))")
            }
            if n == 0 { break }
            checksum.update(UnsafeRawBufferPointer(start: buffer, count: n))
            offset += Int64(n)
        }
        return Range(start: start, end: offset, sha256: checksum.finalize())
    }

    /// An ingest's `result` JSON carrying its range hash.
    public static func resultJSON(_ r: Range) -> String {
        "{\"sourceRange\":{\"end\":\(r.end),\"sha256\":\"\(r.sha256)\",\"start\":\(r.start)}}"
    }

    /// The range hash an ingest's `result` carries, nil when none or when
    /// it is not a SHA-256 (64 lowercase hex digits) over a non-empty or
    /// empty range that starts at or after byte 0: a garbled result never
    /// becomes a file's identity.
    public static func range(fromResult text: String?) -> Range? {
        struct Wrapper: Decodable { var sourceRange: Range? }
        guard let text, let r = (try? JSONDecoder().decode(Wrapper.self, from: Data(text.utf8)))?.sourceRange else { return nil }
        let hex = r.sha256.utf8.count == 64 && r.sha256.utf8.allSatisfy { (48...57).contains($0) || (97...102).contains($0) }
        guard hex, r.start >= 0, r.end >= r.start else { return nil }
        return r
    }
}

public struct SourceIdentityError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}
