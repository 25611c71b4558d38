/// Builds a dictionary (distinct values in first-seen order) and the index of
/// each value, giving up as soon as it would exceed `maxDistinct`.
struct DictionaryEncoding {
    var indices: [UInt32]
    var values: ColumnValues
    var count: Int { values.count }

    static func build(_ dense: ColumnValues, maxDistinct: Int, maxBytes: Int) -> DictionaryEncoding? {
        switch dense {
        case .int64(let v):
            return fixed(v, maxDistinct: min(maxDistinct, maxBytes / 8)) { UInt64(bitPattern: $0) }.map {
                DictionaryEncoding(indices: $0.0, values: .int64($0.1))
            }
        case .int32(let v):
            return fixed(v, maxDistinct: min(maxDistinct, maxBytes / 4)) { UInt64(UInt32(bitPattern: $0)) }.map {
                DictionaryEncoding(indices: $0.0, values: .int32($0.1))
            }
        case .double(let v):
            return fixed(v, maxDistinct: min(maxDistinct, maxBytes / 8)) { $0.bitPattern }.map {
                DictionaryEncoding(indices: $0.0, values: .double($0.1))
            }
        case .bool:
            return nil
        case .bytes(let s):
            return bytes(s, maxDistinct: maxDistinct, maxBytes: maxBytes)
        }
    }

    @inline(__always)
    static func mix(_ x: UInt64) -> UInt64 {
        var z = x &* 0x9E37_79B9_7F4A_7C15
        z ^= z >> 32
        z &*= 0xD6E8_FEB8_6659_FD93
        z ^= z >> 32
        return z
    }

    /// Open addressing over the values' bit patterns.
    static func fixed<T>(_ values: [T], maxDistinct: Int, key: (T) -> UInt64) -> ([UInt32], [T])? {
        let n = values.count
        guard n > 0, maxDistinct > 0 else { return nil }
        var capacity = 16
        while capacity < min(n, maxDistinct) * 2 { capacity <<= 1 }
        var slots = [UInt32](repeating: 0, count: capacity)   // dictionary index + 1
        var keys = [UInt64]()
        var distinct = [T]()
        var indices = [UInt32](repeating: 0, count: n)
        var mask = capacity - 1
        var watch = CardinalityWatch(count: n, maxDistinct: maxDistinct)
        let ok: Bool = values.withUnsafeBufferPointer { src in
            indices.withUnsafeMutableBufferPointer { out in
                for i in 0..<n {
                    if i == watch.checkpoint && watch.hopeless(seen: i, distinct: distinct.count) { return false }
                    let k = key(src[i])
                    var h = Int(truncatingIfNeeded: mix(k)) & mask
                    while true {
                        let s = slots[h]
                        if s == 0 {
                            if distinct.count >= maxDistinct { return false }
                            distinct.append(src[i])
                            keys.append(k)
                            slots[h] = UInt32(distinct.count)
                            out[i] = UInt32(distinct.count - 1)
                            if distinct.count * 2 > capacity {
                                capacity <<= 1
                                mask = capacity - 1
                                slots = [UInt32](repeating: 0, count: capacity)
                                for (j, kk) in keys.enumerated() {
                                    var hh = Int(truncatingIfNeeded: mix(kk)) & mask
                                    while slots[hh] != 0 { hh = (hh + 1) & mask }
                                    slots[hh] = UInt32(j + 1)
                                }
                            }
                            break
                        }
                        if keys[Int(s) - 1] == k {
                            out[i] = s - 1
                            break
                        }
                        h = (h + 1) & mask
                    }
                }
                return true
            }
        }
        return ok ? (indices, distinct) : nil
    }

    static func hashBytes(_ p: UnsafePointer<UInt8>, _ len: Int) -> UInt64 {
        var h: UInt64 = 0x243F_6A88_85A3_08D3 ^ UInt64(len)
        var i = 0
        let raw = UnsafeRawPointer(p)
        while i + 8 <= len {
            h = mix(h ^ raw.loadUnaligned(fromByteOffset: i, as: UInt64.self))
            i += 8
        }
        var tail: UInt64 = 0
        var shift: UInt64 = 0
        while i < len {
            tail |= UInt64(p[i]) << shift
            shift += 8
            i += 1
        }
        return mix(h ^ tail)
    }

    static func bytes(_ s: StringColumn, maxDistinct: Int, maxBytes: Int) -> DictionaryEncoding? {
        let n = s.count
        guard n > 0, maxDistinct > 0 else { return nil }
        var capacity = 16
        while capacity < min(n, maxDistinct) * 2 { capacity <<= 1 }
        var slots = [UInt32](repeating: 0, count: capacity)
        var hashes = [UInt64]()
        var dictOffsets = [0]
        var dictBytes = [UInt8]()
        var plainSize = 0
        var indices = [UInt32](repeating: 0, count: n)
        var mask = capacity - 1
        var watch = CardinalityWatch(count: n, maxDistinct: maxDistinct)
        let ok: Bool = s.bytes.withUnsafeBufferPointer { bytesBuf in
            s.offsets.withUnsafeBufferPointer { offs in
                indices.withUnsafeMutableBufferPointer { out in
                    // A non-null pointer even for an empty buffer.
                    let base = bytesBuf.baseAddress ?? UnsafePointer(bitPattern: 1)!
                    for i in 0..<n {
                        if i == watch.checkpoint && watch.hopeless(seen: i, distinct: hashes.count) { return false }
                        let start = offs[i]
                        let len = offs[i + 1] - start
                        let p = base + start
                        let hv = hashBytes(p, len)
                        var h = Int(truncatingIfNeeded: hv) & mask
                        while true {
                            let slot = slots[h]
                            if slot == 0 {
                                let d = dictOffsets.count - 1
                                plainSize += 4 + len
                                if d >= maxDistinct || plainSize > maxBytes { return false }
                                dictBytes.append(contentsOf: UnsafeBufferPointer(start: p, count: len))
                                dictOffsets.append(dictBytes.count)
                                hashes.append(hv)
                                slots[h] = UInt32(d + 1)
                                out[i] = UInt32(d)
                                if (d + 1) * 2 > capacity {
                                    capacity <<= 1
                                    mask = capacity - 1
                                    slots = [UInt32](repeating: 0, count: capacity)
                                    for (j, hh0) in hashes.enumerated() {
                                        var hh = Int(truncatingIfNeeded: hh0) & mask
                                        while slots[hh] != 0 { hh = (hh + 1) & mask }
                                        slots[hh] = UInt32(j + 1)
                                    }
                                }
                                break
                            }
                            let j = Int(slot) - 1
                            if hashes[j] == hv {
                                let ds = dictOffsets[j]
                                let dl = dictOffsets[j + 1] - ds
                                if dl == len && dictBytes.withUnsafeBufferPointer({ db in
                                    len == 0 || memcmpEqual(db.baseAddress! + ds, p, len)
                                }) {
                                    out[i] = UInt32(j)
                                    break
                                }
                            }
                            h = (h + 1) & mask
                        }
                    }
                    return true
                }
            }
        }
        guard ok else { return nil }
        return DictionaryEncoding(
            indices: indices, values: .bytes(StringColumn(unchecked: dictOffsets, bytes: dictBytes)))
    }
}

@inline(__always)
func memcmpEqual(_ a: UnsafePointer<UInt8>, _ b: UnsafePointer<UInt8>, _ n: Int) -> Bool {
    var i = 0
    let ra = UnsafeRawPointer(a), rb = UnsafeRawPointer(b)
    while i + 8 <= n {
        if ra.loadUnaligned(fromByteOffset: i, as: UInt64.self) != rb.loadUnaligned(fromByteOffset: i, as: UInt64.self) {
            return false
        }
        i += 8
    }
    while i < n {
        if a[i] != b[i] { return false }
        i += 1
    }
    return true
}

/// Gives up on a dictionary early when the distinct count still grows almost
/// linearly and, projected to the whole chunk, would pass the limit (for
/// example unique keys), so high-cardinality columns cost little.
struct CardinalityWatch {
    let count: Int
    let maxDistinct: Int
    private(set) var checkpoint = 8192
    private var previous = 0

    init(count: Int, maxDistinct: Int) {
        self.count = count
        self.maxDistinct = maxDistinct
    }

    mutating func hopeless(seen: Int, distinct: Int) -> Bool {
        defer {
            previous = distinct
            checkpoint *= 2
        }
        let growing = previous > 0 && distinct * 5 > previous * 9
        let projected = Double(distinct) * Double(count) / Double(seen)
        return growing && projected > Double(maxDistinct)
    }
}
