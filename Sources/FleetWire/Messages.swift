import Foundation

/// A task as the coordinator sends it to the stage queue: everything a
/// stateless worker needs, inputs named by path and sha256.
public struct TaskMessage: Codable, Sendable, Hashable {
    public var run: String
    public var stage: Stage
    /// Shard index (ingest, normalize), partition (consolidate, validate), 0 otherwise.
    public var index: Int
    /// The coordinator's attempt number, from 1; a retry after a failure or a
    /// lost execution is a new attempt.
    public var attempt: Int
    /// nil only for `noop` tasks.
    public var spec: SpecRef?
    public var inputs: [ChunkRef]
    /// ingest: the shard to read.
    public var shard: ShardRef?
    /// Stage-specific settings as text: deliver's `approved_by` and
    /// `approved_at`, report's `summary` (a `RunSummary` as JSON), publish's
    /// `retention`.
    public var parameters: [String: String]
    /// Stages fused into this task, run after `stage` in the same execution
    /// on its output without writing it (today: `[.validate]` on a
    /// consolidate task). Each reports its own result in the event's
    /// `followers`. Absent (nil) in an unfused task and in older messages.
    public var fused: [Stage]?

    public init(run: String, stage: Stage, index: Int, attempt: Int, spec: SpecRef?, inputs: [ChunkRef] = [],
                shard: ShardRef? = nil, parameters: [String: String] = [:], fused: [Stage]? = nil) {
        self.fused = fused
        self.run = run
        self.stage = stage
        self.index = index
        self.attempt = attempt
        self.spec = spec
        self.inputs = inputs
        self.shard = shard
        self.parameters = parameters
    }

    public var taskID: String { FleetIDs.taskID(run: run, stage: stage, index: index) }
}

/// Why an execution failed, and whether trying again can help.
public struct TaskFailure: Codable, Sendable, Hashable, Error, CustomStringConvertible {
    public enum Kind: String, Codable, Sendable {
        /// Bad data or a bad spec: the same inputs fail the same way. The task
        /// fails at once.
        case permanent
        /// Anything else (I/O, a missing file on a slow mount, a checksum that
        /// did not match yet): retried with backoff up to the stage's maximum.
        case transient
    }
    public var kind: Kind
    public var message: String
    /// True when the execution was stopped past its stage's timeout (spec
    /// `timeouts:`): the coordinator records it `timed_out` by this field,
    /// never by the message's text. Absent (nil) on any other failure.
    public var timedOut: Bool?

    public init(_ kind: Kind, _ message: String, timedOut: Bool? = nil) {
        self.kind = kind
        self.message = message
        self.timedOut = timedOut
    }

    public var description: String { "\(kind.rawValue): \(message)" }
}

/// What a worker reports about one execution.
public struct TaskEvent: Codable, Sendable, Hashable {
    public enum Kind: String, Codable, Sendable {
        /// The worker took the task (sent without waiting; status only).
        case started
        case succeeded
        case failed
    }
    public var kind: Kind
    public var run: String
    public var stage: Stage
    public var index: Int
    /// The attempt of the task message this execution ran.
    public var attempt: Int
    public var execution: String
    public var worker: WorkerIdentity
    /// How often the broker had delivered this message before (0 the first time).
    public var deliveryCount: Int
    public var startedAt: Date
    public var finishedAt: Date?
    /// Chunks written, with their kinds; paths relative to the data root.
    public var outputs: [ChunkRef]
    public var rowsIn: Int64
    public var rowsOut: Int64
    public var rowsQuarantined: Int64
    public var failure: TaskFailure?
    /// Stage-specific result as JSON text: validate's `ValidateResult`,
    /// publish's versions, deliver's receipt.
    public var result: String?
    /// A fused task's follower stages' own results (see `TaskMessage.fused`),
    /// in order; the fields above are the leading stage's. Absent (nil) for
    /// an unfused task and from older workers.
    public var followers: [FollowerResult]?

    public init(kind: Kind, task: TaskMessage, execution: String, worker: WorkerIdentity, deliveryCount: Int,
                startedAt: Date, finishedAt: Date? = nil, outputs: [ChunkRef] = [], rowsIn: Int64 = 0, rowsOut: Int64 = 0,
                rowsQuarantined: Int64 = 0, failure: TaskFailure? = nil, result: String? = nil, followers: [FollowerResult]? = nil) {
        self.followers = followers
        self.kind = kind
        self.run = task.run
        self.stage = task.stage
        self.index = task.index
        self.attempt = task.attempt
        self.execution = execution
        self.worker = worker
        self.deliveryCount = deliveryCount
        self.startedAt = startedAt
        self.finishedAt = finishedAt
        self.outputs = outputs
        self.rowsIn = rowsIn
        self.rowsOut = rowsOut
        self.rowsQuarantined = rowsQuarantined
        self.failure = failure
        self.result = result
    }

    public var taskID: String { FleetIDs.taskID(run: run, stage: stage, index: index) }
}

/// One fused follower stage's own result in its task's `succeeded` event:
/// what an unfused task of that stage would have reported.
public struct FollowerResult: Codable, Sendable, Hashable {
    public var stage: Stage
    /// Files it wrote (in the fused execution's folder), with their kinds.
    public var outputs: [ChunkRef]
    public var rowsIn: Int64
    public var rowsOut: Int64
    public var rowsQuarantined: Int64
    public var result: String?

    public init(stage: Stage, outputs: [ChunkRef] = [], rowsIn: Int64 = 0, rowsOut: Int64 = 0, rowsQuarantined: Int64 = 0,
                result: String? = nil) {
        self.stage = stage
        self.outputs = outputs
        self.rowsIn = rowsIn
        self.rowsOut = rowsOut
        self.rowsQuarantined = rowsQuarantined
        self.result = result
    }
}

/// A worker's liveness report, every few seconds.
public struct WorkerHeartbeat: Codable, Sendable, Hashable {
    public enum State: String, Codable, Sendable {
        case running
        /// SIGTERM received: takes no new tasks, finishing the ones it has.
        case draining
        /// Its last beat: it has stopped.
        case stopped
    }
    public var worker: WorkerIdentity
    public var at: Date
    public var state: State
    public var stages: [Stage]
    public var concurrency: Int
    /// Task ids it is executing now.
    public var running: [String]
    /// The broker node (`host:port`) its connection is on; nil when not
    /// known (an older worker, or reconnecting). Additive: absent before.
    public var node: String?
    /// How many times its broker connection was re-established since start.
    public var reconnects: Int?
    /// CPU time (user + system) the worker process used since it started,
    /// and its resident memory; nil from an older worker or where the
    /// system does not tell. Additive: absent before.
    public var cpuSeconds: Double?
    public var residentBytes: Int64?

    public init(worker: WorkerIdentity, at: Date, state: State, stages: [Stage], concurrency: Int, running: [String],
                node: String? = nil, reconnects: Int? = nil, cpuSeconds: Double? = nil, residentBytes: Int64? = nil) {
        self.worker = worker
        self.at = at
        self.state = state
        self.stages = stages
        self.concurrency = concurrency
        self.running = running
        self.node = node
        self.reconnects = reconnects
        self.cpuSeconds = cpuSeconds
        self.residentBytes = residentBytes
    }
}

/// The one JSON form of every wire message (dates as seconds since 1970, with fractions).
public enum WireCoding {
    public static func encode<T: Encodable>(_ value: T) throws -> [UInt8] {
        let e = JSONEncoder()
        e.dateEncodingStrategy = .secondsSince1970
        return Array(try e.encode(value))
    }

    public static func decode<T: Decodable>(_ type: T.Type, from bytes: [UInt8]) throws -> T {
        let d = JSONDecoder()
        d.dateDecodingStrategy = .secondsSince1970
        return try d.decode(type, from: Data(bytes))
    }
}
