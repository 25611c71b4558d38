import FleetCore
import Foundation
import GRDB
import Logging
import Stages

/// What a committed batch leaves to do outside the transaction.
struct IntakeEffects: Sendable {
    /// Execution folders to delete (duplicates, discarded results).
    var reclaim: [String] = []
    /// New outbox rows: wake the dispatcher.
    var planned = false
    var taskDurations: [Double] = []
    var handoffLatencies: [Double] = []
    /// The rows of the results committed (pipeline runs' winners only), for
    /// `bis_pipeline_rows_*_total`: counted once per task, when its winner is
    /// committed, so a retried run's reused results do not count again.
    var rows: [CommittedRows] = []
    /// Messages refused (a missing or wrong MAC, a malformed field), by reason.
    var rejected: [MessageRejection.Reason: Int] = [:]
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
    let submitterPrincipal: String?
    /// A registered pipeline's run (migration 0006-schedules); nil for an ad-hoc one.
    let pipelineVersion: Int?
    let slot: String?
    let trigger: String?
    let params: [String: String]?
    /// When it missed its deadline (migration 0005), nil when it did not.
    let lateAt: Double?

    init(_ row: Row) throws {
        id = row["id"]
        kind = row["kind"]
        pipeline = row["pipeline"]
        state = try row.decode(RunState.self, "state", table: "runs", row: row["id"])
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
        submitterPrincipal = row["submitter_principal"]
        pipelineVersion = row["pipeline_version"]
        slot = row["slot"]
        trigger = row["trigger"]
        params = (row["params"] as String?).flatMap { try? JSONDecoder().decode([String: String].self, from: Data($0.utf8)) }
        lateAt = row["late_at"]
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

    init(_ row: Row) throws {
        id = row["id"]
        run = row["run"]
        stage = try row.decode(Stage.self, "stage", table: "tasks", row: "\(row["id"] as Int64)")
        index = row["idx"]
        state = try row.decode(TaskState.self, "state", table: "tasks", row: "\(row["id"] as Int64)")
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
        let now = clock.seconds
        for body in bodies {
            switch body {
            case .event(let e):
                // Ids and paths checked before any path is built from them
                // (a duplicate's folder is deleted by its execution id).
                do {
                    try e.validate()
                } catch {
                    reject(MessageRejection(.invalidField, "an event from worker \(e.worker.id): \(error)"), &effects)
                    continue
                }
                if try applyEvent(e, db, now: now, effects: &effects) { touched.append(e.run) }
            case .heartbeat(let b):
                try StateMachine.recordHeartbeat(b, at: now, db)
                metricsState.withLock { $0.heard(b, at: now) }
                if b.node != nil || b.reconnects != nil {
                    metricsState.withLock {
                        $0.workerBroker[b.worker.id] = (b.node, b.reconnects, now)
                        // Workers gone for an hour (the workers view's window) no longer count.
                        $0.workerBroker = $0.workerBroker.filter { now - $0.value.at <= 3600 }
                    }
                }
            case .deadLetter(let task, let reason):
                // A task message a worker refused for a malformed field
                // comes back here: counted, never retried.
                do {
                    try task.validate()
                } catch {
                    reject(MessageRejection(.invalidField, "a dead-lettered task message (\(reason)): \(error)"), &effects)
                    continue
                }
                if try applyLost(task, reason: reason, db, now: now, effects: &effects) { touched.append(task.run) }
            case .rejected(let rejection):
                reject(rejection, &effects)
            case .unreadable(let why):
                logger.warning("an unreadable message reached the coordinator and was dropped", metadata: ["error": "\(why)"])
            }
        }
        var seen = Set<String>()
        for run in touched where seen.insert(run).inserted {
            try advance(run: run, db, now: now, effects: &effects)
        }
        return effects
    }

    /// Counts and logs a message refused unread (its MAC) or unused (a
    /// malformed field): it changes nothing in the store.
    private func reject(_ r: MessageRejection, _ effects: inout IntakeEffects) {
        effects.rejected[r.reason, default: 0] += 1
        logger.warning("a message was refused and not acted on", metadata: ["rejection.reason": "\(r.reason.rawValue)",
                                                                          "rejection.detail": "\(r.detail)"])
    }

    /// `apply`, each message in a savepoint of its own: one that touches a
    /// row this build cannot read (`StoredValueError`) is logged and skipped
    /// (acked with the batch: it could never be committed), the others are
    /// committed. The slow path, taken only after a batch failed that way.
    func applyOneByOne(_ bodies: [InboundEvent.Body], _ db: Database) throws -> IntakeEffects {
        var all = IntakeEffects()
        for body in bodies {
            var one = IntakeEffects()
            do {
                try db.inSavepoint {
                    one = try apply([body], db)
                    return .commit
                }
            } catch let error as StoredValueError {
                logger.error("skipped an event that touches a row this coordinator cannot read", metadata: ["error": "\(error)"])
                continue
            }
            all.reclaim += one.reclaim
            all.planned = all.planned || one.planned
            all.taskDurations += one.taskDurations
            all.handoffLatencies += one.handoffLatencies
            all.rows += one.rows
            all.rejected.merge(one.rejected, uniquingKeysWith: +)
        }
        return all
    }

    /// Records one worker event; returns whether the run may have moved.
    private func applyEvent(_ e: TaskEvent, _ db: Database, now: Double, effects: inout IntakeEffects) throws -> Bool {
        guard let task = try TaskRecord.fetch(db, run: e.run, stage: e.stage, index: e.index) else {
            logger.warning("an event for an unknown task was dropped", metadata: Log.event(e))
            return false
        }
        let existing = try (db.value("SELECT state FROM executions WHERE id = ?", [e.execution]) as String?).map {
            guard let state = ExecutionState(rawValue: $0) else {
                throw StoredValueError(table: "executions", row: e.execution, column: "state", value: $0)
            }
            return state
        }
        if e.kind == .started {
            guard existing == nil else { return false }
            try StateMachine.createExecution(e.execution, task: task.id, attempt: e.attempt, worker: e.worker,
                                             deliveryCount: e.deliveryCount, startedAt: e.startedAt.timeIntervalSince1970, db)
            try StateMachine.startTask(task.id, db)
            return false
        }
        // A final event for an execution already final: a redelivery. An
        // abandoned one (its task settled while it had not reported) still
        // gets its own end recorded.
        if let existing, existing != .running && existing != .abandoned { return false }
        if existing == nil {
            // No `started` event came first (a short task): one insert, finished below.
            try StateMachine.createExecution(e.execution, task: task.id, attempt: e.attempt, worker: e.worker,
                                             deliveryCount: e.deliveryCount, startedAt: e.startedAt.timeIntervalSince1970, db)
        }
        let runState = try RunRecord.state(of: e.run, db)
        let finish = StateMachine.Finish(finishedAt: (e.finishedAt ?? clock.now()).timeIntervalSince1970,
                                         rowsIn: e.rowsIn, rowsOut: e.rowsOut, rowsQuarantined: e.rowsQuarantined,
                                         failure: e.failure, deliveryCount: e.deliveryCount)
        switch e.kind {
        case .started:
            return false
        case .succeeded:
            return try applySuccess(e, task: task, runState: runState, finish: finish, db, now: now, effects: &effects)
        case .failed:
            let failure = e.failure ?? TaskFailure(.transient, "the worker reported a failure without a reason")
            // Stopped past its stage's timeout (spec `timeouts:`): `timed_out`, and an alert.
            if failure.kind == .transient, failure.timedOut == true {
                if try StateMachine.finishExecution(e.execution, .timeOut, finish, db) {
                    try db.raiseRunAlert(.taskTimedOut, run: e.run, task: e.taskID, key: "\(e.run)/task_timed_out/\(e.taskID)/\(e.attempt)",
                                         message: "task \(task.label) (attempt \(e.attempt)) \(failure.message) on \(e.worker.host)",
                                         at: now)
                }
            } else {
                try StateMachine.finishExecution(e.execution, .fail, finish, db)
            }
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

    /// The first success of an open task is its winner: the execution, the
    /// task, its output chunks and lineage edges and an audit row, in this
    /// transaction. Any later success (or one for a cancelled run) is a
    /// duplicate, its folder reclaimed.
    private func applySuccess(_ e: TaskEvent, task: TaskRecord, runState: RunState?, finish: StateMachine.Finish,
                              _ db: Database, now: Double, effects: inout IntakeEffects) throws -> Bool {
        guard task.isOpen, runState != .cancelled else {
            try StateMachine.finishExecution(e.execution, .recordDuplicate, finish, db)
            effects.reclaim.append(chunkStore.executionDirectory(run: e.run, stage: e.stage, index: e.index, execution: e.execution))
            return false
        }
        if let problem = try fusionProblem(e, task: task, db) {
            // Not committed: failed like a transient failure (retried up to
            // the stage's attempts), its files reclaimed, and said why.
            logger.warning("a fused result was refused", metadata: ["task.id": "\(e.taskID)", "execution": "\(e.execution)",
                                                                    "problem": "\(problem)"])
            let failure = TaskFailure(.transient, "the result was refused: \(problem)")
            var failed = finish
            failed.failure = failure
            try StateMachine.finishExecution(e.execution, .fail, failed, db)
            effects.reclaim.append(chunkStore.executionDirectory(run: e.run, stage: e.stage, index: e.index, execution: e.execution))
            // As a reported failure: only the current attempt decides, and
            // in a run that is no longer going the task fails outright.
            guard task.attempt == e.attempt else { return false }
            guard runState == .running || runState == .awaitingApproval else {
                try markFailed(task, failure.message, db, now: now)
                return false
            }
            try failOrRetry(task, failure: failure, via: "execution \(e.execution) on \(e.worker.host)", db, now: now, effects: &effects)
            return true
        }
        try StateMachine.finishExecution(e.execution, .succeed, finish, db)
        try StateMachine.commitWinner(task.id, execution: e.execution, result: e.result, at: now, db)
        for c in e.outputs {
            let id = try db.chunkID(c, run: e.run)
            try db.run("INSERT OR IGNORE INTO edges(chunk, execution, direction) VALUES (?, ?, 'out')", [id, e.execution])
        }
        try db.run("""
            INSERT OR IGNORE INTO edges(chunk, execution, direction) SELECT chunk, ?, 'in' FROM task_inputs WHERE task = ?
            """, [e.execution, task.id])
        try db.audit(actor: e.worker.id, action: "task.committed", run: e.run,
                     detail: "\(e.stage.rawValue)/\(e.index) execution \(e.execution)", at: now)
        try StateMachine.abandonExecutions(task: task.id, why: "execution \(e.execution) completed the task while this one had not reported",
                                           at: now, db)
        effects.taskDurations.append(max(0, finish.finishedAt - e.startedAt.timeIntervalSince1970))
        effects.handoffLatencies.append(max(0, now - task.plannedAt))
        let pipeline = try String.fetchOne(db, sql: "SELECT pipeline FROM runs WHERE id = ? AND kind = 'pipeline'", arguments: [e.run])
        if let pipeline {
            effects.rows.append(CommittedRows(pipeline: pipeline, stage: e.stage, rowsIn: e.rowsIn, rowsOut: e.rowsOut,
                                              rowsQuarantined: e.rowsQuarantined))
        }
        for f in e.followers ?? [] {
            guard try commitFollower(f, of: e, leader: task, finish: finish, db, now: now) else { continue }
            if let pipeline {
                effects.rows.append(CommittedRows(pipeline: pipeline, stage: f.stage, rowsIn: f.rowsIn, rowsOut: f.rowsOut,
                                                  rowsQuarantined: f.rowsQuarantined))
            }
        }
        // After the followers: a fused normalize names the same source shard
        // as its input, and moves with the ingests to the file's identity.
        if e.stage == .ingest { try db.recordSourceIdentity(run: e.run, ingestTask: task.id) }
        return true
    }

    /// Why a success cannot be committed as it came, or nil. Its fused
    /// results must be of stages this task was sent fused with (the stored
    /// message's `fused`), with execution ids that fit, and name only data,
    /// quarantine and result files in the fused execution's own folder (a
    /// follower writes nowhere else; the leader's own outputs get only the
    /// message check every result gets, `TaskEvent.validate`: relative
    /// paths inside the data root). A task sent fused that returns no fused
    /// result must have run unfused, so it wrote its own data: a result with
    /// rows out but no data and no followers would leave the next stage
    /// nothing to read.
    private func fusionProblem(_ e: TaskEvent, task: TaskRecord, _ db: Database) throws -> String? {
        let followers = e.followers ?? []
        // The usual case decided without reading the stored message (every
        // result passes here: dispatch measured it).
        if followers.isEmpty, e.rowsOut == 0 || e.outputs.contains(where: { $0.kind == .data }) { return nil }
        guard let body = try Data.fetchOne(db, sql: "SELECT body FROM tasks WHERE id = ?", arguments: [task.id]) else {
            return "its task has no stored message"
        }
        let sent: [Stage]
        do {
            sent = try WireCoding.decode(TaskMessage.self, from: [UInt8](body)).fused ?? []
        } catch {
            throw StoredValueError(table: "tasks", row: String(task.id), column: "body", value: "\(body.count) bytes (\(error))")
        }
        guard !followers.isEmpty else {
            if !sent.isEmpty {
                return "the task was sent fused with \(sent.map(\.rawValue).joined(separator: ", ")), and its result has "
                    + "\(e.rowsOut) rows out but neither data of its own nor a fused result"
            }
            return nil
        }
        let folder = chunkStore.executionDirectory(run: e.run, stage: e.stage, index: e.index, execution: e.execution) + "/"
        for f in followers {
            guard sent.contains(f.stage), Self.fusable.contains(where: { $0 == (task.stage, f.stage) }) else {
                return "it carries a \(f.stage.rawValue) result, but the task was not sent fused with \(f.stage.rawValue)"
            }
            guard Self.followerExecution(e.execution, f.stage) != nil else {
                return "execution id \(e.execution) is too long to name its fused \(f.stage.rawValue) execution"
            }
            for o in f.outputs where !([.data, .quarantine, .result].contains(o.kind) && o.path.hasPrefix(folder)) {
                return "fused \(f.stage.rawValue) output \(o.path) (\(o.kind.rawValue)) is not a data, quarantine or result "
                    + "file in the execution's folder \(folder)"
            }
        }
        return nil
    }

    /// The (leader, follower) stages a fused task may carry: normalize in
    /// ingest's task, validate in consolidate's.
    static let fusable: [(Stage, Stage)] = [(.ingest, .normalize), (.consolidate, .validate)]

    /// The execution id a fused follower stage's record gets: the fused
    /// execution's, `.<stage>` appended; nil when that is past the id limit
    /// (cutting it could name another execution).
    static func followerExecution(_ execution: String, _ stage: Stage) -> String? {
        let id = execution + "." + stage.rawValue
        return id.count <= FleetIDs.maximumIDLength ? id : nil
    }

    /// A fused task's follower stage (`TaskMessage.fused`), recorded in the
    /// leader's commit transaction as a task of its own, so that everything
    /// reading that stage's tasks (the gate, publish's inputs, status, the
    /// report, lineage, OpenLineage) sees it as if it had run alone: a task
    /// row created and committed at once, the leader's inputs as its inputs,
    /// its winner an execution of its own (`followerExecution`: same worker,
    /// attempt and times as the fused one, the follower's rows and result)
    /// that wrote the follower's outputs (files in the fused execution's
    /// folder). `fusionProblem` has refused any result whose followers are
    /// not what this task was sent with; nothing is
    /// recorded when the follower's task exists already (an unfused one was
    /// planned). Returns whether it was recorded.
    private func commitFollower(_ f: FollowerResult, of e: TaskEvent, leader: TaskRecord, finish: StateMachine.Finish,
                                _ db: Database, now: Double) throws -> Bool {
        guard try TaskRecord.fetch(db, run: e.run, stage: f.stage, index: e.index) == nil else { return false }
        // Its message as an unfused task's would be (never sent): the leader's, for this stage.
        var body = Data()
        if let leaderBody = try Data.fetchOne(db, sql: "SELECT body FROM tasks WHERE id = ?", arguments: [leader.id]),
           var message = try? WireCoding.decode(TaskMessage.self, from: [UInt8](leaderBody)) {
            message.stage = f.stage
            message.fused = nil
            message.parameters["timeout_seconds"] = nil
            message.parameters["fused_in"] = FleetIDs.taskID(run: e.run, stage: leader.stage, index: e.index)
            body = Data(try WireCoding.encode(message))
        }
        let label = leader.label.replacingOccurrences(of: "\(leader.stage.rawValue) of", with: "\(f.stage.rawValue) of")
        let id = try StateMachine.createTask(run: e.run, stage: f.stage, index: e.index,
                                             maxAttempts: options.policy.maxAttempts(for: f.stage), body: body, label: label,
                                             at: leader.plannedAt, db)
        try db.run("INSERT OR IGNORE INTO task_inputs(task, chunk) SELECT ?, chunk FROM task_inputs WHERE task = ?", [id, leader.id])
        guard let execution = Self.followerExecution(e.execution, f.stage) else { return false }  // refused before
        try StateMachine.createExecution(execution, task: id, attempt: e.attempt, worker: e.worker,
                                         deliveryCount: e.deliveryCount, startedAt: e.startedAt.timeIntervalSince1970, db)
        var own = finish
        own.rowsIn = f.rowsIn
        own.rowsOut = f.rowsOut
        own.rowsQuarantined = f.rowsQuarantined
        try StateMachine.finishExecution(execution, .succeed, own, db)
        try StateMachine.commitWinner(id, execution: execution, result: f.result, at: now, db)
        for c in f.outputs {
            let chunk = try db.chunkID(c, run: e.run)
            try db.run("INSERT OR IGNORE INTO edges(chunk, execution, direction) VALUES (?, ?, 'out')", [chunk, execution])
        }
        try db.run("""
            INSERT OR IGNORE INTO edges(chunk, execution, direction) SELECT chunk, ?, 'in' FROM task_inputs WHERE task = ?
            """, [execution, id])
        try db.audit(actor: e.worker.id, action: "task.committed", run: e.run,
                     detail: "\(f.stage.rawValue)/\(e.index) execution \(execution) (fused in \(leader.stage.rawValue)/\(e.index) execution \(e.execution))",
                     at: now)
        return true
    }

    /// A task message dead-lettered (past the delivery limit: handed back by
    /// workers that many times without a result; or rejected). Recorded as a
    /// lost execution, then retried or failed like a transient failure. The
    /// reason is the transport's, which says what happened.
    private func applyLost(_ message: TaskMessage, reason: String, _ db: Database, now: Double,
                           effects: inout IntakeEffects) throws -> Bool {
        guard let task = try TaskRecord.fetch(db, run: message.run, stage: message.stage, index: message.index) else { return false }
        // One lost record per dead-lettered attempt (a dead letter may arrive twice).
        let lostID = "lost-\(task.id)-\(message.attempt)"
        let known = (try db.value("SELECT 1 FROM executions WHERE id = ?", [lostID]) as Bool?) ?? false
        guard !known else { return false }
        try StateMachine.createLostExecution(lostID, task: task.id, attempt: message.attempt, reason: reason, at: now, db)
        let taskID = FleetIDs.taskID(run: task.run, stage: task.stage, index: task.index)
        try db.raiseRunAlert(.taskDeadLettered, run: task.run, task: taskID, key: "\(task.run)/task_dead_lettered/\(taskID)/\(message.attempt)",
                             message: "task \(task.label) (attempt \(message.attempt)) was dead-lettered: \(reason)", at: now)
        let runState = try RunRecord.state(of: message.run, db)
        guard task.attempt == message.attempt, task.isOpen else { return false }
        guard runState == .running || runState == .awaitingApproval else {
            try markFailed(task, "lost: \(reason)", db, now: now)
            return false
        }
        try failOrRetry(task, failure: TaskFailure(.transient, "lost: \(reason)"),
                        via: "the stage queue", db, now: now, effects: &effects)
        return true
    }
}

extension RunRecord {
    /// The run's state alone, nil when there is no such run.
    static func state(of id: String, _ db: Database) throws -> RunState? {
        try (db.value("SELECT state FROM runs WHERE id = ?", [id]) as String?).map {
            guard let state = RunState(rawValue: $0) else { throw StoredValueError(table: "runs", row: id, column: "state", value: $0) }
            return state
        }
    }
}

/// Log metadata for the engine's records (swift-log keys, as the worker's).
enum Log {
    static func task(_ t: TaskRecord) -> Logger.Metadata {
        ["run.id": "\(t.run)", "task.id": "\(FleetIDs.taskID(run: t.run, stage: t.stage, index: t.index))",
         "task.stage": "\(t.stage.rawValue)"]
    }

    static func event(_ e: TaskEvent) -> Logger.Metadata {
        ["run.id": "\(e.run)", "task.id": "\(e.taskID)", "task.stage": "\(e.stage.rawValue)", "execution.id": "\(e.execution)"]
    }
}
