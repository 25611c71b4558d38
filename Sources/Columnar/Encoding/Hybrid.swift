#if _endian(big)
#error("Columnar writes host-order values as Parquet's little-endian; big-endian hosts are not supported")
#endif

/// The RLE / bit-packed hybrid encoding used for definition levels,
/// dictionary indices and RLE booleans.
enum Hybrid {
    /// Bits needed to store `maxValue`.
    static func bitWidth(forMax maxValue: UInt64) -> Int {
        maxValue == 0 ? 0 : 64 - maxValue.leadingZeroBitCount
    }

    static func appendVarint(_ value: UInt64, to out: inout [UInt8]) {
        var v = value
        while v >= 0x80 {
            out.append(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        out.append(UInt8(v))
    }

    /// Appends `values` (each < 2^bitWidth, bitWidth ≤ 32) as hybrid runs:
    /// runs of 8 or more equal values as RLE runs, the rest bit-packed.
    static func encode(_ v: UnsafeBufferPointer<UInt32>, bitWidth w: Int, into out: inout [UInt8]) {
        let n = v.count
        // Every run covers at least 8 values (or ends the input): headers of
        // at most 10 bytes, RLE values of at most 4, packed groups of w bytes,
        // plus 8 bytes of slack for the word stores below.
        let bound = (n / 8 + 2) * 14 + (n + 7) / 8 * w + 8
        let encoded = [UInt8](unsafeUninitializedCapacity: bound) { buf, count in
            count = encode(v, bitWidth: w, to: UnsafeMutableRawPointer(buf.baseAddress!))
        }
        out.append(contentsOf: encoded)
    }

    @inline(__always)
    private static func putVarint(_ value: UInt64, _ o: UnsafeMutableRawPointer, _ q: inout Int) {
        var x = value
        while x >= 0x80 {
            o.storeBytes(of: UInt8(truncatingIfNeeded: x) | 0x80, toByteOffset: q, as: UInt8.self)
            q += 1
            x >>= 7
        }
        o.storeBytes(of: UInt8(x), toByteOffset: q, as: UInt8.self)
        q += 1
    }

    /// Writes the runs to `o`; returns the byte count.
    private static func encode(_ v: UnsafeBufferPointer<UInt32>, bitWidth w: Int, to o: UnsafeMutableRawPointer) -> Int {
        let n = v.count
        let byteWidth = (w + 7) / 8
        @inline(__always) func runIsLong(_ i: Int) -> Bool {
            guard i + 8 <= n else { return false }
            let x = v[i]
            for j in (i + 1)..<(i + 8) where v[j] != x { return false }
            return true
        }
        var q = 0
        var i = 0
        while i < n {
            if runIsLong(i) {
                let x = v[i]
                var j = i + 8
                while j < n && v[j] == x { j += 1 }
                putVarint(UInt64(j - i) << 1, o, &q)
                var value = x
                for _ in 0..<byteWidth {
                    o.storeBytes(of: UInt8(truncatingIfNeeded: value), toByteOffset: q, as: UInt8.self)
                    q += 1
                    value >>= 8
                }
                i = j
                continue
            }
            let start = i
            var groups = 0
            repeat {
                i += 8
                groups += 1
            } while i < n && !runIsLong(i)
            putVarint(UInt64(groups) << 1 | 1, o, &q)
            let end = min(i, n)
            let fullGroups = (end - start) / 8
            if w <= 8 {
                // Eight values fit one word: store it and keep w bytes.
                var k = start
                for _ in 0..<fullGroups {
                    var acc: UInt64 = 0
                    for t in 0..<8 { acc |= UInt64(v[k + t]) << UInt64(t * w) }
                    o.storeBytes(of: acc.littleEndian, toByteOffset: q, as: UInt64.self)
                    q += w
                    k += 8
                }
            } else {
                var k = start
                for _ in 0..<fullGroups {
                    var acc: UInt64 = 0
                    var bits = 0
                    for t in 0..<8 {
                        acc |= UInt64(v[k + t]) << UInt64(bits)
                        bits += w
                        while bits >= 8 {
                            o.storeBytes(of: UInt8(truncatingIfNeeded: acc), toByteOffset: q, as: UInt8.self)
                            q += 1
                            acc >>= 8
                            bits -= 8
                        }
                    }
                    k += 8
                }
            }
            if fullGroups < groups {
                // The last group, zero-padded.
                var acc: UInt64 = 0
                var bits = 0
                for k in (start + fullGroups * 8)..<(start + groups * 8) {
                    acc |= (k < end ? UInt64(v[k]) : 0) << UInt64(bits)
                    bits += w
                    while bits >= 8 {
                        o.storeBytes(of: UInt8(truncatingIfNeeded: acc), toByteOffset: q, as: UInt8.self)
                        q += 1
                        acc >>= 8
                        bits -= 8
                    }
                }
            }
            i = end
        }
        return q
    }

    /// Definition levels (bit width 1) for `validity[range]`; all-valid
    /// becomes a single RLE run.
    static func encodeLevels(_ validity: [Bool]?, _ range: Range<Int>, into out: inout [UInt8]) {
        guard let validity else {
            appendVarint(UInt64(range.count) << 1, to: &out)
            out.append(1)
            return
        }
        let levels = validity[range].map { UInt32($0 ? 1 : 0) }
        levels.withUnsafeBufferPointer { encode($0, bitWidth: 1, into: &out) }
    }

    /// Decodes `count` values of `bitWidth` ≤ 32 from `data[start..<end]`
    /// into `out`. Returns the position after the last run read.
    @discardableResult
    static func decode(
        _ data: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int,
        bitWidth w: Int, count n: Int, into out: UnsafeMutablePointer<UInt32>
    ) throws -> Int {
        guard (0...32).contains(w) else {
            throw ColumnarError.corrupt("RLE bit width \(w) is over 32")
        }
        let byteWidth = (w + 7) / 8
        let mask: UInt64 = w == 64 ? ~0 : (1 << UInt64(w)) - 1
        var p = start
        var produced = 0
        while produced < n {
            var header: UInt64 = 0
            var shift: UInt64 = 0
            while true {
                guard p < end else { throw ColumnarError.corrupt("RLE data ends after \(produced) of \(n) values") }
                let b = data[p]
                p += 1
                header |= UInt64(b & 0x7F) << shift
                if b & 0x80 == 0 { break }
                shift += 7
                guard shift < 64 else { throw ColumnarError.corrupt("RLE run header is too long") }
            }
            if header & 1 == 0 {
                let len = header >> 1
                guard p + byteWidth <= end else { throw ColumnarError.corrupt("RLE run value overruns the page") }
                var value: UInt64 = 0
                for k in 0..<byteWidth { value |= UInt64(data[p + k]) << UInt64(8 * k) }
                p += byteWidth
                guard value & ~mask == 0 else {
                    throw ColumnarError.corrupt("RLE run value \(value) exceeds bit width \(w)")
                }
                let take = Int(min(len, UInt64(n - produced)))
                (out + produced).update(repeating: UInt32(value), count: take)
                produced += take
            } else if w == 0 {
                // Values of bit width 0 take no bytes: every one is 0 (a
                // dictionary of one entry; pyarrow reads such pages).
                let left = n - produced
                let groups = header >> 1
                let take = groups >= UInt64(left) ? left : min(Int(groups) * 8, left)
                (out + produced).update(repeating: 0, count: take)
                produced += take
            } else {
                let groups = header >> 1
                guard groups <= UInt64(end - p + 1) * 8 else {
                    throw ColumnarError.corrupt("bit-packed run of \(groups) groups overruns the page")
                }
                let values = Int(groups) * 8
                let take = min(values, n - produced)
                let fullBytes = Int(groups) * w
                let needBytes = (take * w + 7) / 8
                guard p + needBytes <= end else {
                    throw ColumnarError.corrupt("bit-packed run overruns the page")
                }
                var acc: UInt64 = 0
                var bits = 0
                var q = p
                for k in 0..<take {
                    while bits < w {
                        acc |= UInt64(data[q]) << UInt64(bits)
                        q += 1
                        bits += 8
                    }
                    out[produced + k] = UInt32(truncatingIfNeeded: acc & mask)
                    acc >>= UInt64(w)
                    bits -= w
                }
                produced += take
                p = min(p + fullBytes, end)
            }
        }
        return p
    }

    /// Decodes into a new array, with bounds taken from `data`.
    static func decode(_ data: [UInt8], _ start: Int, _ end: Int, bitWidth: Int, count: Int) throws -> (values: [UInt32], end: Int) {
        guard start <= end, end <= data.count else { throw ColumnarError.corrupt("RLE section out of bounds") }
        if count == 0 { return ([], start) }
        var pos = start
        let values = try [UInt32](unsafeUninitializedCapacity: count) { buf, initialized in
            try data.withUnsafeBufferPointer { d in
                pos = try decode(d, start, end, bitWidth: bitWidth, count: count, into: buf.baseAddress!)
            }
            initialized = count
        }
        return (values, pos)
    }
}
