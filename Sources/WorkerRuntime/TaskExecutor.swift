#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Columnar
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
    /// A fused task's follower stages' own results (`TaskMessage.fused`);
    /// nil for an unfused task.
    public var followers: [FollowerResult]?

    public init(outputs: [ChunkRef] = [], rowsIn: Int64 = 0, rowsOut: Int64 = 0, rowsQuarantined: Int64 = 0, result: String? = nil,
                followers: [FollowerResult]? = nil) {
        self.followers = followers
        self.outputs = outputs
        self.rowsIn = rowsIn
        self.rowsOut = rowsOut
        self.rowsQuarantined = rowsQuarantined
        self.result = result
    }
}

/// Executes one task message through `StageInvocation` (the layer
/// `bis stage run STAGE` drives the operators by hand with too), into the
/// execution's own folder
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
    /// `cancellation`: the stage timeout's flag, which the operators check
    /// between batches (`ExecutionCancellation.check()`).
    public func execute(_ task: TaskMessage, execution: String,
                        cancellation: ExecutionCancellation? = nil) async throws(TaskFailure) -> TaskOutcome {
        do {
            if task.stage == .noop { return TaskOutcome() }
            if task.stage == .deliver {
                // Its folder stays empty: a delivery writes to the spec's target.
                let (spec, _) = try await onOwnThread { try self.prepare(task, execution: execution) }
                return try await runDeliver(task, spec: spec)
            }
            return try await onOwnThread {
                try ExecutionCancellation.with(cancellation) {
                    let (spec, dir) = try self.prepare(task, execution: execution)
                    return try self.runBlocking(task, spec: spec, dir: dir)
                }
            }
        } catch {
            throw TaskFailure.classify(error)
        }
    }

    // MARK: - Common steps

    /// The spec, the inputs checked, the execution folder created.
    private func prepare(_ task: TaskMessage, execution: String) throws -> (PipelineSpec, String) {
        guard let ref = task.spec else { throw TaskFailure(.permanent, "a \(task.stage.rawValue) task needs a spec") }
        // Ids become folder names: checked before any path is built.
        do {
            try task.validate()
            try FleetIDs.check(execution, field: "execution")
        } catch {
            throw TaskFailure(.permanent, "refusing the task message: \(error)")
        }
        let spec = try parsedSpec(ref)
        for (i, input) in task.inputs.enumerated() { try verify(input, shard: task.shard, spec: spec, field: "inputs[\(i)].path") }
        let relative = chunkStore.executionDirectory(run: task.run, stage: task.stage, index: task.index, execution: execution)
        let dir = try chunkStore.absolute(relative, field: "execution folder")
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
        // The text's own hash, not the one the message claims: a message
        // whose text and hash disagree must not reuse another spec's parse.
        let key = ref.parseKey(textHash: Digest.hex(Array(ref.text.utf8)))
        if let cached = specs.withLock({ $0[key] }) { return cached }
        let spec = try PipelineSpec.parse(yaml: ref.text, file: ref.file, directory: ref.directory, allowedRoots: ref.allowedRoots)
        specs.withLock { $0[key] = spec }
        return spec
    }

    /// Refuses an input that is missing or not the file the message names.
    /// A source file must lie under the spec's allowed roots; any other
    /// input is a chunk path inside the data root. A shard of a source file
    /// (a byte range, or a Parquet row group) is checked by size: hashing
    /// the whole file in each of its tasks would read it once per shard.
    func verify(_ input: ChunkRef, shard: ShardRef?, spec: PipelineSpec, field: String) throws {
        let path = input.kind == .source ? try spec.confinedInput(input.path) : try chunkStore.absolute(input.path, field: field)
        guard FileManager.default.fileExists(atPath: path) else {
            throw TaskFailure(.transient, "input \(path) does not exist")
        }
        if input.kind == .source, SourceIdentity.isPlaceholder(input.sha256) {
            try Self.checkUnchanged(path, placeholder: input.sha256)
            return
        }
        if input.kind == .source, let shard, shard.path == input.path || shard.path == path {
            let size = try Digest.size(path)
            let whole = shard.rowGroup == nil && (shard.start ?? 0) == 0 && (shard.end == nil || shard.end == size)
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

    /// An output as the wire names it: its path relative to the data root.
    private func ref(_ o: StageOutput) -> ChunkRef {
        ChunkRef(path: relative(o.path), sha256: o.sha256, rows: o.rows, bytes: o.bytes,
                 kind: ChunkRef.Kind(rawValue: o.kind.rawValue)!, partition: o.partition, name: o.name)
    }

    private func outcome(_ r: StageInvocationResult, result: String? = nil) -> TaskOutcome {
        TaskOutcome(outputs: r.outputs.map(ref), rowsIn: r.rowsIn, rowsOut: r.rowsOut, rowsQuarantined: r.rowsQuarantined,
                    result: result ?? r.result)
    }

    private func inputs(_ task: TaskMessage, _ kind: ChunkRef.Kind) throws -> [String] {
        try task.inputs.enumerated().filter { $0.element.kind == kind }.map {
            try chunkStore.absolute($0.element.path, field: "inputs[\($0.offset)].path")
        }
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
        let source = try StageInvocation.source(named: shard.source, in: spec)
        // Only a file the message names as a source input (checked by
        // `verify` against its sha256 or size) and that lies under the
        // spec's allowed roots.
        guard task.inputs.contains(where: { $0.kind == .source && $0.path == shard.path }) else {
            throw TaskFailure(.permanent, "field shard.path '\(shard.path)' is not one of the task's source inputs")
        }
        let path = try spec.confinedInput(shard.path)
        var range: Range<Int64>?
        if let start = shard.start, let end = shard.end { range = start..<end }
        let s = Shard(path: path, byteRange: range, firstLine: shard.firstLine, rowGroup: shard.rowGroup)
        let ingestMetadata = metadata(task) + [KeyValue("bis.input", path)]
        var o: TaskOutcome
        if let fused = task.fused, !fused.isEmpty {
            guard fused == [.normalize] else {
                throw TaskFailure(.permanent, "this worker fuses only normalize into ingest, not \(fused.map(\.rawValue))")
            }
            // normalize's files carry normalize's own metadata, as an unfused normalize's would.
            let normalizeMetadata = [KeyValue("bis.stage", Stage.normalize.rawValue), KeyValue("bis.run", task.run),
                                     KeyValue("bis.index", String(task.index))]
            let (first, second) = try StageInvocation.ingestAndNormalize(spec, source: source, shard: s, outputDir: dir,
                                                                         ingestMetadata: ingestMetadata,
                                                                         normalizeMetadata: normalizeMetadata)
            o = outcome(first)
            let n = outcome(second)
            o.followers = [FollowerResult(stage: .normalize, outputs: n.outputs, rowsIn: n.rowsIn, rowsOut: n.rowsOut,
                                          rowsQuarantined: n.rowsQuarantined, result: n.result)]
        } else {
            o = outcome(try StageInvocation.ingest(source, shard: s, outputDir: dir, metadata: ingestMetadata))
        }
        // The shard's byte range hashed (the coordinator makes the file's
        // identity from its ranges; fused or not, it is ingest's result);
        // only for a source submitted with a stat placeholder, checked again
        // after so the hash is of the submitted file.
        guard shard.rowGroup == nil,
              let placeholder = task.inputs.first(where: { $0.kind == .source && $0.path == shard.path })?.sha256,
              SourceIdentity.isPlaceholder(placeholder) else { return o }
        let hashed: SourceIdentity.Range
        do { hashed = try SourceIdentity.sha256(ofFile: path, range: range) } catch {
            throw TaskFailure(.transient, "\(error)")
        }
        try Self.checkUnchanged(path, placeholder: placeholder)
        o.result = SourceIdentity.resultJSON(hashed)
        return o
    }

    /// Refuses a source file whose stat differs from the placeholder
    /// recorded at submit: permanent, the run reads what was submitted.
    static func checkUnchanged(_ path: String, placeholder: String) throws {
        let now: String
        do { now = try SourceIdentity.placeholder(ofFile: path) } catch { throw TaskFailure(.transient, "\(error)") }
        guard now == placeholder else {
            throw TaskFailure(.permanent, "input \(path) changed after the run was submitted (it was \(placeholder), "
                              + "it is now \(now)); submit the run again to read the new file")
        }
    }

    private func runNormalize(_ task: TaskMessage, spec: PipelineSpec, dir: String) throws -> TaskOutcome {
        outcome(try StageInvocation.normalize(spec, chunks: try inputs(task, .data), outputDir: dir, metadata: metadata(task)))
    }

    private func runConsolidate(_ task: TaskMessage, spec: PipelineSpec, dir: String) throws -> TaskOutcome {
        let p = task.index
        let partitions = spec.consolidate?.partitions ?? 1
        guard p >= 0, p < partitions else { throw TaskFailure(.permanent, "partition \(p) is outside 0..<\(partitions)") }
        let chunks = try inputs(task, .data)
        if let fused = task.fused, !fused.isEmpty {
            guard fused == [.validate] else {
                throw TaskFailure(.permanent, "this worker fuses only validate into consolidate, not \(fused.map(\.rawValue))")
            }
            // validate's files carry validate's own metadata, as an unfused validate's would.
            let validateMetadata = [KeyValue("bis.stage", Stage.validate.rawValue), KeyValue("bis.run", task.run),
                                    KeyValue("bis.index", String(task.index))]
            let (first, second) = try StageInvocation.consolidateAndValidate(spec, partition: p, chunks: chunks, outputDir: dir,
                                                                            validateMetadata: validateMetadata)
            var o = outcome(first)
            let v = outcome(second)
            o.followers = [FollowerResult(stage: .validate, outputs: v.outputs, rowsIn: v.rowsIn, rowsOut: v.rowsOut,
                                          rowsQuarantined: v.rowsQuarantined, result: v.result)]
            return o
        }
        guard !chunks.isEmpty else { return TaskOutcome(result: #"{"duplicatesRemoved":0}"#) }
        return outcome(try StageInvocation.consolidate(spec, partition: p, chunks: chunks, outputDir: dir, metadata: metadata(task)))
    }

    private func runValidate(_ task: TaskMessage, spec: PipelineSpec, dir: String) throws -> TaskOutcome {
        outcome(try StageInvocation.validate(spec, partition: task.index, chunks: try inputs(task, .data), outputDir: dir,
                                             metadata: metadata(task)))
    }

    /// One published version, as publish's `result` lists it.
    struct PublishedEntry: Codable {
        var dataset: String
        var run: String
        var path: String
        var manifest: String
        var rows: Int64
        var reused: Bool
        /// `SchemaContract.hash` of the version's columns.
        var schemaSHA256: String?
    }

    private func runPublish(_ task: TaskMessage, spec: PipelineSpec, dir: String) throws -> TaskOutcome {
        guard spec.publish != nil else { throw TaskFailure(.permanent, "\(spec.file): the spec has no publish section") }
        let retention = try task.parameters["retention"].map { text in
            guard let n = Int(text), n >= 1 else { throw TaskFailure(.permanent, "retention '\(text)': keep at least 1 version") }
            return n
        } ?? 5
        // Chunks and partials in partition order (the merge order), then path.
        let ordered = task.inputs.sorted { ($0.partition ?? 0, $0.path) < ($1.partition ?? 0, $1.path) }
        let chunks = try ordered.filter { $0.kind == .data }.map { try chunkStore.absolute($0.path, field: "inputs[].path") }
        let partialFiles = try ordered.filter { $0.kind == .result && $0.name == "partials" }
            .map { try chunkStore.absolute($0.path, field: "inputs[].path") }
        let r = try StageInvocation.publish(spec, run: task.run, chunks: chunks, partialFiles: partialFiles,
                                            root: chunkStore.root, retention: retention, now: Date())
        let entries = (r.published?.versions ?? []).map { v in
            PublishedEntry(dataset: v.dataset, run: v.run, path: relative(v.path), manifest: relative(v.manifestPath),
                           rows: v.manifest.rows, reused: v.reused, schemaSHA256: v.manifest.schemaSHA256)
        }
        return outcome(r, result: try Self.json(entries))
    }

    private func runReport(_ task: TaskMessage, spec: PipelineSpec, dir: String) throws -> TaskOutcome {
        guard let text = task.parameters["summary"] else {
            throw TaskFailure(.permanent, "a report task needs parameters[\"summary\"], the run summary as JSON")
        }
        let summary: RunSummary
        do {
            summary = try RunSummary(json: Data(text.utf8))
        } catch {
            throw TaskFailure(.permanent, "parameters[\"summary\"] is not a run summary: \(error)")
        }
        // The published summaries' manifests, by summary name (the first of each).
        var manifests: [String: String] = [:]
        for m in task.inputs where m.kind == .result {
            guard let name = m.name, manifests[name] == nil else { continue }
            manifests[name] = try chunkStore.absolute(m.path, field: "inputs[].path")
        }
        return outcome(try StageInvocation.report(spec, summary: summary, publishedSummaries: manifests, outputDir: dir))
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
            let path = try chunkStore.absolute(input.path, field: "inputs[].path")
            return DeliveryFile(path: path, sha256: input.sha256)
        }
        return outcome(try await StageInvocation.deliver(spec, files: files, run: task.run, approval: approval,
                                                         dataRoot: chunkStore.root, now: Date(), environment: environment))
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

/// SHA-256 (Columnar's one helper) and sizes of files.
enum Digest {
    static func file(_ path: String) throws -> String {
        guard FileManager.default.isReadableFile(atPath: path) else { throw TaskFailure(.transient, "cannot read \(path)") }
        return try sha256(ofFile: path)
    }

    static func hex(_ bytes: [UInt8]) -> String { Checksum.sha256(bytes) }

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
