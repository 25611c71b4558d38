import Columnar

/// What one shard's normalize wrote.
public struct NormalizeResult: Sendable {
    /// One chunk per non-empty partition, by partition.
    public let partitions: [PartitionChunk]
    public let rowsIn: Int64
    public let rowsOut: Int64
    /// The schema after the steps, nil when no input batch was seen.
    public let schema: Schema?
}

/// The normalize stage for one shard: reads `inputChunks` one row group at a
/// time, applies `steps`, and hash-partitions the rows on `partitionBy` into
/// `partitions` chunks in `outputDir` (see `ShuffleWriter`). Memory: one input
/// row group plus the P partition writers' buffers. Every batch must come out
/// of the steps with the same schema (inputs of one source do).
public func normalize(
    inputChunks: [String], steps: [NormalizeOp], caster: (any ColumnCaster)? = nil,
    partitionBy: [String], partitions: Int, outputDir: String,
    metadata: [KeyValue] = [], options: ShuffleOptions = ShuffleOptions()
) throws -> NormalizeResult {
    let normalizer = Normalizer(steps: steps, caster: caster)
    let shuffle = try ShuffleWriter(partitionBy: partitionBy, partitions: partitions, outputDir: outputDir,
                                    metadata: metadata, options: options)
    var rowsIn: Int64 = 0, rowsOut: Int64 = 0
    var schema: Schema?
    do {
        for path in inputChunks {
            let reader = try ParquetReader(path: path)
            do {
                try reader.forEachRowGroup { batch in
                    rowsIn += Int64(batch.rowCount)
                    let out = try normalizer.apply(batch)
                    if schema == nil { schema = out.schema }
                    rowsOut += Int64(out.rowCount)
                    try shuffle.append(out)
                }
            } catch let error as OperatorError {
                throw OperatorError.input(path: path, error)
            }
        }
        return NormalizeResult(partitions: try shuffle.finish(), rowsIn: rowsIn, rowsOut: rowsOut, schema: schema)
    } catch {
        shuffle.abandon()
        throw error
    }
}
