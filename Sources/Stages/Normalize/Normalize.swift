import Columnar

/// What one shard's normalize wrote.
public struct NormalizeResult: Sendable {
    /// One chunk per non-empty partition, by partition.
    public let partitions: [PartitionChunk]
    public let rowsIn: Int64
    public let rowsOut: Int64
    /// The schema after the steps, nil when no input batch was seen.
    public let schema: Schema?
    /// `quarantine.parquet`: rows a step could not use (a value a `cast`
    /// cannot convert), nil when there were none.
    public var quarantine: WriteResult? = nil
    public var rowsQuarantined: Int64 { quarantine?.rows ?? 0 }
}

/// The normalize stage for one shard: reads `inputChunks` one row group at a
/// time, applies `steps`, and hash-partitions the rows on `partitionBy` into
/// `partitions` chunks in `outputDir` (see `ShuffleWriter`). Memory: one input
/// row group plus the P partition writers' buffers. Every batch must come out
/// of the steps with the same schema (inputs of one source do). Rows a step
/// rejects go to `quarantine.parquet` in `outputDir` (the columns of
/// ingest's quarantine, `file, line, column, reason, raw`, plus `rule`).
public func normalize(
    inputChunks: [String], steps: [NormalizeOp], caster: (any ColumnCaster)? = nil,
    partitionBy: [String], partitions: Int, outputDir: String,
    metadata: [KeyValue] = [], options: ShuffleOptions = ShuffleOptions()
) throws -> NormalizeResult {
    let writer = try NormalizeWriter(steps: steps, caster: caster, partitionBy: partitionBy, partitions: partitions,
                                     outputDir: outputDir, metadata: metadata, options: options)
    do {
        for path in inputChunks {
            let reader = try ParquetReader(path: path)
            writer.fallbackFile = path
            do {
                try reader.forEachRowGroup { batch in try writer.append(batch) }
            } catch let error as OperatorError {
                throw OperatorError.input(path: path, error)
            }
        }
        return try writer.finish()
    } catch {
        writer.abandon()
        throw error
    }
}

/// normalize as a `BatchSink`: each batch through the steps, rejected rows
/// to normalize's quarantine, the rest hash-partitioned by `ShuffleWriter`.
/// `normalize(inputChunks:)` drives it row group by row group; a fused
/// ingest (issue 15) drives it with ingest's batches, so ingest's chunk is
/// never written. Memory: one batch plus the P partition writers' buffers.
public final class NormalizeWriter: BatchSink {
    private let normalizer: Normalizer
    private let shuffle: ShuffleWriter
    private let quarantine: NormalizeQuarantine
    private var rowsIn: Int64 = 0, rowsOut: Int64 = 0
    private var schema: Schema?
    /// The file a rejected row without `_source_file` is said to come from.
    public var fallbackFile = ""

    /// `quarantineName`: the quarantine's file name in `outputDir`
    /// (a fused task's ingest writes `quarantine.parquet` there).
    public init(steps: [NormalizeOp], caster: (any ColumnCaster)? = nil, partitionBy: [String], partitions: Int,
                outputDir: String, metadata: [KeyValue] = [], options: ShuffleOptions = ShuffleOptions(),
                quarantineName: String = "quarantine.parquet") throws {
        normalizer = Normalizer(steps: steps, caster: caster)
        shuffle = try ShuffleWriter(partitionBy: partitionBy, partitions: partitions, outputDir: outputDir,
                                    metadata: metadata, options: options)
        var quarantineOptions = WriterOptions()
        quarantineOptions.compression = options.compression
        quarantineOptions.keyValueMetadata = metadata
        quarantine = NormalizeQuarantine(path: outputDir + "/" + quarantineName, options: quarantineOptions)
    }

    public func append(_ batch: ColumnBatch) throws {
        rowsIn += Int64(batch.rowCount)
        var rejected: [RejectedRow] = []
        let out = try normalizer.apply(batch, rejected: &rejected)
        for var r in rejected {
            if r.file.isEmpty { r.file = fallbackFile }
            try quarantine.add(r)
        }
        if schema == nil { schema = out.schema }
        rowsOut += Int64(out.rowCount)
        try shuffle.append(out)
    }

    public func finish() throws -> NormalizeResult {
        var result = NormalizeResult(partitions: try shuffle.finish(), rowsIn: rowsIn, rowsOut: rowsOut, schema: schema)
        result.quarantine = try quarantine.finish()
        return result
    }

    public func abandon() {
        shuffle.abandon()
        quarantine.abandon()
    }
}

/// Normalize's quarantine chunk, written at the first rejected row.
final class NormalizeQuarantine {
    static let schema = Schema([
        Field("file", .string, nullable: false),
        Field("line", .int64, nullable: false),
        Field("column", .string),
        Field("rule", .string, nullable: false),
        Field("reason", .string, nullable: false),
        Field("raw", .string, nullable: false),
    ])
    let path: String
    let options: WriterOptions
    private var writer: ParquetWriter?
    private var files = StringColumn(), columns = StringColumn(), rules = StringColumn(), reasons = StringColumn(), raws = StringColumn()
    private var lines: [Int64] = []

    init(path: String, options: WriterOptions) {
        self.path = path
        self.options = options
    }

    func add(_ r: RejectedRow) throws {
        files.append(r.file)
        lines.append(r.line)
        columns.append(r.column)
        rules.append(r.rule)
        reasons.append(r.reason)
        raws.append(r.value)
        if lines.count >= 4096 { try flush() }
    }

    private func flush() throws {
        guard !lines.isEmpty else { return }
        if writer == nil { writer = try ParquetWriter(path: path, schema: Self.schema, options: options.forQuarantine) }
        try writer!.append(try ColumnBatch(schema: Self.schema, columns: [
            try Column(.string, .bytes(files)), try Column(.int64, .int64(lines)), try Column(.string, .bytes(columns)),
            try Column(.string, .bytes(rules)), try Column(.string, .bytes(reasons)), try Column(.string, .bytes(raws)),
        ]))
        files = StringColumn(); columns = StringColumn(); rules = StringColumn(); reasons = StringColumn(); raws = StringColumn()
        lines.removeAll(keepingCapacity: true)
    }

    func finish() throws -> WriteResult? {
        try flush()
        return try writer?.finish()
    }

    func abandon() { writer?.abandon() }
}
