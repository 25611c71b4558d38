import FleetWire
import Foundation

/// What `/metrics` shows, as data: the store's counts at one moment and what
/// the engine counted in memory since it started. `CoordinatorHTTP` renders
/// it as Prometheus text. Nothing here names a run, task or execution (their
/// number is unbounded): only states, stages and counts.
public struct MetricsSnapshot: Sendable, Hashable {
    /// Runs in the store by state; a state without runs may be missing (0).
    public var runs: [RunState: Int]
    /// Tasks by stage and state, in the order to show them.
    public var tasks: [TaskCount]
    /// Executions in the store by state; a state without any may be missing (0).
    public var executions: [ExecutionState: Int]
    /// Task attempts after a failure or a lost execution.
    public var taskRetries: Int
    /// Ready messages per stage queue, as the transport knows them.
    public var queueDepths: [Stage: Int]
    /// Workers with a recent heartbeat that have not stopped.
    public var liveWorkers: Int
    /// Task messages the outbox sent and the broker confirmed, since start.
    public var messagesSent: Int
    /// Event batches committed (group commits), since start.
    public var intakeCommits: Int
    /// Messages refused since start, by reason (`missing_mac`, `bad_mac`,
    /// `invalid_field`): never executed or committed. A task message a
    /// worker refused counts when its dead letter reaches the coordinator.
    public var messagesRejected: [String: Int] = [:]
    /// Times the coordinator's broker connection was re-established since start.
    public var brokerReconnects: Int = 0
    /// Broker reconnects the workers report (their last heartbeats, summed),
    /// of workers heard from in the last hour since the coordinator started:
    /// a gauge, not a counter (it drops when a worker goes, restarts at zero
    /// with the coordinator).
    public var workerBrokerReconnects: Int = 0
    /// From a task's planning to its result's commit, since start.
    public var handoffLatency: Histogram
    /// Winning executions' run time, since start.
    public var taskDuration: Histogram
    /// Retention (`bis gc` and the hourly pass): bytes and files removed,
    /// and passes made, since start.
    public var gcReclaimedBytes: Int64 = 0
    public var gcReclaimedFiles: Int = 0
    public var gcPasses: Int = 0

    public struct TaskCount: Sendable, Hashable {
        public var stage: Stage
        public var state: TaskState
        public var count: Int

        public init(stage: Stage, state: TaskState, count: Int) {
            self.stage = stage
            self.state = state
            self.count = count
        }
    }

    /// A histogram as Prometheus keeps one: per upper bound the number of
    /// observations at or below it (cumulative), their sum and count.
    public struct Histogram: Sendable, Hashable {
        public let bounds: [Double]
        public var counts: [Int]
        public var sum = 0.0
        public var count = 0

        public init(bounds: [Double]) {
            self.bounds = bounds
            counts = Array(repeating: 0, count: bounds.count)
        }

        public mutating func observe(_ v: Double) {
            for (i, b) in bounds.enumerated() where v <= b { counts[i] += 1 }
            sum += v
            count += 1
        }
    }

    public init(runs: [RunState: Int] = [:], tasks: [TaskCount] = [], executions: [ExecutionState: Int] = [:],
                taskRetries: Int = 0, queueDepths: [Stage: Int] = [:], liveWorkers: Int = 0, messagesSent: Int = 0,
                intakeCommits: Int = 0, handoffLatency: Histogram = Histogram(bounds: []),
                taskDuration: Histogram = Histogram(bounds: [])) {
        self.runs = runs
        self.tasks = tasks
        self.executions = executions
        self.taskRetries = taskRetries
        self.queueDepths = queueDepths
        self.liveWorkers = liveWorkers
        self.messagesSent = messagesSent
        self.intakeCommits = intakeCommits
        self.handoffLatency = handoffLatency
        self.taskDuration = taskDuration
    }
}
