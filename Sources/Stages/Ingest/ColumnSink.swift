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
/// bytes are converted straight into it; a row that fails later is rolled
/// back with `truncate`. Buffers are reused from batch to batch.
final class ColumnSink {
    enum Kind {
        case int64, int32, double, bool, string, date, timestamp
        case decimal(precision: Int, scale: Int)
    }

    let field: Field
    let kind: Kind
    private(set) var i64: [Int64] = []
    private(set) var i32: [Int32] = []
    private(set) var f64: [Double] = []
    private(set) var bools: [Bool] = []
    private(set) var bytes: [UInt8] = []
    private(set) var offsets: [Int] = [0]
    /// Materialised at the first null of a batch.
    private(set) var validity: [Bool] = []
    private(set) var hasNulls = false
    private(set) var count = 0

    init(_ field: Field, capacity: Int) {
        self.field = field
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
        switch field.type.storage {
        case .int64: i64.reserveCapacity(capacity)
        case .int32: i32.reserveCapacity(capacity)
        case .double: f64.reserveCapacity(capacity)
        case .bool: bools.reserveCapacity(capacity)
        case .bytes: offsets.reserveCapacity(capacity + 1)
        }
    }

    var isString: Bool {
        if case .string = kind { return true }
        return false
    }

    /// Appends a null, or fails when the column is not nullable.
    @inline(__always)
    func appendNull() -> FieldFailure? {
        guard field.nullable else { return .nullInRequired }
        if !hasNulls {
            hasNulls = true
            validity = [Bool](repeating: true, count: count)
            validity.reserveCapacity(Swift.max(i64.capacity, i32.capacity, f64.capacity, bools.capacity, offsets.capacity))
        }
        validity.append(false)
        switch field.type.storage {
        case .int64: i64.append(0)
        case .int32: i32.append(0)
        case .double: f64.append(0)
        case .bool: bools.append(false)
        case .bytes: offsets.append(bytes.count)
        }
        count += 1
        return nil
    }

    @inline(__always)
    private func appended() {
        if hasNulls { validity.append(true) }
        count += 1
    }

    /// Converts the value text `p[0..<n]` and appends it.
    @inline(__always)
    func append(_ p: UnsafePointer<UInt8>, _ n: Int) -> FieldFailure? {
        switch kind {
        case .int64:
            guard let v = ValueParsers.int64(p, n) else { return .notType }
            i64.append(v)
        case .decimal(let precision, let scale):
            switch ValueParsers.decimal(p, n, precision: precision, scale: scale) {
            case .value(let v): i64.append(v)
            case .failure(.syntax): return .notType
            case .failure(.overflow): return .decimalOverflow
            case .failure(.tooManyFractionDigits): return .decimalScale
            }
        case .date:
            guard let v = ValueParsers.date(p, n) else { return .notType }
            i32.append(v)
        case .string:
            guard ValueParsers.isValidUTF8(p, n) else { return .invalidUTF8 }
            bytes.append(contentsOf: UnsafeBufferPointer(start: p, count: n))
            offsets.append(bytes.count)
        case .int32:
            guard let v = ValueParsers.int64(p, n), let x = Int32(exactly: v) else { return .notType }
            i32.append(x)
        case .double:
            guard let v = ValueParsers.double(p, n) else { return .notType }
            f64.append(v)
        case .bool:
            guard let v = ValueParsers.bool(p, n) else { return .notType }
            bools.append(v)
        case .timestamp:
            guard let v = ValueParsers.timestamp(p, n) else { return .notType }
            i64.append(v)
        }
        appended()
        return nil
    }

    /// Drops rows past `rows` (the values of a row that failed in a later column).
    func truncate(to rows: Int) {
        guard count > rows else { return }
        switch field.type.storage {
        case .int64: i64.removeLast(count - rows)
        case .int32: i32.removeLast(count - rows)
        case .double: f64.removeLast(count - rows)
        case .bool: bools.removeLast(count - rows)
        case .bytes:
            offsets.removeLast(count - rows)
            bytes.removeLast(bytes.count - offsets[rows])
        }
        if hasNulls { validity.removeLast(count - rows) }
        count = rows
    }

    /// The batch's values as a Column. Call `reset` once the column is released
    /// so the buffers are unshared and reused.
    func column() throws -> Column {
        let values: ColumnValues
        switch field.type.storage {
        case .int64: values = .int64(i64)
        case .int32: values = .int32(i32)
        case .double: values = .double(f64)
        case .bool: values = .bool(bools)
        case .bytes: values = .bytes(try StringColumn(offsets: offsets, bytes: bytes))
        }
        return try Column(field.type, values, validity: hasNulls ? validity : nil)
    }

    func reset() {
        i64.removeAll(keepingCapacity: true)
        i32.removeAll(keepingCapacity: true)
        f64.removeAll(keepingCapacity: true)
        bools.removeAll(keepingCapacity: true)
        bytes.removeAll(keepingCapacity: true)
        offsets.removeAll(keepingCapacity: true)
        offsets.append(0)
        validity.removeAll(keepingCapacity: true)
        hasNulls = false
        count = 0
    }
}
