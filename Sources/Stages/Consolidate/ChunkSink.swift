import Columnar

/// Where a stage's sorted or validated batches go, in order: a `ChunkSink`
/// writing chunks, or a fused follower stage (validate's `ValidateWriter`
/// inside consolidate, see `consolidate(…, into:)`).
public protocol BatchSink: AnyObject {
    func append(_ batch: ColumnBatch) throws
}

/// Writes a stream of batches as numbered chunks of at most `rowsPerChunk`
/// rows (`<prefix>-00000.parquet`, `-00001`, …). Row groups are cut by rows
/// only (the byte limit is lifted), so the files are a function of the row
/// sequence alone, however the stream was batched: the same rows give
/// byte-identical chunks.
final class ChunkSink: BatchSink {
    private let directory: String
    private let prefix: String
    private let schema: Schema
    private let rowsPerChunk: Int
    private let options: WriterOptions
    private var writer: ParquetWriter?
    private var rowsInFile = 0
    private(set) var chunks: [WriteResult] = []

    init(directory: String, prefix: String, schema: Schema, rowsPerChunk: Int, rowGroupRows: Int,
         compression: WriterOptions.Compression, metadata: [KeyValue]) {
        self.directory = directory
        self.prefix = prefix
        self.schema = schema
        self.rowsPerChunk = rowsPerChunk
        var o = WriterOptions()
        o.rowGroupRows = rowGroupRows
        o.rowGroupBytes = Int.max / 4
        o.compression = compression
        o.keyValueMetadata = metadata
        options = o
    }

    static func name(_ prefix: String, _ n: Int) -> String {
        let d = String(n)
        return prefix + "-" + String(repeating: "0", count: max(0, 5 - d.count)) + d + ".parquet"
    }

    func append(_ batch: ColumnBatch) throws {
        var start = 0
        while start < batch.rowCount {
            if writer == nil {
                writer = try ParquetWriter(path: directory + "/" + ChunkSink.name(prefix, chunks.count),
                                           schema: schema, options: options)
                rowsInFile = 0
            }
            let take = min(batch.rowCount - start, rowsPerChunk - rowsInFile)
            let part = start == 0 && take == batch.rowCount ? batch : batch.slice(start..<(start + take))
            try writer!.append(try ColumnBatch(schema: schema, columns: part.columns))
            rowsInFile += take
            start += take
            if rowsInFile == rowsPerChunk { try closeFile() }
        }
    }

    private func closeFile() throws {
        guard let w = writer else { return }
        writer = nil
        chunks.append(try w.finish())
    }

    func finish() throws -> [WriteResult] {
        try closeFile()
        return chunks
    }

    func abandon() {
        writer?.abandon()
        writer = nil
    }
}
