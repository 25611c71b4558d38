#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Columnar
import FleetCore

/// Parses one shard of a CSV or JSON Lines file into a zstd Parquet chunk of
/// the source's declared columns followed by the provenance columns
/// `_source_file` (the shard's path, as the quarantine's `file` names it)
/// and `_source_line` (the line where the row's record starts), streaming:
/// memory is bounded by the row group, one batch and one read block, never
/// by the shard.
///
/// Rows that do not fit (wrong field count, a value that does not parse as
/// its column's type, an overflowing decimal, invalid UTF-8, an unterminated
/// quote, a null in a non-nullable column, a nested JSON value) go to a
/// quarantine chunk with file, line, column, reason and raw text, and parsing
/// goes on. `rowsRead == rowsWritten + rowsQuarantined`; blank lines are not
/// records. Writes `ingest.parquet` (always) and `quarantine.parquet` (only
/// when a row was bad) into `outputDir`, creating it if needed.
///
/// Throws `IngestError` when the shard as a whole cannot be read: header
/// drift (unless the source allows it), an unreadable file, an invalid source.
public func ingest(
    shard: Shard,
    source: IngestSource,
    outputDir: String,
    options: IngestOptions = IngestOptions(),
    metadata: [KeyValue] = []
) throws -> IngestResult {
    try IngestRun.validate(source, file: shard.path)
    try makeDirectories(outputDir)
    var writerOptions = WriterOptions()
    writerOptions.rowGroupRows = max(1, options.rowGroupRows)
    writerOptions.compression = .zstd(level: options.zstdLevel)
    writerOptions.keyValueMetadata = metadata
    let run = try IngestRun(
        source: source, file: shard.path,
        chunkPath: outputDir + "/ingest.parquet",
        quarantinePath: outputDir + "/quarantine.parquet",
        options: options, writerOptions: writerOptions)
    do {
        try run.parse(shard: shard, options: options)
        return try run.finish()
    } catch {
        run.abandon()
        throw error
    }
}

/// What a fused ingest (`ingest(…, into:)`) did: ingest's counts and its
/// own quarantine; its rows went to the sink instead of a chunk.
public struct FusedIngestResult: Sendable, Hashable {
    /// Rows that did not fit, with file, line, column and reason; nil when none.
    public var quarantine: WriteResult?
    public var rowsRead: Int64
    public var rowsWritten: Int64
    public var rowsQuarantined: Int64
}

/// ingest of one shard whose typed batches (declared columns, then
/// `_source_file` and `_source_line`) go to the sink `makeSink` builds from
/// their schema, in order, instead of `ingest.parquet` (a fused task, issue
/// 15: normalize's operators and shuffle). Unparseable rows still go to
/// ingest's `quarantine.parquet` in `outputDir`. Memory: one batch, plus
/// what the sink keeps. The caller finishes or abandons the sink.
public func ingest(
    shard: Shard,
    source: IngestSource,
    outputDir: String,
    options: IngestOptions = IngestOptions(),
    metadata: [KeyValue] = [],
    into makeSink: (Schema) throws -> any BatchSink
) throws -> FusedIngestResult {
    try IngestRun.validate(source, file: shard.path)
    try makeDirectories(outputDir)
    var writerOptions = WriterOptions()
    writerOptions.rowGroupRows = max(1, options.rowGroupRows)
    writerOptions.compression = .zstd(level: options.zstdLevel)
    writerOptions.keyValueMetadata = metadata
    let run = try IngestRun(
        source: source, file: shard.path, sink: makeSink,
        quarantinePath: outputDir + "/quarantine.parquet",
        options: options, writerOptions: writerOptions)
    do {
        try run.parse(shard: shard, options: options)
        try run.flush()
        let q = try run.quarantine.finish()
        return FusedIngestResult(quarantine: q, rowsRead: run.rowsRead, rowsWritten: run.rowsWritten,
                                 rowsQuarantined: run.quarantine.rows)
    } catch {
        run.abandon()
        throw error
    }
}

extension IngestRun {
    /// Parses the shard by its format (the caller finishes, or abandons on failure).
    func parse(shard: Shard, options: IngestOptions) throws {
        switch source.format {
        case .csv: try CSVIngest(run: self, source: source, shard: shard, options: options).parse()
        case .jsonl: try JSONLinesIngest(run: self, source: source, shard: shard, options: options).parse()
        case .parquet: try ParquetIngest(run: self, source: source, shard: shard, options: options).read()
        }
    }
}

/// Creates `path` and its missing parents.
func makeDirectories(_ path: String) throws {
    var current = path.hasPrefix("/") ? "" : "."
    for part in path.split(separator: "/") {
        current += "/" + part
        if mkdir(current, 0o755) != 0 && errno != EEXIST {
            throw IngestError.io(file: current, message: "cannot create directory", errno: errno)
        }
    }
}

/// The state one shard's parse shares between formats: the column sinks of
/// the batch in progress, the writers and the counts.
final class IngestRun {
    let source: IngestSource
    let file: String
    let schema: Schema
    /// One sink per declared column, in declared order.
    let sinks: UnsafeMutablePointer<ColumnSink>
    /// `_source_line` of each row of the batch in progress.
    private let lines: UnsafeMutablePointer<Int64>
    /// The array `lines` is copied into for the writer, reused batch after batch.
    private var linesOut: [Int64] = []
    /// `_source_file` for a full batch, built once: every row of a shard has the same file.
    private var fullBatchFiles: Column?
    let fields: [Field]
    let batchRows: Int
    /// `ingest.parquet`, or (fused) the sink the batches go to instead.
    private let writer: ParquetWriter?
    private let sink: (any BatchSink)?
    let quarantine: QuarantineSink
    /// Rows in the batch in progress (every sink holds this many).
    var rows = 0
    private(set) var rowsRead: Int64 = 0
    private(set) var rowsWritten: Int64 = 0
    /// How far the parse has come through the shard's bytes: (read, all).
    /// After the first batch it sizes the writer's row group for the rows
    /// the rest of the shard will bring (see `ParquetWriter.reserve`).
    var progress: (() -> (read: Int64, all: Int64))?
    private var sized = false

    static func validate(_ source: IngestSource, file: String) throws {
        guard !source.columns.isEmpty else {
            throw IngestError.invalidSource(file: file, message: "the source declares no columns")
        }
        var seen = Set<String>()
        for field in source.columns {
            guard !Provenance.isReserved(field.name) else {
                throw IngestError.invalidSource(
                    file: file, message: "column \(field.name): names starting with \(Provenance.prefix) are reserved "
                        + "for the provenance columns ingest adds")
            }
            guard seen.insert(field.name).inserted else {
                throw IngestError.invalidSource(file: file, message: "column \(field.name) is declared twice")
            }
            if case .decimal(let p, let s) = field.type, !((1...18).contains(p) && (0...p).contains(s)) {
                throw IngestError.invalidSource(
                    file: file, message: "column \(field.name): decimal(\(p),\(s)) needs precision 1...18 and scale 0...precision")
            }
        }
        if source.format == .csv {
            guard source.delimiter != source.quote, source.delimiter != 10, source.delimiter != 13,
                  source.quote != 10, source.quote != 13
            else {
                throw IngestError.invalidSource(
                    file: file, message: "delimiter and quote must differ from each other and from line breaks")
            }
        }
    }

    /// Writes the batches to `ingest.parquet` at `chunkPath`.
    convenience init(source: IngestSource, file: String, chunkPath: String, quarantinePath: String,
                     options: IngestOptions, writerOptions: WriterOptions) throws {
        let schema = Schema(source.columns + Provenance.fields)
        self.init(source: source, file: file, schema: schema,
                  writer: try ParquetWriter(path: chunkPath, schema: schema, options: writerOptions), sink: nil,
                  quarantinePath: quarantinePath, options: options, writerOptions: writerOptions)
    }

    /// A fused run: batches go to `sink(schema)`, no chunk is written.
    convenience init(source: IngestSource, file: String, sink makeSink: (Schema) throws -> any BatchSink,
                     quarantinePath: String, options: IngestOptions, writerOptions: WriterOptions) throws {
        let schema = Schema(source.columns + Provenance.fields)
        self.init(source: source, file: file, schema: schema, writer: nil, sink: try makeSink(schema),
                  quarantinePath: quarantinePath, options: options, writerOptions: writerOptions)
    }

    /// Nothing here throws: the writer or sink is made before the buffers
    /// are allocated, so a failure leaves nothing to free.
    private init(source: IngestSource, file: String, schema: Schema, writer: ParquetWriter?, sink: (any BatchSink)?,
                 quarantinePath: String, options: IngestOptions, writerOptions: WriterOptions) {
        self.source = source
        self.file = file
        self.schema = schema
        batchRows = max(1, min(options.batchRows, options.rowGroupRows))
        lines = .allocate(capacity: batchRows)
        fields = source.columns
        sinks = .allocate(capacity: source.columns.count)
        for (i, field) in source.columns.enumerated() {
            (sinks + i).initialize(to: ColumnSink(field, capacity: batchRows))
        }
        self.writer = writer
        self.sink = sink
        quarantine = QuarantineSink(file: file, path: quarantinePath, rawLimit: options.quarantineRawLimit,
                                    writerOptions: writerOptions)
    }

    deinit {
        for c in fields.indices { sinks[c].deallocate() }
        sinks.deinitialize(count: fields.count)
        sinks.deallocate()
        lines.deallocate()
    }

    /// Counts a record as read (call once per record, good or bad).
    @inline(__always) func read() { rowsRead += 1 }

    /// Every sink holds the row whose record starts at `line`: count it,
    /// and flush a full batch.
    @inline(__always) func commitRow(line: Int64) throws {
        lines[rows] = line
        rows += 1
        if rows >= batchRows { try flush() }
    }

    /// Undoes the partial row and records it in the quarantine.
    func reject(line: Int64, column: String?, reason: String, raw: UnsafeRawBufferPointer, fullLength: Int64? = nil) throws {
        for c in fields.indices { sinks[c].truncate(to: rows) }
        try quarantine.add(line: line, column: column, reason: reason, raw: raw, fullLength: fullLength)
    }

    /// Writes rows converted column by column (Parquet sources): `columns`
    /// in declared order, `lines` their `_source_line`s. Counts them read
    /// and written.
    func appendRows(_ columns: [Column], lines rowLines: [Int64]) throws {
        try flush()
        guard !rowLines.isEmpty else { return }
        var all = columns
        all.append(try fileColumn(rowLines.count))
        all.append(try Column(.int64, .int64(rowLines)))
        try emit(try ColumnBatch(schema: schema, columns: all))
        rowsRead += Int64(rowLines.count)
        rowsWritten += Int64(rowLines.count)
    }

    /// Records a row that did not convert (Parquet sources): counts it read.
    func quarantineRow(line: Int64, column: String?, reason: String, raw: String) throws {
        rowsRead += 1
        var text = raw
        try text.withUTF8 { try quarantine.add(line: line, column: column, reason: reason, raw: UnsafeRawBufferPointer($0)) }
    }

    func flush() throws {
        try ExecutionCancellation.check()   // a stage timeout: stop between batches
        guard rows > 0 else { return }
        try appendBatch()
        for c in fields.indices { sinks[c].reset() }
        rowsWritten += Int64(rows)
        rows = 0
        if !sized {
            sized = true
            sizeWriter()
            progress = nil   // asked once: let go of the reader it holds
        }
    }

    /// Tells the writer how many more rows to expect, projected from the
    /// rows and bytes of the first batch (2% over, so the row group does not
    /// need a second allocation for a slightly longer tail).
    private func sizeWriter() {
        guard let (read, all) = progress?(), read > 0, all > read else { return }
        let more = Double(all - read) / Double(read) * Double(rowsWritten) * 1.02
        writer?.reserve(rows: Int(min(more, Double(Int32.max))) + 1)
    }

    /// One batch to the chunk's writer, or to the fused sink.
    private func emit(_ batch: ColumnBatch) throws {
        if let writer { try writer.append(batch) } else { try sink!.append(batch) }
    }

    /// The batch's columns exist only in this call, so the sinks' buffers are
    /// unshared again when it returns.
    private func appendBatch() throws {
        var columns = try fields.indices.map { try sinks[$0].column(fields[$0].type) }
        columns.append(try fileColumn(rows))
        linesOut.removeAll(keepingCapacity: true)
        linesOut.append(contentsOf: UnsafeBufferPointer(start: lines, count: rows))
        columns.append(try Column(.int64, .int64(linesOut)))
        try emit(try ColumnBatch(schema: schema, columns: columns))
    }

    /// `_source_file` for `n` rows: the file's bytes `n` times (the writer
    /// dictionary-encodes it to one value and a run of zero indices).
    private func fileColumn(_ n: Int) throws -> Column {
        if n == batchRows, let full = fullBatchFiles { return full }
        let name = Array(file.utf8)
        var bytes = [UInt8]()
        bytes.reserveCapacity(name.count * n)
        for _ in 0..<n { bytes.append(contentsOf: name) }
        let column = try Column(.string, .bytes(try StringColumn(offsets: (0...n).map { $0 * name.count }, bytes: bytes)))
        if n == batchRows { fullBatchFiles = column }
        return column
    }

    func finish() throws -> IngestResult {
        try flush()
        let q = try quarantine.finish()
        guard let writer else { throw IngestError.invalidSource(file: file, message: "a fused ingest has no chunk to finish") }
        let chunk = try writer.finish()
        return IngestResult(chunk: chunk, quarantine: q, rowsRead: rowsRead, rowsWritten: rowsWritten,
                            rowsQuarantined: quarantine.rows)
    }

    func abandon() {
        writer?.abandon()
        quarantine.abandon()
    }
}
