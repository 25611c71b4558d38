import Foundation

// Registered pipelines and their schedules (docs/schedules.md): what
// `bis pipeline …`, `bis pipelines` and `bis trigger` send and get back.

/// `POST /api/pipelines`: registers the spec under its `pipeline:` name, or
/// adds a version when its text changed. Paths as in `SubmitRequest`.
public struct PipelineAddRequest: Codable, Sendable {
    public var specPath: String
    public var specText: String?
    public var allowedRoots: [String]
    public var by: String

    public init(specPath: String, specText: String? = nil, allowedRoots: [String] = [], by: String) {
        self.specPath = specPath
        self.specText = specText
        self.allowedRoots = allowedRoots
        self.by = by
    }
}

/// `POST /api/pipelines/{name}/trigger`: a run of the pipeline's current
/// version now. Its slot is `date` (local midnight in the schedule's zone),
/// else now.
public struct TriggerRequest: Codable, Sendable {
    /// `YYYY-MM-DD`.
    public var date: String?
    public var params: [String: String]
    public var by: String

    public init(date: String? = nil, params: [String: String] = [:], by: String) {
        self.date = date
        self.params = params
        self.by = by
    }
}

/// One registered pipeline, as `bis pipelines` lists it.
public struct PipelineView: Codable, Sendable, Hashable {
    public var name: String
    public var version: Int
    public var specSHA256: String
    /// The cron line; nil without a schedule (runs only when triggered).
    public var cron: String?
    /// The cron line in words ("at 02:15 every day").
    public var schedule: String?
    public var timezone: String?
    public var catchup: String?
    public var maxActiveRuns: Int?
    /// The next slot (ISO 8601 UTC); nil when paused, unscheduled or past `end`.
    public var nextSlot: String?
    public var lastRun: String?
    public var lastRunState: RunState?
    public var lastRunSlot: String?
    public var paused: Bool
    /// Slots due but waiting for a run to finish (max_active_runs).
    public var queuedSlots: Int
    public var registeredAt: Date
    public var registeredBy: String
    /// Why the current version's spec cannot be read any more (say, after
    /// an upgrade that checks specs more strictly): the scheduler skips the
    /// pipeline until a new version is added. Nil when it reads.
    public var specError: String?

    public init(name: String, version: Int, specSHA256: String, paused: Bool, registeredAt: Date, registeredBy: String) {
        self.name = name
        self.version = version
        self.specSHA256 = specSHA256
        self.paused = paused
        self.queuedSlots = 0
        self.registeredAt = registeredAt
        self.registeredBy = registeredBy
    }
}

/// `GET /api/pipelines/{name}?version=N`: one version's spec text.
public struct PipelineDetail: Codable, Sendable, Hashable {
    public var pipeline: PipelineView
    public var version: Int
    public var specText: String
    public var specSHA256: String
    public var specFile: String
    public var addedAt: Date
    public var addedBy: String
    /// Every version, oldest first.
    public var versions: [Int]

    public init(pipeline: PipelineView, version: Int, specText: String, specSHA256: String, specFile: String,
                addedAt: Date, addedBy: String, versions: [Int]) {
        self.pipeline = pipeline
        self.version = version
        self.specText = specText
        self.specSHA256 = specSHA256
        self.specFile = specFile
        self.addedAt = addedAt
        self.addedBy = addedBy
        self.versions = versions
    }
}

/// What `bis pipeline add` did.
public struct PipelineAddResult: Codable, Sendable, Hashable {
    public var pipeline: PipelineView
    /// `registered` (new), `new version`, or `unchanged` (same text as the current version).
    public var outcome: String
    public init(pipeline: PipelineView, outcome: String) {
        self.pipeline = pipeline
        self.outcome = outcome
    }
}

public enum PipelineChange: String, Codable, Sendable, CaseIterable {
    case pause, resume, remove
}

/// Services without registered pipelines (test fakes).
extension CoordinatorService {
    public func addPipeline(_ request: PipelineAddRequest, as caller: Caller) async throws -> PipelineAddResult {
        throw ServiceError.notFound("this coordinator keeps no registered pipelines")
    }
    public func pipelines() async throws -> [PipelineView] {
        throw ServiceError.notFound("this coordinator keeps no registered pipelines")
    }
    public func pipeline(_ name: String, version: Int?) async throws -> PipelineDetail {
        throw ServiceError.notFound("this coordinator keeps no registered pipelines")
    }
    public func changePipeline(_ name: String, _ change: PipelineChange, as caller: Caller) async throws -> PipelineView {
        throw ServiceError.notFound("this coordinator keeps no registered pipelines")
    }
    public func trigger(_ name: String, _ request: TriggerRequest, as caller: Caller) async throws -> RunView {
        throw ServiceError.notFound("this coordinator keeps no registered pipelines")
    }
}

/// `POST /api/pipelines/{name}/backfill`: one run per schedule slot between
/// two local dates (both included).
public struct BackfillRequest: Codable, Sendable {
    public var from: String
    public var to: String
    /// Most of the backfill's runs active at once; nil: the schedule's max_active_runs.
    public var maxActive: Int?
    /// Run slots that already have a succeeded run too.
    public var rerun: Bool
    public var by: String

    public init(from: String, to: String, maxActive: Int? = nil, rerun: Bool = false, by: String) {
        self.from = from
        self.to = to
        self.maxActive = maxActive
        self.rerun = rerun
        self.by = by
    }
}

/// One backfill, as `bis status BACKFILL` shows it.
public struct BackfillView: Codable, Sendable, Hashable {
    public var id: String
    public var pipeline: String
    public var from: String
    public var to: String
    /// `running`, `done` or `cancelled`.
    public var state: String
    public var maxActive: Int
    public var rerun: Bool
    public var slots: Int
    public var succeeded: Int
    /// Runs that failed or were cancelled, and slots whose run could not start.
    public var failed: Int
    public var running: Int
    /// Slots not started yet.
    public var waiting: Int
    /// Slots that had a succeeded run already (without --rerun).
    public var skipped: Int
    /// The backfill's runs, by slot.
    public var runs: [String]
    public var createdBy: String
    public var createdAt: Date

    public init(id: String, pipeline: String, from: String, to: String, state: String, maxActive: Int, rerun: Bool,
                createdBy: String, createdAt: Date) {
        self.id = id
        self.pipeline = pipeline
        self.from = from
        self.to = to
        self.state = state
        self.maxActive = maxActive
        self.rerun = rerun
        self.slots = 0; self.succeeded = 0; self.failed = 0; self.running = 0; self.waiting = 0; self.skipped = 0
        self.runs = []
        self.createdBy = createdBy
        self.createdAt = createdAt
    }

    /// Backfill ids start so; run ids never do (pipeline names have no '.').
    public static let idPrefix = "backfill."
}

extension CoordinatorService {
    public func backfill(_ name: String, _ request: BackfillRequest, as caller: Caller) async throws -> BackfillView {
        throw ServiceError.notFound("this coordinator keeps no registered pipelines")
    }
    public func backfillView(_ id: String) async throws -> BackfillView {
        throw ServiceError.notFound("no backfill \(id)")
    }
    public func cancelBackfill(_ id: String, as caller: Caller) async throws -> BackfillView {
        throw ServiceError.notFound("no backfill \(id)")
    }
}
