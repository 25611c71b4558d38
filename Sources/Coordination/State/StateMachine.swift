import FleetCore
import Foundation
import GRDB

/// The only code that writes a `state` column (runs, tasks, executions,
/// workers). Each function makes one move of `Transitions.swift`'s tables:
/// its UPDATE carries the move's `WHERE state IN (…)`, so it changes nothing
/// when the row is not in a state the table allows, and says so (`false`,
/// or a count of 0). Callers that must refuse a move (an operator's action)
/// check the state first and explain; intake treats a move that did not
/// apply as an event that came too late.
///
/// Every function runs inside the caller's transaction.
enum StateMachine {
    // MARK: runs

    /// The columns of a new run.
    struct NewRun {
        var id: String
        var kind: String
        var pipeline: String
        var specText: String
        var specSHA256: String
        var specFile: String
        var specDirectory: String
        var allowedRoots: String
        var partitions: Int
        var approvalRequired: Bool
        var submittedBy: String
        /// The authenticated principal who submitted it (nil without auth).
        var submitterPrincipal: String? = nil
    }

    /// Writes the run `pending`; `startRun` moves it on once its first
    /// tasks are planned.
    static func createRun(_ r: NewRun, at now: Double, _ db: Database) throws {
        try db.run("""
            INSERT INTO runs(id, kind, pipeline, state, spec_text, spec_sha256, spec_file, spec_directory, allowed_roots,
                             partitions, approval_required, submitted_by, submitted_at, submitter_principal)
            VALUES (?, ?, ?, 'pending', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """, [r.id, r.kind, r.pipeline, r.specText, r.specSHA256, r.specFile, r.specDirectory, r.allowedRoots,
                  r.partitions, r.approvalRequired, r.submittedBy, now, r.submitterPrincipal])
    }

    @discardableResult
    static func startRun(_ id: String, _ db: Database) throws -> Bool {
        try db.run(SQL.startRun, [id])
        return db.changesCount > 0
    }

    @discardableResult
    static func awaitApproval(_ id: String, message: String, _ db: Database) throws -> Bool {
        try db.run(SQL.awaitApproval, [message, id])
        return db.changesCount > 0
    }

    @discardableResult
    static func approveRun(_ id: String, by: String, at now: Double, _ db: Database) throws -> Bool {
        try db.run(SQL.approveRun, [by, now, id])
        return db.changesCount > 0
    }

    @discardableResult
    static func succeedRun(_ id: String, at now: Double, _ db: Database) throws -> Bool {
        try db.run(SQL.succeedRun, [now, id])
        return db.changesCount > 0
    }

    @discardableResult
    static func failRun(_ id: String, message: String, at now: Double, _ db: Database) throws -> Bool {
        try db.run(SQL.failRun, [message, now, id])
        return db.changesCount > 0
    }

    @discardableResult
    static func cancelRun(_ id: String, message: String, at now: Double, _ db: Database) throws -> Bool {
        try db.run(SQL.cancelRun, [message, now, id])
        return db.changesCount > 0
    }

    @discardableResult
    static func retryRun(_ id: String, _ db: Database) throws -> Bool {
        try db.run(SQL.retryRun, [id])
        return db.changesCount > 0
    }

    // MARK: tasks

    /// Writes a task `planned` and returns its id; the caller adds its inputs
    /// and outbox row in the same transaction.
    static func createTask(run: String, stage: Stage, index: Int, maxAttempts: Int, body: Data, label: String,
                           at now: Double, _ db: Database) throws -> Int64 {
        try db.run("""
            INSERT INTO tasks(run, stage, idx, state, attempt, max_attempts, body, label, planned_at)
            VALUES (?, ?, ?, 'planned', 1, ?, ?, ?, ?)
            """, [run, stage.rawValue, index, maxAttempts, body, label, now])
        return db.lastInsertedRowID
    }

    /// The broker confirmed attempt `attempt`'s message (an older attempt's
    /// late confirm moves nothing).
    @discardableResult
    static func queueTask(_ task: Int64, attempt: Int, _ db: Database) throws -> Bool {
        try db.run(SQL.queueTask, [task, attempt])
        return db.changesCount > 0
    }

    @discardableResult
    static func startTask(_ task: Int64, _ db: Database) throws -> Bool {
        try db.run(SQL.startTask, [task])
        return db.changesCount > 0
    }

    @discardableResult
    static func commitWinner(_ task: Int64, execution: String, result: String?, at now: Double, _ db: Database) throws -> Bool {
        try db.run(SQL.commitWinner, [execution, result, now, task])
        return db.changesCount > 0
    }

    /// Back to `planned` for attempt `attempt`, counting a retry; the caller
    /// adds the delayed outbox row.
    @discardableResult
    static func scheduleRetry(_ task: Int64, attempt: Int, error: String, _ db: Database) throws -> Bool {
        try db.run(SQL.scheduleRetry, [attempt, error, task])
        return db.changesCount > 0
    }

    @discardableResult
    static func failTask(_ task: Int64, error: String, at now: Double, _ db: Database) throws -> Bool {
        try db.run(SQL.failTask, [error, now, task])
        return db.changesCount > 0
    }

    /// Cancels the run's tasks that are in one of `among` (and that the
    /// table lets `cancel` move); returns how many.
    @discardableResult
    static func cancelTasks(run: String, among: Set<TaskState>, at now: Double, _ db: Database) throws -> Int {
        let from = TaskMove.cancel.transition.from.intersection(among)
        guard !from.isEmpty else { return 0 }
        let states = from.map { "'\($0.rawValue)'" }.sorted().joined(separator: ", ")
        try db.run("UPDATE tasks SET state = '\(TaskMove.cancel.transition.to.rawValue)', finished_at = ? WHERE run = ? AND state IN (\(states))",
                   [now, run])
        return db.changesCount
    }

    /// A failed or cancelled task planned again with a fresh attempt budget.
    @discardableResult
    static func retryTask(_ task: Int64, attempt: Int, maxAttempts: Int, _ db: Database) throws -> Bool {
        try db.run(SQL.retryTask, [attempt, maxAttempts, task])
        return db.changesCount > 0
    }

    // MARK: executions

    /// Writes an execution `running`, unless its id is known already.
    static func createExecution(_ id: String, task: Int64, attempt: Int, worker: WorkerIdentity, deliveryCount: Int,
                                startedAt: Double, _ db: Database) throws {
        try db.run("""
            INSERT OR IGNORE INTO executions(id, task, attempt, worker, host, pid, delivery_count, state, started_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, 'running', ?)
            """, [id, task, attempt, worker.id, worker.host, worker.pid, deliveryCount, startedAt])
    }

    /// Writes a `lost` execution: a message dead-lettered past the delivery limit.
    static func createLostExecution(_ id: String, task: Int64, attempt: Int, reason: String, at now: Double,
                                    _ db: Database) throws {
        try db.run("""
            INSERT INTO executions(id, task, attempt, state, started_at, finished_at, error_kind, error)
            VALUES (?, ?, ?, 'lost', ?, ?, 'transient', ?)
            """, [id, task, attempt, now, now, reason])
    }

    /// An execution's end as its worker reported it.
    struct Finish {
        var finishedAt: Double
        var rowsIn: Int64
        var rowsOut: Int64
        var rowsQuarantined: Int64
        var failure: TaskFailure?
        var deliveryCount: Int
    }

    /// `move` is `.succeed`, `.recordDuplicate`, `.fail` or `.timeOut`.
    @discardableResult
    static func finishExecution(_ id: String, _ move: ExecutionMove, _ f: Finish, _ db: Database) throws -> Bool {
        precondition(move != .abandon, "abandonExecutions moves executions to abandoned")
        try db.run(SQL.finishExecution[move]!, [f.finishedAt, f.rowsIn, f.rowsOut, f.rowsQuarantined,
                                               f.failure?.kind.rawValue, f.failure?.message, f.deliveryCount, id])
        return db.changesCount > 0
    }

    /// The task's executions still running, moved to `abandoned` because the
    /// task settled without them; returns how many.
    @discardableResult
    static func abandonExecutions(task: Int64, why: String, at now: Double, _ db: Database) throws -> Int {
        try db.run(SQL.abandonExecutions, [now, why, task])
        return db.changesCount
    }

    // MARK: workers

    /// A heartbeat: the worker's row, with the state it reports.
    /// `last_seen` is when the coordinator received it (`now`), not the
    /// worker's clock: everything compares it with the coordinator's clock
    /// (worker_lost, live workers), and skew between hosts must not count.
    static func recordHeartbeat(_ b: WorkerHeartbeat, at now: Double, _ db: Database) throws {
        try db.run("""
            INSERT INTO workers(id, host, pid, version, state, stages, concurrency, running, first_seen, last_seen)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT(id) DO UPDATE SET state = excluded.state, stages = excluded.stages,
                concurrency = excluded.concurrency, running = excluded.running, last_seen = excluded.last_seen
            """, [b.worker.id, b.worker.host, b.worker.pid, b.worker.version, b.state.rawValue,
                  b.stages.map(\.rawValue).joined(separator: ","), b.concurrency,
                  b.running.joined(separator: "\n"), now, now])
    }

    // MARK: the statements, built once from the tables

    private enum SQL {
        static func run(_ move: RunMove, set: String = "") -> String {
            let t = move.transition
            return "UPDATE runs SET state = '\(t.to.rawValue)'\(set) WHERE id = ? AND \(t.fromClause)"
        }
        static func task(_ move: TaskMove, set: String = "", extra: String = "") -> String {
            let t = move.transition
            return "UPDATE tasks SET state = '\(t.to.rawValue)'\(set) WHERE id = ? AND \(t.fromClause)\(extra)"
        }

        static let startRun = run(.start)
        static let awaitApproval = run(.awaitApproval, set: ", message = ?")
        static let approveRun = run(.approve, set: ", approved_by = ?, approved_at = ?, message = NULL")
        static let succeedRun = run(.succeed, set: ", message = NULL, finished_at = ?")
        static let failRun = run(.fail, set: ", message = ?, finished_at = ?")
        static let cancelRun = run(.cancel, set: ", message = ?, finished_at = ?")
        // A late run whose lateness was resolved (it finished) is late
        // afresh once retried: the watcher raises a new deadline_missed
        // (the next generation's key) and resolves it when it finishes.
        static let retryRun = run(.retry, set: ", message = NULL, finished_at = NULL, "
                                  + "late_at = CASE WHEN late_resolved_at IS NOT NULL THEN NULL ELSE late_at END, late_resolved_at = NULL")

        static let queueTask = task(.queue, extra: " AND attempt = ?")
        static let startTask = task(.start)
        static let commitWinner = task(.commitWinner, set: ", winner = ?, result = ?, finished_at = ?")
        static let scheduleRetry = task(.scheduleRetry, set: ", attempt = ?, retries = retries + 1, last_error = ?")
        static let failTask = task(.fail, set: ", last_error = ?, finished_at = ?")
        static let retryTask = task(.retry, set: ", attempt = ?, max_attempts = ?, finished_at = NULL")

        static let finishExecution: [ExecutionMove: String] = Dictionary(uniqueKeysWithValues:
            [ExecutionMove.succeed, .recordDuplicate, .fail, .timeOut].map { move in
                let t = move.transition
                return (move, """
                    UPDATE executions SET state = '\(t.to.rawValue)', finished_at = ?, rows_in = ?, rows_out = ?, rows_quarantined = ?,
                        error_kind = ?, error = ?, delivery_count = MAX(delivery_count, ?) WHERE id = ? AND \(t.fromClause)
                    """)
            })
        static let abandonExecutions = """
            UPDATE executions SET state = '\(ExecutionMove.abandon.transition.to.rawValue)', finished_at = ?, error_kind = 'transient', error = ?
            WHERE task = ? AND \(ExecutionMove.abandon.transition.fromClause)
            """
    }
}
