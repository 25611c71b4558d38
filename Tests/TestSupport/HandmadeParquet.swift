/// Parquet files made by hand, footer field by field, for the cases no
/// writer produces: row counts that overflow, row groups that claim 2^40
/// rows, codecs nobody reads. Self-contained (no Columnar), so every test
/// target can use it.
public enum HandmadeParquet {
    /// One flat column of the schema and of every row group.
    public struct ColumnSpec: Sendable {
        public var name: String
        /// Parquet physical type: 0 BOOLEAN, 1 INT32, 2 INT64, 3 INT96, 4 FLOAT, 5 DOUBLE, 6 BYTE_ARRAY,
        /// 7 FIXED_LEN_BYTE_ARRAY.
        public var type: Int32
        /// The physical type its column chunks claim (defaults to `type`).
        public var chunkType: Int32?
        /// 0 UNCOMPRESSED, 1 SNAPPY, 2 GZIP, 3 LZO, 4 BROTLI, 5 LZ4, 6 ZSTD, 7 LZ4_RAW.
        public var codec: Int32
        /// The values of a REQUIRED column, PLAIN-encoded, in one
        /// uncompressed v1 data page that every row group's chunk points
        /// at; nil: an OPTIONAL column whose chunks point at `data`.
        public var plain: [UInt8]?
        public var typeLength: Int32?
        public var convertedType: Int32?
        public var scale: Int32?
        public var precision: Int32?

        public init(_ name: String, type: Int32 = 1, chunkType: Int32? = nil, codec: Int32 = 0, plain: [UInt8]? = nil,
                    typeLength: Int32? = nil, convertedType: Int32? = nil, scale: Int32? = nil, precision: Int32? = nil) {
            self.name = name
            self.type = type
            self.chunkType = chunkType
            self.codec = codec
            self.plain = plain
            self.typeLength = typeLength
            self.convertedType = convertedType
            self.scale = scale
            self.precision = precision
        }
    }

    /// Little-endian bytes of fixed-width values, for `plain`.
    public static func le<T: FixedWidthInteger>(_ values: [T]) -> [UInt8] {
        values.flatMap { v in (0..<(T.bitWidth / 8)).map { UInt8(truncatingIfNeeded: v >> (8 * $0)) } }
    }

    public static func le(_ values: [Float]) -> [UInt8] { le(values.map(\.bitPattern)) }

    /// A v1 data page header for `count` PLAIN values in `size` bytes.
    static func pageHeader(count: Int, size: Int) -> [UInt8] {
        var w = Writer()
        w.i32(1, 0)                                   // DATA_PAGE
        w.i32(2, Int32(size))
        w.i32(3, Int32(size))
        w.structBegin(5)
        w.i32(1, Int32(count))
        w.i32(2, 0)                                   // PLAIN
        w.i32(3, 3)                                   // RLE
        w.i32(4, 3)
        w.structEnd()
        w.bytes.append(0)
        return w.bytes
    }

    /// A file whose row groups claim `rowGroups` rows each, whose footer
    /// claims `numRows` (default: their sum, wrapping), and whose column
    /// chunks all point at `data` (written right after the leading magic).
    public static func file(columns: [ColumnSpec], rowGroups: [Int64], numRows: Int64? = nil,
                            data: [UInt8] = [0, 0, 0, 0]) -> [UInt8] {
        var area = data
        var chunks = [(offset: Int64, size: Int64)]()
        for c in columns {
            guard let plain = c.plain else {
                chunks.append((4, Int64(data.count)))
                continue
            }
            let width = c.type == 1 || c.type == 4 ? 4 : c.type == 3 ? 12 : c.type == 7 ? Int(c.typeLength ?? 1) : 8
            let page = pageHeader(count: plain.count / max(1, width), size: plain.count) + plain
            chunks.append((4 + Int64(area.count), Int64(page.count)))
            area += page
        }
        var w = Writer()
        w.i32(1, 1)                                   // version
        w.listBegin(2, 12, count: columns.count + 1)  // schema
        w.structOpen()
        w.string(4, "schema")
        w.i32(5, Int32(columns.count))
        w.structClose()
        for c in columns {
            w.structOpen()
            w.i32(1, c.type)
            if let t = c.typeLength { w.i32(2, t) }
            w.i32(3, c.plain == nil ? 1 : 0)          // OPTIONAL, REQUIRED
            w.string(4, c.name)
            if let t = c.convertedType { w.i32(6, t) }
            if let t = c.scale { w.i32(7, t) }
            if let t = c.precision { w.i32(8, t) }
            w.structClose()
        }
        w.i64(3, numRows ?? rowGroups.reduce(0, &+))
        w.listBegin(4, 12, count: rowGroups.count)
        for rows in rowGroups {
            w.structOpen()
            w.listBegin(1, 12, count: columns.count)
            for (c, chunk) in zip(columns, chunks) {
                w.structOpen()                        // ColumnChunk
                w.i64(2, chunk.offset)
                w.structBegin(3)                      // ColumnMetaData
                w.i32(1, c.chunkType ?? c.type)
                w.listBegin(2, 5, count: 1)
                w.elementI32(0)                       // PLAIN
                w.listBegin(3, 8, count: 1)
                w.elementBinary(Array(c.name.utf8))
                w.i32(4, c.codec)
                w.i64(5, rows)
                w.i64(6, chunk.size)
                w.i64(7, chunk.size)
                w.i64(9, chunk.offset)
                w.structEnd()
                w.structClose()
            }
            w.i64(2, chunks.reduce(0) { $0 + $1.size })
            w.i64(3, rows)
            w.structClose()
        }
        w.string(6, "handmade")
        w.bytes.append(0)
        let footer = w.bytes
        let magic = Array("PAR1".utf8)
        let n = UInt32(footer.count)
        return magic + area + footer + [UInt8(n & 0xFF), UInt8((n >> 8) & 0xFF), UInt8((n >> 16) & 0xFF), UInt8(n >> 24)] + magic
    }

    /// Thrift compact protocol, just enough for a footer.
    struct Writer {
        var bytes: [UInt8] = []
        var last: Int16 = 0
        var stack: [Int16] = []

        mutating func varint(_ value: UInt64) {
            var v = value
            while v >= 0x80 {
                bytes.append(UInt8(truncatingIfNeeded: v) | 0x80)
                v >>= 7
            }
            bytes.append(UInt8(v))
        }

        mutating func zigzag(_ v: Int64) { varint(UInt64(bitPattern: (v << 1) ^ (v >> 63))) }

        mutating func header(_ id: Int16, _ type: UInt8) {
            let delta = Int(id) - Int(last)
            if delta > 0 && delta <= 15 {
                bytes.append(UInt8(delta << 4) | type)
            } else {
                bytes.append(type)
                zigzag(Int64(id))
            }
            last = id
        }

        mutating func i32(_ id: Int16, _ v: Int32) { header(id, 5); zigzag(Int64(v)) }
        mutating func i64(_ id: Int16, _ v: Int64) { header(id, 6); zigzag(v) }
        mutating func string(_ id: Int16, _ s: String) { header(id, 8); elementBinary(Array(s.utf8)) }
        mutating func elementI32(_ v: Int32) { zigzag(Int64(v)) }
        mutating func elementBinary(_ b: [UInt8]) { varint(UInt64(b.count)); bytes.append(contentsOf: b) }

        mutating func listBegin(_ id: Int16, _ element: UInt8, count: Int) {
            header(id, 9)
            if count <= 14 { bytes.append(UInt8(count << 4) | element) } else { bytes.append(0xF0 | element); varint(UInt64(count)) }
        }

        /// A struct-valued field.
        mutating func structBegin(_ id: Int16) { header(id, 12); structOpen() }
        mutating func structEnd() { structClose() }
        /// A struct as a list element (no field header).
        mutating func structOpen() { stack.append(last); last = 0 }
        mutating func structClose() { bytes.append(0); last = stack.popLast() ?? 0 }
    }
}
