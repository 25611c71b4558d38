import Columnar
import FleetCore

/// Settings of one partition's validate.
public struct ValidateOptions: Sendable {
    /// Columns shown first in every example besides the rule's own (the
    /// partition key, say), so an operator can find the row.
    public var exampleColumns: [String] = []
    /// Examples kept per rule.
    public var examplesPerRule: Int = 20
    /// Rows per validated chunk (the last one may hold fewer).
    public var rowsPerChunk: Int = 1 << 20
    public var rowGroupRows: Int = 128 * 1024
    public var compression: WriterOptions.Compression = .zstd(level: 3)
    /// Keep the provenance columns in the validated chunks. A pipeline
    /// whose dataset is published without them (`publish.provenance`
    /// false, the default) drops them here, where every row is written
    /// anyway, so publish can link the chunks instead of rewriting them.
    /// Quarantined rows name their file and line either way.
    public var keepProvenance: Bool = true

    public init(exampleColumns: [String] = [], keepProvenance: Bool = true) {
        self.exampleColumns = exampleColumns
        self.keepProvenance = keepProvenance
    }
}

/// The quarantine chunk's columns: the input file and line the row came
/// from (its provenance columns; null only for rows of chunks that lack them,
/// made by hand rather than by ingest), the rule names a row failed (`; `
/// between them, in spec order), the reasons (same order), and the row's
/// values as one JSON object (without the provenance columns). `file` and
/// `line` mean what they mean in ingest's quarantine.
public let validateQuarantineSchema = Schema([
    Field("file", .string),
    Field("line", .int64),
    Field("rule", .string, nullable: false),
    Field("reason", .string, nullable: false),
    Field("row", .string, nullable: false),
])

/// Validates one partition: reads its consolidated chunks one row group at a
/// time, checks every row rule over each batch (one loop over the column
/// buffers per rule), writes the rows that pass every rule to
/// `validated-00000.parquet`, … and the others to `quarantine.parquet`
/// (schema `validateQuarantineSchema`; a row that fails several rules is
/// quarantined once, naming them all, and counted under each), and
/// aggregates the passing rows into one partial per summary.
///
/// Rules see every row independently: a row quarantined by one rule still
/// counts as seen for `unique`. Memory: one row group, plus for each unique
/// rule the key bytes of every distinct key in the partition. The same
/// inputs and rules give byte-identical chunks. No inputs write nothing and
/// give no summary partials (there is no schema to aggregate over); a rule
/// naming a column the chunks lack, or of another type than it needs, fails
/// the task with an `OperatorError`.
public func validate(
    inputChunks: [String], rules: [RowRule], partition: Int, outputDir: String,
    summaries: [SummarySpec] = [], metadata: [KeyValue] = [], options: ValidateOptions = ValidateOptions()
) throws -> ValidateResult {
    try makeDirectories(outputDir)
    guard !inputChunks.isEmpty else {
        return ValidateResult(partition: partition, rowsIn: 0, rowsPassed: 0, rowsFailed: 0,
                              rules: rules.map { RuleResult(name: $0.name, failed: 0, examples: []) },
                              chunks: [], quarantine: nil, summaries: [])
    }
    let writer = try ValidateWriter(schema: try unifiedSchema(inputChunks), rules: rules, partition: partition,
                                    outputDir: outputDir, summaries: summaries, metadata: metadata, options: options)
    do {
        for path in inputChunks {
            writer.source = path
            try ParquetReader(path: path).forEachRowGroup { raw in
                try writer.append(try ColumnBatch(schema: writer.schema, columns: raw.columns))
            }
        }
        return try writer.finish()
    } catch {
        writer.abandon()
        throw error
    }
}

/// Validate's checks and writers over a stream of batches: what `validate`
/// does with each row group of its chunks, and what a fused consolidate
/// hands its sorted batches to (`consolidate(…, into:)`), so consolidate's
/// output is never written as chunks and read back. Writes
/// `validated-NNNNN.parquet` and `quarantine.parquet` into `outputDir` as
/// `validate` does; the same batches (however cut) give the same files.
/// Memory: the batch, the writers' row groups, and each unique rule's keys.
public final class ValidateWriter: BatchSink {
    public let schema: Schema
    /// Where the batches come from, named in a rule's error (a chunk path,
    /// or the fused consolidate's partition).
    public var source: String
    private let partition: Int
    private let options: ValidateOptions
    private let compiled: [CompiledRule]
    private var partials: [(String, PartialAggregate)]
    private var counts: [Int64]
    private var examples: [[FailureExample]]
    private let fileIndex: Int?, lineIndex: Int?
    private let shown: [[Int]]
    private let outputSchema: Schema
    private let outputColumns: [Int]
    private let sink: ChunkSink
    private let quarantine: ValidateQuarantine
    private var rowsIn: Int64 = 0, passed: Int64 = 0, failed: Int64 = 0

    public init(schema: Schema, rules: [RowRule], partition: Int, outputDir: String, summaries: [SummarySpec] = [],
                metadata: [KeyValue] = [], options: ValidateOptions = ValidateOptions(), source: String = "") throws {
        try makeDirectories(outputDir)
        self.schema = schema
        self.source = source
        self.partition = partition
        self.options = options
        compiled = try rules.map { try CompiledRule($0, schema: schema) }
        for c in options.exampleColumns { _ = try schema.requireColumn(c, "validate example columns") }
        partials = try summaries.map { s in
            (s.name, try PartialAggregate(groupBy: s.groupBy, aggregates: SpecOperators.aggregateColumns(s), schema: schema))
        }
        counts = [Int64](repeating: 0, count: compiled.count)
        examples = [[FailureExample]](repeating: [], count: compiled.count)
        fileIndex = schema.index(of: Provenance.file)
        lineIndex = schema.index(of: Provenance.line)
        shown = compiled.map { rule in
            var names = options.exampleColumns
            for c in rule.columns where !names.contains(c) { names.append(c) }
            return names.map { schema.index(of: $0)! }
        }
        outputSchema = options.keepProvenance ? schema : Provenance.stripped(schema)
        outputColumns = outputSchema.fields.map { schema.index(of: $0.name)! }
        sink = ChunkSink(directory: outputDir, prefix: "validated", schema: outputSchema, rowsPerChunk: options.rowsPerChunk,
                         rowGroupRows: options.rowGroupRows, compression: options.compression, metadata: metadata)
        var writerOptions = WriterOptions()
        writerOptions.compression = options.compression
        writerOptions.keyValueMetadata = metadata
        quarantine = ValidateQuarantine(path: outputDir + "/quarantine.parquet", options: writerOptions)
    }

    /// Checks one batch (of `schema`'s columns) and writes its rows.
    public func append(_ batch: ColumnBatch) throws {
        // A stage timeout stops here, batch by batch: fused into consolidate,
        // this also stops the sorter's merge that feeds it.
        try ExecutionCancellation.check()
        rowsIn += Int64(batch.rowCount)
        var failedRules = [[Int]](repeating: [], count: batch.rowCount)
        for (k, rule) in compiled.enumerated() {
            let rows: [Int]
            do {
                rows = try rule.failures(batch)
            } catch {
                throw OperatorError.input(path: source, .invalidSetting("validate rule '\(rule.name)': \(error)"))
            }
            counts[k] += Int64(rows.count)
            for r in rows {
                failedRules[r].append(k)
                if examples[k].count < options.examplesPerRule {
                    examples[k].append(FailureExample(
                        values: shown[k].map { i in
                            ExampleValue(column: schema.fields[i].name,
                                         value: batch.columns[i].isNull(r) ? nil : RowText.value(batch.columns[i], row: r))
                        },
                        reason: rule.reason(batch, row: r)))
                }
            }
        }
        var mask = [Bool](repeating: true, count: batch.rowCount)
        for r in 0..<batch.rowCount where !failedRules[r].isEmpty {
            mask[r] = false
            failed += 1
            try quarantine.add(file: fileIndex.flatMap { batch.columns[$0].scalar(at: r) },
                               line: lineIndex.flatMap { batch.columns[$0].scalar(at: r) },
                               rule: failedRules[r].map { compiled[$0].name }.joined(separator: "; "),
                               reason: failedRules[r].map { compiled[$0].reason(batch, row: r) }.joined(separator: "; "),
                               row: RowText.json(batch, row: r))
        }
        let good = Gather.batch(batch, mask: mask)
        passed += Int64(good.rowCount)
        try sink.append(outputColumns.count == schema.fields.count
                        ? good : try ColumnBatch(schema: outputSchema, columns: outputColumns.map { good.columns[$0] }))
        for i in partials.indices { try partials[i].1.add(good) }
    }

    /// Closes the files; the partition's result.
    public func finish() throws -> ValidateResult {
        let chunks = try sink.finish()
        let q = try quarantine.finish()
        return ValidateResult(
            partition: partition, rowsIn: rowsIn, rowsPassed: passed, rowsFailed: failed,
            rules: compiled.indices.map { RuleResult(name: compiled[$0].name, failed: counts[$0], examples: examples[$0]) },
            chunks: chunks.map(ChunkRecord.init), quarantine: q.map(ChunkRecord.init),
            summaries: partials.map { SummaryPartial(name: $0.0, partial: $0.1) })
    }

    /// Removes the files begun.
    public func abandon() {
        sink.abandon()
        quarantine.abandon()
    }
}

/// Quarantined rows, written in batches; the file is created at the first row.
final class ValidateQuarantine {
    let path: String
    let options: WriterOptions
    private var writer: ParquetWriter?
    private var files = StringColumn(), fileValid: [Bool] = [], lines: [Int64] = [], lineValid: [Bool] = []
    private var rules = StringColumn(), reasons = StringColumn(), rows = StringColumn()
    private var pending = 0

    init(path: String, options: WriterOptions) {
        self.path = path
        self.options = options
    }

    /// `file` and `line`: the row's provenance values (nil when the chunk lacks them).
    func add(file: Scalar?, line: Scalar?, rule: String, reason: String, row: String) throws {
        if case .bytes(let f)? = file {
            files.append(bytes: f)
            fileValid.append(true)
        } else {
            files.append(bytes: EmptyCollection<UInt8>())
            fileValid.append(false)
        }
        if case .int(let l)? = line {
            lines.append(l)
            lineValid.append(true)
        } else {
            lines.append(0)
            lineValid.append(false)
        }
        rules.append(rule)
        reasons.append(reason)
        rows.append(row)
        pending += 1
        if pending >= 4096 { try flush() }
    }

    private func flush() throws {
        guard pending > 0 else { return }
        if writer == nil { writer = try ParquetWriter(path: path, schema: validateQuarantineSchema, options: options.forQuarantine) }
        try writer!.append(try ColumnBatch(schema: validateQuarantineSchema, columns: [
            try Column(.string, .bytes(files), validity: fileValid.contains(false) ? fileValid : nil),
            try Column(.int64, .int64(lines), validity: lineValid.contains(false) ? lineValid : nil),
            try Column(.string, .bytes(rules)), try Column(.string, .bytes(reasons)), try Column(.string, .bytes(rows)),
        ]))
        files.removeAll(keepingCapacity: true)
        fileValid.removeAll(keepingCapacity: true)
        lines.removeAll(keepingCapacity: true)
        lineValid.removeAll(keepingCapacity: true)
        rules.removeAll(keepingCapacity: true)
        reasons.removeAll(keepingCapacity: true)
        rows.removeAll(keepingCapacity: true)
        pending = 0
    }

    func finish() throws -> WriteResult? {
        try flush()
        return try writer?.finish()
    }

    func abandon() { writer?.abandon() }
}

extension SpecOperators {
    /// A summary's aggregates as the partial aggregate's columns.
    public static func aggregateColumns(_ summary: SummarySpec) -> [AggregateColumn] {
        summary.aggregates.map { a in
            let op: AggregateOp
            switch (a.function, a.column) {
            case (.count, nil): op = .count
            case (.count, let c?): op = .countNonNull(c)
            case (.countDistinct, let c): op = .countDistinct(c ?? "")
            case (.sum, let c): op = .sum(c ?? "")
            case (.min, let c): op = .min(c ?? "")
            case (.max, let c): op = .max(c ?? "")
            case (.avg, let c): op = .avg(c ?? "")
            }
            return AggregateColumn(a.name, op)
        }
    }

    /// Validate's settings from the spec: the row rules, the summaries, and
    /// the consolidate partition key as the columns examples show first.
    public static func validate(_ spec: PipelineSpec) -> (rules: [RowRule], summaries: [SummarySpec], options: ValidateOptions) {
        (spec.validate.rules, spec.publish?.summaries ?? [],
         ValidateOptions(exampleColumns: spec.consolidate?.partitionBy ?? [], keepProvenance: spec.publish?.provenance ?? false))
    }
}
