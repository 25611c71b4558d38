/// What the coordinator raises an alert for (docs/alerts.md). The spec's
/// `notify: [{on: [...]}]`, `bis coordinator --alerts FILE`'s routes and the
/// alerts in the lineage store all use these names.
public enum AlertEvent: String, Codable, Sendable, CaseIterable, Hashable {
    /// A run failed (a task for good, or the quality gate).
    case runFailed = "run_failed"
    /// A run succeeded: only to receivers that list it (opt-in).
    case runSucceeded = "run_succeeded"
    /// A run waits for `bis approve`.
    case awaitingApproval = "awaiting_approval"
    /// A run not finished at its deadline; resolved when it finishes.
    case deadlineMissed = "deadline_missed"
    /// An execution ran past its stage's timeout.
    case taskTimedOut = "task_timed_out"
    /// A task message was dead-lettered (workers died on it each time).
    case taskDeadLettered = "task_dead_lettered"
    /// A worker stopped heartbeating while it held tasks.
    case workerLost = "worker_lost"
    /// A stage's tasks waited in the queue longer than `--queue-stall`.
    case queueStalled = "queue_stalled"

    /// What a receiver gets when it names no events: every event but the opt-in `run_succeeded`.
    public static let defaults: [AlertEvent] = allCases.filter { $0 != .runSucceeded }
}
