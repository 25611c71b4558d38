import Columnar

/// One value of a group key or of a count_distinct set, comparable and
/// hashable by value: integers (and dates, timestamps, unscaled decimals of
/// one column) as Int64, doubles by canonical bits (-0.0 is +0.0, one NaN,
/// so NaN groups with NaN), strings as bytes. `null` is SQL's NULL group.
public enum GroupValue: Sendable, Hashable, Codable, Comparable {
    case null
    case int(Int64)
    case double(bits: UInt64)
    case bool(Bool)
    case bytes([UInt8])

    @inline(__always)
    init(_ column: Column, _ row: Int) {
        if let v = column.validity, !v[row] {
            self = .null
            return
        }
        switch column.values {
        case .int64(let v): self = .int(v[row])
        case .int32(let v): self = .int(Int64(v[row]))
        case .double(let v): self = .double(bits: KeyEncoding.canonicalDoubleBits(v[row]))
        case .bool(let v): self = .bool(v[row])
        case .bytes(let s): self = .bytes(Array(s.bytes(at: row)))
        }
    }

    /// Whether row `row` of `column` holds this value (no allocation).
    @inline(__always)
    func matches(_ column: Column, _ row: Int) -> Bool {
        let isNull = column.validity.map { !$0[row] } ?? false
        switch (self, column.values) {
        case (.null, _): return isNull
        case (_, _) where isNull: return false
        case (.int(let x), .int64(let v)): return v[row] == x
        case (.int(let x), .int32(let v)): return Int64(v[row]) == x
        case (.double(let b), .double(let v)): return KeyEncoding.canonicalDoubleBits(v[row]) == b
        case (.bool(let b), .bool(let v)): return v[row] == b
        case (.bytes(let b), .bytes(let s)):
            return s.length(at: row) == b.count && s.bytes(at: row).elementsEqual(b)
        default: return false
        }
    }

    var scalar: Scalar? {
        switch self {
        case .null: return nil
        case .int(let v): return .int(v)
        case .double(let b): return .double(Double(bitPattern: b))
        case .bool(let b): return .bool(b)
        case .bytes(let b): return .bytes(b)
        }
    }

    /// The order of `SortKeys`: null first, NaN after every number, bytes unsigned.
    public static func < (a: GroupValue, b: GroupValue) -> Bool { compare(a, b) < 0 }

    static func compare(_ a: GroupValue, _ b: GroupValue) -> Int {
        switch (a, b) {
        case (.null, .null): return 0
        case (.null, _): return -1
        case (_, .null): return 1
        case (.int(let x), .int(let y)): return SortKeys.three(x, y)
        case (.double(let p), .double(let q)):
            let x = Double(bitPattern: p), y = Double(bitPattern: q)
            if x.isNaN || y.isNaN { return x.isNaN == y.isNaN ? 0 : (x.isNaN ? 1 : -1) }
            return SortKeys.three(x, y)
        case (.bool(let x), .bool(let y)): return x == y ? 0 : (x ? 1 : -1)
        case (.bytes(let x), .bytes(let y)):
            for (p, q) in zip(x, y) where p != q { return p < q ? -1 : 1 }
            return SortKeys.three(x.count, y.count)
        default:
            // Different kinds never meet in one column; order them by kind for totality.
            return SortKeys.three(a.kind, b.kind)
        }
    }

    private var kind: Int {
        switch self {
        case .null: return 0
        case .int: return 1
        case .double: return 2
        case .bool: return 3
        case .bytes: return 4
        }
    }
}

/// A `ColumnType` as text for JSON ("int64", "decimal(15,2)"): Columnar's
/// type is not Codable, and adding that retroactively here could clash.
struct CodableColumnType: Codable, Hashable, Sendable {
    let type: ColumnType

    init(_ type: ColumnType) { self.type = type }

    init(from decoder: Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let t = CodableColumnType.parse(text) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "unknown column type '\(text)'"))
        }
        type = t
    }

    func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(type.description)
    }

    static func parse(_ text: String) -> ColumnType? {
        switch text {
        case "int64": return .int64
        case "int32": return .int32
        case "double": return .double
        case "bool": return .bool
        case "string": return .string
        case "date": return .date
        case "timestamp": return .timestamp
        default:
            guard text.hasPrefix("decimal("), text.hasSuffix(")") else { return nil }
            let parts = text.dropFirst(8).dropLast().split(separator: ",")
            guard parts.count == 2, let p = Int(parts[0]), let s = Int(parts[1]) else { return nil }
            return .decimal(precision: p, scale: s)
        }
    }
}
