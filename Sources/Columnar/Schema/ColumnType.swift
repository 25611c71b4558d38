/// The logical types a chunk column can have. Each maps to one Parquet
/// physical type and one in-memory storage (see `ColumnType.storage`).
public enum ColumnType: Sendable, Hashable, CustomStringConvertible {
    case int64
    case int32
    case double
    case bool
    /// UTF-8 text, stored as offsets + bytes.
    case string
    /// Days since 1970-01-01 (INT32 + DATE).
    case date
    /// Microseconds since 1970-01-01T00:00:00Z (INT64 + TIMESTAMP(UTC, MICROS)).
    case timestamp
    /// An exact decimal: the stored Int64 is the unscaled value,
    /// so 12.34 with scale 2 is 1234. Precision 1...18, scale 0...precision.
    case decimal(precision: Int, scale: Int)

    /// The in-memory representation of this type's values.
    public enum Storage: Sendable, Hashable {
        case int64, int32, double, bool, bytes
    }

    public var storage: Storage {
        switch self {
        case .int64, .timestamp, .decimal: return .int64
        case .int32, .date: return .int32
        case .double: return .double
        case .bool: return .bool
        case .string: return .bytes
        }
    }

    public var description: String {
        switch self {
        case .int64: return "int64"
        case .int32: return "int32"
        case .double: return "double"
        case .bool: return "bool"
        case .string: return "string"
        case .date: return "date"
        case .timestamp: return "timestamp"
        case .decimal(let p, let s): return "decimal(\(p),\(s))"
        }
    }

    func validate(field: String) throws {
        if case .decimal(let p, let s) = self {
            guard (1...18).contains(p), (0...p).contains(s) else {
                throw ColumnarError.invalidArgument(
                    "column '\(field)': decimal(\(p),\(s)) needs precision 1...18 and scale 0...precision")
            }
        }
    }
}

/// One column of a schema.
public struct Field: Sendable, Hashable {
    public var name: String
    public var type: ColumnType
    /// Whether the column may hold nulls (OPTIONAL rather than REQUIRED).
    public var nullable: Bool

    public init(_ name: String, _ type: ColumnType, nullable: Bool = true) {
        self.name = name
        self.type = type
        self.nullable = nullable
    }
}

/// The flat list of columns of a chunk.
public struct Schema: Sendable, Hashable {
    public var fields: [Field]

    public init(_ fields: [Field]) {
        self.fields = fields
    }

    public func index(of name: String) -> Int? {
        fields.firstIndex { $0.name == name }
    }

    func validate() throws {
        var seen = Set<String>()
        for field in fields {
            guard !field.name.isEmpty else {
                throw ColumnarError.invalidArgument("a column name is empty")
            }
            guard seen.insert(field.name).inserted else {
                throw ColumnarError.invalidArgument("column '\(field.name)' appears twice in the schema")
            }
            try field.type.validate(field: field.name)
        }
    }
}

/// One value outside a column: used for statistics, predicates and tests.
/// Integers of every width (and dates, timestamps, unscaled decimals) are `.int`.
public enum Scalar: Sendable, Hashable, CustomStringConvertible {
    case int(Int64)
    case double(Double)
    case bool(Bool)
    case bytes([UInt8])

    public static func string(_ s: String) -> Scalar { .bytes(Array(s.utf8)) }

    public var description: String {
        switch self {
        case .int(let v): return String(v)
        case .double(let v): return String(v)
        case .bool(let v): return String(v)
        case .bytes(let b): return String(decoding: b, as: UTF8.self)
        }
    }

    /// Orders two scalars of the same kind as Parquet's TYPE_ORDER does:
    /// signed integers, IEEE doubles, false < true, bytes unsigned
    /// lexicographically. Nil when the kinds differ or a double is NaN.
    public static func compare(_ a: Scalar, _ b: Scalar) -> Int? {
        switch (a, b) {
        case (.int(let x), .int(let y)): return x < y ? -1 : (x == y ? 0 : 1)
        case (.double(let x), .double(let y)):
            if x.isNaN || y.isNaN { return nil }
            return x < y ? -1 : (x == y ? 0 : 1)
        case (.bool(let x), .bool(let y)): return x == y ? 0 : (x ? 1 : -1)
        case (.bytes(let x), .bytes(let y)): return compareBytes(x, y)
        default: return nil
        }
    }
}

func compareBytes(_ x: [UInt8], _ y: [UInt8]) -> Int {
    let n = min(x.count, y.count)
    for i in 0..<n where x[i] != y[i] {
        return x[i] < y[i] ? -1 : 1
    }
    return x.count < y.count ? -1 : (x.count == y.count ? 0 : 1)
}
