import FleetCore
import Foundation
import Synchronization
import Testing
import WorkerRuntime

/// `FleetWorker` over the in-memory transport.
@Suite struct FleetWorkerTests {
    let root = NSTemporaryDirectory() + "bis-worker-" + UUID().uuidString

    func noop(_ i: Int, run: String = "bench") -> TaskMessage {
        TaskMessage(run: run, stage: .noop, index: i, attempt: 1, spec: nil)
    }

    /// Reads the inbox until `done` says so (fails after a generous bound
    /// rather than hanging; no timing is asserted).
    func collect(_ inbox: AsyncThrowingStream<InboundEvent, Error>, until done: @escaping @Sendable ([InboundEvent.Body]) -> Bool)
        async throws -> [InboundEvent.Body] {
        try await withThrowingTaskGroup(of: [InboundEvent.Body]?.self) { group in
            group.addTask {
                var seen: [InboundEvent.Body] = []
                for try await e in inbox {
                    seen.append(e.body)
                    try await e.ack()
                    if done(seen) { return seen }
                }
                return seen
            }
            group.addTask {
                try await Task.sleep(for: .seconds(60))
                return nil
            }
            let first = try await group.next()!
            group.cancelAll()
            return try #require(first, "the inbox did not get what was expected")
        }
    }

    static func events(_ bodies: [InboundEvent.Body], _ kind: TaskEvent.Kind) -> [TaskEvent] {
        bodies.compactMap { if case .event(let e) = $0, e.kind == kind { return e } else { return nil } }
    }

    @Test func executesTasksPublishesEventsAndAcks() async throws {
        let transport = InMemoryTransport()
        let inbox = try await transport.coordinatorInbox(prefetch: 10)
        let worker = FleetWorker(transport: transport, chunkStore: ChunkStore(root: root), concurrency: 2,
                                 heartbeatInterval: .milliseconds(50), fault: nil)
        let running = Task { try await worker.run() }
        for i in 0..<5 { try await transport.publishTask(noop(i), delayMilliseconds: 0) }
        let seen = try await collect(inbox) { Self.events($0, .succeeded).count == 5 }
        #expect(Set(Self.events(seen, .succeeded).map(\.index)) == Set(0..<5))
        worker.drain()
        try await running.value
        let beats = try await collect(inbox) { bodies in
            bodies.contains { if case .heartbeat(let b) = $0 { return b.state == .stopped } else { return false } }
        }
        let states = (seen + beats).compactMap { body -> WorkerHeartbeat.State? in
            if case .heartbeat(let b) = body { return b.state } else { return nil }
        }
        #expect(states.contains(.draining) && states.last == .stopped)
        #expect(await transport.pending() == 0, "every task acked")
        await transport.close()
    }

    @Test func aFailureIsReportedAndTheTaskAcked() async throws {
        let transport = InMemoryTransport()
        let inbox = try await transport.coordinatorInbox(prefetch: 10)
        let worker = FleetWorker(transport: transport, chunkStore: ChunkStore(root: root), concurrency: 1,
                                 fault: try FaultSwitch(parsing: "fail:bad/noop/1"))
        let running = Task { try await worker.run() }
        try await transport.publishTask(noop(1, run: "bad-run"), delayMilliseconds: 0)
        let seen = try await collect(inbox) { !Self.events($0, .failed).isEmpty }
        let failed = try #require(Self.events(seen, .failed).first)
        #expect(failed.failure?.kind == .permanent)
        worker.drain()
        try await running.value
        #expect(await transport.pending() == 0)
        await transport.close()
    }

    @Test func drainHandsBackATaskStillRunningPastTheGrace() async throws {
        let transport = InMemoryTransport()
        let inbox = try await transport.coordinatorInbox(prefetch: 10)
        let worker = FleetWorker(transport: transport, chunkStore: ChunkStore(root: root), concurrency: 1,
                                 heartbeatInterval: .seconds(60), drainGrace: .milliseconds(50),
                                 // Far longer than the grace, so the hand-back wins even on a starved machine.
                                 fault: try FaultSwitch(parsing: "sleep=60000:noop"))
        let running = Task { try await worker.run() }
        try await transport.publishTask(noop(7), delayMilliseconds: 0)
        _ = try await collect(inbox) { !Self.events($0, .started).isEmpty }
        worker.drain()
        try await running.value
        let rest = try await collect(inbox) { bodies in
            bodies.contains { if case .heartbeat(let b) = $0 { return b.state == .stopped } else { return false } }
        }
        #expect(Self.events(rest, .succeeded).isEmpty)
        #expect(await transport.pending() == 1, "the task is back in its queue for another worker")
        await transport.close()
    }
}

@Suite struct FaultSwitchTests {
    @Test func parsesActionsAndTargets() throws {
        let f = try FaultSwitch(parsing: "crash:normalize/1, fail:orders-daily/validate,sleep=3000:ingest,transient:run-1/publish/0")
        #expect(f.rules == [
            .init(action: .crash, runPrefix: nil, stage: .normalize, index: 1),
            .init(action: .fail, runPrefix: "orders-daily", stage: .validate, index: nil),
            .init(action: .sleep(milliseconds: 3000), runPrefix: nil, stage: .ingest, index: nil),
            .init(action: .transient, runPrefix: "run-1", stage: .publish, index: 0),
        ])
        let t = TaskMessage(run: "orders-daily-1", stage: .validate, index: 2, attempt: 1, spec: nil)
        #expect(f.fault(for: t) == .fail)
        #expect(f.fault(for: TaskMessage(run: "x", stage: .validate, index: 2, attempt: 1, spec: nil)) == nil)
        #expect(f.delay(for: TaskMessage(run: "x", stage: .ingest, index: 0, attempt: 1, spec: nil)) == 3000)
        #expect(f.fault(for: TaskMessage(run: "x", stage: .normalize, index: 0, attempt: 1, spec: nil)) == nil)

        let after = try FaultSwitch(parsing: "crash-after-result:dup-1/consolidate/1")
        #expect(after.rules == [.init(action: .crashAfterResult, runPrefix: "dup-1", stage: .consolidate, index: 1)])
        #expect(after.fault(for: TaskMessage(run: "dup-1-x", stage: .consolidate, index: 1, attempt: 1, spec: nil)) == .crashAfterResult)
    }

    @Test func refusesMalformedEntries() throws {
        for bad in ["crash", "explode:ingest", "crash:nostage", "sleep=x:ingest", "fail:a/b/ingest/1", "fail:/ingest"] {
            #expect(throws: TaskFailure.self, "\(bad)") { try FaultSwitch(parsing: bad) }
        }
        #expect(try FaultSwitch.fromEnvironment([:]) == nil)
    }

    /// A bad BIS_TEST_FAULT is an error for the command to report (bis-worker
    /// exits 2), never an exit inside the library.
    @Test func aMalformedVariableIsAnErrorNamingTheEntry() throws {
        #expect(try FaultSwitch.fromEnvironment(["BIS_TEST_FAULT": "fail:normalize"])?.rules.count == 1)
        let error = try #require(throws: TaskFailure.self) {
            try FaultSwitch.fromEnvironment(["BIS_TEST_FAULT": "fail:normalize,explode:ingest"])
        }
        #expect(error.message.contains("'explode:ingest'"), "\(error.message)")
    }

    /// A crash does what whoever wired the switch says (bis-worker: SIGKILL);
    /// a switch with no crash wired fails the execution instead.
    @Test func aCrashRunsWhatTheCommandWired() async throws {
        let crashes = Mutex(0)
        let f = try FaultSwitch(parsing: "crash:r1/noop, crash-after-result:r2/noop", crash: { crashes.withLock { $0 += 1 } })
        let r1 = TaskMessage(run: "r1", stage: .noop, index: 0, attempt: 1, spec: nil)
        let r2 = TaskMessage(run: "r2", stage: .noop, index: 0, attempt: 1, spec: nil)
        try await f.apply(to: r1)
        #expect(crashes.withLock { $0 } == 1)
        try await f.apply(to: r2)
        f.applyAfterResult(of: r1)
        #expect(crashes.withLock { $0 } == 1)
        f.applyAfterResult(of: r2)
        #expect(crashes.withLock { $0 } == 2)

        let unwired = try FaultSwitch(parsing: "crash:r1/noop")
        let failure = try await #require(throws: TaskFailure.self) { try await unwired.apply(to: r1) }
        #expect(failure.kind == .transient)
    }
}
