/// What one top-level column of a file written by another system holds, as
/// `ParquetSourceReader` reads it.
public enum SourceColumnKind: Sendable, Hashable, CustomStringConvertible {
    /// Read exactly as `ParquetReader` reads it: a `Column` of this type.
    case typed(ColumnType)
    /// UINT_32 or UINT_64 (INTEGER(32|64, unsigned)): values as Int128.
    case unsigned(bits: Int)
    /// A decimal that does not fit the Int64 storage of `ColumnType.decimal`
    /// (precision 19...38, or any precision stored as BYTE_ARRAY or
    /// FIXED_LEN_BYTE_ARRAY of up to 16 bytes, whose values may be wider
    /// than the precision says): the unscaled values as Int128.
    case wideDecimal(precision: Int, scale: Int)
    /// Nanoseconds since 1970-01-01T00:00:00Z as Int128: INT64
    /// TIMESTAMP(NANOS), TIMESTAMP(MILLIS) (so that a millisecond value
    /// beyond the microsecond range is one value the caller refuses, not
    /// a failed column) and Spark's INT96 timestamps.
    case timestampNanos

    public var description: String {
        switch self {
        case .typed(let t): return t.description
        case .unsigned(let bits): return "uint\(bits)"
        case .wideDecimal(let p, let s): return "decimal(\(p),\(s))"
        case .timestampNanos: return "timestamp(ns)"
        }
    }
}

/// One top-level column of a source file.
public struct SourceField: Sendable, Hashable {
    public let name: String
    public let nullable: Bool
    /// How the column is read; nil when it cannot be (see `unsupported`).
    public let kind: SourceColumnKind?
    /// The feature that makes the column unreadable (nested data, TIME,
    /// UUID, INTERVAL, ...), when `kind` is nil.
    public let unsupported: String?
    /// The physical type with its annotation, as messages show it:
    /// `INT64 annotated TIMESTAMP(NANOS, utc: true)`, `INT96`.
    public let fileType: String
    /// A FLOAT column: its values are read as doubles (exactly), but
    /// their shortest decimal text is the float's (0.1, not
    /// 0.10000000149011612).
    public var isFloat: Bool = false
}

/// The values of one column of one row group of a source file.
public enum SourceColumn: Sendable {
    /// A column of one of our types.
    case typed(Column)
    /// Wide values (`SourceColumnKind.unsigned`, `.wideDecimal`,
    /// `.timestampNanos`); `validity[i] == false` marks a null (its slot
    /// holds 0). Nil validity: no null.
    case wide([Int128], validity: [Bool]?)

    public var count: Int {
        switch self {
        case .typed(let c): return c.count
        case .wide(let v, _): return v.count
        }
    }

    public func isNull(_ row: Int) -> Bool {
        switch self {
        case .typed(let c): return c.isNull(row)
        case .wide(_, let validity): return validity.map { !$0[row] } ?? false
        }
    }
}

/// Reads Parquet files written by other systems (Spark, pyarrow, DuckDB, ...)
/// column by column, for ingest's `format: parquet` sources.
///
/// Unlike `ParquetReader`, opening never fails because of one column: each
/// top-level column gets a `SourceField` saying how it is read or which
/// feature makes it unreadable (nested groups, repeated fields, TIME, UUID,
/// INTERVAL, ...), so a caller can refuse exactly the columns it needs.
/// Besides everything `ParquetReader` reads, it reads the types that have no
/// `ColumnType` as 128-bit integers: UINT_32/UINT_64, decimals of up to 38
/// digits (INT32, INT64, FIXED_LEN_BYTE_ARRAY and BYTE_ARRAY), INT64
/// nanosecond timestamps and INT96 timestamps. Converting them to a column
/// type (and deciding what does not fit) is the caller's job.
///
/// Not thread-safe: use one reader per task.
public final class ParquetSourceReader {
    public let path: String
    /// The top-level columns in file order.
    public let fields: [SourceField]
    /// Rows per row group, in file order.
    public let rowGroupRows: [Int64]
    public let rowCount: Int64
    public let createdBy: String?
    /// The most bytes one column of one row group may decode to (see
    /// `read`); unlimited unless set.
    public var maxColumnBytes: Int = .max

    private let source: FileSource
    private let metadata: FileMetaData
    private let footerStart: Int64
    /// Per field: its leaf (column chunk) index and plan, nil when unsupported.
    private let plans: [(leaf: Int, plan: ColumnPlan, typeLength: Int)?]
    private var zstd: ZstdDecompressor?
    /// The ZSTD context, made when the first ZSTD page is read.
    private func decompressor() throws -> ZstdDecompressor {
        if let zstd { return zstd }
        let made = try ZstdDecompressor()
        zstd = made
        return made
    }

    /// Deepest schema nesting walked before the file is called corrupt.
    static let maxDepth = 64

    public init(path: String) throws {
        self.path = path
        let file = try FileSource(path: path)
        source = file
        let (meta, footerStart) = try withContext(path) { try ParquetReader.readFooter(file, size: file.size) }
        metadata = meta
        self.footerStart = footerStart
        createdBy = meta.createdBy
        let (fields, plans, leaves) = try withContext(path) { try Self.columns(meta.schema) }
        self.fields = fields
        self.plans = plans
        var total: Int64 = 0
        for (g, group) in meta.rowGroups.enumerated() {
            guard group.columns.count == leaves else {
                throw ColumnarError.corrupt("\(path): row group \(g) has \(group.columns.count) column chunks, the schema has \(leaves) leaves")
            }
            guard group.numRows >= 0 else { throw ColumnarError.corrupt("\(path): row group \(g) has a negative row count") }
            let (sum, overflow) = total.addingReportingOverflow(group.numRows)
            guard !overflow else {
                throw ColumnarError.corrupt("\(path): the row groups' row counts add up to more than \(Int64.max)")
            }
            total = sum
        }
        guard total == meta.numRows else {
            throw ColumnarError.corrupt("\(path): row groups hold \(total) rows, footer says \(meta.numRows)")
        }
        rowGroupRows = meta.rowGroups.map(\.numRows)
        rowCount = total
    }

    /// The top-level fields, their plans, and the number of leaves.
    private static func columns(_ schema: [SchemaElement]) throws
        -> ([SourceField], [(leaf: Int, plan: ColumnPlan, typeLength: Int)?], Int)
    {
        guard let root = schema.first else { throw ColumnarError.corrupt("footer has no schema") }
        var fields = [SourceField]()
        var plans = [(leaf: Int, plan: ColumnPlan, typeLength: Int)?]()
        var i = 1
        var leaf = 0
        for _ in 0..<max(0, Int(root.numChildren ?? 0)) {
            guard i < schema.count else { throw ColumnarError.corrupt("the schema's root names more children than follow") }
            let e = schema[i]
            let (next, leaves) = try subtree(schema, i, depth: 0)
            if (e.numChildren ?? 0) > 0 || e.type == nil {
                fields.append(SourceField(name: e.name, nullable: true, kind: nil,
                                          unsupported: "nested data (a group: struct, list or map)", fileType: "group"))
                plans.append(nil)
            } else {
                let (field, plan) = sourcePlan(e)
                fields.append(field)
                plans.append(plan.map { (leaf, $0, Int(e.typeLength ?? 0)) })
            }
            leaf += leaves
            i = next
        }
        guard i == schema.count else { throw ColumnarError.corrupt("\(schema.count - i) schema elements follow the root's children") }
        return (fields, plans, leaf)
    }

    /// The index after the subtree at `i` and its leaf count.
    private static func subtree(_ schema: [SchemaElement], _ i: Int, depth: Int) throws -> (Int, Int) {
        guard depth < maxDepth else { throw ColumnarError.corrupt("schema nested deeper than \(maxDepth) levels") }
        let children = Int(schema[i].numChildren ?? 0)
        guard children > 0 else { return (i + 1, schema[i].type == nil ? 0 : 1) }
        var next = i + 1
        var leaves = 0
        for _ in 0..<children {
            guard next < schema.count else { throw ColumnarError.corrupt("group '\(schema[i].name)' names more children than follow") }
            let (n, l) = try subtree(schema, next, depth: depth + 1)
            next = n
            leaves += l
        }
        return (next, leaves)
    }

    /// How one primitive top-level element is read.
    static func sourcePlan(_ e: SchemaElement) -> (SourceField, ColumnPlan?) {
        let physical = e.type!
        let fileType = describe(e, physical)
        func refused(_ feature: String) -> (SourceField, ColumnPlan?) {
            (SourceField(name: e.name, nullable: true, kind: nil, unsupported: feature, fileType: fileType), nil)
        }
        func wide(_ kind: SourceColumnKind, _ w: ColumnPlan.WideKind) -> (SourceField, ColumnPlan?) {
            let plan = ColumnPlan(wide: e, physical: physical, kind: w)
            return (SourceField(name: e.name, nullable: plan.nullable, kind: kind, unsupported: nil, fileType: fileType), plan)
        }
        if e.repetition == 2 { return refused("a REPEATED field (a list)") }
        var isDecimal = e.convertedType == ConvertedType.decimal
        var precision = Int(e.precision ?? 0), scale = Int(e.scale ?? 0)
        if case .decimal(let s, let p) = e.logicalType {
            isDecimal = true
            precision = Int(p)
            scale = Int(s)
        }
        // FIXED_LEN_BYTE_ARRAY decimals are read wide whatever their
        // precision: a value wider than 64 bits is then one bad row, not a
        // failed column.
        let wideFixed = physical == .fixedLenByteArray && (1...16).contains(Int(e.typeLength ?? 0))
        if isDecimal, precision > 18 || physical == .byteArray || wideFixed {
            guard (1...38).contains(precision), (0...precision).contains(scale) else {
                return refused("decimal(\(precision),\(scale)); precision above 38 is not supported")
            }
            switch physical {
            case .int32, .int64, .byteArray: break
            case .fixedLenByteArray:
                guard (1...16).contains(Int(e.typeLength ?? 0)) else {
                    return refused("a decimal in FIXED_LEN_BYTE_ARRAY(\(e.typeLength ?? 0)); 1 to 16 bytes are read")
                }
            default: return refused("a decimal stored as \(physical.name)")
            }
            return wide(.wideDecimal(precision: precision, scale: scale), .decimal)
        }
        if physical == .int96 { return wide(.timestampNanos, .nanos) }
        if physical == .int64, case .timestamp(_, 3) = e.logicalType { return wide(.timestampNanos, .nanos) }
        // Milliseconds as nanoseconds: one that overflows microseconds is
        // then a bad row (quarantined), not a failed column.
        if physical == .int64, case .timestamp(_, 1) = e.logicalType { return wide(.timestampNanos, .millis) }
        if physical == .int64, e.logicalType == nil, e.convertedType == 9 { return wide(.timestampNanos, .millis) }
        if physical == .int32 || physical == .int64 {
            var unsignedBits: Int?
            if case .integer(let bits, false) = e.logicalType, bits >= 32 { unsignedBits = Int(bits) }
            if e.logicalType == nil, e.convertedType == 13 { unsignedBits = 32 }
            if e.logicalType == nil, e.convertedType == 14 { unsignedBits = 64 }
            if let bits = unsignedBits {
                guard bits == (physical == .int32 ? 32 : 64) else {
                    return refused("an unsigned \(bits)-bit integer stored as \(physical.name)")
                }
                return wide(.unsigned(bits: bits), .unsigned)
            }
        }
        do {
            let plan = try ColumnPlan(e)
            return (SourceField(name: e.name, nullable: plan.nullable, kind: .typed(plan.type), unsupported: nil,
                                fileType: fileType, isFloat: physical == .float), plan)
        } catch let error as ColumnarError {
            if case .unsupported(let message) = error { return refused(message) }
            return refused("\(error)")
        } catch {
            return refused("\(error)")
        }
    }

    static let convertedNames: [Int32: String] = [
        0: "UTF8", 1: "MAP", 2: "MAP_KEY_VALUE", 3: "LIST", 4: "ENUM", 5: "DECIMAL", 6: "DATE", 7: "TIME_MILLIS",
        8: "TIME_MICROS", 9: "TIMESTAMP_MILLIS", 10: "TIMESTAMP_MICROS", 11: "UINT_8", 12: "UINT_16", 13: "UINT_32",
        14: "UINT_64", 15: "INT_8", 16: "INT_16", 17: "INT_32", 18: "INT_64", 19: "JSON", 20: "BSON", 21: "INTERVAL",
    ]

    static func describe(_ e: SchemaElement, _ physical: PhysicalType) -> String {
        var text = physical.name
        if physical == .fixedLenByteArray { text += "(\(e.typeLength ?? 0))" }
        if let l = e.logicalType {
            text += " annotated \(l)"
        } else if let c = e.convertedType {
            text += " annotated \(convertedNames[c] ?? "converted type #\(c)")"
            if c == ConvertedType.decimal { text += "(\(e.precision ?? 0),\(e.scale ?? 0))" }
        }
        return text
    }

    /// Index of the top-level column `name`; nil when there is none, or
    /// when two columns share the name (which one is meant cannot be told).
    public func fieldIndex(_ name: String) -> Int? {
        let matches = fields.indices.filter { fields[$0].name == name }
        return matches.count == 1 ? matches[0] : nil
    }

    /// Reads column `field` of row group `rowGroup`. Throws
    /// `ColumnarError.unsupported` naming the file, the column and the
    /// feature when the column cannot be read, or when it would decode to
    /// more than `maxColumnBytes` (checked before each page is expanded).
    public func read(field: Int, rowGroup: Int) throws -> SourceColumn {
        guard fields.indices.contains(field) else {
            throw ColumnarError.invalidArgument("\(path) has \(fields.count) columns, not \(field + 1)")
        }
        guard metadata.rowGroups.indices.contains(rowGroup) else {
            throw ColumnarError.invalidArgument("\(path) has \(metadata.rowGroups.count) row groups, not \(rowGroup + 1)")
        }
        let f = fields[field]
        guard let (leaf, plan, typeLength) = plans[field], let kind = f.kind else {
            throw ColumnarError.unsupported("\(path): column '\(f.name)' (\(f.fileType)) is \(f.unsupported ?? "not readable")")
        }
        let group = metadata.rowGroups[rowGroup]
        let meta = group.columns[leaf]
        let rows = Int(group.numRows)
        let column = try withContext("\(path): row group \(rowGroup), column '\(f.name)'") { () throws -> Column in
            try Self.checkChunk(meta, group, plan)
            if rows == 0 { return ColumnBuilder(plan.type).build() }
            let bytes = try ParquetReader.chunkBytes(
                source, meta, footerStart: footerStart,
                pads: ParquetReader.chunkSizesMayBeShort(createdBy: metadata.createdBy))
            let decoder = ChunkDecoder(plan: plan, meta: meta, decompressor: decompressor, typeLength: typeLength,
                                       maxBytes: maxColumnBytes)
            return try decoder.decode(bytes, rows: rows)
        }
        if case .typed = kind { return .typed(column) }
        return .wide(WideValues.unpack(column), validity: column.validity)
    }
}

extension ParquetSourceReader {
    /// What the footer alone says about one column chunk: its physical
    /// type, its value count, its codec.
    fileprivate static func checkChunk(_ meta: ColumnMetaData, _ group: RowGroupData, _ plan: ColumnPlan) throws {
        guard meta.type == plan.physical.rawValue else {
            throw ColumnarError.corrupt("physical type #\(meta.type), the schema says \(plan.physical.name)")
        }
        guard meta.numValues == group.numRows else {
            throw ColumnarError.corrupt("\(meta.numValues) values for \(group.numRows) rows")
        }
        guard Codec.readable.contains(meta.codec) || group.numRows == 0 else {
            throw ColumnarError.unsupported(
                "codec \(Codec.name(meta.codec)); rewrite the file with ZSTD, SNAPPY, GZIP or no compression")
        }
    }

    /// Checks, from the footer only, every row group's chunk of column
    /// `field` as `read` would before decoding it (physical type, value
    /// count, codec), so a planner can refuse a file whose shards would
    /// all fail. Throws what `read` throws.
    public func checkChunks(field: Int) throws {
        guard fields.indices.contains(field) else {
            throw ColumnarError.invalidArgument("\(path) has \(fields.count) columns, not \(field + 1)")
        }
        let f = fields[field]
        guard let (leaf, plan, _) = plans[field], f.kind != nil else {
            throw ColumnarError.unsupported("\(path): column '\(f.name)' (\(f.fileType)) is \(f.unsupported ?? "not readable")")
        }
        for (g, group) in metadata.rowGroups.enumerated() {
            try withContext("\(path): row group \(g), column '\(f.name)'") {
                try Self.checkChunk(group.columns[leaf], group, plan)
            }
        }
    }
}

/// Wide values travel through `ChunkDecoder` as a bytes column of 16-byte
/// little-endian Int128s, so that levels, dictionaries and pages are
/// handled by the same code as every other column.
enum WideValues {
    static func pack(_ values: StoredValues, _ kind: ColumnPlan.WideKind) throws -> StringColumn {
        var out = [UInt8]()
        out.reserveCapacity(values.count * 16)
        func put(_ v: Int128) {
            withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) }
        }
        switch (kind, values) {
        case (.unsigned, .int32(let v)): for x in v { put(Int128(UInt32(bitPattern: x))) }
        case (.unsigned, .int64(let v)): for x in v { put(Int128(UInt64(bitPattern: x))) }
        case (.decimal, .int32(let v)): for x in v { put(Int128(x)) }
        case (.decimal, .int64(let v)): for x in v { put(Int128(x)) }
        case (.decimal, .fixed(let bytes, let w)):
            var i = 0
            while i + w <= bytes.count {
                put(try bigEndian(bytes[i..<(i + w)]))
                i += w
            }
        case (.decimal, .bytes(let s)):
            for i in 0..<s.count { put(try bigEndian(s.bytes(at: i))) }
        case (.nanos, .int64(let v)): for x in v { put(Int128(x)) }
        case (.millis, .int64(let v)): for x in v { put(Int128(x) * 1_000_000) }
        case (.nanos, .fixed(let bytes, 12)):
            var i = 0
            while i + 12 <= bytes.count {
                put(int96Nanos(bytes, i))
                i += 12
            }
        default:
            throw ColumnarError.corrupt("stored values do not match the column's type")
        }
        let n = out.count / 16
        return StringColumn(unchecked: (0...n).map { $0 * 16 }, bytes: out)
    }

    static func unpack(_ column: Column) -> [Int128] {
        guard case .bytes(let s) = column.values else { return [] }
        var out = [Int128](repeating: 0, count: s.count)
        s.bytes.withUnsafeBytes { raw in
            for i in 0..<s.count where s.offsets[i + 1] - s.offsets[i] == 16 {
                out[i] = Int128(littleEndian: raw.loadUnaligned(fromByteOffset: s.offsets[i], as: Int128.self))
            }
        }
        return out
    }

    /// A big-endian two's-complement integer; longer than 16 bytes only
    /// when the extra leading bytes are sign extension.
    static func bigEndian(_ b: ArraySlice<UInt8>) throws -> Int128 {
        guard let first = b.first else { return 0 }
        let negative = first & 0x80 != 0
        var i = b.startIndex
        if b.count > 16 {
            let extra = b.count - 16
            for _ in 0..<extra {
                guard b[i] == (negative ? 0xFF : 0) else { throw ColumnarError.corrupt("decimal value wider than 128 bits") }
                i += 1
            }
            guard (b[i] & 0x80 != 0) == negative else { throw ColumnarError.corrupt("decimal value wider than 128 bits") }
        }
        var v: UInt128 = negative ? ~0 : 0
        while i < b.endIndex {
            v = (v << 8) | UInt128(b[i])
            i += 1
        }
        return Int128(bitPattern: v)
    }

    /// Julian day number of 1970-01-01.
    static let unixEpochJulianDay: Int128 = 2_440_588

    /// An INT96 timestamp (8 bytes little-endian nanoseconds of the day,
    /// then 4 bytes little-endian Julian day) as nanoseconds since the epoch.
    /// The day is unsigned, as Arrow (pyarrow) and DuckDB read it; Spark
    /// reads it signed, which differs only for days before 4713 BC.
    /// Nanoseconds of the day beyond the day (Spark writes such values:
    /// parquet-testing's int96_from_spark) are added as they are, as
    /// pyarrow does, not refused.
    static func int96Nanos(_ b: [UInt8], _ at: Int) -> Int128 {
        var nanos: UInt64 = 0
        for k in 0..<8 { nanos |= UInt64(b[at + k]) << UInt64(8 * k) }
        var day: UInt32 = 0
        for k in 0..<4 { day |= UInt32(b[at + 8 + k]) << UInt32(8 * k) }
        return (Int128(day) - unixEpochJulianDay) * 86_400_000_000_000 + Int128(nanos)
    }
}
