/// Thrift compact protocol: just what Parquet metadata needs.
enum ThriftType: UInt8 {
    case stop = 0, boolTrue = 1, boolFalse = 2, i8 = 3, i16 = 4, i32 = 5, i64 = 6
    case double = 7, binary = 8, list = 9, set = 10, map = 11, structure = 12
}

/// Writes compact-protocol structs. Field ids must ascend inside a struct.
struct CompactWriter {
    var bytes: [UInt8] = []
    private var lastId: Int16 = 0
    private var stack: [Int16] = []

    init(capacity: Int = 256) {
        bytes.reserveCapacity(capacity)
    }

    mutating func varint(_ value: UInt64) {
        var v = value
        while v >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        bytes.append(UInt8(v))
    }

    mutating func zigzag(_ v: Int64) {
        varint(UInt64(bitPattern: (v << 1) ^ (v >> 63)))
    }

    private mutating func fieldHeader(_ id: Int16, _ type: ThriftType) {
        let delta = Int(id) - Int(lastId)
        if delta > 0 && delta <= 15 {
            bytes.append(UInt8(delta << 4) | type.rawValue)
        } else {
            bytes.append(type.rawValue)
            zigzag(Int64(id))
        }
        lastId = id
    }

    mutating func i32(_ id: Int16, _ v: Int32) {
        fieldHeader(id, .i32)
        zigzag(Int64(v))
    }

    mutating func i64(_ id: Int16, _ v: Int64) {
        fieldHeader(id, .i64)
        zigzag(v)
    }

    mutating func i16(_ id: Int16, _ v: Int16) {
        fieldHeader(id, .i16)
        zigzag(Int64(v))
    }

    mutating func bool(_ id: Int16, _ v: Bool) {
        fieldHeader(id, v ? .boolTrue : .boolFalse)
    }

    mutating func binary(_ id: Int16, _ v: [UInt8]) {
        fieldHeader(id, .binary)
        varint(UInt64(v.count))
        bytes.append(contentsOf: v)
    }

    mutating func string(_ id: Int16, _ v: String) {
        binary(id, Array(v.utf8))
    }

    /// Opens a struct-valued field; close it with `structEnd`.
    mutating func structBegin(_ id: Int16) {
        fieldHeader(id, .structure)
        stack.append(lastId)
        lastId = 0
    }

    mutating func structEnd() {
        bytes.append(0)
        lastId = stack.popLast() ?? 0
    }

    /// Opens a list-valued field. Elements follow: `listStructBegin`/`structEnd`
    /// for structs, `elementI32`, `elementBinary` for scalars.
    mutating func listBegin(_ id: Int16, _ elementType: ThriftType, count: Int) {
        fieldHeader(id, .list)
        if count <= 14 {
            bytes.append(UInt8(count << 4) | elementType.rawValue)
        } else {
            bytes.append(0xF0 | elementType.rawValue)
            varint(UInt64(count))
        }
    }

    mutating func listStructBegin() {
        stack.append(lastId)
        lastId = 0
    }

    mutating func elementI32(_ v: Int32) { zigzag(Int64(v)) }

    mutating func elementBinary(_ v: [UInt8]) {
        varint(UInt64(v.count))
        bytes.append(contentsOf: v)
    }

    /// Ends the outermost struct.
    mutating func stop() {
        bytes.append(0)
    }
}

/// Reads compact-protocol data from untrusted bytes: every read is bounds
/// checked and nesting is limited.
struct CompactReader {
    let data: [UInt8]
    private(set) var pos: Int
    let end: Int

    init(_ data: [UInt8], from start: Int = 0, end: Int? = nil) {
        self.data = data
        self.pos = start
        self.end = min(end ?? data.count, data.count)
    }

    var remaining: Int { end - pos }

    mutating func byte() throws -> UInt8 {
        guard pos < end else { throw ColumnarError.corrupt("Thrift data ends early at byte \(pos)") }
        defer { pos += 1 }
        return data[pos]
    }

    mutating func varint() throws -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            let b = try byte()
            if shift == 63 && b > 1 { throw ColumnarError.corrupt("Thrift varint overflows 64 bits") }
            result |= UInt64(b & 0x7F) << shift
            if b & 0x80 == 0 { return result }
            shift += 7
            guard shift <= 63 else { throw ColumnarError.corrupt("Thrift varint is too long") }
        }
    }

    mutating func zigzag() throws -> Int64 {
        let u = try varint()
        return Int64(bitPattern: (u >> 1) ^ (0 &- (u & 1)))
    }

    mutating func i32() throws -> Int32 {
        let v = try zigzag()
        guard let x = Int32(exactly: v) else { throw ColumnarError.corrupt("Thrift i32 out of range: \(v)") }
        return x
    }

    mutating func binary() throws -> [UInt8] {
        let n = try varint()
        guard n <= UInt64(remaining) else {
            throw ColumnarError.corrupt("Thrift binary of \(n) bytes overruns the data")
        }
        let start = pos
        pos += Int(n)
        return Array(data[start..<pos])
    }

    mutating func string() throws -> String {
        String(decoding: try binary(), as: UTF8.self)
    }

    mutating func double() throws -> Double {
        guard remaining >= 8 else { throw ColumnarError.corrupt("Thrift double ends early") }
        var bits: UInt64 = 0
        for i in 0..<8 { bits |= UInt64(data[pos + i]) << (8 * UInt64(i)) }
        pos += 8
        return Double(bitPattern: bits)
    }

    /// The next field of the current struct, or nil at its stop byte.
    mutating func field(_ lastId: inout Int16) throws -> (id: Int16, type: ThriftType)? {
        let b = try byte()
        if b == 0 { return nil }
        guard let type = ThriftType(rawValue: b & 0x0F) else {
            throw ColumnarError.corrupt("unknown Thrift type \(b & 0x0F)")
        }
        let delta = b >> 4
        if delta != 0 {
            lastId &+= Int16(delta)
        } else {
            let id = try zigzag()
            guard let x = Int16(exactly: id) else { throw ColumnarError.corrupt("Thrift field id \(id)") }
            lastId = x
        }
        return (lastId, type)
    }

    mutating func listHeader() throws -> (type: ThriftType, count: Int) {
        let b = try byte()
        guard let type = ThriftType(rawValue: b & 0x0F) else {
            throw ColumnarError.corrupt("unknown Thrift list element type \(b & 0x0F)")
        }
        var count = Int(b >> 4)
        if count == 15 {
            let n = try varint()
            // Every element takes at least one byte.
            guard n <= UInt64(remaining) else { throw ColumnarError.corrupt("Thrift list of \(n) overruns the data") }
            count = Int(n)
        }
        return (type, count)
    }

    /// Reads a bool field's value from its type nibble.
    func boolValue(_ type: ThriftType) throws -> Bool {
        switch type {
        case .boolTrue: return true
        case .boolFalse: return false
        default: throw ColumnarError.corrupt("expected a Thrift bool, found \(type)")
        }
    }

    mutating func expect(_ type: ThriftType, _ want: ThriftType, _ what: String) throws {
        guard type == want else {
            throw ColumnarError.corrupt("Thrift field \(what) has wire type \(type), expected \(want)")
        }
    }

    /// Skips a value of any type, so unknown fields never stop a reader.
    mutating func skip(_ type: ThriftType, depth: Int = 0) throws {
        guard depth < 64 else { throw ColumnarError.corrupt("Thrift nesting deeper than 64") }
        switch type {
        case .stop: throw ColumnarError.corrupt("unexpected Thrift stop")
        case .boolTrue, .boolFalse: return
        case .i8: _ = try byte()
        case .i16, .i32, .i64: _ = try varint()
        case .double:
            guard remaining >= 8 else { throw ColumnarError.corrupt("Thrift double ends early") }
            pos += 8
        case .binary: _ = try binary()
        case .list, .set:
            let (et, n) = try listHeader()
            for _ in 0..<n {
                if et == .boolTrue || et == .boolFalse { _ = try byte() } else { try skip(et, depth: depth + 1) }
            }
        case .map:
            let n = try varint()
            guard n <= UInt64(remaining) else { throw ColumnarError.corrupt("Thrift map overruns the data") }
            if n == 0 { return }
            let kv = try byte()
            guard let kt = ThriftType(rawValue: kv >> 4), let vt = ThriftType(rawValue: kv & 0x0F) else {
                throw ColumnarError.corrupt("unknown Thrift map types")
            }
            for _ in 0..<n {
                try skip(kt, depth: depth + 1)
                try skip(vt, depth: depth + 1)
            }
        case .structure:
            var last: Int16 = 0
            while let f = try field(&last) { try skip(f.type, depth: depth + 1) }
        }
    }
}
