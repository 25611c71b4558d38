import Crypto

/// Streaming SHA-256 of the bytes a writer emits, as lowercase hex.
struct Checksum {
    private var hasher = SHA256()

    mutating func update(_ data: UnsafeRawBufferPointer) {
        hasher.update(bufferPointer: data)
    }

    mutating func update(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { update($0) }
    }

    func finalize() -> String {
        Checksum.hex(Array(hasher.finalize()))
    }

    static func hex(_ digest: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var s = [UInt8]()
        s.reserveCapacity(digest.count * 2)
        for b in digest {
            s.append(digits[Int(b >> 4)])
            s.append(digits[Int(b & 15)])
        }
        return String(decoding: s, as: UTF8.self)
    }

    static func sha256(_ bytes: [UInt8]) -> String {
        var c = Checksum()
        c.update(bytes)
        return c.finalize()
    }
}
