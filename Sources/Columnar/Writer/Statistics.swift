#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Min and max of a column chunk in Parquet's TYPE_ORDER, as PLAIN bytes.
struct ChunkStatistics {
    var min: [UInt8]?
    var max: [UInt8]?
    var nullCount: Int64

    static func littleEndian<T: FixedWidthInteger>(_ v: T) -> [UInt8] {
        withUnsafeBytes(of: v.littleEndian) { Array($0) }
    }

    /// Over the non-null values `dense`.
    static func compute(_ dense: ColumnValues, nullCount: Int) -> ChunkStatistics {
        var s = ChunkStatistics(min: nil, max: nil, nullCount: Int64(nullCount))
        switch dense {
        case .int64(let v):
            if let lo = v.min(), let hi = v.max() {
                s.min = littleEndian(lo)
                s.max = littleEndian(hi)
            }
        case .int32(let v):
            if let lo = v.min(), let hi = v.max() {
                s.min = littleEndian(lo)
                s.max = littleEndian(hi)
            }
        case .double(let v):
            var lo = Double.infinity, hi = -Double.infinity, any = false
            v.withUnsafeBufferPointer { b in
                for x in b where !x.isNaN {
                    any = true
                    if x < lo { lo = x }
                    if x > hi { hi = x }
                }
            }
            if any {
                // Zero as an extreme is written as -0.0 (min) and +0.0 (max).
                if lo == 0 { lo = -0.0 }
                if hi == 0 { hi = 0.0 }
                s.min = littleEndian(lo.bitPattern)
                s.max = littleEndian(hi.bitPattern)
            }
        case .bool(let v):
            if !v.isEmpty {
                let anyFalse = v.contains(false), anyTrue = v.contains(true)
                s.min = [anyFalse ? 0 : 1]
                s.max = [anyTrue ? 1 : 0]
            }
        case .bytes(let strings):
            guard strings.count > 0 else { break }
            var lo = 0, hi = 0
            strings.bytes.withUnsafeBufferPointer { b in
                strings.offsets.withUnsafeBufferPointer { o in
                    let base = b.baseAddress ?? UnsafePointer(bitPattern: 1)!
                    func cmp(_ i: Int, _ j: Int) -> Int {
                        let li = o[i + 1] - o[i], lj = o[j + 1] - o[j]
                        let n = Swift.min(li, lj)
                        if n > 0 {
                            let r = memcmpOrder(base + o[i], base + o[j], n)
                            if r != 0 { return r }
                        }
                        return li < lj ? -1 : (li == lj ? 0 : 1)
                    }
                    for i in 1..<strings.count {
                        if cmp(i, lo) < 0 { lo = i }
                        if cmp(i, hi) > 0 { hi = i }
                    }
                }
            }
            s.min = Array(strings.bytes(at: lo))
            s.max = Array(strings.bytes(at: hi))
        }
        return s
    }
}

@inline(__always)
func memcmpOrder(_ a: UnsafePointer<UInt8>, _ b: UnsafePointer<UInt8>, _ n: Int) -> Int {
    Int(memcmp(a, b, n).signum())
}
