/// Parquet enums (values from parquet.thrift) and the footer and page header
/// structures, as decoded from files. Only the fields this module uses are
/// kept; the rest are skipped.
enum PhysicalType: Int32, Sendable {
    case boolean = 0, int32 = 1, int64 = 2, int96 = 3, float = 4, double = 5
    case byteArray = 6, fixedLenByteArray = 7

    var name: String {
        switch self {
        case .boolean: return "BOOLEAN"
        case .int32: return "INT32"
        case .int64: return "INT64"
        case .int96: return "INT96"
        case .float: return "FLOAT"
        case .double: return "DOUBLE"
        case .byteArray: return "BYTE_ARRAY"
        case .fixedLenByteArray: return "FIXED_LEN_BYTE_ARRAY"
        }
    }
}

enum Encoding {
    static let plain: Int32 = 0
    static let plainDictionary: Int32 = 2
    static let rle: Int32 = 3
    static let bitPacked: Int32 = 4
    static let deltaBinaryPacked: Int32 = 5
    static let deltaLengthByteArray: Int32 = 6
    static let deltaByteArray: Int32 = 7
    static let rleDictionary: Int32 = 8
    static let byteStreamSplit: Int32 = 9

    static func name(_ e: Int32) -> String {
        switch e {
        case 0: return "PLAIN"
        case 2: return "PLAIN_DICTIONARY"
        case 3: return "RLE"
        case 4: return "BIT_PACKED"
        case 5: return "DELTA_BINARY_PACKED"
        case 6: return "DELTA_LENGTH_BYTE_ARRAY"
        case 7: return "DELTA_BYTE_ARRAY"
        case 8: return "RLE_DICTIONARY"
        case 9: return "BYTE_STREAM_SPLIT"
        default: return "encoding #\(e)"
        }
    }
}

enum Codec {
    static let uncompressed: Int32 = 0
    static let snappy: Int32 = 1
    static let gzip: Int32 = 2
    static let zstd: Int32 = 6

    /// What the reader decompresses; the rest (LZO, BROTLI, LZ4, LZ4_RAW) is refused.
    static let readable: Set<Int32> = [uncompressed, snappy, gzip, zstd]

    static func name(_ c: Int32) -> String {
        switch c {
        case 0: return "UNCOMPRESSED"
        case 1: return "SNAPPY"
        case 2: return "GZIP"
        case 3: return "LZO"
        case 4: return "BROTLI"
        case 5: return "LZ4"
        case 6: return "ZSTD"
        case 7: return "LZ4_RAW"
        default: return "codec #\(c)"
        }
    }
}

enum ConvertedType {
    static let utf8: Int32 = 0
    static let decimal: Int32 = 5
    static let date: Int32 = 6
    static let timestampMillis: Int32 = 9
    static let timestampMicros: Int32 = 10
    static let int8: Int32 = 15, int16: Int32 = 16, int32: Int32 = 17, int64: Int32 = 18
}

enum PageType {
    static let data: Int32 = 0
    static let index: Int32 = 1
    static let dictionary: Int32 = 2
    static let dataV2: Int32 = 3
}

enum LogicalType: Equatable {
    case string
    case decimal(scale: Int32, precision: Int32)
    case date
    /// unit: 1 millis, 2 micros, 3 nanos
    case timestamp(utc: Bool, unit: Int16)
    case integer(bits: Int8, signed: Bool)
    case json
    case enumeration
    case other(Int16)
}

extension LogicalType: CustomStringConvertible {
    /// The annotation's name as parquet.thrift spells it.
    var description: String {
        switch self {
        case .string: return "STRING"
        case .decimal(let s, let p): return "DECIMAL(\(p),\(s))"
        case .date: return "DATE"
        case .timestamp(let utc, let unit):
            return "TIMESTAMP(\(["", "MILLIS", "MICROS", "NANOS"][Int(max(0, min(3, unit)))]), utc: \(utc))"
        case .integer(let bits, let signed): return "INTEGER(\(bits), \(signed ? "signed" : "unsigned"))"
        case .json: return "JSON"
        case .enumeration: return "ENUM"
        case .other(let id):
            let names: [Int16: String] = [
                2: "MAP", 3: "LIST", 7: "TIME", 11: "NULL", 13: "BSON", 14: "UUID",
                15: "FLOAT16", 16: "VARIANT", 17: "GEOMETRY", 18: "GEOGRAPHY",
            ]
            return names[id] ?? "logical type #\(id)"
        }
    }
}

struct SchemaElement {
    var type: PhysicalType?
    var typeLength: Int32?
    var repetition: Int32?
    var name = ""
    var numChildren: Int32?
    var convertedType: Int32?
    var scale: Int32?
    var precision: Int32?
    var logicalType: LogicalType?
}

struct StatisticsData {
    var max: [UInt8]?
    var min: [UInt8]?
    var nullCount: Int64?
    var maxValue: [UInt8]?
    var minValue: [UInt8]?
}

struct ColumnMetaData {
    var type: Int32 = -1
    var encodings: [Int32] = []
    var path: [String] = []
    var codec: Int32 = 0
    var numValues: Int64 = 0
    var totalUncompressedSize: Int64 = 0
    var totalCompressedSize: Int64 = 0
    var dataPageOffset: Int64 = 0
    var dictionaryPageOffset: Int64?
    var statistics: StatisticsData?
}

struct RowGroupData {
    var columns: [ColumnMetaData] = []
    var totalByteSize: Int64 = 0
    var numRows: Int64 = 0
    var fileOffset: Int64?
    var totalCompressedSize: Int64?
}

struct FileMetaData {
    var version: Int32 = 0
    var schema: [SchemaElement] = []
    var numRows: Int64 = 0
    var rowGroups: [RowGroupData] = []
    var keyValue: [(String, String)] = []
    var createdBy: String?
    var typeOrder: [Bool]?
}

struct DataPageHeader {
    var numValues: Int32 = 0
    var encoding: Int32 = 0
    var definitionLevelEncoding: Int32 = 3
}

struct DataPageHeaderV2 {
    var numValues: Int32 = 0
    var numNulls: Int32 = 0
    var numRows: Int32 = 0
    var encoding: Int32 = 0
    var definitionLevelsByteLength: Int32 = 0
    var repetitionLevelsByteLength: Int32 = 0
    var isCompressed = true
}

struct DictionaryPageHeader {
    var numValues: Int32 = 0
    var encoding: Int32 = 0
}

struct PageHeader {
    var type: Int32 = -1
    var uncompressedSize: Int32 = 0
    var compressedSize: Int32 = 0
    var dataPage: DataPageHeader?
    var dictionaryPage: DictionaryPageHeader?
    var dataPageV2: DataPageHeaderV2?
}

// MARK: - Decoding

extension CompactReader {
    /// Reads a struct's fields, calling `body` for each; `body` returns false
    /// for a field it does not know, which is then skipped.
    mutating func readStruct(_ body: (inout CompactReader, Int16, ThriftType) throws -> Bool) throws {
        var last: Int16 = 0
        while let f = try field(&last) {
            if try !body(&self, f.id, f.type) { try skip(f.type) }
        }
    }

    mutating func readList(_ body: (inout CompactReader, ThriftType) throws -> Void) throws {
        let (et, n) = try listHeader()
        for _ in 0..<n { try body(&self, et) }
    }

    mutating func i32Field(_ t: ThriftType, _ what: String) throws -> Int32 {
        try expect(t, .i32, what)
        return try i32()
    }

    mutating func i64Field(_ t: ThriftType, _ what: String) throws -> Int64 {
        try expect(t, .i64, what)
        return try zigzag()
    }

    mutating func fileMetaData() throws -> FileMetaData {
        var m = FileMetaData()
        try readStruct { r, id, t in
            switch id {
            case 1: m.version = try r.i32Field(t, "FileMetaData.version")
            case 2:
                try r.expect(t, .list, "FileMetaData.schema")
                try r.readList { r, et in
                    try r.expect(et, .structure, "SchemaElement")
                    m.schema.append(try r.schemaElement())
                }
            case 3: m.numRows = try r.i64Field(t, "FileMetaData.num_rows")
            case 4:
                try r.expect(t, .list, "FileMetaData.row_groups")
                try r.readList { r, et in
                    try r.expect(et, .structure, "RowGroup")
                    m.rowGroups.append(try r.rowGroup())
                }
            case 5:
                try r.expect(t, .list, "FileMetaData.key_value_metadata")
                try r.readList { r, et in
                    try r.expect(et, .structure, "KeyValue")
                    var k = "", v = ""
                    try r.readStruct { r, id, t in
                        switch id {
                        case 1: try r.expect(t, .binary, "KeyValue.key"); k = try r.string()
                        case 2: try r.expect(t, .binary, "KeyValue.value"); v = try r.string()
                        default: return false
                        }
                        return true
                    }
                    m.keyValue.append((k, v))
                }
            case 6:
                try r.expect(t, .binary, "FileMetaData.created_by")
                m.createdBy = try r.string()
            case 7:
                try r.expect(t, .list, "FileMetaData.column_orders")
                var orders: [Bool] = []
                try r.readList { r, et in
                    try r.expect(et, .structure, "ColumnOrder")
                    var isTypeOrder = false
                    try r.readStruct { r, id, t in
                        if id == 1 { isTypeOrder = true }
                        return false
                    }
                    orders.append(isTypeOrder)
                }
                m.typeOrder = orders
            default: return false
            }
            return true
        }
        return m
    }

    mutating func schemaElement() throws -> SchemaElement {
        var e = SchemaElement()
        try readStruct { r, id, t in
            switch id {
            case 1:
                let raw = try r.i32Field(t, "SchemaElement.type")
                guard let p = PhysicalType(rawValue: raw) else {
                    throw ColumnarError.unsupported("physical type #\(raw)")
                }
                e.type = p
            case 2: e.typeLength = try r.i32Field(t, "SchemaElement.type_length")
            case 3: e.repetition = try r.i32Field(t, "SchemaElement.repetition_type")
            case 4: try r.expect(t, .binary, "SchemaElement.name"); e.name = try r.string()
            case 5: e.numChildren = try r.i32Field(t, "SchemaElement.num_children")
            case 6: e.convertedType = try r.i32Field(t, "SchemaElement.converted_type")
            case 7: e.scale = try r.i32Field(t, "SchemaElement.scale")
            case 8: e.precision = try r.i32Field(t, "SchemaElement.precision")
            case 10:
                try r.expect(t, .structure, "SchemaElement.logicalType")
                e.logicalType = try r.logicalType()
            default: return false
            }
            return true
        }
        return e
    }

    mutating func logicalType() throws -> LogicalType? {
        var result: LogicalType?
        try readStruct { r, id, t in
            guard t == .structure else { return false }
            switch id {
            case 1: result = .string; return false
            case 4: result = .enumeration; return false
            case 5:
                var scale: Int32 = 0, precision: Int32 = 0
                try r.readStruct { r, id, t in
                    switch id {
                    case 1: scale = try r.i32Field(t, "DecimalType.scale")
                    case 2: precision = try r.i32Field(t, "DecimalType.precision")
                    default: return false
                    }
                    return true
                }
                result = .decimal(scale: scale, precision: precision)
            case 6: result = .date; return false
            case 8:
                var utc = false
                var unit: Int16 = 0
                try r.readStruct { r, id, t in
                    switch id {
                    case 1: utc = try r.boolValue(t)
                    case 2:
                        try r.expect(t, .structure, "TimestampType.unit")
                        try r.readStruct { _, id, _ in
                            unit = id
                            return false
                        }
                    default: return false
                    }
                    return true
                }
                result = .timestamp(utc: utc, unit: unit)
            case 10:
                var bits: Int8 = 0
                var signed = true
                try r.readStruct { r, id, t in
                    switch id {
                    case 1:
                        try r.expect(t, .i8, "IntType.bitWidth")
                        bits = Int8(bitPattern: try r.byte())
                    case 2: signed = try r.boolValue(t)
                    default: return false
                    }
                    return true
                }
                result = .integer(bits: bits, signed: signed)
            case 12: result = .json; return false
            default: result = .other(id); return false
            }
            return true
        }
        return result
    }

    mutating func rowGroup() throws -> RowGroupData {
        var g = RowGroupData()
        try readStruct { r, id, t in
            switch id {
            case 1:
                try r.expect(t, .list, "RowGroup.columns")
                try r.readList { r, et in
                    try r.expect(et, .structure, "ColumnChunk")
                    var meta: ColumnMetaData?
                    try r.readStruct { r, id, t in
                        switch id {
                        case 1: throw ColumnarError.unsupported("column chunks in external files (file_path)")
                        case 3:
                            try r.expect(t, .structure, "ColumnChunk.meta_data")
                            meta = try r.columnMetaData()
                        default: return false
                        }
                        return true
                    }
                    guard let meta else { throw ColumnarError.corrupt("a column chunk has no meta_data") }
                    g.columns.append(meta)
                }
            case 2: g.totalByteSize = try r.i64Field(t, "RowGroup.total_byte_size")
            case 3: g.numRows = try r.i64Field(t, "RowGroup.num_rows")
            case 5: g.fileOffset = try r.i64Field(t, "RowGroup.file_offset")
            case 6: g.totalCompressedSize = try r.i64Field(t, "RowGroup.total_compressed_size")
            default: return false
            }
            return true
        }
        return g
    }

    mutating func columnMetaData() throws -> ColumnMetaData {
        var c = ColumnMetaData()
        try readStruct { r, id, t in
            switch id {
            case 1: c.type = try r.i32Field(t, "ColumnMetaData.type")
            case 2:
                try r.expect(t, .list, "ColumnMetaData.encodings")
                try r.readList { r, et in
                    try r.expect(et, .i32, "encoding")
                    c.encodings.append(try r.i32())
                }
            case 3:
                try r.expect(t, .list, "ColumnMetaData.path_in_schema")
                try r.readList { r, et in
                    try r.expect(et, .binary, "path element")
                    c.path.append(try r.string())
                }
            case 4: c.codec = try r.i32Field(t, "ColumnMetaData.codec")
            case 5: c.numValues = try r.i64Field(t, "ColumnMetaData.num_values")
            case 6: c.totalUncompressedSize = try r.i64Field(t, "ColumnMetaData.total_uncompressed_size")
            case 7: c.totalCompressedSize = try r.i64Field(t, "ColumnMetaData.total_compressed_size")
            case 9: c.dataPageOffset = try r.i64Field(t, "ColumnMetaData.data_page_offset")
            case 11: c.dictionaryPageOffset = try r.i64Field(t, "ColumnMetaData.dictionary_page_offset")
            case 12:
                try r.expect(t, .structure, "ColumnMetaData.statistics")
                c.statistics = try r.statistics()
            default: return false
            }
            return true
        }
        return c
    }

    mutating func statistics() throws -> StatisticsData {
        var s = StatisticsData()
        try readStruct { r, id, t in
            switch id {
            case 1: try r.expect(t, .binary, "Statistics.max"); s.max = try r.binary()
            case 2: try r.expect(t, .binary, "Statistics.min"); s.min = try r.binary()
            case 3: s.nullCount = try r.i64Field(t, "Statistics.null_count")
            case 5: try r.expect(t, .binary, "Statistics.max_value"); s.maxValue = try r.binary()
            case 6: try r.expect(t, .binary, "Statistics.min_value"); s.minValue = try r.binary()
            default: return false
            }
            return true
        }
        return s
    }

    mutating func pageHeader() throws -> PageHeader {
        var h = PageHeader()
        try readStruct { r, id, t in
            switch id {
            case 1: h.type = try r.i32Field(t, "PageHeader.type")
            case 2: h.uncompressedSize = try r.i32Field(t, "PageHeader.uncompressed_page_size")
            case 3: h.compressedSize = try r.i32Field(t, "PageHeader.compressed_page_size")
            case 5:
                try r.expect(t, .structure, "PageHeader.data_page_header")
                var d = DataPageHeader()
                try r.readStruct { r, id, t in
                    switch id {
                    case 1: d.numValues = try r.i32Field(t, "DataPageHeader.num_values")
                    case 2: d.encoding = try r.i32Field(t, "DataPageHeader.encoding")
                    case 3: d.definitionLevelEncoding = try r.i32Field(t, "DataPageHeader.definition_level_encoding")
                    default: return false
                    }
                    return true
                }
                h.dataPage = d
            case 7:
                try r.expect(t, .structure, "PageHeader.dictionary_page_header")
                var d = DictionaryPageHeader()
                try r.readStruct { r, id, t in
                    switch id {
                    case 1: d.numValues = try r.i32Field(t, "DictionaryPageHeader.num_values")
                    case 2: d.encoding = try r.i32Field(t, "DictionaryPageHeader.encoding")
                    default: return false
                    }
                    return true
                }
                h.dictionaryPage = d
            case 8:
                try r.expect(t, .structure, "PageHeader.data_page_header_v2")
                var d = DataPageHeaderV2()
                try r.readStruct { r, id, t in
                    switch id {
                    case 1: d.numValues = try r.i32Field(t, "DataPageHeaderV2.num_values")
                    case 2: d.numNulls = try r.i32Field(t, "DataPageHeaderV2.num_nulls")
                    case 3: d.numRows = try r.i32Field(t, "DataPageHeaderV2.num_rows")
                    case 4: d.encoding = try r.i32Field(t, "DataPageHeaderV2.encoding")
                    case 5: d.definitionLevelsByteLength = try r.i32Field(t, "definition_levels_byte_length")
                    case 6: d.repetitionLevelsByteLength = try r.i32Field(t, "repetition_levels_byte_length")
                    case 7: d.isCompressed = try r.boolValue(t)
                    default: return false
                    }
                    return true
                }
                h.dataPageV2 = d
            default: return false
            }
            return true
        }
        return h
    }
}
