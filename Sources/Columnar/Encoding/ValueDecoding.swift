/// Decoders for the value encodings other writers use. Each reads from
/// `data[start..<end]` and checks every length against those bounds.
enum ValueDecoding {
    static func checkRange(_ data: [UInt8], _ start: Int, _ end: Int, need: Int, _ what: String) throws {
        guard start >= 0, end <= data.count, start <= end, need >= 0, need <= end - start else {
            throw ColumnarError.corrupt("\(what) needs \(need) bytes, page has \(max(0, end - start))")
        }
    }

    /// PLAIN fixed-width little-endian values (INT32, INT64, FLOAT, DOUBLE).
    static func plainFixed<T: BitwiseCopyable>(_ data: [UInt8], _ start: Int, _ end: Int, count: Int, as: T.Type) throws -> [T] {
        let size = MemoryLayout<T>.size
        let (need, overflow) = count.multipliedReportingOverflow(by: size)
        guard !overflow else { throw ColumnarError.corrupt("value count \(count) overflows") }
        try checkRange(data, start, end, need: need, "PLAIN \(T.self)")
        if count == 0 { return [] }
        return [T](unsafeUninitializedCapacity: count) { buf, n in
            data.withUnsafeBytes { raw in
                UnsafeMutableRawBufferPointer(buf).copyMemory(from: UnsafeRawBufferPointer(rebasing: raw[start..<(start + need)]))
            }
            n = count
        }
    }

    /// PLAIN booleans: bits LSB-first.
    static func plainBool(_ data: [UInt8], _ start: Int, _ end: Int, count: Int) throws -> [Bool] {
        try checkRange(data, start, end, need: (count + 7) / 8, "PLAIN BOOLEAN")
        var out = [Bool]()
        out.reserveCapacity(count)
        for i in 0..<count {
            out.append((data[start + (i >> 3)] >> UInt8(i & 7)) & 1 == 1)
        }
        return out
    }

    /// RLE booleans (v2 pages): 4-byte length, then hybrid runs of width 1.
    static func rleBool(_ data: [UInt8], _ start: Int, _ end: Int, count: Int) throws -> [Bool] {
        try checkRange(data, start, end, need: 4, "RLE BOOLEAN length")
        let len = Int(readUInt32(data, start))
        try checkRange(data, start + 4, end, need: len, "RLE BOOLEAN runs")
        let (v, _) = try Hybrid.decode(data, start + 4, start + 4 + len, bitWidth: 1, count: count)
        return v.map { $0 != 0 }
    }

    /// PLAIN byte arrays: 4-byte little-endian length, then the bytes.
    static func plainBytes(_ data: [UInt8], _ start: Int, _ end: Int, count: Int) throws -> (StringColumn, end: Int) {
        try checkRange(data, start, end, need: 0, "PLAIN BYTE_ARRAY")
        // Each value takes at least its 4-byte length.
        guard count >= 0, count <= (end - start) / 4 else {
            throw ColumnarError.corrupt("PLAIN BYTE_ARRAY of \(count) values cannot fit \(end - start) bytes")
        }
        var offsets = [Int]()
        offsets.reserveCapacity(count + 1)
        offsets.append(0)
        var bytes = [UInt8]()
        bytes.reserveCapacity(max(0, end - start - 4 * count))
        var p = start
        try data.withUnsafeBufferPointer { d in
            for _ in 0..<count {
                guard end - p >= 4 else { throw ColumnarError.corrupt("PLAIN BYTE_ARRAY length overruns the page") }
                let len = Int(UInt32(d[p]) | UInt32(d[p + 1]) << 8 | UInt32(d[p + 2]) << 16 | UInt32(d[p + 3]) << 24)
                p += 4
                guard len <= end - p else { throw ColumnarError.corrupt("PLAIN BYTE_ARRAY value of \(len) bytes overruns the page") }
                bytes.append(contentsOf: UnsafeBufferPointer(rebasing: d[p..<(p + len)]))
                p += len
                offsets.append(bytes.count)
            }
        }
        return (StringColumn(unchecked: offsets, bytes: bytes), p)
    }

    /// PLAIN fixed-length byte arrays as one contiguous buffer.
    static func plainFixedBytes(_ data: [UInt8], _ start: Int, _ end: Int, count: Int, width: Int) throws -> [UInt8] {
        let (need, overflow) = count.multipliedReportingOverflow(by: width)
        guard !overflow else { throw ColumnarError.corrupt("value count \(count) overflows") }
        try checkRange(data, start, end, need: need, "PLAIN FIXED_LEN_BYTE_ARRAY")
        return Array(data[start..<(start + need)])
    }

    static func readUInt32(_ data: [UInt8], _ p: Int) -> UInt32 {
        UInt32(data[p]) | UInt32(data[p + 1]) << 8 | UInt32(data[p + 2]) << 16 | UInt32(data[p + 3]) << 24
    }

    /// BYTE_STREAM_SPLIT: byte k of every value, then byte k+1, ...
    /// Returns the values re-interleaved, `width` bytes each.
    static func byteStreamSplit(_ data: [UInt8], _ start: Int, _ end: Int, count: Int, width: Int) throws -> [UInt8] {
        let (need, overflow) = count.multipliedReportingOverflow(by: width)
        guard !overflow else { throw ColumnarError.corrupt("value count \(count) overflows") }
        try checkRange(data, start, end, need: need, "BYTE_STREAM_SPLIT")
        guard need == end - start else {
            throw ColumnarError.corrupt("BYTE_STREAM_SPLIT has \(end - start) bytes for \(count) values of \(width)")
        }
        var out = [UInt8](repeating: 0, count: need)
        for k in 0..<width {
            let base = start + k * count
            for i in 0..<count { out[i * width + k] = data[base + i] }
        }
        return out
    }

    /// DELTA_BINARY_PACKED integers (computed with 64-bit wrap-around, which
    /// truncates correctly to INT32).
    static func deltaBinaryPacked(_ data: [UInt8], _ start: Int, _ end: Int, count expected: Int?) throws -> (values: [Int64], end: Int) {
        try checkRange(data, start, end, need: 0, "DELTA_BINARY_PACKED")
        var r = CompactReader(data, from: start, end: end)
        let blockSize = try r.varint()
        let miniBlocks = try r.varint()
        let total = try r.varint()
        var last = try r.zigzag()
        guard blockSize > 0, blockSize % 128 == 0, blockSize <= 1 << 20,
              miniBlocks > 0, blockSize % miniBlocks == 0, (blockSize / miniBlocks) % 32 == 0
        else {
            throw ColumnarError.corrupt("DELTA_BINARY_PACKED header: block \(blockSize), miniblocks \(miniBlocks)")
        }
        if let expected, total != UInt64(expected) {
            throw ColumnarError.corrupt("DELTA_BINARY_PACKED holds \(total) values, page needs \(expected)")
        }
        guard expected != nil || total <= UInt64(end - start) * 64 else {
            throw ColumnarError.corrupt("DELTA_BINARY_PACKED count \(total) is implausible")
        }
        let n = Int(total)
        let perMini = Int(blockSize / miniBlocks)
        var values = [Int64]()
        values.reserveCapacity(n)
        if n > 0 { values.append(last) }
        var p = r.pos
        while values.count < n {
            var br = CompactReader(data, from: p, end: end)
            let minDelta = try br.zigzag()
            p = br.pos
            guard end - p >= Int(miniBlocks) else { throw ColumnarError.corrupt("DELTA_BINARY_PACKED bit widths overrun the page") }
            let widthsAt = p
            p += Int(miniBlocks)
            for m in 0..<Int(miniBlocks) where values.count < n {
                let w = Int(data[widthsAt + m])
                guard w <= 64 else { throw ColumnarError.corrupt("DELTA_BINARY_PACKED bit width \(w)") }
                let take = min(perMini, n - values.count)
                let need = (take * w + 7) / 8
                guard end - p >= need else { throw ColumnarError.corrupt("DELTA_BINARY_PACKED miniblock overruns the page") }
                var bitPos = p * 8
                for _ in 0..<take {
                    var v: UInt64 = 0
                    var got = 0
                    while got < w {
                        let byte = bitPos >> 3
                        let off = bitPos & 7
                        let chunk = min(8 - off, w - got)
                        let bits = (UInt64(data[byte]) >> UInt64(off)) & ((1 << UInt64(chunk)) - 1)
                        v |= bits << UInt64(got)
                        got += chunk
                        bitPos += chunk
                    }
                    last = last &+ minDelta &+ Int64(bitPattern: v)
                    values.append(last)
                }
                p = min(p + perMini * w / 8, end)
            }
        }
        return (values, p)
    }

    /// DELTA_LENGTH_BYTE_ARRAY: delta-packed lengths, then all bytes.
    static func deltaLengthByteArray(_ data: [UInt8], _ start: Int, _ end: Int, count: Int) throws -> (StringColumn, end: Int) {
        let (lengths, p0) = try deltaBinaryPacked(data, start, end, count: count)
        var offsets = [0]
        offsets.reserveCapacity(count + 1)
        var total = 0
        for len in lengths {
            guard len >= 0, len <= end - p0 - total else {
                throw ColumnarError.corrupt("DELTA_LENGTH_BYTE_ARRAY length \(len) overruns the page")
            }
            total += Int(len)
            offsets.append(total)
        }
        return (StringColumn(unchecked: offsets, bytes: Array(data[p0..<(p0 + total)])), p0 + total)
    }

    /// DELTA_BYTE_ARRAY: prefix lengths shared with the previous value, then
    /// suffixes as DELTA_LENGTH_BYTE_ARRAY.
    static func deltaByteArray(_ data: [UInt8], _ start: Int, _ end: Int, count: Int) throws -> (StringColumn, end: Int) {
        let (prefixes, p0) = try deltaBinaryPacked(data, start, end, count: count)
        let (suffixes, p1) = try deltaLengthByteArray(data, p0, end, count: count)
        var out = StringColumn()
        out.reserveCapacity(values: count, bytes: suffixes.bytes.count)
        var previous = 0..<0
        var bytes = [UInt8]()
        var offsets = [0]
        for i in 0..<count {
            let pre = prefixes[i]
            guard pre >= 0, Int(pre) <= previous.count else {
                throw ColumnarError.corrupt("DELTA_BYTE_ARRAY prefix \(pre) longer than the previous value")
            }
            let startOfValue = bytes.count
            bytes.append(contentsOf: bytes[previous.lowerBound..<(previous.lowerBound + Int(pre))])
            bytes.append(contentsOf: suffixes.bytes(at: i))
            offsets.append(bytes.count)
            previous = startOfValue..<bytes.count
        }
        out = StringColumn(unchecked: offsets, bytes: bytes)
        return (out, p1)
    }
}
