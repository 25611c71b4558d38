/// Reads Parquet files: ours, and flat files from pyarrow, DuckDB, Spark and
/// others with ZSTD, SNAPPY, GZIP or no compression. Opening reads and checks the footer; row groups
/// are read on demand, only the projected columns.
///
/// Not thread-safe: use one reader per task.
public final class ParquetReader {
    public let path: String
    public let schema: Schema
    public let rowCount: Int64
    public let keyValueMetadata: [KeyValue]
    public let createdBy: String?
    public let rowGroups: [RowGroupInfo]

    private let source: FileSource
    private let plans: [ColumnPlan]
    private let typeLengths: [Int]
    private let metadata: FileMetaData
    private let footerStart: Int64
    private var zstd: ZstdDecompressor?
    /// The ZSTD context, made when the first ZSTD page is read.
    private func decompressor() throws -> ZstdDecompressor {
        if let zstd { return zstd }
        let made = try ZstdDecompressor()
        zstd = made
        return made
    }
    /// Written by a parquet-mr whose chunk sizes may be short (PARQUET-816).
    private let padsChunks: Bool

    public init(path: String) throws {
        self.path = path
        let file = try FileSource(path: path)
        source = file
        let loaded = try withContext(path) { try ParquetReader.load(file, size: file.size) }
        (metadata, footerStart, plans, typeLengths, rowGroups) = loaded
        schema = Schema(plans.map { Field($0.name, $0.type, nullable: $0.nullable) })
        rowCount = metadata.numRows
        keyValueMetadata = metadata.keyValue.map { KeyValue($0.0, $0.1) }
        createdBy = metadata.createdBy
        padsChunks = ParquetReader.chunkSizesMayBeShort(createdBy: metadata.createdBy)
    }

    /// parquet-mr before 1.2.9 (or one that gives no version) did not count
    /// the dictionary page header in a chunk's total_compressed_size.
    static func chunkSizesMayBeShort(createdBy: String?) -> Bool {
        guard let c = createdBy, c.hasPrefix("parquet-mr") else { return false }
        guard let v = c.split(separator: " ").drop(while: { $0 != "version" }).dropFirst().first else { return true }
        let parts = v.split(separator: "-").first.map { $0.split(separator: ".").map { Int($0) ?? 0 } } ?? []
        let (major, minor, patch) = (parts.count > 0 ? parts[0] : 0, parts.count > 1 ? parts[1] : 0, parts.count > 2 ? parts[2] : 0)
        return (major, minor, patch) < (1, 2, 9)
    }

    private static func load(_ source: FileSource, size: Int64) throws -> (FileMetaData, Int64, [ColumnPlan], [Int], [RowGroupInfo]) {
        let (meta, footerStart) = try readFooter(source, size: size)
        guard let root = meta.schema.first else { throw ColumnarError.corrupt("footer has no schema") }
        let leaves = Array(meta.schema.dropFirst())
        // The first group or list, by name, before the counts that only say "nested".
        for leaf in leaves where (leaf.numChildren ?? 0) > 0 || leaf.repetition == 2 {
            if (leaf.numChildren ?? 0) > 0 { throw ColumnarError.unsupported("column '\(leaf.name)' is a group (nested data)") }
            throw ColumnarError.unsupported("column '\(leaf.name)' is REPEATED (lists)")
        }
        guard Int(root.numChildren ?? 0) == leaves.count else {
            throw ColumnarError.unsupported("nested schema: the root has \(root.numChildren ?? 0) children and \(leaves.count) elements follow")
        }
        let plans = try leaves.map { try ColumnPlan($0) }
        let typeLengths = leaves.map { Int($0.typeLength ?? 0) }
        var total: Int64 = 0
        var infos = [RowGroupInfo]()
        for (g, group) in meta.rowGroups.enumerated() {
            guard group.columns.count == plans.count else {
                throw ColumnarError.corrupt("row group \(g) has \(group.columns.count) columns, schema has \(plans.count)")
            }
            guard group.numRows >= 0 else { throw ColumnarError.corrupt("row group \(g) has a negative row count") }
            let (sum, overflow) = total.addingReportingOverflow(group.numRows)
            guard !overflow else { throw ColumnarError.corrupt("the row groups' row counts add up to more than \(Int64.max)") }
            total = sum
            var columns = [ColumnChunkInfo]()
            for (c, column) in group.columns.enumerated() {
                let plan = plans[c]
                guard column.type == plan.physical.rawValue else {
                    throw ColumnarError.corrupt("row group \(g) column '\(plan.name)' has physical type #\(column.type), schema says \(plan.physical.name)")
                }
                guard column.numValues == group.numRows else {
                    throw ColumnarError.corrupt("row group \(g) column '\(plan.name)' has \(column.numValues) values for \(group.numRows) rows")
                }
                var stats: ColumnStatistics?
                if let s = column.statistics {
                    // Legacy min/max used signed byte order for strings: trust it only for numbers.
                    let legacyOK = plan.physical != .byteArray && plan.physical != .fixedLenByteArray
                    let lo = s.minValue ?? (legacyOK ? s.min : nil)
                    let hi = s.maxValue ?? (legacyOK ? s.max : nil)
                    stats = ColumnStatistics(min: lo.flatMap(plan.scalar), max: hi.flatMap(plan.scalar), nullCount: s.nullCount)
                }
                columns.append(ColumnChunkInfo(
                    name: plan.name, physicalType: plan.physical.name, codec: Codec.name(column.codec),
                    encodings: column.encodings.map(Encoding.name), numValues: column.numValues,
                    compressedBytes: column.totalCompressedSize, uncompressedBytes: column.totalUncompressedSize,
                    dataPageOffset: column.dataPageOffset, dictionaryPageOffset: column.dictionaryPageOffset,
                    statistics: stats))
            }
            infos.append(RowGroupInfo(
                index: g, rowCount: group.numRows,
                compressedBytes: columns.reduce(0) { $0 + $1.compressedBytes },
                uncompressedBytes: group.totalByteSize, columns: columns))
        }
        guard total == meta.numRows else {
            throw ColumnarError.corrupt("row groups hold \(total) rows, footer says \(meta.numRows)")
        }
        return (meta, footerStart, plans, typeLengths, infos)
    }

    /// The longest footer read. Writers' footers are kilobytes to a few
    /// megabytes (thousands of row groups of hundreds of columns); a longer
    /// one is refused before it is read, since the coordinator reads footers
    /// when it plans a run.
    public static let maxFooterBytes: Int64 = 64 << 20

    /// Checks the magic bytes and decodes the footer; returns it with the
    /// offset where it starts (the end of the data area).
    static func readFooter(_ source: FileSource, size: Int64) throws -> (FileMetaData, Int64) {
        guard size >= 12 else { throw ColumnarError.corrupt("file of \(size) bytes is too short for Parquet") }
        let head = try source.read(at: 0, count: 4)
        let tail = try source.read(at: size - 8, count: 8)
        let magic = Array("PAR1".utf8)
        guard head == magic else { throw ColumnarError.corrupt("file does not start with PAR1") }
        guard Array(tail[4...]) == magic else {
            if Array(tail[4...]) == Array("PARE".utf8) { throw ColumnarError.unsupported("encrypted footer") }
            throw ColumnarError.corrupt("file does not end with PAR1 (truncated?)")
        }
        let footerLength = Int64(ValueDecoding.readUInt32(tail, 0))
        guard footerLength > 0, footerLength <= size - 12 else {
            throw ColumnarError.corrupt("footer length \(footerLength) does not fit the file of \(size) bytes")
        }
        guard footerLength <= maxFooterBytes else {
            throw ColumnarError.unsupported("a footer of \(footerLength) bytes; footers of more than \(maxFooterBytes) bytes are refused")
        }
        let footerStart = size - 8 - footerLength
        let footer = try source.read(at: footerStart, count: Int(footerLength))
        var r = CompactReader(footer)
        let meta = try withContext("footer") { try r.fileMetaData() }
        return (meta, footerStart)
    }

    /// The bytes of one column chunk (its dictionary page, if any, and its data pages).
    static func chunkBytes(_ source: FileSource, _ meta: ColumnMetaData, footerStart: Int64, pads: Bool) throws -> [UInt8] {
        var start = meta.dataPageOffset
        if let d = meta.dictionaryPageOffset, d > 0, d < start { start = d }
        let length = meta.totalCompressedSize
        guard start >= 4, length >= 0, start <= footerStart - length else {
            throw ColumnarError.corrupt("chunk at \(start)+\(length) lies outside the data area")
        }
        // parquet-mr up to 1.2.8 left the dictionary page header out of
        // total_compressed_size (PARQUET-816): read up to 100 bytes more, as
        // pyarrow does; decoding stops at the chunk's last value.
        let padding = pads ? min(100, footerStart - start - length) : 0
        return try source.read(at: start, count: Int(length + padding))
    }

    /// The schema of `columns` (all when nil), in the order given.
    public func projectedSchema(_ columns: [String]?) throws -> Schema {
        Schema(try columnIndices(columns).map { schema.fields[$0] })
    }

    private func columnIndices(_ columns: [String]?) throws -> [Int] {
        guard let columns else { return Array(schema.fields.indices) }
        return try columns.map { name in
            guard let i = schema.index(of: name) else {
                throw ColumnarError.invalidArgument("\(path) has no column '\(name)'; it has \(schema.fields.map(\.name).joined(separator: ", "))")
            }
            return i
        }
    }

    /// Indices of the row groups that `predicate` does not rule out.
    public func rowGroups(matching predicate: RowGroupPredicate?) -> [Int] {
        rowGroups.filter { predicate?.mayMatch($0) ?? true }.map(\.index)
    }

    /// Reads one row group, only `columns` (all when nil).
    public func readRowGroup(_ index: Int, columns: [String]? = nil) throws -> ColumnBatch {
        guard rowGroups.indices.contains(index) else {
            throw ColumnarError.invalidArgument("\(path) has \(rowGroups.count) row groups, not \(index + 1)")
        }
        let indices = try columnIndices(columns)
        let group = metadata.rowGroups[index]
        let rows = Int(group.numRows)
        var out = [Column]()
        for c in indices {
            let plan = plans[c]
            let meta = group.columns[c]
            let column = try withContext("\(path): row group \(index), column '\(plan.name)'") { () throws -> Column in
                // An empty row group's chunk holds no values: nothing to read
                // (pyarrow writes data_page_offset 0 for some of them).
                if rows == 0 && meta.numValues == 0 { return ColumnBuilder(plan.type).build() }
                let bytes = try Self.chunkBytes(source, meta, footerStart: footerStart, pads: padsChunks)
                let decoder = ChunkDecoder(plan: plan, meta: meta, decompressor: decompressor, typeLength: typeLengths[c])
                return try decoder.decode(bytes, rows: rows)
            }
            out.append(column)
        }
        return try ColumnBatch(schema: Schema(indices.map { schema.fields[$0] }), columns: out)
    }

    /// Calls `body` with each row group that `predicate` allows, one at a
    /// time, so memory stays bounded by one row group.
    public func forEachRowGroup(
        columns: [String]? = nil, where predicate: RowGroupPredicate? = nil,
        _ body: (ColumnBatch) throws -> Void
    ) throws {
        for g in rowGroups(matching: predicate) {
            try body(try readRowGroup(g, columns: columns))
        }
    }

    /// Reads every row group that `predicate` allows into one batch.
    public func read(columns: [String]? = nil, where predicate: RowGroupPredicate? = nil) throws -> ColumnBatch {
        let projected = try projectedSchema(columns)
        var builders = projected.fields.map { ColumnBuilder($0.type) }
        for g in rowGroups(matching: predicate) {
            let batch = try readRowGroup(g, columns: columns)
            for i in builders.indices {
                builders[i].append(batch.columns[i], range: 0..<batch.rowCount)
            }
        }
        return try ColumnBatch(schema: projected, columns: builders.map { $0.build() })
    }
}
