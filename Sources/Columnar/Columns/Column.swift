/// The contiguous values of one column. Slots under nulls hold a zero value
/// (0, 0.0, false, empty) so that operators can run over them blindly.
public enum ColumnValues: Sendable, Hashable {
    case int64([Int64])
    case int32([Int32])
    case double([Double])
    case bool([Bool])
    case bytes(StringColumn)

    public var count: Int {
        switch self {
        case .int64(let v): return v.count
        case .int32(let v): return v.count
        case .double(let v): return v.count
        case .bool(let v): return v.count
        case .bytes(let v): return v.count
        }
    }

    var storage: ColumnType.Storage {
        switch self {
        case .int64: return .int64
        case .int32: return .int32
        case .double: return .double
        case .bool: return .bool
        case .bytes: return .bytes
        }
    }
}

/// One column: typed contiguous values plus an optional validity mask.
public struct Column: Sendable {
    public let type: ColumnType
    public let values: ColumnValues
    /// `validity[i] == false` marks row `i` null. Nil when no row is null.
    public let validity: [Bool]?
    public let count: Int
    public let nullCount: Int

    /// Checks that the storage matches the type and the mask the values.
    public init(_ type: ColumnType, _ values: ColumnValues, validity: [Bool]? = nil) throws {
        guard values.storage == type.storage else {
            throw ColumnarError.invalidArgument("\(type) needs \(type.storage) storage, got \(values.storage)")
        }
        if let validity, validity.count != values.count {
            throw ColumnarError.invalidArgument(
                "validity has \(validity.count) entries for \(values.count) values")
        }
        self.init(unchecked: type, values, validity: validity)
    }

    init(unchecked type: ColumnType, _ values: ColumnValues, validity: [Bool]?) {
        self.type = type
        self.values = values
        self.count = values.count
        let nulls = validity.map { v in v.withUnsafeBufferPointer { b in b.reduce(0) { $0 + ($1 ? 0 : 1) } } } ?? 0
        self.nullCount = nulls
        self.validity = nulls == 0 ? nil : validity
    }

    /// Builds a column from optional scalars (nil is null). Convenient for
    /// tests and small tables; large data should fill the arrays directly.
    public init(_ type: ColumnType, scalars: [Scalar?]) throws {
        var builder = ColumnBuilder(type, capacity: scalars.count)
        for s in scalars { try builder.append(s) }
        self = builder.build()
    }

    public func isNull(_ row: Int) -> Bool {
        validity.map { !$0[row] } ?? false
    }

    /// Value `row` as a scalar, nil when null.
    public func scalar(at row: Int) -> Scalar? {
        if isNull(row) { return nil }
        switch values {
        case .int64(let v): return .int(v[row])
        case .int32(let v): return .int(Int64(v[row]))
        case .double(let v): return .double(v[row])
        case .bool(let v): return .bool(v[row])
        case .bytes(let v): return .bytes(Array(v.bytes(at: row)))
        }
    }

    public func slice(_ range: Range<Int>) -> Column {
        var b = ColumnBuilder(type, capacity: range.count)
        b.append(self, range: range)
        return b.build()
    }

    /// Same type, same nulls and the same value bits in every non-null row
    /// (so NaN equals NaN and -0.0 differs from +0.0).
    public func isIdentical(to other: Column) -> Bool {
        guard type == other.type, count == other.count else { return false }
        for i in 0..<count where isNull(i) != other.isNull(i) { return false }
        switch (values, other.values) {
        case (.int64(let a), .int64(let b)):
            return (0..<count).allSatisfy { isNull($0) || a[$0] == b[$0] }
        case (.int32(let a), .int32(let b)):
            return (0..<count).allSatisfy { isNull($0) || a[$0] == b[$0] }
        case (.double(let a), .double(let b)):
            return (0..<count).allSatisfy { isNull($0) || a[$0].bitPattern == b[$0].bitPattern }
        case (.bool(let a), .bool(let b)):
            return (0..<count).allSatisfy { isNull($0) || a[$0] == b[$0] }
        case (.bytes(let a), .bytes(let b)):
            return (0..<count).allSatisfy { isNull($0) || a.bytes(at: $0) == b.bytes(at: $0) }
        default:
            return false
        }
    }
}
