/// How one leaf column of a file maps to a ColumnType, and what conversion
/// its stored values need.
struct ColumnPlan {
    enum Conversion {
        case none
        case millisToMicros
        case float
        case fixedDecimal(width: Int)
        /// Values wider than any ColumnType (`ParquetSourceReader` only):
        /// each decoded as a 16-byte little-endian Int128 into a bytes column.
        case wide(WideKind)
    }

    /// What a wide column's Int128 values mean.
    enum WideKind: Equatable {
        /// UINT_32 / UINT_64: the stored bits read as unsigned.
        case unsigned
        /// A decimal's unscaled value (any physical type, BYTE_ARRAY included).
        case decimal
        /// Nanoseconds since the epoch: INT64 TIMESTAMP(NANOS) or INT96.
        case nanos
        /// INT64 TIMESTAMP(MILLIS), as nanoseconds since the epoch (every
        /// value fits; one that overflows microseconds is then the
        /// caller's to refuse, row by row).
        case millis
    }

    let name: String
    let type: ColumnType
    let nullable: Bool
    let physical: PhysicalType
    let conversion: Conversion

    /// A plan for a column read as wide values (see `Conversion.wide`).
    init(wide e: SchemaElement, physical: PhysicalType, kind: WideKind) {
        name = e.name
        type = .string
        nullable = e.repetition != 0
        self.physical = physical
        conversion = .wide(kind)
    }

    init(_ e: SchemaElement) throws {
        name = e.name
        guard let physical = e.type else {
            throw ColumnarError.unsupported("column '\(e.name)' is a group (nested data)")
        }
        self.physical = physical
        nullable = try Self.nullable(e)
        (type, conversion) = try Annotation(e, physical).mapping()
    }

    /// REQUIRED is not nullable, OPTIONAL (or unsaid) is; REPEATED is refused.
    private static func nullable(_ e: SchemaElement) throws -> Bool {
        switch e.repetition {
        case 2: throw ColumnarError.unsupported("column '\(e.name)' is REPEATED (lists)")
        case 0: return false
        default: return true
        }
    }

    /// A leaf's physical type with what annotates it (the converted type, the
    /// logical type, or neither), read into a column type and a conversion.
    private struct Annotation {
        let e: SchemaElement
        let physical: PhysicalType
        let converted: Int32?
        let logical: LogicalType?
        let isDecimal: Bool

        /// Every ConvertedType of parquet.thrift by its name (messages never show a bare number for one).
        static let convertedNames: [Int32: String] = [
            0: "UTF8", 1: "MAP", 2: "MAP_KEY_VALUE", 3: "LIST", 4: "ENUM", 5: "DECIMAL", 6: "DATE",
            7: "TIME_MILLIS", 8: "TIME_MICROS", 9: "TIMESTAMP_MILLIS", 10: "TIMESTAMP_MICROS",
            11: "UINT_8", 12: "UINT_16", 13: "UINT_32", 14: "UINT_64",
            15: "INT_8", 16: "INT_16", 17: "INT_32", 18: "INT_64", 19: "JSON", 20: "BSON", 21: "INTERVAL",
        ]

        init(_ e: SchemaElement, _ physical: PhysicalType) {
            self.e = e
            self.physical = physical
            converted = e.convertedType
            logical = e.logicalType
            var isDecimal = converted == ConvertedType.decimal
            if case .decimal = logical { isDecimal = true }
            self.isDecimal = isDecimal
        }

        /// The annotation as the error messages name it.
        var text: String {
            logical.map(\.description) ?? converted.map { Self.convertedNames[$0] ?? "converted type #\($0)" } ?? "none"
        }

        var unsupported: ColumnarError {
            ColumnarError.unsupported("column '\(e.name)' is \(physical.name) annotated \(text)")
        }

        func mapping() throws -> (ColumnType, Conversion) {
            switch physical {
            case .boolean: return (.bool, .none)
            case .int32: return (try int32Type(), .none)
            case .int64: return try int64Mapping()
            case .double: return (.double, .none)
            case .float: return (.double, .float)
            case .byteArray: return (try byteArrayType(), .none)
            case .fixedLenByteArray: return try fixedMapping()
            case .int96:
                throw ColumnarError.unsupported("column '\(e.name)' is INT96 (legacy timestamps); write timestamps as INT64 microseconds")
            }
        }

        /// Precision and scale from the logical type, else from the element.
        func decimal() throws -> ColumnType {
            var p = e.precision.map(Int.init) ?? 0
            var s = e.scale.map(Int.init) ?? 0
            if case .decimal(let ls, let lp) = logical {
                p = Int(lp)
                s = Int(ls)
            }
            guard (1...18).contains(p), (0...p).contains(s) else {
                throw ColumnarError.unsupported("column '\(e.name)' is decimal(\(p),\(s)); precision above 18 is not supported")
            }
            return .decimal(precision: p, scale: s)
        }

        func int32Type() throws -> ColumnType {
            if isDecimal { return try decimal() }
            switch logical {
            case .date?: return .date
            case .integer(let bits, let signed)?:
                guard signed || bits < 32 else { throw unsupported }
                return .int32
            case nil:
                switch converted {
                case nil, ConvertedType.int8?, ConvertedType.int16?, ConvertedType.int32?, 11?, 12?: return .int32
                case ConvertedType.date?: return .date
                default: throw unsupported
                }
            default: throw unsupported
            }
        }

        func int64Mapping() throws -> (ColumnType, Conversion) {
            if isDecimal { return (try decimal(), .none) }
            switch logical {
            case .timestamp(_, let unit)?:
                switch unit {
                case 1: return (.timestamp, .millisToMicros)
                case 2: return (.timestamp, .none)
                default:
                    throw ColumnarError.unsupported("column '\(e.name)' is a timestamp in nanoseconds; only milli- and microseconds are read")
                }
            case .integer(let bits, let signed)?:
                guard signed, bits == 64 else { throw unsupported }
                return (.int64, .none)
            case nil:
                switch converted {
                case nil, ConvertedType.int64?: return (.int64, .none)
                case ConvertedType.timestampMicros?: return (.timestamp, .none)
                case ConvertedType.timestampMillis?: return (.timestamp, .millisToMicros)
                default: throw unsupported
                }
            default: throw unsupported
            }
        }

        func byteArrayType() throws -> ColumnType {
            if isDecimal { throw ColumnarError.unsupported("column '\(e.name)' is a DECIMAL stored as BYTE_ARRAY") }
            switch logical {
            case nil, .string?, .json?, .enumeration?:
                switch converted {
                case nil, ConvertedType.utf8?, 4?, 19?: return .string
                default: throw unsupported
                }
            default: throw unsupported
            }
        }

        /// Only decimals of 1 to 16 bytes.
        func fixedMapping() throws -> (ColumnType, Conversion) {
            let width = Int(e.typeLength ?? 0)
            guard isDecimal, (1...16).contains(width) else {
                throw ColumnarError.unsupported("column '\(e.name)' is FIXED_LEN_BYTE_ARRAY(\(width)) annotated \(text); only decimals are read")
            }
            return (try decimal(), .fixedDecimal(width: width))
        }
    }

    /// Decodes one statistics value from its PLAIN bytes.
    func scalar(_ b: [UInt8]) -> Scalar? {
        func le(_ n: Int) -> UInt64? {
            guard b.count == n else { return nil }
            var v: UInt64 = 0
            for i in 0..<n { v |= UInt64(b[i]) << UInt64(8 * i) }
            return v
        }
        switch physical {
        case .boolean: return b.count == 1 ? .bool(b[0] != 0) : nil
        case .int32: return le(4).map { .int(Int64(Int32(truncatingIfNeeded: $0))) }
        case .int64:
            guard let v = le(8).map({ Int64(bitPattern: $0) }) else { return nil }
            if case .millisToMicros = conversion {
                let (m, o) = v.multipliedReportingOverflow(by: 1000)
                return o ? nil : .int(m)
            }
            return .int(v)
        case .float: return le(4).map { .double(Double(Float(bitPattern: UInt32($0)))) }
        case .double: return le(8).map { .double(Double(bitPattern: $0)) }
        case .byteArray: return .bytes(b)
        case .fixedLenByteArray:
            guard case .fixedDecimal(let w) = conversion, b.count == w else { return nil }
            return (try? ColumnPlan.decimalFromBigEndian(b[...])).map { .int($0) }
        case .int96: return nil
        }
    }

    /// A big-endian two's-complement integer of up to 16 bytes as Int64.
    static func decimalFromBigEndian(_ b: ArraySlice<UInt8>) throws -> Int64 {
        guard let first = b.first else { return 0 }
        let negative = first & 0x80 != 0
        var v: UInt64 = negative ? ~0 : 0
        let extra = b.count - 8
        var i = b.startIndex
        if extra > 0 {
            for _ in 0..<extra {
                guard b[i] == (negative ? 0xFF : 0) else {
                    throw ColumnarError.unsupported("decimal value wider than 64 bits")
                }
                i += 1
            }
            // The sign of the remaining 8 bytes must agree.
            guard (b[i] & 0x80 != 0) == negative else {
                throw ColumnarError.unsupported("decimal value wider than 64 bits")
            }
        }
        while i < b.endIndex {
            v = (v << 8) | UInt64(b[i])
            i += 1
        }
        return Int64(bitPattern: v)
    }
}
