/// How one leaf column of a file maps to a ColumnType, and what conversion
/// its stored values need.
struct ColumnPlan {
    enum Conversion {
        case none
        case millisToMicros
        case float
        case fixedDecimal(width: Int)
    }

    let name: String
    let type: ColumnType
    let nullable: Bool
    let physical: PhysicalType
    let conversion: Conversion

    init(_ e: SchemaElement) throws {
        name = e.name
        guard let physical = e.type else {
            throw ColumnarError.unsupported("column '\(e.name)' is a group (nested data)")
        }
        self.physical = physical
        switch e.repetition {
        case 2: throw ColumnarError.unsupported("column '\(e.name)' is REPEATED (lists)")
        case 0: nullable = false
        default: nullable = true
        }
        let conv = e.convertedType
        let logical = e.logicalType
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
        var isDecimal = conv == ConvertedType.decimal
        if case .decimal = logical { isDecimal = true }
        let convertedNames: [Int32: String] = [
            7: "TIME_MILLIS", 8: "TIME_MICROS", 11: "UINT_8", 12: "UINT_16", 13: "UINT_32", 14: "UINT_64",
            20: "BSON", 21: "INTERVAL",
        ]
        let annotation = logical.map(\.description) ?? conv.map { convertedNames[$0] ?? "converted type #\($0)" } ?? "none"
        let unsupportedAnnotation = ColumnarError.unsupported(
            "column '\(e.name)' is \(physical.name) annotated \(annotation)")

        switch physical {
        case .boolean:
            type = .bool
            conversion = .none
        case .int32:
            conversion = .none
            if isDecimal {
                type = try decimal()
                return
            }
            switch logical {
            case .date?: type = .date
            case .integer(let bits, let signed)?:
                guard signed || bits < 32 else { throw unsupportedAnnotation }
                type = .int32
            case nil:
                switch conv {
                case nil, ConvertedType.int8?, ConvertedType.int16?, ConvertedType.int32?, 11?, 12?: type = .int32
                case ConvertedType.date?: type = .date
                default: throw unsupportedAnnotation
                }
            default: throw unsupportedAnnotation
            }
        case .int64:
            if isDecimal {
                type = try decimal()
                conversion = .none
                return
            }
            switch logical {
            case .timestamp(_, let unit)?:
                type = .timestamp
                switch unit {
                case 1: conversion = .millisToMicros
                case 2: conversion = .none
                default:
                    throw ColumnarError.unsupported("column '\(e.name)' is a timestamp in nanoseconds; only milli- and microseconds are read")
                }
            case .integer(let bits, let signed)?:
                guard signed, bits == 64 else { throw unsupportedAnnotation }
                type = .int64
                conversion = .none
            case nil:
                switch conv {
                case nil, ConvertedType.int64?: type = .int64; conversion = .none
                case ConvertedType.timestampMicros?: type = .timestamp; conversion = .none
                case ConvertedType.timestampMillis?: type = .timestamp; conversion = .millisToMicros
                default: throw unsupportedAnnotation
                }
            default: throw unsupportedAnnotation
            }
        case .double:
            type = .double
            conversion = .none
        case .float:
            type = .double
            conversion = .float
        case .byteArray:
            conversion = .none
            if isDecimal { throw ColumnarError.unsupported("column '\(e.name)' is a DECIMAL stored as BYTE_ARRAY") }
            switch logical {
            case nil, .string?, .json?, .enumeration?:
                switch conv {
                case nil, ConvertedType.utf8?, 4?, 19?: type = .string
                default: throw unsupportedAnnotation
                }
            default: throw unsupportedAnnotation
            }
        case .fixedLenByteArray:
            let width = Int(e.typeLength ?? 0)
            guard isDecimal, (1...16).contains(width) else {
                throw ColumnarError.unsupported("column '\(e.name)' is FIXED_LEN_BYTE_ARRAY(\(width)) annotated \(annotation); only decimals are read")
            }
            type = try decimal()
            conversion = .fixedDecimal(width: width)
        case .int96:
            throw ColumnarError.unsupported("column '\(e.name)' is INT96 (legacy timestamps); write timestamps as INT64 microseconds")
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
