#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Columnar
import FleetCore

/// Settings of one partition's consolidate.
public struct ConsolidateOptions: Sendable {
    /// Rows buffered for sorting before a sorted run is spilled to disk,
    /// measured by the estimated bytes of their buffers. See README.md.
    public var memoryBudgetBytes: Int = 256 << 20
    /// Rows per output chunk (the last one may hold fewer).
    public var rowsPerChunk: Int = 1 << 20
    /// Rows per row group of the output chunks.
    public var rowGroupRows: Int = 128 * 1024
    /// Level 1: only validate reads these chunks, once; level 3 costs about
    /// 15% more CPU per write for a few percent fewer bytes. Validate's own
    /// chunks, the ones publish links, stay at level 3.
    public var compression: WriterOptions.Compression = .zstd(level: 1)
    /// Where sorted runs are spilled (a fresh subdirectory is made and
    /// removed); nil means beside the output, in `outputDir/.spill`.
    public var tempDir: String?
    /// Sorted runs merged at once (each holds an open file and one 8 Ki-row
    /// row group); more runs are first merged in passes of this many.
    public var mergeFanIn: Int = 64
    /// Tests only: de-duplicate with the hash pass even when the key is a
    /// prefix of the sort key, to compare the two paths.
    var forceHashDedupe = false

    public init() {}
}

/// What one partition's consolidate wrote.
public struct ConsolidateResult: Sendable {
    /// The output chunks in order; together they hold the rows sorted by the sort key.
    public let chunks: [WriteResult]
    public let rowsIn: Int64
    public let rowsOut: Int64
    /// Rows dropped as duplicates of a kept row.
    public let duplicatesRemoved: Int64
    /// Sorted runs spilled to disk (0 when the partition fit the budget).
    public let spilledRuns: Int
    /// The output schema, nil when there were no inputs.
    public let schema: Schema?
}

/// Consolidates one partition: merges its chunks from every shard into few
/// large chunks (`consolidated-00000.parquet`, …) sorted by `sortBy` (nulls
/// first, see `SortKeys`; equal keys keep input order), optionally
/// de-duplicated by a record key.
///
/// `inputChunks` must be given in a deterministic order (shard index): it
/// defines "first" and breaks ties. The same inputs and settings give
/// byte-identical chunks, whatever the memory budget. Zero rows out write no
/// chunk. Every input must have the same column names and types; a column
/// nullable in any input is nullable in the output.
public func consolidate(
    inputChunks: [String], partitionBy: [String], sortBy: [String], dedupe: DedupeRule?,
    outputDir: String, metadata: [KeyValue] = [], options: ConsolidateOptions = ConsolidateOptions()
) throws -> ConsolidateResult {
    var sink: ChunkSink?
    do {
        let r = try consolidate(inputChunks: inputChunks, partitionBy: partitionBy, sortBy: sortBy, dedupe: dedupe,
                                outputDir: outputDir, options: options) { schema in
            let s = ChunkSink(directory: outputDir, prefix: "consolidated", schema: schema,
                              rowsPerChunk: options.rowsPerChunk, rowGroupRows: options.rowGroupRows,
                              compression: options.compression, metadata: metadata)
            sink = s
            return s
        }
        return ConsolidateResult(chunks: try sink?.finish() ?? [], rowsIn: r.rowsIn, rowsOut: r.rowsOut,
                                 duplicatesRemoved: r.duplicatesRemoved, spilledRuns: r.spilledRuns, schema: r.schema)
    } catch {
        sink?.abandon()
        throw error
    }
}

/// `consolidate`, its sorted rows handed to the sink `open` makes (given the
/// output schema, called once, not at all when there are no inputs) instead
/// of written as chunks: how a fused validate takes them (`ValidateWriter`).
/// The result lists no chunks; the caller finishes (or abandons) its sink.
/// The batches come in sort order, at most one merge batch at a time.
public func consolidate(
    inputChunks: [String], partitionBy: [String], sortBy: [String], dedupe: DedupeRule?,
    outputDir: String, options: ConsolidateOptions = ConsolidateOptions(), into open: (Schema) throws -> any BatchSink
) throws -> ConsolidateResult {
    guard options.rowsPerChunk > 0, options.rowGroupRows > 0, options.memoryBudgetBytes > 0, options.mergeFanIn >= 2 else {
        throw OperatorError.invalidSetting(
            "consolidate: rowsPerChunk, rowGroupRows and memoryBudgetBytes must be positive and mergeFanIn at least 2")
    }
    try makeDirectories(outputDir)
    if let dedupe {
        guard !dedupe.key.isEmpty else { throw OperatorError.invalidSetting("dedupe: the key needs at least one column") }
        let missing = partitionBy.filter { !dedupe.key.contains($0) }
        guard missing.isEmpty else {
            throw OperatorError.invalidSetting(
                "dedupe key [\(dedupe.key.joined(separator: ", "))] must contain the partition key column(s) \(missing.map { "'\($0)'" }.joined(separator: ", ")), so that duplicates meet in one partition")
        }
    }
    guard !inputChunks.isEmpty else {
        return ConsolidateResult(chunks: [], rowsIn: 0, rowsOut: 0, duplicatesRemoved: 0, spilledRuns: 0, schema: nil)
    }
    // Readers are opened one at a time in each pass, so a partition with
    // thousands of shard chunks never holds thousands of open files.
    let schema = try unifiedSchema(inputChunks)
    for name in sortBy { _ = try schema.requireColumn(name, "consolidate sort_by") }
    for name in partitionBy { _ = try schema.requireColumn(name, "consolidate partition_by") }

    if let dedupe {
        for name in dedupe.key { _ = try schema.requireColumn(name, "dedupe key") }
        if case .latest(let by) = dedupe.keep { _ = try schema.requireColumn(by, "dedupe by") }
        if !options.forceHashDedupe, !hashDedupeRequestedByEnvironment, let k = dedupe.prefixLength(of: sortBy) {
            return try consolidateDedupingInMerge(
                inputChunks: inputChunks, schema: schema, sortBy: sortBy, dedupe: dedupe, keyColumns: k,
                outputDir: outputDir, options: options, into: open)
        }
    }

    // Pass 1 (only with dedupe, when the key is not a prefix of the sort
    // key): the winning row of each record key.
    var kept: [Int]?
    if let dedupe {
        var index = DedupeIndex(dedupe)
        var rows = 0
        for path in inputChunks { rows += Int(try ParquetReader(path: path).rowCount) }
        try index.reserve(rows: rows, schema: schema)
        for path in inputChunks {
            try ExecutionCancellation.check()
            try ParquetReader(path: path).forEachRowGroup(columns: index.columnsRead) { try index.add($0) }
        }
        kept = index.keptOrdinals()
    }

    // Pass 2: keep the winners, sort within the budget, write.
    let spillDir = try makeSpillDir(options.tempDir ?? outputDir + "/.spill")
    defer { removeTree(spillDir) }
    let keyIndices = sortBy.map { schema.index(of: $0)! }
    let sorter = ExternalSorter(schema: schema, keyIndices: keyIndices,
                                budgetBytes: options.memoryBudgetBytes, tempDir: spillDir, fanIn: options.mergeFanIn)
    let sink = try open(schema)
    var rowsIn: Int64 = 0, rowsOut: Int64 = 0
    var ordinal = 0, next = 0
    do {   // the caller abandons its sink on an error
        for path in inputChunks {
            try ExecutionCancellation.check()   // a stage timeout: stop between chunks
            try ParquetReader(path: path).forEachRowGroup { raw in
                var batch = try ColumnBatch(schema: schema, columns: raw.columns)
                rowsIn += Int64(batch.rowCount)
                if let kept {
                    var rows = [Int]()
                    let end = ordinal + batch.rowCount
                    while next < kept.count, kept[next] < end {
                        rows.append(kept[next] - ordinal)
                        next += 1
                    }
                    batch = Gather.batch(batch, rows)
                }
                ordinal += raw.rowCount
                rowsOut += Int64(batch.rowCount)
                try sorter.add(batch)
            }
        }
        try sorter.finish(into: sink)
        return ConsolidateResult(chunks: [], rowsIn: rowsIn, rowsOut: rowsOut,
                                 duplicatesRemoved: rowsIn - rowsOut, spilledRuns: sorter.spilledRuns, schema: schema)
    }
}

/// Consolidate with a record key that is a prefix of the sort key: one pass
/// over the inputs into the sorter, and the duplicates dropped from its
/// sorted output (`SortedDeduper`). When `sortBy` has columns beyond the key,
/// an int64 column of input positions rides along through the sort (and its
/// spills) so that "first" and the ties of "latest" still follow input
/// order; it is dropped before writing. Like the sink-taking `consolidate`,
/// the caller finishes (or abandons) the sink `open` makes.
private func consolidateDedupingInMerge(
    inputChunks: [String], schema: Schema, sortBy: [String], dedupe: DedupeRule, keyColumns: Int,
    outputDir: String, options: ConsolidateOptions, into open: (Schema) throws -> any BatchSink
) throws -> ConsolidateResult {
    let needsOrdinal = sortBy.count > keyColumns
    var sortSchema = schema
    if needsOrdinal { sortSchema.fields.append(Field("\u{1}ordinal", .int64, nullable: false)) }
    let spillDir = try makeSpillDir(options.tempDir ?? outputDir + "/.spill")
    defer { removeTree(spillDir) }
    let keyIndices = sortBy.map { schema.index(of: $0)! }
    let sorter = ExternalSorter(schema: sortSchema, keyIndices: keyIndices,
                                budgetBytes: options.memoryBudgetBytes, tempDir: spillDir, fanIn: options.mergeFanIn)
    let sink = try open(schema)
    var byIndex: Int?
    if case .latest(let by) = dedupe.keep { byIndex = schema.index(of: by)! }
    let width = schema.fields.count
    let deduper = SortedDeduper(
        keyIndices: Array(keyIndices.prefix(keyColumns)), byIndex: byIndex,
        ordinalIndex: needsOrdinal ? width : nil
    ) { batch in
        try sink.append(needsOrdinal
            ? try ColumnBatch(schema: schema, columns: Array(batch.columns.prefix(width)))
            : batch)
    }
    var rowsIn: Int64 = 0
    do {   // the caller abandons its sink on an error
        for path in inputChunks {
            try ExecutionCancellation.check()   // a stage timeout: stop between chunks
            try ParquetReader(path: path).forEachRowGroup { raw in
                var columns = raw.columns
                if needsOrdinal {
                    let base = rowsIn
                    columns.append(try Column(.int64, .int64((0..<Int64(raw.rowCount)).map { base + $0 })))
                }
                let batch = try ColumnBatch(schema: sortSchema, columns: columns)
                rowsIn += Int64(batch.rowCount)
                try sorter.add(batch)
            }
        }
        try sorter.finish { try deduper.add($0) }
        try deduper.finish()
        let rowsOut = deduper.rowsOut
        return ConsolidateResult(chunks: [], rowsIn: rowsIn, rowsOut: rowsOut,
                                 duplicatesRemoved: rowsIn - rowsOut, spilledRuns: sorter.spilledRuns, schema: schema)
    }
}

/// `BIS_CONSOLIDATE_DEDUPE=hash` forces the hash pass even when the key is a
/// prefix of the sort key: a diagnostic, to compare the two paths on real
/// data (same output either way).
private var hashDedupeRequestedByEnvironment: Bool {
    guard let v = getenv("BIS_CONSOLIDATE_DEDUPE") else { return false }
    return String(cString: v) == "hash"
}

/// The inputs' common schema: same names and types in the same order; a
/// column is nullable when it is nullable in any input.
func unifiedSchema(_ paths: [String]) throws -> Schema {
    let first = try ParquetReader(path: paths[0]).schema
    var schema = first
    for path in paths.dropFirst() {
        let r = try ParquetReader(path: path)
        let names = r.schema.fields.map { "\($0.name) \($0.type)" }
        guard names == schema.fields.map({ "\($0.name) \($0.type)" }) else {
            throw OperatorError.schemaMismatch(
                "consolidate: \(path) has columns \(describe(r.schema)) but \(paths[0]) has \(describe(first))")
        }
        for i in schema.fields.indices where r.schema.fields[i].nullable { schema.fields[i].nullable = true }
    }
    return schema
}

private func makeSpillDir(_ base: String) throws -> String {
    _ = mkdir(base, 0o755)
    var template = Array((base + "/sort-XXXXXX").utf8CString)
    guard let p = mkdtemp(&template) else {
        throw OperatorError.invalidSetting("consolidate: cannot create a spill directory under \(base) (errno \(errno))")
    }
    return String(cString: p)
}

/// Removes the spill directory's files (runs only; no subdirectories) and the
/// directory, and its parent when that is now empty.
private func removeTree(_ dir: String) {
    if let d = opendir(dir) {
        while let e = readdir(d) {
            let name = withUnsafePointer(to: e.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
            }
            if name != "." && name != ".." { unlink(dir + "/" + name) }
        }
        closedir(d)
    }
    rmdir(dir)
    let parent = String(dir[..<(dir.lastIndex(of: "/") ?? dir.endIndex)])
    if parent.hasSuffix("/.spill") { rmdir(parent) }
}
