import Crypto

/// SHA-256 of a short byte string, for idempotency keys (files are hashed
/// with Columnar's `sha256(ofFile:)`, which streams).
enum SHA256Digest {
    static func hex(of message: [UInt8]) -> String {
        SHA256.hash(data: message).map { byte in
            let s = String(byte, radix: 16)
            return byte < 16 ? "0" + s : s
        }.joined()
    }
}
