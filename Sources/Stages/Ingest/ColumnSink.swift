import Columnar

/// Why one field did not fit its column.
enum FieldFailure {
    case notType
    case decimalOverflow
    case decimalScale
    case invalidUTF8
    case nullInRequired
}

/// The typed buffer of one output column for the batch being parsed. Field
/// bytes are converted straight into it; a row that fails in a later column
/// is rolled back with `truncate`.
///
/// A plain struct of pointers, kept in one `UnsafeMutablePointer` array by
/// `ColumnSinks`: the per-field path then pays no reference counting, no
/// uniqueness check and no exclusivity check, which Swift arrays in class
/// properties cost on every append (a third of parse time when measured).
struct ColumnSink {
    enum Kind {
        case int64, int32, double, bool, string, date, timestamp
        case decimal(precision: Int, scale: Int)
    }

    let kind: Kind
    let nullable: Bool
    let capacity: Int
    /// `capacity` slots of 8 bytes (4 for int32 and date, 1 for bool).
    let values: UnsafeMutableRawPointer
    /// `capacity + 1` byte offsets for strings.
    let offsets: UnsafeMutablePointer<Int>
    /// Written for every row; looked at only when `hasNulls`.
    let validity: UnsafeMutablePointer<Bool>
    private(set) var bytes: UnsafeMutablePointer<UInt8>
    private(set) var bytesCapacity: Int
    private(set) var count = 0
    private(set) var hasNulls = false
    /// The arrays the last batch was copied into, refilled in place for the
    /// next (unshared again once the writer has copied the batch), so each
    /// batch does not allocate and fault in fresh memory.
    private var out = Outputs()

    struct Outputs {
        var int64: [Int64] = []
        var int32: [Int32] = []
        var double: [Double] = []
        var bool: [Bool] = []
        var offsets: [Int] = []
        var bytes: [UInt8] = []
        var validity: [Bool] = []
    }

    init(_ field: Field, capacity: Int) {
        switch field.type {
        case .int64: kind = .int64
        case .int32: kind = .int32
        case .double: kind = .double
        case .bool: kind = .bool
        case .string: kind = .string
        case .date: kind = .date
        case .timestamp: kind = .timestamp
        case .decimal(let p, let s): kind = .decimal(precision: p, scale: s)
        }
        nullable = field.nullable
        self.capacity = capacity
        values = .allocate(byteCount: capacity * 8, alignment: 8)
        offsets = .allocate(capacity: capacity + 1)
        offsets[0] = 0
        validity = .allocate(capacity: capacity)
        bytesCapacity = field.type == .string ? max(4096, capacity * 16) : 0
        bytes = .allocate(capacity: max(1, bytesCapacity))
    }

    func deallocate() {
        values.deallocate()
        offsets.deallocate()
        validity.deallocate()
        bytes.deallocate()
    }

    var isString: Bool {
        if case .string = kind { return true }
        return false
    }

    @inline(__always)
    private mutating func appended() {
        validity[count] = true
        count += 1
    }

    /// Appends a null, or fails when the column is not nullable.
    @inline(__always)
    mutating func appendNull() -> FieldFailure? {
        guard nullable else { return .nullInRequired }
        hasNulls = true
        switch kind {
        case .int64, .timestamp, .decimal, .double: values.storeBytes(of: 0, toByteOffset: count * 8, as: Int64.self)
        case .int32, .date: values.storeBytes(of: 0, toByteOffset: count * 4, as: Int32.self)
        case .bool: values.storeBytes(of: false, toByteOffset: count, as: Bool.self)
        case .string: offsets[count + 1] = offsets[count]
        }
        validity[count] = false
        count += 1
        return nil
    }

    /// Converts the value text `p[0..<n]` and appends it.
    @inline(__always)
    mutating func append(_ p: UnsafePointer<UInt8>, _ n: Int) -> FieldFailure? {
        switch kind {
        case .int64:
            guard let v = ValueParsers.int64(p, n) else { return .notType }
            values.storeBytes(of: v, toByteOffset: count * 8, as: Int64.self)
        case .decimal(let precision, let scale):
            switch ValueParsers.decimal(p, n, precision: precision, scale: scale) {
            case .value(let v): values.storeBytes(of: v, toByteOffset: count * 8, as: Int64.self)
            case .failure(.syntax): return .notType
            case .failure(.overflow): return .decimalOverflow
            case .failure(.tooManyFractionDigits): return .decimalScale
            }
        case .date:
            guard let v = ValueParsers.date(p, n) else { return .notType }
            values.storeBytes(of: v, toByteOffset: count * 4, as: Int32.self)
        case .string:
            guard ValueParsers.isValidUTF8(p, n) else { return .invalidUTF8 }
            let start = offsets[count]
            if start + n > bytesCapacity { grow(to: start + n) }
            (bytes + start).update(from: p, count: n)
            offsets[count + 1] = start + n
        case .int32:
            guard let v = ValueParsers.int64(p, n), let x = Int32(exactly: v) else { return .notType }
            values.storeBytes(of: x, toByteOffset: count * 4, as: Int32.self)
        case .double:
            guard let v = ValueParsers.double(p, n) else { return .notType }
            values.storeBytes(of: v, toByteOffset: count * 8, as: Double.self)
        case .bool:
            guard let v = ValueParsers.bool(p, n) else { return .notType }
            values.storeBytes(of: v, toByteOffset: count, as: Bool.self)
        case .timestamp:
            guard let v = ValueParsers.timestamp(p, n) else { return .notType }
            values.storeBytes(of: v, toByteOffset: count * 8, as: Int64.self)
        }
        appended()
        return nil
    }

    private mutating func grow(to needed: Int) {
        var c = max(4096, bytesCapacity * 2)
        while c < needed { c *= 2 }
        let bigger = UnsafeMutablePointer<UInt8>.allocate(capacity: c)
        bigger.update(from: bytes, count: offsets[count])
        bytes.deallocate()
        bytes = bigger
        bytesCapacity = c
    }

    /// Drops rows past `rows` (the values of a row that failed in a later column).
    @inline(__always)
    mutating func truncate(to rows: Int) {
        if count > rows { count = rows }
    }

    /// The batch's values as a Column (copied out, so the buffers are
    /// reused; the arrays copied into are reused too, see `out`).
    mutating func column(_ type: ColumnType) throws -> Column {
        func refill<T>(_ array: inout [T], _ p: UnsafeMutablePointer<T>, _ n: Int) -> [T] {
            array.removeAll(keepingCapacity: true)
            array.append(contentsOf: UnsafeBufferPointer(start: p, count: n))
            return array
        }
        let v: ColumnValues
        switch kind {
        case .int64, .timestamp, .decimal:
            v = .int64(refill(&out.int64, values.assumingMemoryBound(to: Int64.self), count))
        case .double:
            v = .double(refill(&out.double, values.assumingMemoryBound(to: Double.self), count))
        case .int32, .date:
            v = .int32(refill(&out.int32, values.assumingMemoryBound(to: Int32.self), count))
        case .bool:
            v = .bool(refill(&out.bool, values.assumingMemoryBound(to: Bool.self), count))
        case .string:
            v = .bytes(try StringColumn(offsets: refill(&out.offsets, offsets, count + 1),
                                        bytes: refill(&out.bytes, bytes, offsets[count])))
        }
        let mask = hasNulls ? refill(&out.validity, validity, count) : nil
        return try Column(type, v, validity: mask)
    }

    mutating func reset() {
        count = 0
        hasNulls = false
    }
}
