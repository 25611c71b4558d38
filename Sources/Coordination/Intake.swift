import FleetCore
import Foundation
import GRDB
import Stages

/// What a committed batch leaves to do outside the transaction.
struct IntakeEffects: Sendable {
    /// Execution folders to delete (duplicates, discarded results).
    var reclaim: [String] = []
    /// New outbox rows: wake the dispatcher.
    var planned = false
    var taskDurations: [Double] = []
    var handoffLatencies: [Double] = []
}

/// A run's row.
struct RunRecord: Sendable {
    let id: String
    let kind: String
    let pipeline: String
    var state: RunState
    let specText: String
    let specSHA256: String
    let specFile: String
    let specDirectory: String
    let allowedRoots: [String]
    let partitions: Int
    let approvalRequired: Bool
    let submittedBy: String
    let submittedAt: Double
    let finishedAt: Double?
    let message: String?
    let approvedBy: String?
    let approvedAt: Double?

    init(_ row: Row) {
        id = row["id"]
        kind = row["kind"]
        pipeline = row["pipeline"]
        state = RunState(rawValue: row["state"]) ?? .failed
        specText = row["spec_text"]
        specSHA256 = row["spec_sha256"]
        specFile = row["spec_file"]
        specDirectory = row["spec_directory"]
        allowedRoots = (try? JSONDecoder().decode([String].self, from: Data((row["allowed_roots"] as String).utf8))) ?? []
        partitions = row["partitions"]
        approvalRequired = row["approval_required"]
        submittedBy = row["submitted_by"]
        submittedAt = row["submitted_at"]
        finishedAt = row["finished_at"]
        message = row["message"]
        approvedBy = row["approved_by"]
        approvedAt = row["approved_at"]
    }

    static func fetch(_ db: Database, _ id: String) throws -> RunRecord? {
        try db.row("SELECT * FROM runs WHERE id = ?", [id]).map(RunRecord.init)
    }
}

/// A task's row.
struct TaskRecord: Sendable {
    let id: Int64
    let run: String
    let stage: Stage
    let index: Int
    var state: TaskState
    let attempt: Int
    let maxAttempts: Int
    let label: String
    let winner: String?
    let result: String?
    let plannedAt: Double

    init(_ row: Row) {
        id = row["id"]
        run = row["run"]
        stage = Stage(rawValue: row["stage"]) ?? .noop
        index = row["idx"]
        state = TaskState(rawValue: row["state"]) ?? .failed
        attempt = row["attempt"]
        maxAttempts = row["max_attempts"]
        label = row["label"]
        winner = row["winner"]
        result = row["result"]
        plannedAt = row["planned_at"]
    }

    /// Not yet succeeded, failed or cancelled.
    var isOpen: Bool { state == .planned || state == .queued || state == .running }

    static func fetch(_ db: Database, run: String, stage: Stage, index: Int) throws -> TaskRecord? {
        // Not the message body nor the result: the intake needs neither, and they can be large.
        try db.row("""
            SELECT id, run, stage, idx, state, attempt, max_attempts, label, winner, NULL AS result, planned_at
            FROM tasks WHERE run = ? AND stage = ? AND idx = ?
            """, [run, stage.rawValue, index]).map(TaskRecord.init)
    }
}

extension CoordinatorEngine {
    /// Commits a batch of inbox messages. Idempotent per message: an event
    /// for an execution already recorded in a final state changes nothing,
    /// so a redelivered batch after a crash commits nothing twice.
    func apply(_ bodies: [InboundEvent.Body], _ db: Database) throws -> IntakeEffects {
        var effects = IntakeEffects()
        var touched: [String] = []
        let now = Date().timeIntervalSince1970
        for body in bodies {
            switch body {
            case .event(let e):
                if try applyEvent(e, db, now: now, effects: &effects) { touched.append(e.run) }
            case .heartbeat(let b):
                try db.run("""
                    INSERT INTO workers(id, host, pid, version, state, stages, concurrency, running, first_seen, last_seen)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    ON CONFLICT(id) DO UPDATE SET state = excluded.state, stages = excluded.stages,
                        concurrency = excluded.concurrency, running = excluded.running, last_seen = excluded.last_seen
                    """, [b.worker.id, b.worker.host, b.worker.pid, b.worker.version, b.state.rawValue,
                                     b.stages.map(\.rawValue).joined(separator: ","), b.concurrency,
                                     b.running.joined(separator: "\n"), now, b.at.timeIntervalSince1970])
            case .deadLetter(let task, let reason):
                if try applyLost(task, reason: reason, db, now: now, effects: &effects) { touched.append(task.run) }
            case .unreadable(let why):
                logger.warning("an unreadable message reached the coordinator and was dropped: \(why)")
            }
        }
        var seen = Set<String>()
        for run in touched where seen.insert(run).inserted {
            try advance(run: run, db, now: now, effects: &effects)
        }
        return effects
    }

    /// Returns whether the run may have moved.
    private func applyEvent(_ e: TaskEvent, _ db: Database, now: Double, effects: inout IntakeEffects) throws -> Bool {
        guard let task = try TaskRecord.fetch(db, run: e.run, stage: e.stage, index: e.index) else {
            logger.warning("an event for unknown task \(e.taskID) (execution \(e.execution)) was dropped")
            return false
        }
        let existing = (try db.value("SELECT state FROM executions WHERE id = ?", [e.execution]) as String?)
            .flatMap(ExecutionState.init(rawValue:))
        let dir = chunkStore.executionDirectory(run: e.run, stage: e.stage, index: e.index, execution: e.execution)

        if e.kind == .started {
            guard existing == nil else { return false }
            try insertExecution(e, task: task, state: .running, db)
            try db.run("UPDATE tasks SET state = 'running' WHERE id = ? AND state IN ('planned', 'queued')", [task.id])
            return false
        }
        // A final event for an execution already final: a redelivery. An
        // abandoned one (its task settled while it had not reported) still
        // gets its own end recorded.
        if let existing, existing != .running && existing != .abandoned { return false }
        if existing == nil {
            // No `started` event came first (a short task): one insert, finished below.
            try insertExecution(e, task: task, state: .running, db)
        }

        let runState = (try db.value("SELECT state FROM runs WHERE id = ?", [e.run]) as String?).flatMap(RunState.init(rawValue:))
        let finishTimes = (e.startedAt.timeIntervalSince1970, (e.finishedAt ?? Date()).timeIntervalSince1970)
        func finishExecution(_ state: ExecutionState) throws {
            try db.run("""
                UPDATE executions SET state = ?, finished_at = ?, rows_in = ?, rows_out = ?, rows_quarantined = ?,
                    error_kind = ?, error = ?, delivery_count = MAX(delivery_count, ?) WHERE id = ?
                """, [state.rawValue, finishTimes.1, e.rowsIn, e.rowsOut, e.rowsQuarantined,
                                 e.failure?.kind.rawValue, e.failure?.message, e.deliveryCount, e.execution])
        }

        switch e.kind {
        case .started:
            return false
        case .succeeded:
            guard task.isOpen, runState != .cancelled else {
                // The task has its winner (or the run was cancelled): this
                // result is recorded and its files reclaimed, never used.
                try finishExecution(.duplicate)
                effects.reclaim.append(dir)
                return false
            }
            try finishExecution(.succeeded)
            try db.run("UPDATE tasks SET state = 'succeeded', winner = ?, result = ?, finished_at = ? WHERE id = ?",
                           [e.execution, e.result, now, task.id])
            for c in e.outputs {
                let id = try db.chunkID(c, run: e.run)
                try db.run("INSERT OR IGNORE INTO edges(chunk, execution, direction) VALUES (?, ?, 'out')",
                               [id, e.execution])
            }
            try db.run("""
                INSERT OR IGNORE INTO edges(chunk, execution, direction) SELECT chunk, ?, 'in' FROM task_inputs WHERE task = ?
                """, [e.execution, task.id])
            try db.audit(actor: e.worker.id, action: "task.committed", run: e.run,
                         detail: "\(e.stage.rawValue)/\(e.index) execution \(e.execution)", at: now)
            try abandonRunning(task, "execution \(e.execution) completed the task while this one had not reported", db, now: now)
            effects.taskDurations.append(max(0, finishTimes.1 - finishTimes.0))
            effects.handoffLatencies.append(max(0, now - task.plannedAt))
            return true
        case .failed:
            try finishExecution(.failed)
            let failure = e.failure ?? TaskFailure(.transient, "the worker reported a failure without a reason")
            // Only the failure of the current attempt decides; an older
            // attempt's late failure is history.
            guard task.attempt == e.attempt, task.isOpen else { return false }
            guard runState == .running || runState == .awaitingApproval else {
                try markFailed(task, failure.message, db, now: now)
                return false
            }
            try failOrRetry(task, failure: failure, via: "execution \(e.execution) on \(e.worker.host)", db, now: now, effects: &effects)
            return true
        }
    }

    private func insertExecution(_ e: TaskEvent, task: TaskRecord, state: ExecutionState, _ db: Database) throws {
        try db.run("""
            INSERT OR IGNORE INTO executions(id, task, attempt, worker, host, pid, delivery_count, state, started_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
            """, [e.execution, task.id, e.attempt, e.worker.id, e.worker.host, e.worker.pid, e.deliveryCount,
                             state.rawValue, e.startedAt.timeIntervalSince1970])
    }

    /// A task message dead-lettered past the delivery limit: the workers that
    /// took it died each time. Recorded as a lost execution, then retried or
    /// failed like a transient failure.
    private func applyLost(_ message: TaskMessage, reason: String, _ db: Database, now: Double,
                           effects: inout IntakeEffects) throws -> Bool {
        guard let task = try TaskRecord.fetch(db, run: message.run, stage: message.stage, index: message.index) else { return false }
        // One lost record per dead-lettered attempt (a dead letter may arrive twice).
        let lostID = "lost-\(task.id)-\(message.attempt)"
        let known = (try db.value("SELECT 1 FROM executions WHERE id = ?", [lostID]) as Bool?) ?? false
        guard !known else { return false }
        try db.run("""
            INSERT INTO executions(id, task, attempt, state, started_at, finished_at, error_kind, error)
            VALUES (?, ?, ?, 'lost', ?, ?, 'transient', ?)
            """, [lostID, task.id, message.attempt, now, now, reason])
        let run = try RunRecord.fetch(db, message.run)
        guard task.attempt == message.attempt, task.isOpen else { return false }
        guard run?.state == .running || run?.state == .awaitingApproval else {
            try markFailed(task, "lost: \(reason)", db, now: now)
            return false
        }
        try failOrRetry(task, failure: TaskFailure(.transient, "lost: \(reason) (a worker died while running it)"),
                        via: "the stage queue", db, now: now, effects: &effects)
        return true
    }

    /// A permanent failure fails the task and its run at once; a transient
    /// one is retried after a backoff while attempts remain.
    private func failOrRetry(_ task: TaskRecord, failure: TaskFailure, via: String, _ db: Database, now: Double,
                             effects: inout IntakeEffects) throws {
        if failure.kind == .transient, task.attempt < task.maxAttempts {
            let next = task.attempt + 1
            let delay = options.policy.delayMilliseconds(beforeAttempt: next)
            try db.run("""
                UPDATE tasks SET state = 'planned', attempt = ?, retries = retries + 1, last_error = ? WHERE id = ?
                """, [next, failure.message, task.id])
            try db.run("INSERT INTO outbox(task, attempt, delay_ms, created_at) VALUES (?, ?, ?, ?)",
                           [task.id, next, delay, now])
            effects.planned = true
            logger.info("task \(task.run)/\(task.label) attempt \(task.attempt) failed (\(failure.message)); attempt \(next) in \(delay) ms")
            return
        }
        try markFailed(task, failure.message, db, now: now)
        let why = failure.kind == .permanent
            ? "task \(task.label) failed: \(failure.message)"
            : "task \(task.label) failed after \(task.attempt) attempt\(task.attempt == 1 ? "" : "s") (last via \(via)): \(failure.message)"
        try failRun(task.run, message: why, db, now: now)
    }

    private func markFailed(_ task: TaskRecord, _ error: String, _ db: Database, now: Double) throws {
        try db.run("UPDATE tasks SET state = 'failed', last_error = ?, finished_at = ? WHERE id = ?",
                       [error, now, task.id])
        try abandonRunning(task, "the task failed while this execution had not reported", db, now: now)
    }

    /// Executions still `running` when their task settles without them: a
    /// worker killed mid-task never reports, and its execution would read
    /// as running forever (in status, metrics and OpenLineage).
    private func abandonRunning(_ task: TaskRecord, _ why: String, _ db: Database, now: Double) throws {
        try db.run("""
            UPDATE executions SET state = 'abandoned', finished_at = ?, error_kind = 'transient', error = ?
            WHERE task = ? AND state = 'running'
            """, [now, why, task.id])
    }

    /// Fails a run: its unsent messages are dropped and tasks not yet
    /// started are cancelled; running ones may still commit (a retry reuses
    /// them).
    func failRun(_ run: String, message: String, _ db: Database, now: Double) throws {
        try db.run("UPDATE runs SET state = 'failed', message = ?, finished_at = ? WHERE id = ? AND state IN ('running', 'pending', 'awaiting_approval')",
                       [message, now, run])
        try db.run("DELETE FROM outbox WHERE sent_at IS NULL AND task IN (SELECT id FROM tasks WHERE run = ?)", [run])
        try db.run("UPDATE tasks SET state = 'cancelled', finished_at = ? WHERE run = ? AND state = 'planned'", [now, run])
        try db.audit(actor: "coordinator", action: "run.failed", run: run, detail: message, at: now)
        logger.error("run \(run) failed: \(message)")
    }
}
