#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Columnar

/// Compares rows of key columns across batches, column by column:
/// nulls first; integers, dates, timestamps and unscaled decimals as signed
/// integers; doubles numerically with -0.0 equal to +0.0 and NaN after every
/// number; false before true; strings by unsigned UTF-8 bytes (code point
/// order). This is the order of consolidate's sort key and of `latest`.
struct SortKeys {
    enum Values {
        case i64([Int64]), i32([Int32]), f64([Double]), bool([Bool]), bytes(StringColumn)
    }

    struct Key {
        let values: Values
        let validity: [Bool]?
    }

    let keys: [Key]

    init(_ columns: [Column]) {
        keys = columns.map { c in
            let v: Values
            switch c.values {
            case .int64(let x): v = .i64(x)
            case .int32(let x): v = .i32(x)
            case .double(let x): v = .f64(x)
            case .bool(let x): v = .bool(x)
            case .bytes(let x): v = .bytes(x)
            }
            return Key(values: v, validity: c.validity)
        }
    }

    init(_ batch: ColumnBatch, indices: [Int]) {
        self.init(indices.map { batch.columns[$0] })
    }

    /// -1, 0 or 1 as row `i` of self sorts before, with or after row `j` of `other`.
    @inline(__always)
    func compare(_ i: Int, _ other: SortKeys, _ j: Int) -> Int {
        for k in 0..<keys.count {
            let c = SortKeys.compare(keys[k], i, other.keys[k], j)
            if c != 0 { return c }
        }
        return 0
    }

    @inline(__always)
    static func compare(_ a: Key, _ i: Int, _ b: Key, _ j: Int) -> Int {
        let an = a.validity.map { !$0[i] } ?? false
        let bn = b.validity.map { !$0[j] } ?? false
        if an || bn { return an == bn ? 0 : (an ? -1 : 1) }
        switch (a.values, b.values) {
        case (.i64(let x), .i64(let y)): return three(x[i], y[j])
        case (.i32(let x), .i32(let y)): return three(x[i], y[j])
        case (.f64(let x), .f64(let y)):
            let p = x[i], q = y[j]
            if p.isNaN || q.isNaN { return p.isNaN == q.isNaN ? 0 : (p.isNaN ? 1 : -1) }
            return p < q ? -1 : (p == q ? 0 : 1)
        case (.bool(let x), .bool(let y)): return x[i] == y[j] ? 0 : (x[i] ? 1 : -1)
        case (.bytes(let x), .bytes(let y)):
            let a0 = x.offsets[i], a1 = x.offsets[i + 1], b0 = y.offsets[j], b1 = y.offsets[j + 1]
            let la = a1 - a0, lb = b1 - b0
            let n = min(la, lb)
            var c: Int32 = 0
            if n > 0 {
                c = x.bytes.withUnsafeBufferPointer { p in
                    y.bytes.withUnsafeBufferPointer { q in memcmp(p.baseAddress! + a0, q.baseAddress! + b0, n) }
                }
            }
            if c != 0 { return c < 0 ? -1 : 1 }
            return three(la, lb)
        default:
            preconditionFailure("sort keys of different storage")
        }
    }

    @inline(__always)
    static func three<T: Comparable>(_ a: T, _ b: T) -> Int { a < b ? -1 : (a == b ? 0 : 1) }

    /// The permutation that sorts rows 0..<count by the keys, ties kept in
    /// row order (a stable sort: the index breaks ties).
    ///
    /// Rows are first compared by a 64-bit prefix of the first key column
    /// that orders like the full comparison (a smaller prefix means a
    /// smaller row); only equal prefixes fall back to comparing the columns.
    func sortedPermutation(count: Int) -> [Int] {
        guard let first = keys.first else { return Array(0..<count) }
        let prefixes = SortKeys.prefixes(first, count: count)
        var order = (0..<count).map { (prefix: prefixes[$0], row: $0) }
        order.sort { a, b in
            if a.prefix != b.prefix { return a.prefix < b.prefix }
            let c = compare(a.row, self, b.row)
            return c != 0 ? c < 0 : a.row < b.row
        }
        return order.map(\.row)
    }

    /// Order-preserving 64-bit prefixes: null is 0 (ties with the smallest
    /// values, which the full comparison then separates); integers with the
    /// sign bit flipped; doubles by the IEEE total-order trick (-0.0 as +0.0,
    /// NaN above +inf); booleans 1 and 2; strings by their first 8 bytes,
    /// big-endian, zero-padded.
    static func prefixes(_ key: Key, count: Int) -> [UInt64] {
        var out = [UInt64](repeating: 0, count: count)
        let signBit: UInt64 = 1 << 63
        switch key.values {
        case .i64(let v):
            for i in 0..<count { out[i] = UInt64(bitPattern: v[i]) ^ signBit }
        case .i32(let v):
            for i in 0..<count { out[i] = UInt64(bitPattern: Int64(v[i])) ^ signBit }
        case .f64(let v):
            for i in 0..<count {
                let bits = KeyEncoding.canonicalDoubleBits(v[i])
                out[i] = bits & signBit != 0 ? ~bits : bits | signBit
            }
        case .bool(let v):
            for i in 0..<count { out[i] = v[i] ? 2 : 1 }
        case .bytes(let s):
            s.bytes.withUnsafeBufferPointer { bytes in
                for i in 0..<count {
                    let a = s.offsets[i], n = min(8, s.offsets[i + 1] - a)
                    var p: UInt64 = 0
                    for k in 0..<n { p |= UInt64(bytes[a + k]) << (56 - 8 * UInt64(k)) }
                    out[i] = p
                }
            }
        }
        if let validity = key.validity {
            for i in 0..<count where !validity[i] { out[i] = 0 }
        }
        return out
    }
}
