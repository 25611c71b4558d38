import Columnar

/// One partition's output of a shard's shuffle.
public struct PartitionChunk: Sendable, Hashable {
    public let partition: Int
    public let chunk: WriteResult

    public init(partition: Int, chunk: WriteResult) {
        self.partition = partition
        self.chunk = chunk
    }
}

/// Settings of the shuffle's partition writers.
public struct ShuffleOptions: Sendable {
    /// Rows each partition writer buffers before it writes a row group. All
    /// P writers are open at once, so the shuffle holds up to
    /// P × rowGroupRows rows (plus one input batch): keep P × rowGroupRows
    /// within the worker's memory.
    public var rowGroupRows: Int = 64 * 1024
    /// Level 1: only consolidate reads these chunks, once (see
    /// `ConsolidateOptions.compression`).
    public var compression: WriterOptions.Compression = .zstd(level: 1)

    public init() {}
}

/// Hash-partitions batches on a key into up to P Parquet files
/// (`part-00007.parquet` for partition 7), one per non-empty partition,
/// each opened when its first row arrives. Rows keep their input order
/// inside each partition.
public final class ShuffleWriter {
    public let partitionBy: [String]
    public let partitions: Int
    public let outputDir: String
    private let options: WriterOptions
    private var writers: [ParquetWriter?]
    private var schema: Schema?
    private var failed = false

    public init(partitionBy: [String], partitions: Int, outputDir: String,
                metadata: [KeyValue] = [], options: ShuffleOptions = ShuffleOptions()) throws {
        guard partitions > 0 else {
            throw OperatorError.invalidSetting("partitions must be at least 1, got \(partitions)")
        }
        // Without a key there is nothing to hash: only one partition makes sense
        // (a spec without `consolidate`).
        guard !partitionBy.isEmpty || partitions == 1 else {
            throw OperatorError.invalidSetting("partition_by needs at least one column")
        }
        try makeDirectories(outputDir)
        self.partitionBy = partitionBy
        self.partitions = partitions
        self.outputDir = outputDir
        var o = WriterOptions()
        o.rowGroupRows = options.rowGroupRows
        o.compression = options.compression
        o.keyValueMetadata = metadata
        self.options = o
        writers = Array(repeating: nil, count: partitions)
    }

    /// The file name of partition `p`'s chunk.
    public static func fileName(partition p: Int) -> String {
        let digits = String(p)
        return "part-" + String(repeating: "0", count: max(0, 5 - digits.count)) + digits + ".parquet"
    }

    public func append(_ batch: ColumnBatch) throws {
        guard !failed else { throw OperatorError.invalidSetting("shuffle writer used after a failure") }
        do {
            try route(batch)
        } catch {
            abandon()
            throw error
        }
    }

    private func route(_ batch: ColumnBatch) throws {
        if let schema, schema != batch.schema {
            throw OperatorError.schemaMismatch(
                "shuffle: batch schema \(describe(batch.schema)) differs from the first batch's \(describe(schema))")
        }
        schema = batch.schema
        for name in partitionBy { _ = try batch.requireColumn(name, "partition key") }
        guard batch.rowCount > 0 else { return }
        let assigned = partitions == 1
            ? [Int](repeating: 0, count: batch.rowCount)
            : try StableHash.partitions(batch, columns: partitionBy, count: partitions)
        // Counting sort of row indices by partition, stable within each.
        var counts = [Int](repeating: 0, count: partitions)
        for p in assigned { counts[p] += 1 }
        var rowsOf = counts.map { c -> [Int] in
            var a = [Int]()
            a.reserveCapacity(c)
            return a
        }
        for (r, p) in assigned.enumerated() { rowsOf[p].append(r) }
        for p in 0..<partitions where !rowsOf[p].isEmpty {
            let part = Gather.batch(batch, rowsOf[p])
            if writers[p] == nil {
                writers[p] = try ParquetWriter(
                    path: outputDir + "/" + ShuffleWriter.fileName(partition: p), schema: batch.schema, options: options)
            }
            try writers[p]!.append(part)
        }
    }

    /// Closes every writer; the chunks of the non-empty partitions, by partition.
    public func finish() throws -> [PartitionChunk] {
        var out = [PartitionChunk]()
        do {
            for p in 0..<partitions {
                guard let w = writers[p] else { continue }
                writers[p] = nil
                out.append(PartitionChunk(partition: p, chunk: try w.finish()))
            }
        } catch {
            abandon()
            throw error
        }
        return out
    }

    /// Drops every unfinished partition file.
    public func abandon() {
        failed = true
        for w in writers { w?.abandon() }
        writers = Array(repeating: nil, count: partitions)
    }
}

func describe(_ schema: Schema) -> String {
    "(" + schema.fields.map { "\($0.name) \($0.type)\($0.nullable ? "" : " not null")" }.joined(separator: ", ") + ")"
}
