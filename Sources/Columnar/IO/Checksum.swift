import Crypto

/// SHA-256 of a file on disk, as lowercase hex: what a worker compares with
/// the checksum a task message names before using an input chunk.
public func sha256(ofFile path: String) throws -> String {
    let source = try FileSource(path: path)
    var checksum = Checksum()
    var offset: Int64 = 0
    while offset < source.size {
        let n = Int(min(Int64(4 << 20), source.size - offset))
        checksum.update(try source.read(at: offset, count: n))
        offset += Int64(n)
    }
    return checksum.finalize()
}

/// Streaming SHA-256 as lowercase hex: the project's one SHA-256 helper
/// (the bytes a writer emits, files with `sha256(ofFile:)`, spec texts and
/// idempotency keys with `Checksum.sha256(_:)`).
public struct Checksum {
    private var hasher = SHA256()

    public init() {}

    public mutating func update(_ data: UnsafeRawBufferPointer) {
        hasher.update(bufferPointer: data)
    }

    public mutating func update(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { update($0) }
    }

    /// The digest so far, as 64 lowercase hex digits.
    public func finalize() -> String {
        Checksum.hex(Array(hasher.finalize()))
    }

    /// Bytes as lowercase hex, two digits each.
    public static func hex(_ digest: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var s = [UInt8]()
        s.reserveCapacity(digest.count * 2)
        for b in digest {
            s.append(digits[Int(b >> 4)])
            s.append(digits[Int(b & 15)])
        }
        return String(decoding: s, as: UTF8.self)
    }

    /// SHA-256 of `bytes`, as lowercase hex.
    public static func sha256(_ bytes: [UInt8]) -> String {
        var c = Checksum()
        c.update(bytes)
        return c.finalize()
    }

    /// SHA-256 of a text's UTF-8 bytes, as lowercase hex.
    public static func sha256(utf8 text: String) -> String {
        sha256(Array(text.utf8))
    }
}
