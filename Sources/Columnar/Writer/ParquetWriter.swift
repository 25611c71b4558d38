/// Streams batches into one Parquet file with ZSTD pages.
///
/// Rows are buffered until a row group is full (by rows or bytes), then each
/// column is encoded and written, so memory stays bounded by one row group.
/// The file appears under its final name only when `finish` succeeds; until
/// then it is a hidden temp file in the same directory, removed on failure.
public final class ParquetWriter {
    public let schema: Schema
    public let options: WriterOptions
    private let sink: AtomicFileSink
    private let encoder: ChunkEncoder
    private var builders: [ColumnBuilder]
    private var bufferedRows = 0
    private var rowGroups: [(records: [ColumnChunkRecord], rows: Int64, offset: Int64)] = []
    private var totalRows: Int64 = 0
    private var finished = false

    public init(path: String, schema: Schema, options: WriterOptions = WriterOptions()) throws {
        try schema.validate()
        guard options.rowGroupRows > 0, options.rowGroupBytes > 0, options.pageBytes > 0 else {
            throw ColumnarError.invalidArgument("rowGroupRows, rowGroupBytes and pageBytes must be positive")
        }
        if case .zstd(let level) = options.compression, !(1...22).contains(level) {
            throw ColumnarError.invalidArgument("zstd level \(level) is outside 1...22")
        }
        self.schema = schema
        self.options = options
        encoder = try ChunkEncoder(options: options)
        sink = try AtomicFileSink(path: path, hashing: !options.scratch)
        builders = BuilderPool.shared.take(schema.fields)
        try sink.write(Array("PAR1".utf8))
    }

    /// Adds rows. The batch's schema must equal the writer's. If writing
    /// fails, the temp file is removed and the writer refuses further use.
    public func append(_ batch: ColumnBatch) throws {
        guard !finished else { throw ColumnarError.invalidArgument("append after finish or failure") }
        guard batch.schema == schema else {
            throw ColumnarError.invalidArgument("batch schema differs from the writer's schema")
        }
        do {
            try buffer(batch)
        } catch {
            abandon()
            throw error
        }
    }

    private func buffer(_ batch: ColumnBatch) throws {
        // Slices are sized so the buffered bytes stay near rowGroupBytes
        // even when a single batch is larger than a row group.
        let bytesPerRow = max(1, ParquetWriter.estimatedBytes(batch) / max(1, batch.rowCount))
        var start = 0
        while start < batch.rowCount {
            let room = max(1, (options.rowGroupBytes - bufferedBytes) / bytesPerRow)
            let take = min(batch.rowCount - start, options.rowGroupRows - bufferedRows, room)
            for i in builders.indices {
                builders[i].append(batch.columns[i], range: start..<(start + take))
            }
            bufferedRows += take
            start += take
            if bufferedRows >= options.rowGroupRows || bufferedBytes >= options.rowGroupBytes {
                try flushRowGroup()
            }
        }
    }

    /// A hint that about `rows` more rows will come: sizes the buffers of
    /// the row group in progress once, for as many of them as it will hold
    /// (by `rowGroupRows`, and by `rowGroupBytes` at the bytes per row
    /// buffered so far), so they are not grown by doubling, copied and
    /// touched again on the way. Call it after the first rows are appended;
    /// the file written is the same with or without it.
    public func reserve(rows: Int) {
        guard !finished, bufferedRows > 0, rows > 0 else { return }
        let perRow = max(1, bufferedBytes / bufferedRows)
        let q = options.rowGroupBytes / perRow
        let byBytes = q < Int.max - q / 32 - 1 ? q + q / 32 + 1 : Int.max
        // `rows` may be anything up to Int.max: never add it unchecked.
        let target = min(options.rowGroupRows, byBytes, bufferedRows + min(rows, Int.max - bufferedRows))
        for i in builders.indices { builders[i].reserveCapacity(toHold: target) }
    }

    static func estimatedBytes(_ batch: ColumnBatch) -> Int {
        batch.columns.reduce(0) { total, column in
            let values: Int
            switch column.values {
            case .int64(let v): values = v.count * 8
            case .int32(let v): values = v.count * 4
            case .double(let v): values = v.count * 8
            case .bool(let v): values = v.count
            case .bytes(let s): values = s.bytes.count + s.count * 4
            }
            return total + values + (column.validity?.count ?? 0)
        }
    }

    private var bufferedBytes: Int {
        builders.reduce(0) { $0 + $1.estimatedBytes }
    }

    private func flushRowGroup() throws {
        guard bufferedRows > 0 else { return }
        let offset = sink.offset
        var records = [ColumnChunkRecord]()
        for i in builders.indices {
            records.append(try withContext("column '\(schema.fields[i].name)'") { try encodeColumn(i) })
            builders[i].removeAll()
        }
        rowGroups.append((records, Int64(bufferedRows), offset))
        totalRows += Int64(bufferedRows)
        bufferedRows = 0
    }

    /// The built column lives only inside this call, so the builder's
    /// buffers are unshared again when it returns.
    private func encodeColumn(_ i: Int) throws -> ColumnChunkRecord {
        try encoder.write(builders[i].build(), field: schema.fields[i], to: sink)
    }

    /// Writes the last row group and the footer, fsyncs and renames.
    public func finish() throws -> WriteResult {
        guard !finished else { throw ColumnarError.invalidArgument("finish called twice") }
        finished = true
        do {
            try flushRowGroup()
            let footer = encodeFooter()
            try sink.write(footer)
            try sink.write(ChunkStatistics.littleEndian(UInt32(footer.count)))
            try sink.write(Array("PAR1".utf8))
            let bytes = sink.offset
            let digest = try sink.commit(durable: !options.scratch)
            releaseBuilders()
            return WriteResult(path: sink.finalPath, sha256: digest, rows: totalRows, bytes: bytes)
        } catch {
            sink.abandon()
            releaseBuilders()
            throw error
        }
    }

    /// Drops everything written so far; the final path is never created.
    public func abandon() {
        finished = true
        sink.abandon()
        releaseBuilders()
    }

    /// Hands the builders' buffers to the next writer (see `BuilderPool`).
    private func releaseBuilders() {
        guard !builders.isEmpty else { return }
        var spare: [ColumnBuilder] = []
        swap(&spare, &builders)
        for i in spare.indices { spare[i].removeAll() }
        BuilderPool.shared.give(spare, fields: schema.fields)
    }

    // MARK: - Footer

    func encodeFooter() -> [UInt8] {
        var w = CompactWriter(capacity: 4096)
        w.i32(1, 1)
        w.listBegin(2, .structure, count: schema.fields.count + 1)
        w.listStructBegin()
        w.string(4, "schema")
        w.i32(5, Int32(schema.fields.count))
        w.structEnd()
        for field in schema.fields {
            w.listStructBegin()
            ParquetWriter.encodeSchemaElement(field, into: &w)
            w.structEnd()
        }
        w.i64(3, totalRows)
        w.listBegin(4, .structure, count: rowGroups.count)
        for (ordinal, group) in rowGroups.enumerated() {
            w.listStructBegin()
            w.listBegin(1, .structure, count: group.records.count)
            for r in group.records {
                w.listStructBegin()
                w.i64(2, 0)
                w.structBegin(3)
                w.i32(1, r.physicalType.rawValue)
                w.listBegin(2, .i32, count: r.encodings.count)
                for e in r.encodings { w.elementI32(e) }
                w.listBegin(3, .binary, count: 1)
                w.elementBinary(Array(r.name.utf8))
                w.i32(4, r.codec)
                w.i64(5, r.numValues)
                w.i64(6, r.totalUncompressed)
                w.i64(7, r.totalCompressed)
                w.i64(9, r.dataPageOffset)
                if let d = r.dictionaryPageOffset { w.i64(11, d) }
                w.structBegin(12)
                w.i64(3, r.statistics.nullCount)
                if let max = r.statistics.max { w.binary(5, max) }
                if let min = r.statistics.min { w.binary(6, min) }
                w.structEnd()
                w.structEnd()
                w.structEnd()
            }
            w.i64(2, group.records.reduce(0) { $0 + $1.totalUncompressed })
            w.i64(3, group.rows)
            w.i64(5, group.offset)
            w.i64(6, group.records.reduce(0) { $0 + $1.totalCompressed })
            if let o = Int16(exactly: ordinal) { w.i16(7, o) }
            w.structEnd()
        }
        if !options.keyValueMetadata.isEmpty {
            w.listBegin(5, .structure, count: options.keyValueMetadata.count)
            for kv in options.keyValueMetadata {
                w.listStructBegin()
                w.string(1, kv.key)
                w.string(2, kv.value)
                w.structEnd()
            }
        }
        w.string(6, options.createdBy)
        w.listBegin(7, .structure, count: schema.fields.count)
        for _ in schema.fields {
            w.listStructBegin()
            w.structBegin(1)
            w.structEnd()
            w.structEnd()
        }
        w.stop()
        return w.bytes
    }

    static func encodeSchemaElement(_ field: Field, into w: inout CompactWriter) {
        w.i32(1, ChunkEncoder.physicalType(field.type).rawValue)
        w.i32(3, field.nullable ? 1 : 0)
        w.string(4, field.name)
        switch field.type {
        case .string:
            w.i32(6, ConvertedType.utf8)
            w.structBegin(10)
            encodeLogicalType(field.type, into: &w)
            w.structEnd()
        case .date:
            w.i32(6, ConvertedType.date)
            w.structBegin(10)
            encodeLogicalType(field.type, into: &w)
            w.structEnd()
        case .timestamp:
            w.i32(6, ConvertedType.timestampMicros)
            w.structBegin(10)
            encodeLogicalType(field.type, into: &w)
            w.structEnd()
        case .decimal(let p, let s):
            w.i32(6, ConvertedType.decimal)
            w.i32(7, Int32(s))
            w.i32(8, Int32(p))
            w.structBegin(10)
            encodeLogicalType(field.type, into: &w)
            w.structEnd()
        case .int64, .int32, .double, .bool:
            break
        }
    }

    /// The fields of a LogicalType union (the caller opens and closes it).
    static func encodeLogicalType(_ type: ColumnType, into w: inout CompactWriter) {
        switch type {
        case .string:
            w.structBegin(1); w.structEnd()
        case .date:
            w.structBegin(6); w.structEnd()
        case .timestamp:
            w.structBegin(8)
            w.bool(1, true)
            w.structBegin(2)
            w.structBegin(2); w.structEnd()
            w.structEnd()
            w.structEnd()
        case .decimal(let p, let s):
            w.structBegin(5)
            w.i32(1, Int32(s))
            w.i32(2, Int32(p))
            w.structEnd()
        case .int64, .int32, .double, .bool:
            break
        }
    }
}
