import Columnar
import FleetCore
import Foundation

/// The one way to run a stage operator: from the checked spec to the
/// operator's settings, the operator itself, and what it wrote described as
/// outputs with their kinds. The worker's `TaskExecutor` (inputs named by a
/// task message, one folder per execution) and `bis stage run` (inputs named
/// on the command line) both call these, so the two cannot drift apart.
///
/// Callers check their own arguments first (a task's index, a command's
/// `--partition`) and phrase those errors their way; what is left to check
/// here is the spec, reported as `StageInvocationError`.
public enum StageInvocation {}

extension StageName {
    /// A stage name; an unknown one is an error naming it (never a
    /// fallback stage).
    public init(parsing text: String) throws(StageInvocationError) {
        guard let s = StageName(rawValue: text) else {
            throw StageInvocationError("unknown stage '\(text)': this build runs "
                                       + StageName.allCases.map(\.rawValue).joined(separator: ", "))
        }
        self = s
    }

    /// The kinds of file this stage writes, in the order its outputs list them.
    public var outputKinds: [StageOutput.Kind] {
        switch self {
        case .ingest, .normalize: return [.data, .quarantine]
        case .consolidate: return [.data]
        case .validate: return [.data, .quarantine, .result]
        case .publish: return [.result]
        case .report: return [.report]
        case .deliver: return [.delivery]
        }
    }

    /// The stage sets rows aside (and so reports how many it did).
    public var quarantines: Bool { outputKinds.contains(.quarantine) }
}

/// A spec that does not have what the stage needs.
public struct StageInvocationError: Error, Sendable, Equatable, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// One file a stage wrote. Paths are absolute, as written.
public struct StageOutput: Sendable, Hashable {
    /// What a later stage does with the file (the same names as the wire's
    /// chunk kinds).
    public enum Kind: String, Sendable, Hashable, Codable {
        /// Rows handed to the next stage.
        case data
        /// Rows set aside with a reason.
        case quarantine
        /// A side result a later stage reads: validate's result and partial
        /// aggregates, publish's manifests.
        case result
        /// Report files (HTML, CSV, xlsx).
        case report
        /// Files a delivery wrote, and its receipt.
        case delivery
    }

    public var kind: Kind
    public var path: String
    public var sha256: String
    public var rows: Int64
    public var bytes: Int64
    public var partition: Int?
    /// result: `validate-result`, `partials` or the dataset a manifest is
    /// of; report: the summary a CSV holds; delivery: the file's name on the
    /// target, `receipt` for the receipt.
    public var name: String?

    public init(kind: Kind, path: String, sha256: String, rows: Int64 = 0, bytes: Int64, partition: Int? = nil,
                name: String? = nil) {
        self.kind = kind
        self.path = path
        self.sha256 = sha256
        self.rows = rows
        self.bytes = bytes
        self.partition = partition
        self.name = name
    }

    init(_ w: WriteResult, kind: Kind, partition: Int? = nil) {
        self.init(kind: kind, path: w.path, sha256: w.sha256, rows: w.rows, bytes: w.bytes, partition: partition)
    }

    init(_ c: ChunkRecord, kind: Kind, partition: Int?) {
        self.init(kind: kind, path: c.path, sha256: c.sha256, rows: c.rows, bytes: c.bytes, partition: partition)
    }

    /// A file the stage wrote itself, hashed now.
    static func file(_ path: String, kind: Kind, rows: Int64 = 0, partition: Int? = nil, name: String? = nil) throws -> StageOutput {
        let size = (try FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber)?.int64Value ?? 0
        return StageOutput(kind: kind, path: path, sha256: try Columnar.sha256(ofFile: path), rows: rows, bytes: size,
                           partition: partition, name: name)
    }
}

/// What one invocation did: its outputs by kind, its row counts, and the
/// operator's own result for callers that report more.
public struct StageInvocationResult: Sendable {
    public var outputs: [StageOutput] = []
    public var rowsIn: Int64 = 0
    public var rowsOut: Int64 = 0
    public var rowsQuarantined: Int64 = 0
    /// consolidate: rows dropped as duplicates.
    public var duplicatesRemoved: Int64?
    /// The stage's result as the coordinator stores it (JSON text):
    /// validate's `ValidateResult`, consolidate's duplicate count, deliver's
    /// receipt. Publish's names paths the caller's way, so the caller writes it.
    public var result: String?
    /// validate: the result, for gates.
    public var validated: ValidateResult?
    /// publish: the versions written or reused.
    public var published: PublishResult?
    /// deliver: the receipt and where it went.
    public var delivery: RunDelivery?

    public init() {}

    /// The outputs of one kind, in order.
    public func outputs(_ kind: StageOutput.Kind) -> [StageOutput] { outputs.filter { $0.kind == kind } }
}

extension StageInvocation {
    /// The spec's source named `name`.
    public static func source(named name: String, in spec: PipelineSpec) throws(StageInvocationError) -> SourceSpec {
        guard let source = spec.sources.first(where: { $0.name == name }) else {
            throw StageInvocationError("\(spec.file): no source named '\(name)' (it has \(spec.sources.map(\.name).joined(separator: ", ")))")
        }
        return source
    }

    /// ingest: one shard of one source into `outputDir` (`ingest.parquet`,
    /// `quarantine.parquet`).
    public static func ingest(_ source: SourceSpec, shard: Shard, outputDir: String,
                              metadata: [KeyValue]) throws -> StageInvocationResult {
        let r = try Stages.ingest(shard: shard, source: SpecOperators.ingestSource(source), outputDir: outputDir,
                                  metadata: metadata)
        var out = StageInvocationResult()
        out.outputs = [StageOutput(r.chunk, kind: .data)]
        if let q = r.quarantine { out.outputs.append(StageOutput(q, kind: .quarantine)) }
        out.rowsIn = r.rowsRead
        out.rowsOut = r.rowsWritten
        out.rowsQuarantined = r.rowsQuarantined
        return out
    }

    /// normalize: one shard's chunks through the spec's steps, partitioned
    /// by the consolidate key (`part-NNNNN.parquet`, `quarantine.parquet`).
    public static func normalize(_ spec: PipelineSpec, chunks: [String], outputDir: String,
                                 metadata: [KeyValue]) throws -> StageInvocationResult {
        let compiled = try SpecOperators.normalize(spec)
        let c = SpecOperators.consolidate(spec)
        let r = try Stages.normalize(inputChunks: chunks, steps: compiled.ops, caster: compiled.caster,
                                     partitionBy: c?.partitionBy ?? [], partitions: spec.consolidate?.partitions ?? 1,
                                     outputDir: outputDir, metadata: metadata)
        var out = StageInvocationResult()
        out.outputs = r.partitions.map { StageOutput($0.chunk, kind: .data, partition: $0.partition) }
        if let q = r.quarantine { out.outputs.append(StageOutput(q, kind: .quarantine)) }
        out.rowsIn = r.rowsIn
        out.rowsOut = r.rowsOut
        out.rowsQuarantined = r.rowsQuarantined
        return out
    }

    /// The file name of normalize's quarantine in a fused ingest-and-normalize
    /// execution's folder (ingest's own keeps `quarantine.parquet`).
    public static let fusedNormalizeQuarantine = "normalize-quarantine.parquet"

    /// ingest and normalize of one shard as one task (a fused task, issue
    /// 15): ingest's typed batches go straight into normalize's steps and
    /// shuffle writer (`NormalizeWriter`), so `ingest.parquet` is never
    /// written nor read back. Ingest's quarantine (`quarantine.parquet`, with
    /// `ingestMetadata`) and normalize's partition chunks (`part-NNNNN`) and
    /// quarantine (`fusedNormalizeQuarantine`, with `normalizeMetadata`)
    /// land in `outputDir`. Returns each logical stage's own result:
    /// ingest's outputs are its quarantine only.
    public static func ingestAndNormalize(_ spec: PipelineSpec, source: SourceSpec, shard: Shard, outputDir: String,
                                          ingestMetadata: [KeyValue], normalizeMetadata: [KeyValue])
        throws -> (ingest: StageInvocationResult, normalize: StageInvocationResult) {
        let compiled = try SpecOperators.normalize(spec)
        let c = SpecOperators.consolidate(spec)
        var writer: NormalizeWriter?
        let i: FusedIngestResult
        let n: NormalizeResult
        do {
            i = try Stages.ingest(shard: shard, source: SpecOperators.ingestSource(source), outputDir: outputDir,
                                  metadata: ingestMetadata) { _ in
                let w = try NormalizeWriter(steps: compiled.ops, caster: compiled.caster, partitionBy: c?.partitionBy ?? [],
                                            partitions: spec.consolidate?.partitions ?? 1, outputDir: outputDir,
                                            metadata: normalizeMetadata, quarantineName: fusedNormalizeQuarantine)
                w.fallbackFile = shard.path
                writer = w
                return w
            }
            guard let w = writer else { throw StageInvocationError("ingest of \(shard.path) made no normalize writer") }
            n = try w.finish()
        } catch {
            writer?.abandon()
            throw error
        }
        var first = StageInvocationResult()
        if let q = i.quarantine { first.outputs.append(StageOutput(q, kind: .quarantine)) }
        first.rowsIn = i.rowsRead
        first.rowsOut = i.rowsWritten
        first.rowsQuarantined = i.rowsQuarantined
        var second = StageInvocationResult()
        second.outputs = n.partitions.map { StageOutput($0.chunk, kind: .data, partition: $0.partition) }
        if let q = n.quarantine { second.outputs.append(StageOutput(q, kind: .quarantine)) }
        second.rowsIn = n.rowsIn
        second.rowsOut = n.rowsOut
        second.rowsQuarantined = n.rowsQuarantined
        return (first, second)
    }

    /// consolidate: one partition's chunks merged, sorted and de-duplicated
    /// (`consolidated-NNNNN.parquet`).
    public static func consolidate(_ spec: PipelineSpec, partition p: Int, chunks: [String], outputDir: String,
                                   metadata: [KeyValue]) throws -> StageInvocationResult {
        guard let c = SpecOperators.consolidate(spec) else {
            throw StageInvocationError("\(spec.file): the spec has no consolidate section")
        }
        let r = try Stages.consolidate(inputChunks: chunks, partitionBy: c.partitionBy, sortBy: c.sortBy, dedupe: c.dedupe,
                                       outputDir: outputDir, metadata: metadata, options: c.options)
        var out = StageInvocationResult()
        out.outputs = r.chunks.map { StageOutput($0, kind: .data, partition: p) }
        out.rowsIn = r.rowsIn
        out.rowsOut = r.rowsOut
        out.duplicatesRemoved = r.duplicatesRemoved
        out.result = #"{"duplicatesRemoved":\#(r.duplicatesRemoved)}"#
        return out
    }

    /// consolidate and validate of one partition as one task (a fused
    /// task): consolidate's sorted rows go straight into validate's checks
    /// and writers (`ValidateWriter`), so no `consolidated-*` chunk is
    /// written. Validate's files (`validated-NNNNN.parquet`,
    /// `quarantine.parquet`, its result and partials) land in `outputDir`
    /// as `validate` writes them, with `validateMetadata`. Returns each
    /// logical stage's own result: consolidate's has no outputs.
    public static func consolidateAndValidate(_ spec: PipelineSpec, partition p: Int, chunks: [String], outputDir: String,
                                              validateMetadata: [KeyValue])
        throws -> (consolidate: StageInvocationResult, validate: StageInvocationResult) {
        guard let c = SpecOperators.consolidate(spec) else {
            throw StageInvocationError("\(spec.file): the spec has no consolidate section")
        }
        let settings = SpecOperators.validate(spec)
        var writer: ValidateWriter?
        let r: ValidateResult
        let merged: ConsolidateResult
        do {
            merged = try Stages.consolidate(inputChunks: chunks, partitionBy: c.partitionBy, sortBy: c.sortBy, dedupe: c.dedupe,
                                            outputDir: outputDir, options: c.options) { schema in
                let w = try ValidateWriter(schema: schema, rules: settings.rules, partition: p, outputDir: outputDir,
                                           summaries: settings.summaries, metadata: validateMetadata, options: settings.options,
                                           source: "consolidate of partition \(p)")
                writer = w
                return w
            }
            // No inputs: validate of nothing, as an unfused validate of no chunks.
            r = try writer?.finish() ?? Stages.validate(inputChunks: [], rules: settings.rules, partition: p, outputDir: outputDir,
                                                        summaries: settings.summaries, metadata: validateMetadata,
                                                        options: settings.options)
        } catch {
            writer?.abandon()
            throw error
        }
        var first = StageInvocationResult()
        first.rowsIn = merged.rowsIn
        first.rowsOut = merged.rowsOut
        first.duplicatesRemoved = merged.duplicatesRemoved
        first.result = #"{"duplicatesRemoved":\#(merged.duplicatesRemoved)}"#
        return (first, try validateOutputs(r, partition: p, outputDir: outputDir))
    }

    /// validate: one partition against the spec's row rules
    /// (`validated-NNNNN.parquet`, `quarantine.parquet`), and its result and
    /// the summaries' partial aggregates written beside them.
    public static func validate(_ spec: PipelineSpec, partition p: Int, chunks: [String], outputDir: String,
                                metadata: [KeyValue]) throws -> StageInvocationResult {
        let settings = SpecOperators.validate(spec)
        let r = try Stages.validate(inputChunks: chunks, rules: settings.rules, partition: p, outputDir: outputDir,
                                    summaries: settings.summaries, metadata: metadata, options: settings.options)
        return try validateOutputs(r, partition: p, outputDir: outputDir)
    }

    /// Validate's result as outputs: its chunks, and its result and partials written beside them.
    static func validateOutputs(_ r: ValidateResult, partition p: Int, outputDir: String) throws -> StageInvocationResult {
        var out = StageInvocationResult()
        out.outputs = r.chunks.map { StageOutput($0, kind: .data, partition: p) }
        if let q = r.quarantine { out.outputs.append(StageOutput(q, kind: .quarantine, partition: p)) }
        let (resultPath, partialsPath) = try r.writeFiles(to: outputDir)
        out.outputs.append(try .file(resultPath, kind: .result, partition: p, name: "validate-result"))
        if let partialsPath { out.outputs.append(try .file(partialsPath, kind: .result, partition: p, name: "partials")) }
        out.rowsIn = r.rowsIn
        out.rowsOut = r.rowsPassed
        out.rowsQuarantined = r.rowsFailed
        out.result = String(decoding: try r.jsonBytes(), as: UTF8.self)
        out.validated = r
        return out
    }

    /// publish: validated chunks (in merge order) and partials files as the
    /// spec's dataset and summaries under `root/published/`; the outputs are
    /// the versions' manifests.
    public static func publish(_ spec: PipelineSpec, run: String, chunks: [String], partialFiles: [String], root: String,
                               retention: Int, now: Date) throws -> StageInvocationResult {
        guard let publishSpec = spec.publish else {
            throw StageInvocationError("\(spec.file): the spec has no publish section")
        }
        let partials: [String: [PartialAggregate]]
        do {
            partials = try PartialsFile.collect(partialFiles, summaries: publishSpec.summaries)
        } catch PublishError.invalidInput(let message) {
            throw StageInvocationError(message)
        }
        let schema = chunks.isEmpty ? SpecOperators.datasetSchema(spec) : nil
        let r = try Stages.publish(dataset: publishSpec.dataset, run: run, pipeline: spec.name, chunks: chunks,
                                   summaries: partials, root: root, retention: retention, now: now, schema: schema,
                                   provenance: publishSpec.provenance, schemaChange: publishSpec.schemaChange)
        var out = StageInvocationResult()
        out.outputs = try r.versions.map { v in
            try .file(v.manifestPath, kind: .result, rows: v.manifest.rows, name: v.dataset)
        }
        out.rowsIn = r.dataset.manifest.rows
        out.rowsOut = r.dataset.manifest.rows
        out.published = r
        return out
    }

    /// report: the run's report (`report.html`, one CSV per summary,
    /// `report.xlsx`) from a run summary, the spec's report settings applied.
    /// `publishedSummaries` (summary name → its published manifest) replaces
    /// the summary's tables with the published ones, in spec order; nil
    /// keeps the tables the summary holds.
    public static func report(_ spec: PipelineSpec, summary: RunSummary, publishedSummaries: [String: String]?,
                              outputDir: String) throws -> StageInvocationResult {
        var summary = summary
        summary.apply(try spec.reportSpec())
        if let publishedSummaries {
            var tables: [SummaryTable] = []
            for s in spec.publish?.summaries ?? [] {
                guard let manifest = publishedSummaries[s.name] else { continue }
                tables.append(try SummaryTable(publishedManifest: manifest, name: s.name, groupBy: s.groupBy))
            }
            summary.summaries = tables
        }
        let r = try writeReport(summary, to: outputDir)
        var out = StageInvocationResult()
        out.outputs = r.files.map {
            StageOutput(kind: .report, path: $0.path, sha256: $0.sha256, rows: $0.rows ?? 0, bytes: $0.bytes, name: $0.summary)
        }
        out.rowsIn = Int64(summary.summaries.reduce(0) { $0 + $1.rows.count })
        out.rowsOut = r.csv.reduce(0) { $0 + ($1.rows ?? 0) }
        return out
    }

    /// deliver: the run's files to the spec's `deliver:` target; the outputs
    /// are the delivered files and the receipt (directory targets).
    public static func deliver(_ spec: PipelineSpec, files: [DeliveryFile], run: String, approval: Approval?,
                               dataRoot: String, now: Date,
                               environment: [String: String] = ProcessInfo.processInfo.environment) async throws -> StageInvocationResult {
        let delivery = try await deliverRun(spec, files: files, run: run, approval: approval, dataRoot: dataRoot, now: now,
                                            environment: environment)
        var out = StageInvocationResult()
        if let folder = delivery.folder {
            for f in delivery.receipt.files {
                out.outputs.append(StageOutput(kind: .delivery, path: folder + "/" + f.name, sha256: f.sha256, bytes: f.bytes,
                                               name: f.name))
            }
            out.outputs.append(try .file(folder + "/receipt.json", kind: .delivery, name: "receipt"))
        }
        out.result = String(decoding: try delivery.receipt.json(), as: UTF8.self)
        out.delivery = delivery
        return out
    }
}
