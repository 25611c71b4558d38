import Columnar

/// The canonical bytes of key values, shared by the stable hash (which
/// partitions rows) and by de-duplication and grouping (which compare keys).
/// Equal values give equal bytes whatever buffer or chunk they come from:
///
/// | value | bytes |
/// |---|---|
/// | null | `00` |
/// | int64, int32, date, timestamp | `01` + the value as Int64, 8 bytes little-endian |
/// | decimal(p,s) | `02` + unscaled Int64 LE + scale (1 byte), after removing trailing zeros (1.50 and 1.5 agree) |
/// | double | `03` + IEEE bits LE; -0.0 as +0.0, every NaN as 0x7FF8000000000000 |
/// | bool | `04` + `00` or `01` |
/// | string | `05` + byte length as UInt64 LE + the UTF-8 bytes |
///
/// A row's key is the concatenation over its key columns in the order given;
/// the tags and the length prefix make that concatenation unambiguous.
enum KeyEncoding {
    static let nullTag: UInt8 = 0x00
    static let intTag: UInt8 = 0x01
    static let decimalTag: UInt8 = 0x02
    static let doubleTag: UInt8 = 0x03
    static let boolTag: UInt8 = 0x04
    static let stringTag: UInt8 = 0x05

    /// A decimal reduced to its shortest scale: (150, 2) becomes (15, 1).
    @inline(__always)
    static func canonicalDecimal(_ unscaled: Int64, scale: Int) -> (Int64, UInt8) {
        var u = unscaled, s = scale
        while s > 0, u % 10 == 0 {
            u /= 10
            s -= 1
        }
        return (u, UInt8(s))
    }

    @inline(__always)
    static func canonicalDoubleBits(_ d: Double) -> UInt64 {
        if d.isNaN { return 0x7FF8_0000_0000_0000 }
        if d == 0 { return 0 }
        return d.bitPattern
    }

    /// Feeds the canonical bytes of row `row` of `column` to `sink`.
    @inline(__always)
    static func encode(_ column: Column, row: Int, into sink: (UInt8) -> Void) {
        if let v = column.validity, !v[row] {
            sink(nullTag)
            return
        }
        switch column.values {
        case .int64(let v):
            if case .decimal(_, let s) = column.type {
                let (u, scale) = canonicalDecimal(v[row], scale: s)
                sink(decimalTag)
                le(UInt64(bitPattern: u), sink)
                sink(scale)
            } else {
                sink(intTag)
                le(UInt64(bitPattern: v[row]), sink)
            }
        case .int32(let v):
            sink(intTag)
            le(UInt64(bitPattern: Int64(v[row])), sink)
        case .double(let v):
            sink(doubleTag)
            le(canonicalDoubleBits(v[row]), sink)
        case .bool(let v):
            sink(boolTag)
            sink(v[row] ? 1 : 0)
        case .bytes(let s):
            sink(stringTag)
            let a = s.offsets[row], b = s.offsets[row + 1]
            le(UInt64(b - a), sink)
            for i in a..<b { sink(s.bytes[i]) }
        }
    }

    @inline(__always)
    static func le(_ x: UInt64, _ sink: (UInt8) -> Void) {
        var x = x
        for _ in 0..<8 {
            sink(UInt8(truncatingIfNeeded: x))
            x >>= 8
        }
    }

    /// The key bytes of every row over `columns`.
    static func rowKeys(_ columns: [Column], rows: Int) -> [[UInt8]] {
        var out = [[UInt8]]()
        out.reserveCapacity(rows)
        for r in 0..<rows {
            var key = [UInt8]()
            key.reserveCapacity(columns.count * 10)
            for c in columns { encode(c, row: r, into: { key.append($0) }) }
            out.append(key)
        }
        return out
    }
}
