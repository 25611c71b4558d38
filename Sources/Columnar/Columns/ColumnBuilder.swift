/// Accumulates values of one column; used by the writer to gather a row group
/// and by the reader to assemble pages. Only the array for the type's
/// storage is used.
public struct ColumnBuilder: Sendable {
    public private(set) var type: ColumnType
    private(set) var i64: [Int64] = []
    private(set) var i32: [Int32] = []
    private(set) var f64: [Double] = []
    private(set) var bools: [Bool] = []
    private(set) var strings = StringColumn()
    /// Materialised only once a null arrives.
    private(set) var validity: [Bool] = []
    private(set) var hasNulls = false
    public private(set) var count = 0

    public init(_ type: ColumnType, capacity: Int = 0) {
        self.type = type
        reserveCapacity(capacity)
    }

    public mutating func reserveCapacity(_ n: Int) {
        guard n > 0 else { return }
        switch type.storage {
        case .int64: i64.reserveCapacity(n)
        case .int32: i32.reserveCapacity(n)
        case .double: f64.reserveCapacity(n)
        case .bool: bools.reserveCapacity(n)
        case .bytes: strings.reserveCapacity(values: n, bytes: 0)
        }
    }

    /// Makes room for `n` values in all, string bytes sized by the average
    /// length of the values held so far (nothing for strings while empty),
    /// and the null mask only once a null has come: one allocation in place
    /// of the repeated doubling that appending would do.
    public mutating func reserveCapacity(toHold n: Int) {
        guard n > count else { return }
        switch type.storage {
        case .int64: i64.reserveCapacity(n)
        case .int32: i32.reserveCapacity(n)
        case .double: f64.reserveCapacity(n)
        case .bool: bools.reserveCapacity(n)
        case .bytes:
            let perValue = count > 0 ? (strings.bytes.count + count - 1) / count : 0
            let (bytes, overflow) = perValue.multipliedReportingOverflow(by: n)
            strings.reserveCapacity(values: n, bytes: overflow || bytes > Int.max / 2 ? Int.max / 2 : bytes + bytes / 32)
        }
        if hasNulls { validity.reserveCapacity(n) }
    }

    /// Bytes of capacity the buffers hold (what a spare builder keeps alive).
    var capacityBytes: Int {
        i64.capacity * 8 + i32.capacity * 4 + f64.capacity * 8 + bools.capacity + validity.capacity
            + strings.offsets.capacity * MemoryLayout<Int>.stride + strings.bytes.capacity
    }

    /// The emptied builder's buffers for a column of `type`, which must have
    /// the same storage.
    mutating func reuse(for type: ColumnType) {
        precondition(type.storage == self.type.storage, "column storage mismatch")
        removeAll()
        self.type = type
    }

    /// Empties the builder but keeps its buffers, so the next row group
    /// reuses the memory of the last (once the built column is released).
    public mutating func removeAll() {
        i64.removeAll(keepingCapacity: true)
        i32.removeAll(keepingCapacity: true)
        f64.removeAll(keepingCapacity: true)
        bools.removeAll(keepingCapacity: true)
        strings.removeAll(keepingCapacity: true)
        validity.removeAll(keepingCapacity: true)
        hasNulls = false
        count = 0
    }

    /// A rough size of the buffered values in bytes.
    public var estimatedBytes: Int {
        let v: Int
        switch type.storage {
        case .int64: v = i64.count * 8
        case .int32: v = i32.count * 4
        case .double: v = f64.count * 8
        case .bool: v = bools.count
        case .bytes: v = strings.bytes.count + strings.count * 4
        }
        return v + (hasNulls ? validity.count : 0)
    }

    private mutating func markNulls() {
        if !hasNulls {
            hasNulls = true
            validity = [Bool](repeating: true, count: count)
        }
    }

    public mutating func appendNull() {
        markNulls()
        validity.append(false)
        appendZeros(1)
        count += 1
    }

    private mutating func appendZeros(_ n: Int) {
        switch type.storage {
        case .int64: i64.append(contentsOf: repeatElement(0, count: n))
        case .int32: i32.append(contentsOf: repeatElement(0, count: n))
        case .double: f64.append(contentsOf: repeatElement(0, count: n))
        case .bool: bools.append(contentsOf: repeatElement(false, count: n))
        case .bytes: strings.appendEmpty(n)
        }
    }

    public mutating func append(_ scalar: Scalar?) throws {
        guard let scalar else { return appendNull() }
        switch (type.storage, scalar) {
        case (.int64, .int(let v)): i64.append(v)
        case (.int32, .int(let v)):
            guard let x = Int32(exactly: v) else {
                throw ColumnarError.invalidArgument("\(v) does not fit \(type)")
            }
            i32.append(x)
        case (.double, .double(let v)): f64.append(v)
        case (.bool, .bool(let v)): bools.append(v)
        case (.bytes, .bytes(let v)): strings.append(bytes: v)
        default:
            throw ColumnarError.invalidArgument("value \(scalar) does not fit \(type)")
        }
        if hasNulls { validity.append(true) }
        count += 1
    }

    /// Appends rows `range` of `column`, which must have this builder's type.
    public mutating func append(_ column: Column, range: Range<Int>) {
        precondition(column.values.storage == type.storage, "column storage mismatch")
        switch column.values {
        case .int64(let v): i64.append(contentsOf: v[range])
        case .int32(let v): i32.append(contentsOf: v[range])
        case .double(let v): f64.append(contentsOf: v[range])
        case .bool(let v): bools.append(contentsOf: v[range])
        case .bytes(let v): strings.append(contentsOf: v, range: range)
        }
        if let mask = column.validity {
            markNulls()
            validity.append(contentsOf: mask[range])
        } else if hasNulls {
            validity.append(contentsOf: repeatElement(true, count: range.count))
        }
        count += range.count
    }

    // Fast paths for the reader: append non-null values, spreading them over
    // definition levels (1 = present, 0 = null) when given.

    mutating func appendDense(int64 values: [Int64], levels: [UInt8]?) throws {
        try appendLevels(values.count, levels)
        ColumnBuilder.scatter(values, levels, zero: 0, into: &i64)
    }

    mutating func appendDense(int32 values: [Int32], levels: [UInt8]?) throws {
        try appendLevels(values.count, levels)
        ColumnBuilder.scatter(values, levels, zero: 0, into: &i32)
    }

    mutating func appendDense(double values: [Double], levels: [UInt8]?) throws {
        try appendLevels(values.count, levels)
        ColumnBuilder.scatter(values, levels, zero: 0, into: &f64)
    }

    mutating func appendDense(bool values: [Bool], levels: [UInt8]?) throws {
        try appendLevels(values.count, levels)
        ColumnBuilder.scatter(values, levels, zero: false, into: &bools)
    }

    mutating func appendDense(bytes values: StringColumn, levels: [UInt8]?) throws {
        try appendLevels(values.count, levels)
        guard let levels, values.count != levels.count else {
            strings.append(contentsOf: values, range: 0..<values.count)
            return
        }
        var k = 0
        for level in levels {
            if level != 0 {
                strings.append(bytes: values.bytes(at: k))
                k += 1
            } else {
                strings.appendEmpty(1)
            }
        }
    }

    /// Checks that `levels` has exactly `n` non-null entries and records
    /// validity and count for them.
    private mutating func appendLevels(_ n: Int, _ levels: [UInt8]?) throws {
        guard let levels else {
            if hasNulls { validity.append(contentsOf: repeatElement(true, count: n)) }
            count += n
            return
        }
        var present = 0
        levels.withUnsafeBufferPointer { b in
            for level in b where level != 0 { present += 1 }
        }
        guard present == n else {
            throw ColumnarError.corrupt("page has \(present) non-null levels but \(n) values")
        }
        if present == levels.count {
            if hasNulls { validity.append(contentsOf: repeatElement(true, count: n)) }
        } else {
            markNulls()
            validity.append(contentsOf: levels.lazy.map { $0 != 0 })
        }
        count += levels.count
    }

    private static func scatter<T>(_ values: [T], _ levels: [UInt8]?, zero: T, into out: inout [T]) {
        guard let levels, levels.count != values.count else {
            out.append(contentsOf: values)
            return
        }
        out.reserveCapacity(out.count + levels.count)
        var k = 0
        for level in levels {
            if level != 0 {
                out.append(values[k])
                k += 1
            } else {
                out.append(zero)
            }
        }
    }

    public func build() -> Column {
        let values: ColumnValues
        switch type.storage {
        case .int64: values = .int64(i64)
        case .int32: values = .int32(i32)
        case .double: values = .double(f64)
        case .bool: values = .bool(bools)
        case .bytes: values = .bytes(strings)
        }
        return Column(unchecked: type, values, validity: hasNulls ? validity : nil)
    }
}
