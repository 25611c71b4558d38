import Coordination
import FleetCore
import Foundation
import GRDB
import Testing

/// A scripted worker over the in-memory transport: answers every task it
/// takes with what `behave` says, the way a real worker reports.
private func scriptedWorker(_ transport: InMemoryTransport, stages: [Stage] = Stage.allCases,
                            behave: @escaping @Sendable (TaskMessage, Int) async -> Outcome) -> Task<Void, Never> {
    Task {
        let identity = WorkerIdentity(id: "test:1", host: "test", pid: 1, version: "test")
        guard let deliveries = try? await transport.taskDeliveries(stages: stages, prefetch: 4) else { return }
        do {
            for try await d in deliveries {
                guard let task = d.task else { try await d.nack(requeue: false); continue }
                let execution = FleetIDs.newExecutionID()
                switch await behave(task, d.deliveryCount) {
                case .succeed(let times):
                    for _ in 0..<times {
                        try await transport.publishEvent(TaskEvent(kind: .succeeded, task: task, execution: FleetIDs.newExecutionID(),
                                                                   worker: identity, deliveryCount: d.deliveryCount,
                                                                   startedAt: Date(), finishedAt: Date()))
                    }
                    try await d.ack()
                case .fail(let failure):
                    try await transport.publishEvent(TaskEvent(kind: .failed, task: task, execution: execution, worker: identity,
                                                               deliveryCount: d.deliveryCount, startedAt: Date(), finishedAt: Date(),
                                                               failure: failure))
                    try await d.ack()
                case .crash:
                    try await d.nack(requeue: true)
                }
            }
        } catch {}
    }
}

private enum Outcome: Sendable {
    case succeed(times: Int)
    case fail(TaskFailure)
    /// As a worker dying with the task: the message goes back to the queue.
    case crash
}

private func tempStore() throws -> (LineageStore, String) {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("bis-engine-\(UUID().uuidString)").path
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    return (try LineageStore(path: dir + "/bis.db"), dir)
}

private let fastRetries = CoordinatorOptions(policy: RetryPolicy(defaultMaxAttempts: 3, baseDelayMilliseconds: 5,
                                                                 maxDelayMilliseconds: 20, deliveryLimit: 2))

@Suite struct EngineTests {
    @Test func noopRunCommitsEveryTask() async throws {
        let (store, _) = try tempStore()
        let transport = InMemoryTransport()
        let engine = CoordinatorEngine(store: store, transport: transport, chunkStore: ChunkStore(root: "/tmp"))
        try await engine.start()
        let worker = scriptedWorker(transport) { _, _ in .succeed(times: 1) }
        let run = try await engine.submitNoop(tasks: 500, by: "test")
        let view = try await engine.waitUntilSettled(run)
        #expect(view.state == .succeeded)
        #expect(view.stages.map(\.stage) == [.noop])
        #expect(view.stages.first?.succeeded == 500)
        #expect(view.stages.first?.total == 500)
        worker.cancel()
        await engine.stop()
        await transport.close()
    }

    @Test func secondSuccessIsRecordedAsDuplicate() async throws {
        let (store, _) = try tempStore()
        let transport = InMemoryTransport()
        let engine = CoordinatorEngine(store: store, transport: transport, chunkStore: ChunkStore(root: "/tmp"))
        try await engine.start()
        let worker = scriptedWorker(transport) { _, _ in .succeed(times: 2) }
        let run = try await engine.submitNoop(tasks: 10, by: "test")
        let view = try await engine.waitUntilSettled(run)
        #expect(view.state == .succeeded)
        #expect(view.stages.first?.succeeded == 10)
        // Every task's second result arrives in the same or a later batch: wait for them.
        var dups = 0
        for _ in 0..<200 {
            dups = try await engine.run(run)?.stages.first?.duplicates ?? 0
            if dups == 10 { break }
            try await Task.sleep(for: .milliseconds(10))
        }
        #expect(dups == 10)
        worker.cancel()
        await engine.stop()
        await transport.close()
    }

    @Test func transientFailuresRetryUntilTheMaximumThenFailTheRunNamingTheTask() async throws {
        let (store, _) = try tempStore()
        let transport = InMemoryTransport()
        let engine = CoordinatorEngine(store: store, transport: transport, chunkStore: ChunkStore(root: "/tmp"), options: fastRetries)
        try await engine.start()
        let worker = scriptedWorker(transport) { task, _ in
            task.index == 3 ? .fail(TaskFailure(.transient, "disk on fire")) : .succeed(times: 1)
        }
        let run = try await engine.submitNoop(tasks: 5, by: "test")
        let view = try await engine.waitUntilSettled(run)
        #expect(view.state == .failed)
        #expect(view.message?.contains("noop 3") == true)
        #expect(view.message?.contains("3 attempts") == true)
        #expect(view.message?.contains("disk on fire") == true)
        #expect(view.stages.first?.retried == 2)
        #expect(view.stages.first?.failed == 1)
        worker.cancel()
        await engine.stop()
        await transport.close()
    }

    @Test func aPermanentFailureFailsAtOnce() async throws {
        let (store, _) = try tempStore()
        let transport = InMemoryTransport()
        let engine = CoordinatorEngine(store: store, transport: transport, chunkStore: ChunkStore(root: "/tmp"), options: fastRetries)
        try await engine.start()
        let worker = scriptedWorker(transport) { task, _ in
            task.index == 1 ? .fail(TaskFailure(.permanent, "bad spec")) : .succeed(times: 1)
        }
        let run = try await engine.submitNoop(tasks: 3, by: "test")
        let view = try await engine.waitUntilSettled(run)
        #expect(view.state == .failed)
        #expect(view.message == "task noop 1 failed: bad spec")
        #expect(view.stages.first?.retried == 0)
        worker.cancel()
        await engine.stop()
        await transport.close()
    }

    @Test func crashesPastTheDeliveryLimitAreLostThenRetriedThenRetryableByTheOperator() async throws {
        let (store, _) = try tempStore()
        let transport = InMemoryTransport(deliveryLimit: 2)
        let engine = CoordinatorEngine(store: store, transport: transport, chunkStore: ChunkStore(root: "/tmp"), options: fastRetries)
        try await engine.start()
        let healed = Flag()
        let worker = scriptedWorker(transport) { task, _ in
            task.index == 0 && !healed.isSet ? .crash : .succeed(times: 1)
        }
        let run = try await engine.submitNoop(tasks: 2, by: "test")
        let failed = try await engine.waitUntilSettled(run)
        #expect(failed.state == .failed)
        #expect(failed.message?.contains("lost") == true)
        #expect(failed.message?.contains("noop 0") == true)
        // The operator fixes the cause and retries: only the failed task runs again.
        healed.set()
        let again = try await engine.retry(run, by: "ops")
        #expect(again.state == .running)
        let done = try await engine.waitUntilSettled(run)
        #expect(done.state == .succeeded)
        await #expect(throws: ServiceError.self) { try await engine.retry(run, by: "ops") }
        worker.cancel()
        await engine.stop()
        await transport.close()
    }

    /// A worker that announced a task and died never reports: once another
    /// execution wins, the silent one is `abandoned`, not running forever; a
    /// late result from it is still recorded, as a duplicate.
    @Test func anExecutionThatNeverReportsIsAbandonedWhenAnotherWins() async throws {
        let (store, dir) = try tempStore()
        let transport = InMemoryTransport()
        let engine = CoordinatorEngine(store: store, transport: transport, chunkStore: ChunkStore(root: "/tmp"))
        try await engine.start()
        let identity = WorkerIdentity(id: "test:2", host: "test", pid: 2, version: "test")
        let silent = FleetIDs.newExecutionID()
        let held = Held()
        let worker = Task {
            guard let deliveries = try? await transport.taskDeliveries(stages: [.noop], prefetch: 1) else { return }
            do {
                for try await d in deliveries {
                    guard let task = d.task else { continue }
                    if d.deliveryCount == 0 {
                        // Announce, then die with the task.
                        try await transport.publishEvent(TaskEvent(kind: .started, task: task, execution: silent,
                                                                   worker: identity, deliveryCount: 0, startedAt: Date()))
                        held.set(task)
                        try await d.nack(requeue: true)
                    } else {
                        try await transport.publishEvent(TaskEvent(kind: .succeeded, task: task, execution: FleetIDs.newExecutionID(),
                                                                   worker: identity, deliveryCount: d.deliveryCount,
                                                                   startedAt: Date(), finishedAt: Date()))
                        try await d.ack()
                    }
                }
            } catch {}
        }
        let run = try await engine.submitNoop(tasks: 1, by: "test")
        #expect(try await engine.waitUntilSettled(run).state == .succeeded)
        let db = try DatabaseQueue(path: dir + "/bis.db")
        func state() async throws -> String? {
            try await db.read { try String.fetchOne($0, sql: "SELECT state FROM executions WHERE id = ?", arguments: [silent]) }
        }
        #expect(try await state() == "abandoned")
        #expect(try await db.read { try String.fetchOne($0, sql: "SELECT error FROM executions WHERE id = ?", arguments: [silent]) }?
            .contains("had not reported") == true)

        // The silent worker was only cut off: its late result loses to the winner.
        let task = try #require(held.task)
        try await transport.publishEvent(TaskEvent(kind: .succeeded, task: task, execution: silent, worker: identity,
                                                   deliveryCount: 0, startedAt: Date(), finishedAt: Date()))
        var late: String?
        for _ in 0..<200 {
            late = try await state()
            if late != "abandoned" { break }
            try await Task.sleep(for: .milliseconds(10))
        }
        #expect(late == "duplicate")
        worker.cancel()
        await engine.stop()
        await transport.close()
    }

    @Test func cancelStopsARunAndLaterResultsAreDiscarded() async throws {
        let (store, _) = try tempStore()
        let transport = InMemoryTransport()
        let engine = CoordinatorEngine(store: store, transport: transport, chunkStore: ChunkStore(root: "/tmp"))
        try await engine.start()
        let run = try await engine.submitNoop(tasks: 20, by: "test")
        let view = try await engine.cancel(run, by: "ops")
        #expect(view.state == .cancelled)
        let worker = scriptedWorker(transport) { _, _ in .succeed(times: 1) }
        try await Task.sleep(for: .milliseconds(300))
        let after = try await engine.run(run)!
        #expect(after.state == .cancelled)
        #expect(after.stages.first?.succeeded == 0)
        await #expect(throws: ServiceError.self) { try await engine.cancel(run, by: "ops") }
        worker.cancel()
        await engine.stop()
        await transport.close()
    }

    @Test func aNewEngineOnTheSameStoreResendsTheUnsentOutbox() async throws {
        let (store, dir) = try tempStore()
        let first = InMemoryTransport()
        let engine = CoordinatorEngine(store: store, transport: first, chunkStore: ChunkStore(root: "/tmp"))
        // Never started: the tasks are planned but nothing was sent.
        let run = try await engine.submitNoop(tasks: 50, by: "test")
        await first.close()

        let second = InMemoryTransport()
        let reopened = CoordinatorEngine(store: try LineageStore(path: dir + "/bis.db"), transport: second, chunkStore: ChunkStore(root: "/tmp"))
        try await reopened.start()
        let worker = scriptedWorker(second) { _, _ in .succeed(times: 1) }
        let view = try await reopened.waitUntilSettled(run)
        #expect(view.state == .succeeded)
        #expect(view.stages.first?.succeeded == 50)
        worker.cancel()
        await reopened.stop()
        await second.close()
    }

    @Test func theAuditLogIsAppendOnlyAndMigrationsAreNamed() async throws {
        let (store, dir) = try tempStore()
        let engine = CoordinatorEngine(store: store, transport: InMemoryTransport(), chunkStore: ChunkStore(root: "/tmp"))
        _ = try await engine.submitNoop(tasks: 1, by: "alice@host")
        #expect(try store.appliedMigrations() == ["0001-lineage", "0002-state-checks", "0003-audit", "0004-retention", "0005-alerts", "0006-schedules"])
        let db = try DatabaseQueue(path: dir + "/bis.db")
        #expect(try await db.read { try Int.fetchOne($0, sql: "SELECT COUNT(*) FROM audit") } == 1)
        for sql in ["UPDATE audit SET actor = 'mallory'", "DELETE FROM audit"] {
            let message: String
            do {
                try await db.write { try $0.execute(sql: sql) }
                message = "no error"
            } catch {
                message = "\(error)"
            }
            #expect(message.contains("append-only"), "\(sql): \(message)")
        }
    }
}

/// The task a scripted worker held, for the test to act on later.
final class Held: @unchecked Sendable {
    private let lock = NSLock()
    private var value: TaskMessage?
    var task: TaskMessage? { lock.withLock { value } }
    func set(_ t: TaskMessage) { lock.withLock { value = t } }
}

/// A flag tests flip from outside a @Sendable closure.
final class Flag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    var isSet: Bool { lock.withLock { value } }
    func set() { lock.withLock { value = true } }
}
