import FleetCore
import Foundation
import GRDB
import Logging

// Where a failed task is retried or fails its run, and where a run fails.
// The moves themselves are `State/StateMachine.swift`'s; the backoff is the
// `RetryPolicy`'s (FleetCore); the attempts a task gets are its
// `max_attempts`, set when it is planned (or retried by an operator).

extension CoordinatorEngine {
    /// Where retries are decided: a permanent failure fails the task and its
    /// run at once; a transient one (a lost execution included) is tried again
    /// after the retry policy's backoff while attempts remain, through a
    /// delayed outbox row; the last attempt's failure fails the run.
    func failOrRetry(_ task: TaskRecord, failure: TaskFailure, via: String, _ db: Database, now: Double,
                     effects: inout IntakeEffects) throws {
        if failure.kind == .transient, task.attempt < task.maxAttempts {
            let next = task.attempt + 1
            let delay = options.policy.delayMilliseconds(beforeAttempt: next)
            try StateMachine.scheduleRetry(task.id, attempt: next, error: failure.message, db)
            try db.run("INSERT INTO outbox(task, attempt, delay_ms, created_at) VALUES (?, ?, ?, ?)", [task.id, next, delay, now])
            effects.planned = true
            logger.info("task attempt failed; retrying after a backoff", metadata: Log.task(task).merging([
                "task.attempt": "\(task.attempt)", "task.next_attempt": "\(next)", "retry.delay_ms": "\(delay)",
                "error": "\(failure.message)",
            ]) { a, _ in a })
            return
        }
        try markFailed(task, failure.message, db, now: now)
        let why = failure.kind == .permanent
            ? "task \(task.label) failed: \(failure.message)"
            : "task \(task.label) failed after \(task.attempt) attempt\(task.attempt == 1 ? "" : "s") (last via \(via)): \(failure.message)"
        try failRun(task.run, message: why, db, now: now)
    }

    func markFailed(_ task: TaskRecord, _ error: String, _ db: Database, now: Double) throws {
        try StateMachine.failTask(task.id, error: error, at: now, db)
        try StateMachine.abandonExecutions(task: task.id, why: "the task failed while this execution had not reported", at: now, db)
    }

    /// Where a run fails (a task failed for good, or the quality gate): its
    /// unsent messages are dropped and tasks not yet sent are cancelled;
    /// running ones may still commit (a retry reuses them).
    func failRun(_ run: String, message: String, _ db: Database, now: Double) throws {
        guard try StateMachine.failRun(run, message: message, at: now, db) else { return }
        try db.run("DELETE FROM outbox WHERE sent_at IS NULL AND task IN (SELECT id FROM tasks WHERE run = ?)", [run])
        try StateMachine.cancelTasks(run: run, among: [.planned], at: now, db)
        try db.audit(actor: "coordinator", action: "run.failed", run: run, detail: message, at: now)
        try db.raiseRunAlert(.runFailed, run: run, message: message, at: now)
        logger.error("run failed", metadata: ["run.id": "\(run)", "error": "\(message)"])
    }
}
