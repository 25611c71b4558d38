import FleetWire
import Foundation

// What the coordinator offers its clients — the HTTP API, the CLI through
// it, and `bis run --local` directly. The engine (`Coordination`) implements
// `CoordinatorService`; `CoordinatorHTTP` maps it to JSON over HTTP and
// renders the dashboard and /metrics from what it answers.

// The states below, for clients. The moves between them, each with who
// makes it, are one table in `Sources/Coordination/State/Transitions.swift`;
// only `StateMachine.swift` beside it writes a state, and the store refuses
// a state not listed here (CHECK constraints, migration 0002).

/// A run's state. Who moves it:
/// - `pending`: submit writes it; the engine moves it to `running` when it
///   has planned the first tasks (in the same transaction).
/// - `running`: event intake moves it to `awaiting_approval` (report done,
///   deliver needs approval), `succeeded` (last task done), `failed` (a task
///   failed for good, or the quality gate failed); `cancel` to `cancelled`.
/// - `awaiting_approval`: `approve` moves it back to `running` (deliver
///   queued); `cancel` to `cancelled`.
/// - `failed`: `retry` moves it back to `running`, re-queuing only the failed
///   tasks; committed outputs are reused; `cancel` to `cancelled`.
/// - `succeeded`, `cancelled`: final.
public enum RunState: String, Codable, Sendable, CaseIterable {
    case pending, running
    case awaitingApproval = "awaiting_approval"
    case succeeded, failed, cancelled

    public var isFinal: Bool { self == .succeeded || self == .cancelled }
    /// The run will not move again unless an operator acts (approve, retry).
    public var isSettled: Bool { self == .succeeded || self == .failed || self == .cancelled || self == .awaitingApproval }
}

/// A task's state. Who moves it:
/// - `planned`: the planner writes it with its outbox row; the dispatcher
///   moves it to `queued` once the broker confirmed the message.
/// - `queued`: a worker's `started` event moves it to `running`.
/// - `running`/`queued`: the first success moves it to `succeeded`; a
///   permanent failure, or a transient one / lost execution past the maximum
///   attempts, to `failed`; a transient failure with attempts left back to
///   `planned` (a delayed retry in the outbox).
/// - any non-final: `cancel` moves it to `cancelled`.
/// - `failed`: `retry` moves it to `planned` with a fresh attempt budget.
public enum TaskState: String, Codable, Sendable, CaseIterable {
    case planned, queued, running, succeeded, failed, cancelled
}

/// An execution's state. Who moves it: a worker's `started` event writes it
/// `running`; its result moves it to `succeeded` (the task's winner),
/// `duplicate` (the task had a winner already, or the run was cancelled: its
/// files are reclaimed) or `failed`; a dead letter records a `lost` one.
public enum ExecutionState: String, Codable, Sendable, CaseIterable {
    /// `abandoned`: still running in the store when its task settled without
    /// it (another execution won, or the task failed) — its worker most
    /// likely died. A late result from it is still recorded, as a duplicate
    /// or a failure.
    case running, succeeded, failed, duplicate, lost, abandoned
    /// `timed_out`: it ran past its stage's timeout (spec `timeouts:`) and
    /// was stopped; its task is retried as after any transient failure.
    case timedOut = "timed_out"
}

public struct SubmitRequest: Codable, Sendable {
    /// The spec's absolute path on the coordinator's file system (shared with
    /// the CLI's). Its folder, where relative globs start, must lie under one
    /// of the coordinator's input roots (403 otherwise), inline text or not.
    public var specPath: String
    /// The spec text as the CLI read it; when absent the coordinator reads
    /// `specPath`, only if that lies under one of its input roots.
    public var specText: String?
    /// Folders inputs may come from besides the spec's folder; each must lie
    /// under one of the coordinator's input roots (a client may only narrow
    /// them; 403 otherwise).
    public var allowedRoots: [String]
    /// Who submitted it (the audit log's actor): user@host.
    public var submittedBy: String

    public init(specPath: String, specText: String? = nil, allowedRoots: [String] = [], submittedBy: String) {
        self.specPath = specPath
        self.specText = specText
        self.allowedRoots = allowedRoots
        self.submittedBy = submittedBy
    }
}

/// An operator's action on a run (approve, retry, cancel).
public struct ActionRequest: Codable, Sendable {
    public var by: String
    public init(by: String) { self.by = by }
}

/// One stage of a run, as status shows it.
public struct StageView: Codable, Sendable, Hashable {
    public var stage: Stage
    /// Tasks planned so far (ingest's and normalize's count is known at
    /// submit; later stages' once their barrier is reached).
    public var total: Int
    public var queued: Int
    public var running: Int
    public var succeeded: Int
    public var failed: Int
    public var cancelled: Int
    /// Executions that failed or were lost and were tried again.
    public var retried: Int
    /// Executions recorded as duplicates (a redelivered task's second result).
    public var duplicates: Int
    public var rowsIn: Int64
    public var rowsOut: Int64
    public var rowsQuarantined: Int64
    public var startedAt: Date?
    public var finishedAt: Date?
    /// The last error of a failed or retried task in this stage, with its task id.
    public var lastError: String?

    public init(stage: Stage) {
        self.stage = stage
        total = 0; queued = 0; running = 0; succeeded = 0; failed = 0; cancelled = 0; retried = 0; duplicates = 0
        rowsIn = 0; rowsOut = 0; rowsQuarantined = 0
    }
}

public struct RunView: Codable, Sendable, Hashable {
    public var id: String
    public var pipeline: String
    public var state: RunState
    public var specSHA256: String
    public var submittedBy: String
    public var submittedAt: Date
    public var finishedAt: Date?
    /// Why it failed (naming the task, its shard or partition and the last
    /// error), or what it waits for.
    public var message: String?
    public var approvalRequired: Bool
    public var approvedBy: String?
    /// The authenticated principal who submitted it; nil when the
    /// coordinator ran without auth (then `submittedBy` is only a claim).
    public var submitterPrincipal: String?
    public var stages: [StageView]
    /// Published dataset versions (dataset → version folder, relative to the data root).
    public var published: [String: String]
    /// The published versions' schema hashes (dataset → SHA-256 of the
    /// schema's canonical form, see docs/spec.md `schema_change`); nil
    /// before publish or from an older coordinator.
    public var publishedSchemas: [String: String]?
    /// The report's folder and the delivery receipt, relative to the data root.
    public var reportDirectory: String?
    public var receipt: String?
    /// A registered pipeline's run (docs/schedules.md): the version of its
    /// spec it ran, its slot (the logical time it stands for, ISO 8601 UTC),
    /// what started it (`schedule`, `manual`, `backfill`) and every run
    /// parameter's value (`date` included). nil for an ad-hoc `bis submit`.
    public var version: Int?
    public var slot: String?
    public var trigger: String?
    public var params: [String: String]?
    /// The run's deadline (spec `deadline:`), nil without one; when it
    /// missed it, `lateAt` (docs/alerts.md). Nil from an older coordinator.
    public var deadline: Date?
    public var lateAt: Date?

    public init(id: String, pipeline: String, state: RunState, specSHA256: String, submittedBy: String, submittedAt: Date) {
        self.id = id
        self.pipeline = pipeline
        self.state = state
        self.specSHA256 = specSHA256
        self.submittedBy = submittedBy
        self.submittedAt = submittedAt
        approvalRequired = false
        stages = []
        published = [:]
    }
}

public struct WorkerView: Codable, Sendable, Hashable {
    public var id: String
    public var host: String
    public var pid: Int32
    public var version: String
    public var state: WorkerHeartbeat.State
    public var lastSeen: Date
    public var running: [String]
    /// No heartbeat for longer than three beat intervals.
    public var quiet: Bool
    /// The broker node its last heartbeat (since the coordinator started)
    /// named, and how many times it had reconnected; nil when unknown.
    public var node: String?
    public var brokerReconnects: Int?

    public init(id: String, host: String, pid: Int32, version: String, state: WorkerHeartbeat.State,
                lastSeen: Date, running: [String], quiet: Bool, node: String? = nil, brokerReconnects: Int? = nil) {
        self.node = node
        self.brokerReconnects = brokerReconnects
        self.id = id
        self.host = host
        self.pid = pid
        self.version = version
        self.state = state
        self.lastSeen = lastSeen
        self.running = running
        self.quiet = quiet
    }
}

/// Errors a client can act on; the HTTP layer maps them to status codes.
public enum ServiceError: Error, Sendable, CustomStringConvertible {
    /// 404
    case notFound(String)
    /// 409: the run is not in a state that allows this.
    case conflict(String)
    /// 400: e.g. the spec has errors (the message lists them with line:column).
    case badRequest(String)
    /// 403: the caller may not do this (the submitter approving their own
    /// run), or the coordinator's policy refuses it (a path outside its
    /// input roots); the message says why.
    case forbidden(String)

    public var description: String {
        switch self {
        case .notFound(let m), .conflict(let m), .badRequest(let m), .forbidden(let m): return m
        }
    }
}

public protocol CoordinatorService: Sendable {
    func submit(_ request: SubmitRequest) async throws -> RunView
    /// Most recent first.
    func runs(limit: Int) async throws -> [RunView]
    /// nil when no such run.
    func run(_ id: String) async throws -> RunView?
    func approve(_ id: String, by: String) async throws -> RunView
    func retry(_ id: String, by: String) async throws -> RunView
    func cancel(_ id: String, by: String) async throws -> RunView
    func workers() async throws -> [WorkerView]
    /// The counts /metrics shows (`CoordinatorHTTP` renders them as Prometheus text).
    func metricsSnapshot() async throws -> MetricsSnapshot
    /// The lineage tree of a run, dataset version, chunk or sha256, down to input files.
    func lineageTrace(_ target: String) async throws -> LineageNode
    /// Every run, dataset version and delivery that used an input file (path or sha256).
    func lineageImpact(_ file: String) async throws -> ImpactReport
    /// A run's quarantined rows (ingest's, then validate's), optionally of one rule.
    func quarantine(_ run: String, rule: String?, limit: Int) async throws -> [QuarantinedRow]
    /// The run as OpenLineage RunEvents: START and COMPLETE/FAIL per execution, and the run's own (docs/openlineage.md).
    func openLineage(_ run: String) async throws -> [OpenLineageEvent]
    /// The input files a run's tasks read (absolute paths, sorted), for the
    /// dashboard's lineage graph; empty when there are none yet.
    func runInputs(_ run: String) async throws -> [String]
    /// The workers that executed the run's tasks (DashboardViews.swift); empty by default.
    func runWorkers(_ run: String) async throws -> [RunWorkerView]

    // Identities (the HTTP layer authenticates; the service records).

    /// Submits as `caller`: the run's submitter is the principal when there
    /// is one (`submittedBy` in the request is then ignored).
    func submit(_ request: SubmitRequest, as caller: Caller) async throws -> RunView
    /// Approves as `caller`; the approver recorded is `caller.name`, never a
    /// name the client sent when there is a principal.
    func approve(_ id: String, as caller: Caller) async throws -> RunView
    func retry(_ id: String, as caller: Caller) async throws -> RunView
    func cancel(_ id: String, as caller: Caller) async throws -> RunView
    /// The audit log, oldest first, of one run or all; at most `limit` rows (the newest).
    func audit(run: String?, limit: Int) async throws -> [AuditEntry]
    /// Appends a refused request (401, 403) to the audit log.
    func recordRefusal(_ refusal: Refusal) async throws

    // Published datasets (DatasetViews.swift).

    /// Every published dataset and summary, by name.
    func datasets() async throws -> [DatasetView]
    /// One dataset with its versions, newest first; `notFound` when there is none.
    func dataset(_ name: String) async throws -> DatasetDetail
    /// Points the dataset's `CURRENT` (and `view.sql`) at the version of run
    /// `run`, with an audit row naming `caller`; `notFound` for an unknown
    /// dataset or a run without a version of it, `conflict` for a damaged version.
    func rollbackDataset(_ name: String, to run: String, as caller: Caller) async throws -> RollbackResult

    /// One retention pass (`bis gc`): what it would remove (`dryRun`), or
    /// what it removed, with an audit row naming `caller` for a real pass.
    func gc(dryRun: Bool, as caller: Caller) async throws -> GCReport

    // Registered pipelines (PipelineViews.swift, docs/schedules.md).

    /// Registers a spec under its `pipeline:` name, or adds a version when its text changed; audited.
    func addPipeline(_ request: PipelineAddRequest, as caller: Caller) async throws -> PipelineAddResult
    /// Every registered pipeline, by name.
    func pipelines() async throws -> [PipelineView]
    /// One version's spec text (the current one without `version`).
    func pipeline(_ name: String, version: Int?) async throws -> PipelineDetail
    /// Pauses, resumes or removes a pipeline; audited.
    func changePipeline(_ name: String, _ change: PipelineChange, as caller: Caller) async throws -> PipelineView
    /// A run of the pipeline's current version now (`bis trigger`); audited.
    func trigger(_ name: String, _ request: TriggerRequest, as caller: Caller) async throws -> RunView
    /// One run per schedule slot in a range, as one object (`bis backfill`); audited.
    func backfill(_ name: String, _ request: BackfillRequest, as caller: Caller) async throws -> BackfillView
    func backfillView(_ id: String) async throws -> BackfillView
    /// Cancels the backfill's slots not started and its active runs; audited.
    func cancelBackfill(_ id: String, as caller: Caller) async throws -> BackfillView
    /// The alerts raised (of `run`, or all), newest first, with their deliveries (docs/alerts.md).
    func alerts(run: String?, limit: Int) async throws -> [AlertView]
}

/// Defaults for services that keep no lineage (test fakes).
extension CoordinatorService {
    public func lineageTrace(_ target: String) async throws -> LineageNode {
        throw ServiceError.notFound("this coordinator keeps no lineage")
    }
    public func lineageImpact(_ file: String) async throws -> ImpactReport {
        throw ServiceError.notFound("this coordinator keeps no lineage")
    }
    public func quarantine(_ run: String, rule: String?, limit: Int) async throws -> [QuarantinedRow] {
        throw ServiceError.notFound("this coordinator keeps no quarantine")
    }
    public func openLineage(_ run: String) async throws -> [OpenLineageEvent] {
        throw ServiceError.notFound("this coordinator keeps no lineage")
    }
    public func runInputs(_ run: String) async throws -> [String] { [] }

    public func submit(_ request: SubmitRequest, as caller: Caller) async throws -> RunView {
        var request = request
        request.submittedBy = caller.name
        return try await submit(request)
    }
    public func approve(_ id: String, as caller: Caller) async throws -> RunView { try await approve(id, by: caller.name) }
    public func retry(_ id: String, as caller: Caller) async throws -> RunView { try await retry(id, by: caller.name) }
    public func cancel(_ id: String, as caller: Caller) async throws -> RunView { try await cancel(id, by: caller.name) }
    public func audit(run: String?, limit: Int) async throws -> [AuditEntry] {
        throw ServiceError.notFound("this coordinator keeps no audit log")
    }
    public func recordRefusal(_ refusal: Refusal) async throws {}
    public func datasets() async throws -> [DatasetView] {
        throw ServiceError.notFound("this coordinator keeps no published datasets")
    }
    public func dataset(_ name: String) async throws -> DatasetDetail {
        throw ServiceError.notFound("this coordinator keeps no published datasets")
    }
    public func rollbackDataset(_ name: String, to run: String, as caller: Caller) async throws -> RollbackResult {
        throw ServiceError.notFound("this coordinator keeps no published datasets")
    }
    public func gc(dryRun: Bool, as caller: Caller) async throws -> GCReport {
        throw ServiceError.notFound("this coordinator keeps no chunk store to collect")
    }
    public func alerts(run: String?, limit: Int) async throws -> [AlertView] {
        throw ServiceError.notFound("this coordinator keeps no alerts")
    }
}
