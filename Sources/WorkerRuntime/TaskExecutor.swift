#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Columnar
import Crypto
import FleetCore
import Foundation
import Stages
import Synchronization

/// What one execution produced: the payload of its `succeeded` event.
public struct TaskOutcome: Sendable, Hashable {
    /// Chunks written, paths relative to the data root (deliveries outside
    /// it: absolute).
    public var outputs: [ChunkRef]
    public var rowsIn: Int64
    public var rowsOut: Int64
    public var rowsQuarantined: Int64
    /// Stage-specific JSON text (validate's result, publish's versions,
    /// deliver's receipt, consolidate's duplicate count).
    public var result: String?

    public init(outputs: [ChunkRef] = [], rowsIn: Int64 = 0, rowsOut: Int64 = 0, rowsQuarantined: Int64 = 0, result: String? = nil) {
        self.outputs = outputs
        self.rowsIn = rowsIn
        self.rowsOut = rowsOut
        self.rowsQuarantined = rowsQuarantined
        self.result = result
    }
}

/// Executes one task message the way `bis stage run STAGE` drives the
/// operator by hand, into the execution's own folder
/// `runs/<run>/<stage>/<index>/<execution>/` of the chunk store (created
/// here, and refused if it exists: nothing is ever overwritten; the
/// operators write temp names, fsync and rename inside it).
///
/// Every input is checked against the sha256 the message names before use
/// (a `source` shard of part of a file: its size). Errors come out as
/// `TaskFailure` (see `TaskFailure.classify`).
///
/// The stage contract (what each stage takes and returns) is the one the
/// coordinator's planner relies on; see Worker/README.md.
public final class TaskExecutor: Sendable {
    public let chunkStore: ChunkStore
    private let environment: [String: String]
    /// Parsed specs by sha256 of their text: every task of a run carries the
    /// same spec.
    private let specs = Mutex<[String: PipelineSpec]>([:])

    public init(chunkStore: ChunkStore, environment: [String: String] = ProcessInfo.processInfo.environment) {
        self.chunkStore = chunkStore
        self.environment = environment
    }

    /// Runs `task` as execution `execution`. CPU-heavy stages run on a
    /// thread of their own (never on the cooperative pool); deliver's HTTP
    /// call is asynchronous I/O.
    public func execute(_ task: TaskMessage, execution: String) async throws(TaskFailure) -> TaskOutcome {
        do {
            if task.stage == .noop { return TaskOutcome() }
            if task.stage == .deliver {
                // Its folder stays empty: a delivery writes to the spec's target.
                let (spec, _) = try await onOwnThread { try self.prepare(task, execution: execution) }
                return try await runDeliver(task, spec: spec)
            }
            return try await onOwnThread {
                let (spec, dir) = try self.prepare(task, execution: execution)
                return try self.runBlocking(task, spec: spec, dir: dir)
            }
        } catch {
            throw TaskFailure.classify(error)
        }
    }

    // MARK: - Common steps

    /// The spec, the inputs checked, the execution folder created.
    private func prepare(_ task: TaskMessage, execution: String) throws -> (PipelineSpec, String) {
        guard let ref = task.spec else { throw TaskFailure(.permanent, "a \(task.stage.rawValue) task needs a spec") }
        let spec = try parsedSpec(ref)
        for input in task.inputs { try verify(input, shard: task.shard) }
        let relative = chunkStore.executionDirectory(run: task.run, stage: task.stage, index: task.index, execution: execution)
        let dir = try chunkStore.absolute(relative)
        try FileManager.default.createDirectory(atPath: (dir as NSString).deletingLastPathComponent,
                                                withIntermediateDirectories: true)
        guard mkdir(dir, 0o755) == 0 else {
            let e = errno
            throw TaskFailure(.transient, "cannot create the execution folder \(dir): \(String(cString: strerror(e)))"
                              + (e == EEXIST ? " (it exists: execution ids must be new)" : ""))
        }
        return (spec, dir)
    }

    func parsedSpec(_ ref: SpecRef) throws -> PipelineSpec {
        let key = ref.sha256.isEmpty ? Digest.hex(Array(ref.text.utf8)) : ref.sha256
        if let cached = specs.withLock({ $0[key] }) { return cached }
        let spec = try PipelineSpec.parse(yaml: ref.text, file: ref.file, directory: ref.directory, allowedRoots: ref.allowedRoots)
        specs.withLock { $0[key] = spec }
        return spec
    }

    /// Refuses an input that is missing or not the file the message names.
    func verify(_ input: ChunkRef, shard: ShardRef?) throws {
        let path = try chunkStore.absolute(input.path)
        guard FileManager.default.fileExists(atPath: path) else {
            throw TaskFailure(.transient, "input \(path) does not exist")
        }
        if input.kind == .source, let shard, shard.path == input.path || shard.path == path {
            let size = try Digest.size(path)
            let whole = (shard.start ?? 0) == 0 && (shard.end == nil || shard.end == size)
            if !whole {
                guard size == input.bytes else {
                    throw TaskFailure(.transient, "input \(path) has \(size) bytes, the task expects \(input.bytes): "
                                      + "the file changed after the run was planned")
                }
                return
            }
        }
        let actual = try Digest.file(path)
        guard actual == input.sha256.lowercased() else {
            throw TaskFailure(.transient, "input \(path) has sha256 \(actual), the task expects \(input.sha256): "
                              + "refusing a file that is not the one planned")
        }
    }

    /// An absolute path as the message names it: relative to the data root
    /// (through symlinks too), absolute when outside.
    func relative(_ path: String) -> String {
        if let r = chunkStore.relative(path) { return r }
        if let real = Digest.realPath(chunkStore.root), path.hasPrefix(real + "/") { return String(path.dropFirst(real.count + 1)) }
        return path
    }

    private func ref(_ w: WriteResult, kind: ChunkRef.Kind, partition: Int? = nil, name: String? = nil) -> ChunkRef {
        ChunkRef(path: relative(w.path), sha256: w.sha256, rows: w.rows, bytes: w.bytes, kind: kind, partition: partition, name: name)
    }

    private func ref(_ c: ChunkRecord, kind: ChunkRef.Kind, partition: Int?) -> ChunkRef {
        ChunkRef(path: relative(c.path), sha256: c.sha256, rows: c.rows, bytes: c.bytes, kind: kind, partition: partition)
    }

    /// A file this execution wrote itself, described.
    private func ref(file path: String, kind: ChunkRef.Kind, rows: Int64 = 0, partition: Int? = nil, name: String? = nil) throws -> ChunkRef {
        ChunkRef(path: relative(path), sha256: try Digest.file(path), rows: rows, bytes: try Digest.size(path), kind: kind,
                 partition: partition, name: name)
    }

    private func inputs(_ task: TaskMessage, _ kind: ChunkRef.Kind) throws -> [String] {
        try task.inputs.filter { $0.kind == kind }.map { try chunkStore.absolute($0.path) }
    }

    private func metadata(_ task: TaskMessage) -> [KeyValue] {
        [KeyValue("bis.stage", task.stage.rawValue), KeyValue("bis.run", task.run), KeyValue("bis.index", String(task.index))]
    }

    // MARK: - Stages

    private func runBlocking(_ task: TaskMessage, spec: PipelineSpec, dir: String) throws -> TaskOutcome {
        switch task.stage {
        case .ingest: return try runIngest(task, spec: spec, dir: dir)
        case .normalize: return try runNormalize(task, spec: spec, dir: dir)
        case .consolidate: return try runConsolidate(task, spec: spec, dir: dir)
        case .validate: return try runValidate(task, spec: spec, dir: dir)
        case .publish: return try runPublish(task, spec: spec, dir: dir)
        case .report: return try runReport(task, spec: spec, dir: dir)
        case .deliver, .noop: throw TaskFailure(.permanent, "\(task.stage.rawValue) does not run here")
        }
    }

    private func runIngest(_ task: TaskMessage, spec: PipelineSpec, dir: String) throws -> TaskOutcome {
        guard let shard = task.shard else { throw TaskFailure(.permanent, "an ingest task needs a shard") }
        guard let source = spec.sources.first(where: { $0.name == shard.source }) else {
            throw TaskFailure(.permanent, "\(spec.file): no source named '\(shard.source)' (it has \(spec.sources.map(\.name).joined(separator: ", ")))")
        }
        let path = try spec.confinedInput(shard.path)
        var range: Range<Int64>?
        if let start = shard.start, let end = shard.end { range = start..<end }
        let r = try ingest(shard: Shard(path: path, byteRange: range, firstLine: shard.firstLine),
                           source: SpecOperators.ingestSource(source), outputDir: dir,
                           metadata: metadata(task) + [KeyValue("bis.input", path)])
        var outputs = [ref(r.chunk, kind: .data)]
        if let q = r.quarantine { outputs.append(ref(q, kind: .quarantine)) }
        return TaskOutcome(outputs: outputs, rowsIn: r.rowsRead, rowsOut: r.rowsWritten, rowsQuarantined: r.rowsQuarantined)
    }

    private func runNormalize(_ task: TaskMessage, spec: PipelineSpec, dir: String) throws -> TaskOutcome {
        let compiled = try SpecOperators.normalize(spec)
        let c = SpecOperators.consolidate(spec)
        let r = try normalize(inputChunks: try inputs(task, .data), steps: compiled.ops, caster: compiled.caster,
                              partitionBy: c?.partitionBy ?? [], partitions: spec.consolidate?.partitions ?? 1,
                              outputDir: dir, metadata: metadata(task))
        var outputs = r.partitions.map { ref($0.chunk, kind: .data, partition: $0.partition) }
        if let q = r.quarantine { outputs.append(ref(q, kind: .quarantine)) }
        return TaskOutcome(outputs: outputs, rowsIn: r.rowsIn, rowsOut: r.rowsOut, rowsQuarantined: r.rowsQuarantined)
    }

    private func runConsolidate(_ task: TaskMessage, spec: PipelineSpec, dir: String) throws -> TaskOutcome {
        let p = task.index
        let partitions = spec.consolidate?.partitions ?? 1
        guard p >= 0, p < partitions else { throw TaskFailure(.permanent, "partition \(p) is outside 0..<\(partitions)") }
        let chunks = try inputs(task, .data)
        guard !chunks.isEmpty else { return TaskOutcome(result: #"{"duplicatesRemoved":0}"#) }
        guard let c = SpecOperators.consolidate(spec) else {
            throw TaskFailure(.permanent, "\(spec.file): the spec has no consolidate section")
        }
        let r = try consolidate(inputChunks: chunks, partitionBy: c.partitionBy, sortBy: c.sortBy, dedupe: c.dedupe,
                                outputDir: dir, metadata: metadata(task), options: c.options)
        return TaskOutcome(outputs: r.chunks.map { ref($0, kind: .data, partition: p) }, rowsIn: r.rowsIn, rowsOut: r.rowsOut,
                           result: #"{"duplicatesRemoved":\#(r.duplicatesRemoved)}"#)
    }

    private func runValidate(_ task: TaskMessage, spec: PipelineSpec, dir: String) throws -> TaskOutcome {
        let p = task.index
        let settings = SpecOperators.validate(spec)
        let r = try validate(inputChunks: try inputs(task, .data), rules: settings.rules, partition: p, outputDir: dir,
                             summaries: settings.summaries, metadata: metadata(task), options: settings.options)
        var outputs = r.chunks.map { ref($0, kind: .data, partition: p) }
        if let q = r.quarantine { outputs.append(ref(q, kind: .quarantine, partition: p)) }
        let (resultPath, partialsPath) = try r.writeFiles(to: dir)
        outputs.append(try ref(file: resultPath, kind: .result, partition: p, name: "validate-result"))
        if let partialsPath { outputs.append(try ref(file: partialsPath, kind: .result, partition: p, name: "partials")) }
        return TaskOutcome(outputs: outputs, rowsIn: r.rowsIn, rowsOut: r.rowsPassed, rowsQuarantined: r.rowsFailed,
                           result: String(decoding: try r.jsonBytes(), as: UTF8.self))
    }

    /// One published version, as publish's `result` lists it.
    struct PublishedEntry: Codable {
        var dataset: String
        var run: String
        var path: String
        var manifest: String
        var rows: Int64
        var reused: Bool
    }

    private func runPublish(_ task: TaskMessage, spec: PipelineSpec, dir: String) throws -> TaskOutcome {
        guard let publishSpec = spec.publish else { throw TaskFailure(.permanent, "\(spec.file): the spec has no publish section") }
        let retention = try task.parameters["retention"].map { text in
            guard let n = Int(text), n >= 1 else { throw TaskFailure(.permanent, "retention '\(text)': keep at least 1 version") }
            return n
        } ?? 5
        // Chunks and partials in partition order (the merge order), then path.
        let ordered = task.inputs.sorted { ($0.partition ?? 0, $0.path) < ($1.partition ?? 0, $1.path) }
        let chunks = try ordered.filter { $0.kind == .data }.map { try chunkStore.absolute($0.path) }
        let partialFiles = try ordered.filter { $0.kind == .result && $0.name == "partials" }.map { try chunkStore.absolute($0.path) }
        let partials = try PartialsFile.collect(partialFiles, summaries: publishSpec.summaries)
        let schema = chunks.isEmpty ? SpecOperators.datasetSchema(spec) : nil
        let result = try publish(dataset: publishSpec.dataset, run: task.run, pipeline: spec.name, chunks: chunks,
                                 summaries: partials, root: chunkStore.root, retention: retention, now: Date(), schema: schema,
                                 provenance: publishSpec.provenance)
        var outputs: [ChunkRef] = []
        var entries: [PublishedEntry] = []
        for v in result.versions {
            outputs.append(try ref(file: v.manifestPath, kind: .result, rows: v.manifest.rows, name: v.dataset))
            entries.append(PublishedEntry(dataset: v.dataset, run: v.run, path: relative(v.path), manifest: relative(v.manifestPath),
                                          rows: v.manifest.rows, reused: v.reused))
        }
        return TaskOutcome(outputs: outputs, rowsIn: result.dataset.manifest.rows, rowsOut: result.dataset.manifest.rows,
                           result: try Self.json(entries))
    }

    private func runReport(_ task: TaskMessage, spec: PipelineSpec, dir: String) throws -> TaskOutcome {
        guard let text = task.parameters["summary"] else {
            throw TaskFailure(.permanent, "a report task needs parameters[\"summary\"], the run summary as JSON")
        }
        var summary: RunSummary
        do {
            summary = try RunSummary(json: Data(text.utf8))
        } catch {
            throw TaskFailure(.permanent, "parameters[\"summary\"] is not a run summary: \(error)")
        }
        summary.apply(try spec.reportSpec())
        // The published summaries, in spec order.
        let manifests = task.inputs.filter { $0.kind == .result }
        var tables: [SummaryTable] = []
        for s in spec.publish?.summaries ?? [] {
            guard let m = manifests.first(where: { $0.name == s.name }) else { continue }
            tables.append(try SummaryTable(publishedManifest: try chunkStore.absolute(m.path), name: s.name, groupBy: s.groupBy))
        }
        summary.summaries = tables
        let result = try writeReport(summary, to: dir)
        return TaskOutcome(
            outputs: result.files.map {
                ChunkRef(path: relative($0.path), sha256: $0.sha256, rows: $0.rows ?? 0, bytes: $0.bytes, kind: .report,
                         name: $0.summary)
            },
            rowsIn: Int64(tables.reduce(0) { $0 + $1.rows.count }),
            rowsOut: result.csv.reduce(0) { $0 + ($1.rows ?? 0) })
    }

    private func runDeliver(_ task: TaskMessage, spec: PipelineSpec) async throws -> TaskOutcome {
        var approval: Approval?
        if let by = task.parameters["approved_by"] {
            let at = task.parameters["approved_at"].flatMap { text in
                ISO8601DateFormatter().date(from: text) ?? {
                    let f = ISO8601DateFormatter()
                    f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
                    return f.date(from: text)
                }()
            }
            guard let at else {
                throw TaskFailure(.permanent, "approved_at '\(task.parameters["approved_at"] ?? "")' is not an ISO 8601 time")
            }
            approval = Approval(approver: by, approvedAt: at)
        }
        let files = try task.inputs.filter { $0.kind == .report || $0.kind == .result }.map { input in
            // Names on the target as `bis stage run deliver` gives them: the file names.
            let path = try chunkStore.absolute(input.path)
            return DeliveryFile(path: path, sha256: input.sha256)
        }
        let delivery = try await deliverRun(spec, files: files, run: task.run, approval: approval, dataRoot: chunkStore.root,
                                            now: Date(), environment: environment)
        var outputs: [ChunkRef] = []
        if let folder = delivery.folder {
            for f in delivery.receipt.files {
                outputs.append(ChunkRef(path: relative(folder + "/" + f.name), sha256: f.sha256, bytes: f.bytes, kind: .delivery, name: f.name))
            }
            outputs.append(try ref(file: folder + "/receipt.json", kind: .delivery, name: "receipt"))
        }
        return TaskOutcome(outputs: outputs, result: String(decoding: try delivery.receipt.json(), as: UTF8.self))
    }

    static func json<T: Encodable>(_ value: T) throws -> String {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try e.encode(value), as: UTF8.self)
    }
}

/// Runs blocking work on a thread of its own and resumes the caller after.
func onOwnThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { (cont: CheckedContinuation<T, Error>) in
        let thread = Thread {
            do { cont.resume(returning: try body()) } catch { cont.resume(throwing: error) }
        }
        thread.stackSize = 8 << 20
        thread.start()
    }
}

/// SHA-256 and sizes of files, streamed.
enum Digest {
    static func file(_ path: String) throws -> String {
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw TaskFailure(.transient, "cannot read \(path)")
        }
        defer { try? handle.close() }
        var hasher = SHA256()
        while true {
            let data = try handle.read(upToCount: 1 << 20) ?? Data()
            if data.isEmpty { break }
            hasher.update(data: data)
        }
        return hasher.finalize().map { String(format: "%02x", $0) }.joined()
    }

    static func hex(_ bytes: [UInt8]) -> String {
        SHA256.hash(data: bytes).map { String(format: "%02x", $0) }.joined()
    }

    static func size(_ path: String) throws -> Int64 {
        var st = stat()
        guard stat(path, &st) == 0 else { throw TaskFailure(.transient, "cannot stat \(path): \(String(cString: strerror(errno)))") }
        return Int64(st.st_size)
    }

    static func realPath(_ path: String) -> String? {
        guard let p = realpath(path, nil) else { return nil }
        defer { free(p) }
        return String(cString: p)
    }
}
