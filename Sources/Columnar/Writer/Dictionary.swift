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
        let limit = min(n, maxDistinct)
        var table = IndexTable(expected: min(limit, 1 << 16))
        defer { table.deallocate() }
        let keys = UnsafeMutablePointer<UInt64>.allocate(capacity: limit)
        defer { keys.deallocate() }
        var distinct = [T]()
        var watch = CardinalityWatch(count: n, maxDistinct: maxDistinct)
        var indices = [UInt32](repeating: 0, count: n)
        let ok: Bool = values.withUnsafeBufferPointer { src in
            indices.withUnsafeMutableBufferPointer { out in
                var lastKey: UInt64 = 0
                var lastIndex: UInt32 = .max
                for i in 0..<n {
                    if i == watch.checkpoint && watch.hopeless(seen: i, distinct: distinct.count) { return false }
                    let k = key(src[i])
                    if k == lastKey && lastIndex != .max {
                        out[i] = lastIndex
                        continue
                    }
                    let hv = mix(k)
                    var h = Int(truncatingIfNeeded: hv) & table.mask
                    while true {
                        let slot = table.slots[h]
                        if slot == 0 {
                            let d = distinct.count
                            if d >= limit { return false }
                            distinct.append(src[i])
                            keys[d] = k
                            table.slots[h] = UInt32(d + 1)
                            out[i] = UInt32(d)
                            if (d + 1) * 2 > table.capacity {
                                table.grow { mix(keys[$0]) }
                            }
                            break
                        }
                        if keys[Int(slot) - 1] == k {
                            out[i] = slot - 1
                            break
                        }
                        h = (h + 1) & table.mask
                    }
                    lastKey = k
                    lastIndex = out[i]
                }
                return true
            }
        }
        return ok ? (indices, distinct) : nil
    }

    static func hashBytes(_ p: UnsafePointer<UInt8>, _ len: Int) -> UInt64 {
        let raw = UnsafeRawPointer(p)
        var h: UInt64 = 0x243F_6A88_85A3_08D3 ^ UInt64(len)
        var i = 0
        while i + 8 <= len {
            h = mix(h ^ raw.loadUnaligned(fromByteOffset: i, as: UInt64.self))
            i += 8
        }
        let rest = len - i
        var tail: UInt64
        if rest >= 4 {
            // Two overlapping 4-byte loads cover 4...7 bytes.
            tail = UInt64(raw.loadUnaligned(fromByteOffset: i, as: UInt32.self)) << 32
                | UInt64(raw.loadUnaligned(fromByteOffset: len - 4, as: UInt32.self))
        } else if rest > 0 {
            tail = UInt64(p[i]) << 16 | UInt64(p[i + rest / 2]) << 8 | UInt64(p[len - 1])
        } else {
            tail = 0
        }
        return mix(h ^ tail)
    }

    /// Strings: the dictionary lives in buffers sized once from the limits
    /// (at most `maxBytes` of values, each entry costing at least 4), so
    /// probing never goes through a growing Swift array.
    static func bytes(_ s: StringColumn, maxDistinct: Int, maxBytes: Int) -> DictionaryEncoding? {
        let n = s.count
        guard n > 0, maxDistinct > 0, maxBytes >= 4 else { return nil }
        let limit = min(n, maxDistinct, maxBytes / 4)
        var table = IndexTable(expected: min(limit, 1 << 16))
        defer { table.deallocate() }
        let hashes = UnsafeMutablePointer<UInt64>.allocate(capacity: limit)
        defer { hashes.deallocate() }
        let dictOffsets = UnsafeMutablePointer<Int>.allocate(capacity: limit + 1)
        defer { dictOffsets.deallocate() }
        let dictBytes = UnsafeMutablePointer<UInt8>.allocate(capacity: maxBytes)
        defer { dictBytes.deallocate() }
        dictOffsets[0] = 0
        var distinct = 0
        var used = 0
        var plainSize = 0
        var indices = [UInt32](repeating: 0, count: n)
        var watch = CardinalityWatch(count: n, maxDistinct: maxDistinct)
        let ok: Bool = s.bytes.withUnsafeBufferPointer { bytesBuf in
            s.offsets.withUnsafeBufferPointer { offs in
                indices.withUnsafeMutableBufferPointer { out in
                    // A non-null pointer even for an empty buffer.
                    let base = bytesBuf.baseAddress ?? UnsafePointer(bitPattern: 1)!
                    var previous = base
                    var previousLength = -1
                    for i in 0..<n {
                        if i == watch.checkpoint && watch.hopeless(seen: i, distinct: distinct) { return false }
                        let start = offs[i]
                        let len = offs[i + 1] - start
                        let p = base + start
                        // Repeats of the previous value skip hashing.
                        if len == previousLength && memcmpEqual(p, previous, len) {
                            out[i] = out[i - 1]
                            continue
                        }
                        previous = p
                        previousLength = len
                        let hv = hashBytes(p, len)
                        var h = Int(truncatingIfNeeded: hv) & table.mask
                        while true {
                            let slot = table.slots[h]
                            if slot == 0 {
                                plainSize += 4 + len
                                if distinct >= limit || plainSize > maxBytes { return false }
                                (dictBytes + used).update(from: p, count: len)
                                used += len
                                hashes[distinct] = hv
                                distinct += 1
                                dictOffsets[distinct] = used
                                table.slots[h] = UInt32(distinct)
                                out[i] = UInt32(distinct - 1)
                                if distinct * 2 > table.capacity {
                                    table.grow { hashes[$0] }
                                }
                                break
                            }
                            let j = Int(slot) - 1
                            if hashes[j] == hv && dictOffsets[j + 1] - dictOffsets[j] == len
                                && memcmpEqual(dictBytes + dictOffsets[j], p, len)
                            {
                                out[i] = UInt32(j)
                                break
                            }
                            h = (h + 1) & table.mask
                        }
                    }
                    return true
                }
            }
        }
        guard ok else { return nil }
        let offsets = Array(UnsafeBufferPointer(start: dictOffsets, count: distinct + 1))
        let bytes = Array(UnsafeBufferPointer(start: dictBytes, count: used))
        return DictionaryEncoding(indices: indices, values: .bytes(StringColumn(unchecked: offsets, bytes: bytes)))
    }
}

/// Open-addressing slots holding dictionary index + 1 (0 is empty), kept at
/// most half full.
struct IndexTable {
    private(set) var slots: UnsafeMutablePointer<UInt32>
    private(set) var capacity: Int
    private(set) var mask: Int

    init(expected: Int) {
        var c = 16
        while c < expected * 2 { c <<= 1 }
        capacity = c
        mask = c - 1
        slots = .allocate(capacity: c)
        slots.initialize(repeating: 0, count: c)
    }

    func deallocate() { slots.deallocate() }

    /// Doubles the table and re-inserts entries 0..<count/2·capacity, whose
    /// hashes `hash(i)` gives.
    mutating func grow(_ hash: (Int) -> UInt64) {
        var entries = 0
        for i in 0..<capacity where slots[i] != 0 { entries += 1 }
        slots.deallocate()
        capacity <<= 1
        mask = capacity - 1
        slots = .allocate(capacity: capacity)
        slots.initialize(repeating: 0, count: capacity)
        for j in 0..<entries {
            var h = Int(truncatingIfNeeded: hash(j)) & mask
            while slots[h] != 0 { h = (h + 1) & mask }
            slots[h] = UInt32(j + 1)
        }
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
