@testable import Coordination
import FleetCore
import WorkerRuntime
import Foundation
import GRDB
import Testing

/// The coordinator's state machine against an independent statement of it:
/// every (state, move) pair of runs, tasks and executions is tried on a real
/// store, and the result compared with the table written out below by hand.
@Suite struct StateMachineTests {
    // What each move does from each state, written independently of
    // `Transitions.swift`; a pair not listed must change nothing.
    static let runMoves: [RunState: [RunMove: RunState]] = [
        .pending: [.start: .running, .fail: .failed, .cancel: .cancelled],
        .running: [.awaitApproval: .awaitingApproval, .approve: .running, .succeed: .succeeded, .fail: .failed,
                   .cancel: .cancelled],
        .awaitingApproval: [.approve: .running, .fail: .failed, .cancel: .cancelled],
        .failed: [.cancel: .cancelled, .retry: .running],
        .succeeded: [:],
        .cancelled: [:],
    ]
    static let taskMoves: [TaskState: [TaskMove: TaskState]] = [
        .planned: [.queue: .queued, .start: .running, .commitWinner: .succeeded, .scheduleRetry: .planned, .fail: .failed,
                   .cancel: .cancelled],
        .queued: [.start: .running, .commitWinner: .succeeded, .scheduleRetry: .planned, .fail: .failed, .cancel: .cancelled],
        .running: [.commitWinner: .succeeded, .scheduleRetry: .planned, .fail: .failed, .cancel: .cancelled],
        .succeeded: [:],
        .failed: [.retry: .planned],
        .cancelled: [.retry: .planned],
    ]
    static let executionMoves: [ExecutionState: [ExecutionMove: ExecutionState]] = [
        .running: [.succeed: .succeeded, .recordDuplicate: .duplicate, .fail: .failed, .abandon: .abandoned, .timeOut: .timedOut],
        .abandoned: [.succeed: .succeeded, .recordDuplicate: .duplicate, .fail: .failed, .timeOut: .timedOut],
        .succeeded: [:], .failed: [:], .duplicate: [:], .lost: [:], .timedOut: [:],
    ]

    /// A store with one run, one task of it and one execution of the task.
    static func store() throws -> (LineageStore, String) {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("bis-sm-\(UUID().uuidString)").path
        let store = try LineageStore(path: dir + "/bis.db")
        try store.pool.write { db in
            try StateMachine.createRun(.init(id: "r", kind: "noop", pipeline: "p", specText: "", specSHA256: "", specFile: "",
                                             specDirectory: "", allowedRoots: "[]", partitions: 1, approvalRequired: false,
                                             submittedBy: "test"), at: 1, db)
            let task = try StateMachine.createTask(run: "r", stage: .noop, index: 0, maxAttempts: 3, body: Data(), label: "t",
                                                   at: 1, db)
            try StateMachine.createExecution("x", task: task, attempt: 1,
                                             worker: WorkerIdentity(id: "w", host: "h", pid: 1, version: "v"),
                                             deliveryCount: 1, startedAt: 1, db)
        }
        return (store, dir)
    }

    static func state(_ table: String, _ db: Database) throws -> String {
        try String.fetchOne(db, sql: "SELECT state FROM \(table) LIMIT 1")!
    }

    @Test func everyRunStateAndMove() throws {
        for (from, moves) in Self.runMoves {
            for move in RunMove.allCases {
                let (store, dir) = try Self.store()
                defer { try? FileManager.default.removeItem(atPath: dir) }
                let (moved, after) = try store.pool.write { db -> (Bool, String) in
                    try db.execute(sql: "UPDATE runs SET state = ?", arguments: [from.rawValue])
                    let moved: Bool
                    switch move {
                    case .start: moved = try StateMachine.startRun("r", db)
                    case .awaitApproval: moved = try StateMachine.awaitApproval("r", message: "m", db)
                    case .approve: moved = try StateMachine.approveRun("r", by: "a", at: 2, db)
                    case .succeed: moved = try StateMachine.succeedRun("r", at: 2, db)
                    case .fail: moved = try StateMachine.failRun("r", message: "m", at: 2, db)
                    case .cancel: moved = try StateMachine.cancelRun("r", message: "m", at: 2, db)
                    case .retry: moved = try StateMachine.retryRun("r", db)
                    }
                    return (moved, try Self.state("runs", db))
                }
                let expected = moves[move]
                #expect(moved == (expected != nil), "run \(from.rawValue) --\(move.rawValue)-->")
                #expect(after == (expected ?? from).rawValue, "run \(from.rawValue) --\(move.rawValue)-->")
            }
        }
    }

    @Test func everyTaskStateAndMove() throws {
        for (from, moves) in Self.taskMoves {
            for move in TaskMove.allCases {
                let (store, dir) = try Self.store()
                defer { try? FileManager.default.removeItem(atPath: dir) }
                let (moved, after) = try store.pool.write { db -> (Bool, String) in
                    try db.execute(sql: "UPDATE tasks SET state = ?", arguments: [from.rawValue])
                    let task = try Int64.fetchOne(db, sql: "SELECT id FROM tasks")!
                    let moved: Bool
                    switch move {
                    case .queue: moved = try StateMachine.queueTask(task, attempt: 1, db)
                    case .start: moved = try StateMachine.startTask(task, db)
                    case .commitWinner: moved = try StateMachine.commitWinner(task, execution: "x", result: nil, at: 2, db)
                    case .scheduleRetry: moved = try StateMachine.scheduleRetry(task, attempt: 2, error: "e", db)
                    case .fail: moved = try StateMachine.failTask(task, error: "e", at: 2, db)
                    case .cancel: moved = try StateMachine.cancelTasks(run: "r", among: Set(TaskState.allCases), at: 2, db) > 0
                    case .retry: moved = try StateMachine.retryTask(task, attempt: 2, maxAttempts: 4, db)
                    }
                    return (moved, try Self.state("tasks", db))
                }
                let expected = moves[move]
                #expect(moved == (expected != nil), "task \(from.rawValue) --\(move.rawValue)-->")
                #expect(after == (expected ?? from).rawValue, "task \(from.rawValue) --\(move.rawValue)-->")
            }
        }
    }

    @Test func everyExecutionStateAndMove() throws {
        for (from, moves) in Self.executionMoves {
            for move in ExecutionMove.allCases {
                let (store, dir) = try Self.store()
                defer { try? FileManager.default.removeItem(atPath: dir) }
                let (moved, after) = try store.pool.write { db -> (Bool, String) in
                    try db.execute(sql: "UPDATE executions SET state = ?", arguments: [from.rawValue])
                    let moved: Bool
                    if move == .abandon {
                        let task = try Int64.fetchOne(db, sql: "SELECT id FROM tasks")!
                        moved = try StateMachine.abandonExecutions(task: task, why: "w", at: 2, db) > 0
                    } else {
                        moved = try StateMachine.finishExecution("x", move, .init(finishedAt: 2, rowsIn: 1, rowsOut: 1, rowsQuarantined: 0,
                                                                                   failure: nil, deliveryCount: 1), db)
                    }
                    return (moved, try Self.state("executions", db))
                }
                let expected = moves[move]
                #expect(moved == (expected != nil), "execution \(from.rawValue) --\(move.rawValue)-->")
                #expect(after == (expected ?? from).rawValue, "execution \(from.rawValue) --\(move.rawValue)-->")
            }
        }
    }

    /// The tables in `Transitions.swift` say the same as the walk above.
    @Test func transitionTablesMatchTheWalk() {
        for move in RunMove.allCases {
            #expect(move.transition.from == Set(Self.runMoves.filter { $0.value[move] != nil }.keys), "\(move)")
        }
        for move in TaskMove.allCases {
            #expect(move.transition.from == Set(Self.taskMoves.filter { $0.value[move] != nil }.keys), "\(move)")
        }
        for move in ExecutionMove.allCases {
            #expect(move.transition.from == Set(Self.executionMoves.filter { $0.value[move] != nil }.keys), "\(move)")
        }
    }

    /// Migration 0002's CHECK lists are exactly the enums' cases, and a state
    /// outside them cannot be written.
    @Test func checkConstraintsMatchTheEnums() throws {
        let (store, dir) = try Self.store()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let expected: [String: Set<String>] = [
            "runs": Set(RunState.allCases.map(\.rawValue)),
            "tasks": Set(TaskState.allCases.map(\.rawValue)),
            "executions": Set(ExecutionState.allCases.map(\.rawValue)),
            "workers": ["running", "draining", "stopped"],
        ]
        try store.pool.write { db in
            try StateMachine.recordHeartbeat(WorkerHeartbeat(worker: WorkerIdentity(id: "w", host: "h", pid: 1, version: "v"),
                                                             at: Date(), state: .running, stages: [], concurrency: 1, running: []),
                                             at: 1, db)
            for (table, states) in expected {
                let sql = try String.fetchOne(db, sql: "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?",
                                              arguments: [table])!
                let list = try #require(sql.range(of: #"CHECK \(state IN \(([^)]*)\)\)"#, options: .regularExpression))
                let names = Set(sql[list].split(separator: "(").last!.split(separator: ")").first!
                    .split(separator: ",").map { $0.trimmingCharacters(in: CharacterSet(charactersIn: " '")) })
                #expect(names == states, "\(table)")
                #expect(throws: DatabaseError.self, "\(table) accepts an unknown state") {
                    try db.execute(sql: "UPDATE \(table) SET state = 'bogus'")
                }
            }
        }
    }

    /// A stored state this build does not know is an error naming the row,
    /// never read as some other state.
    @Test func anUnknownStoredStateIsAnErrorNamingTheRow() async throws {
        let (store, dir) = try Self.store()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try await store.pool.writeWithoutTransaction { db in
            try db.execute(sql: "PRAGMA ignore_check_constraints = ON")
            try db.execute(sql: "UPDATE runs SET state = 'paused'")
            try db.execute(sql: "PRAGMA ignore_check_constraints = OFF")
        }
        let engine = CoordinatorEngine(store: store, transport: InMemoryTransport(), chunkStore: ChunkStore(root: dir))
        let error = await #expect(throws: StoredValueError.self) { _ = try await engine.run("r") }
        #expect(error?.description.contains("runs row r has state 'paused'") == true, "\(String(describing: error))")
    }

    /// A store written by the first migration keeps its rows through 0002.
    @Test func migrationKeepsEveryRow() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("bis-sm-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        do {
            let queue = try DatabaseQueue(path: dir + "/bis.db")
            try LineageStore.migrator.migrate(queue, upTo: "0001-lineage")
            try queue.write { db in
                try db.execute(sql: """
                    INSERT INTO runs(id, kind, pipeline, state, spec_text, spec_sha256, spec_file, spec_directory, allowed_roots,
                                     partitions, approval_required, submitted_by, submitted_at) VALUES
                        ('r', 'noop', 'p', 'failed', '', '', '', '', '[]', 1, 0, 'me', 5);
                    INSERT INTO tasks(run, stage, idx, state, attempt, max_attempts, body, label, planned_at)
                        VALUES ('r', 'noop', 0, 'failed', 3, 3, x'00', 't', 5);
                    INSERT INTO executions(id, task, attempt, state, started_at) VALUES ('x', 1, 3, 'lost', 5);
                    INSERT INTO outbox(task, attempt, delay_ms, created_at) VALUES (1, 3, 0, 5);
                    """)
            }
        }
        let store = try LineageStore(path: dir + "/bis.db")
        #expect(try store.appliedMigrations() == ["0001-lineage", "0002-state-checks", "0003-audit", "0004-retention", "0005-alerts", "0006-schedules"])
        let found = try store.pool.read { db -> [String?] in
            [try String.fetchOne(db, sql: "SELECT state FROM runs WHERE id = 'r'"),
             try String.fetchOne(db, sql: "SELECT state FROM tasks WHERE run = 'r'"),
             try String.fetchOne(db, sql: "SELECT state FROM executions WHERE id = 'x'"),
             try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM outbox o JOIN tasks t ON t.id = o.task").map(String.init),
             try Row.fetchAll(db, sql: "PRAGMA foreign_key_check").isEmpty ? "no broken key" : "broken keys"]
        }
        #expect(found == ["failed", "failed", "lost", "1", "no broken key"])
    }

    /// The path every store made before 0005 takes: 0001-0004 and 0006
    /// applied, then 0005 inserted before 0006. Its rows stay, the execution
    /// table takes `timed_out`, and the alert columns and tables exist.
    @Test func aStoreWith0006AppliedTakes0005After() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("bis-sm-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        do {
            let queue = try DatabaseQueue(path: dir + "/bis.db")
            try LineageStore.migrator(skipping: ["0005-alerts"]).migrate(queue)
            try queue.write { db in
                try db.execute(sql: """
                    INSERT INTO runs(id, kind, pipeline, state, spec_text, spec_sha256, spec_file, spec_directory, allowed_roots,
                                     partitions, approval_required, submitted_by, submitted_at, slot, trigger) VALUES
                        ('r', 'noop', 'p', 'running', '', '', '', '', '[]', 1, 0, 'me', 5, '2026-11-10T00:15:00Z', 'schedule');
                    INSERT INTO tasks(run, stage, idx, state, attempt, max_attempts, body, label, planned_at)
                        VALUES ('r', 'noop', 0, 'running', 1, 3, x'00', 't', 5);
                    INSERT INTO executions(id, task, attempt, worker, state, started_at) VALUES ('x', 1, 1, 'w', 'running', 5);
                    """)
            }
            #expect(try queue.read { db in try LineageStore.migrator.appliedMigrations(db) }
                    == ["0001-lineage", "0002-state-checks", "0003-audit", "0004-retention", "0006-schedules"])
        }
        let store = try LineageStore(path: dir + "/bis.db")
        #expect(Set(try store.appliedMigrations())
                == ["0001-lineage", "0002-state-checks", "0003-audit", "0004-retention", "0005-alerts", "0006-schedules"])
        let found = try store.pool.write { db -> [String?] in
            try db.execute(sql: "UPDATE executions SET state = 'timed_out' WHERE id = 'x'")
            try db.execute(sql: "UPDATE runs SET late_at = 9 WHERE id = 'r'")
            _ = try db.raiseAlert(.deadlineMissed, run: "r", pipeline: "p", message: "m", key: "r/deadline_missed", at: 9)
            return [try String.fetchOne(db, sql: "SELECT slot || ' ' || trigger || ' ' || late_at FROM runs WHERE id = 'r'"),
                    try String.fetchOne(db, sql: "SELECT state || ' ' || worker FROM executions WHERE id = 'x'"),
                    try String.fetchOne(db, sql: "SELECT name FROM sqlite_master WHERE type = 'index' AND name = 'executions_by_task'"),
                    try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM alerts").map(String.init),
                    try Row.fetchAll(db, sql: "PRAGMA foreign_key_check").isEmpty ? "no broken key" : "broken keys"]
        }
        #expect(found == ["2026-11-10T00:15:00Z schedule 9.0", "timed_out w", "executions_by_task", "1", "no broken key"])
    }

    /// The engine reads the time of day from its clock: tests move it by
    /// hand instead of sleeping.
    @Test func theEngineReadsTimeFromItsClock() async throws {
        let (store, dir) = try Self.store()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let clock = ManualClock(Date(timeIntervalSince1970: 1_900_000_000))
        let engine = CoordinatorEngine(store: store, transport: InMemoryTransport(), chunkStore: ChunkStore(root: dir),
                                       options: CoordinatorOptions(workerQuietAfterSeconds: 10, clock: clock))
        let run = try await engine.submitNoop(tasks: 1, by: "test")
        #expect(try await engine.run(run)?.submittedAt == clock.now())

        let beat = WorkerHeartbeat(worker: WorkerIdentity(id: "w2", host: "h", pid: 2, version: "v"), at: clock.now(),
                                   state: .running, stages: [.noop], concurrency: 1, running: [])
        _ = try await store.write { [engine] db in try engine.apply([.heartbeat(beat)], db) }
        #expect(try await engine.workers().first { $0.id == "w2" }?.quiet == false)
        clock.advance(by: 11)
        #expect(try await engine.workers().first { $0.id == "w2" }?.quiet == true)
    }

    /// An event that touches a row this build cannot read is skipped, not
    /// retried forever: the rest of the fleet's runs go on.
    @Test(.timeLimit(.minutes(1))) func anUnreadableRowDoesNotStopTheFleet() async throws {
        let (store, dir) = try Self.store()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try await store.pool.writeWithoutTransaction { db in
            try db.execute(sql: "UPDATE tasks SET state = 'running'")
            try db.execute(sql: "PRAGMA ignore_check_constraints = ON")
            try db.execute(sql: "UPDATE runs SET state = 'paused'")
            try db.execute(sql: "PRAGMA ignore_check_constraints = OFF")
        }
        let transport = InMemoryTransport()
        let engine = CoordinatorEngine(store: store, transport: transport, chunkStore: ChunkStore(root: dir))
        try await engine.start()
        // A success for the unreadable run's task, first in the inbox.
        let task = TaskMessage(run: "r", stage: .noop, index: 0, attempt: 1, spec: nil)
        try await transport.publishEvent(TaskEvent(kind: .succeeded, task: task, execution: "late",
                                                   worker: WorkerIdentity(id: "w", host: "h", pid: 1, version: "v"),
                                                   deliveryCount: 0, startedAt: Date(), finishedAt: Date()))
        let worker = FleetWorker(transport: transport, chunkStore: ChunkStore(root: dir), concurrency: 2)
        let working = Task { try await worker.run() }
        let run = try await engine.submitNoop(tasks: 5, by: "test")
        #expect(try await engine.waitUntilSettled(run).state == .succeeded)
        worker.drain()
        _ = await working.result
        await engine.stop()
        await transport.close()
    }
}
