import Columnar

/// The hash that assigns rows to partitions. It must give the same number for
/// the same key in every process, on every host and in every version, since
/// shards are partitioned by different workers and a key's rows must meet in
/// one partition. Swift's `Hasher` is seeded per process, so it is not used.
///
/// Definition (fixed; `StableHashTests` pins known values):
/// 1. Take the key's canonical bytes (`KeyEncoding`: a type tag, then the
///    value; null is the single byte 00; columns concatenated in key order).
/// 2. Run 64-bit FNV-1a over them: h = 0xcbf29ce484222325; for each byte b,
///    h = (h XOR b) × 0x100000001b3 mod 2^64.
/// 3. Finish with MurmurHash3's fmix64 (FNV's low bits mix poorly):
///    h ^= h >> 33; h ×= 0xff51afd7ed558ccd; h ^= h >> 33;
///    h ×= 0xc4ceb9fe1a85ec53; h ^= h >> 33.
/// 4. The partition is h mod P.
public enum StableHash {
    static let offsetBasis: UInt64 = 0xcbf2_9ce4_8422_2325
    static let prime: UInt64 = 0x0000_0100_0000_01b3

    @inline(__always)
    static func fmix64(_ x: UInt64) -> UInt64 {
        var h = x
        h ^= h >> 33
        h &*= 0xff51_afd7_ed55_8ccd
        h ^= h >> 33
        h &*= 0xc4ce_b9fe_1a85_ec53
        h ^= h >> 33
        return h
    }

    /// The hash of every row of `batch` over key `columns`, computed column by
    /// column over the buffers (one FNV state per row).
    public static func rowHashes(_ batch: ColumnBatch, columns: [String]) throws -> [UInt64] {
        let indices = try columns.map { try batch.requireColumn($0, "partition key") }
        var states = [UInt64](repeating: offsetBasis, count: batch.rowCount)
        states.withUnsafeMutableBufferPointer { h in
            for c in indices {
                let column = batch.columns[c]
                let validity = column.validity
                switch (column.values, column.type) {
                case (.int64(let v), .int64), (.int64(let v), .timestamp):
                    // Fast path: the same bytes KeyEncoding gives, without a closure per byte.
                    for r in 0..<v.count {
                        if let validity, !validity[r] { h[r] = (h[r] ^ UInt64(KeyEncoding.nullTag)) &* prime; continue }
                        var s = (h[r] ^ UInt64(KeyEncoding.intTag)) &* prime
                        mix8(&s, UInt64(bitPattern: v[r]))
                        h[r] = s
                    }
                case (.bytes(let strings), _):
                    strings.bytes.withUnsafeBufferPointer { bytes in
                        for r in 0..<strings.count {
                            if let validity, !validity[r] { h[r] = (h[r] ^ UInt64(KeyEncoding.nullTag)) &* prime; continue }
                            let a = strings.offsets[r], b = strings.offsets[r + 1]
                            var s = (h[r] ^ UInt64(KeyEncoding.stringTag)) &* prime
                            mix8(&s, UInt64(b - a))
                            for i in a..<b { s = (s ^ UInt64(bytes[i])) &* prime }
                            h[r] = s
                        }
                    }
                default:
                    for r in 0..<batch.rowCount {
                        var s = h[r]
                        KeyEncoding.encode(column, row: r) { b in s = (s ^ UInt64(b)) &* prime }
                        h[r] = s
                    }
                }
            }
            for r in 0..<h.count { h[r] = fmix64(h[r]) }
        }
        return states
    }

    /// Feeds the 8 little-endian bytes of `x` to the FNV-1a state.
    @inline(__always)
    static func mix8(_ s: inout UInt64, _ x: UInt64) {
        var x = x
        for _ in 0..<8 {
            s = (s ^ (x & 0xff)) &* prime
            x >>= 8
        }
    }

    /// The hash of canonical key bytes (as `KeyEncoding` writes them).
    public static func hash(canonicalBytes bytes: [UInt8]) -> UInt64 {
        var s = offsetBasis
        for b in bytes { s = (s ^ UInt64(b)) &* prime }
        return fmix64(s)
    }

    /// The hash of one key given as typed scalars (nil is null); the same
    /// number `rowHashes` gives a row holding these values.
    public static func hash(_ key: [(ColumnType, Scalar?)]) throws -> UInt64 {
        let columns = try key.map { try Column($0.0, scalars: [$0.1]) }
        var bytes = [UInt8]()
        for c in columns { KeyEncoding.encode(c, row: 0) { bytes.append($0) } }
        return hash(canonicalBytes: bytes)
    }

    /// The partition (0..<partitions) of every row of `batch`.
    public static func partitions(_ batch: ColumnBatch, columns: [String], count partitions: Int) throws -> [Int] {
        guard partitions > 0 else { throw OperatorError.invalidSetting("partitions must be at least 1, got \(partitions)") }
        let p = UInt64(partitions)
        return try rowHashes(batch, columns: columns).map { Int($0 % p) }
    }
}
