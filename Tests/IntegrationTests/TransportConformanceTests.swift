import FleetAMQP
import FleetCore
import Foundation
import Synchronization
import TestSupport
import Testing

// One conformance suite for `FleetTransport`: every check below runs against
// `InMemoryTransport` (always) and `AMQPTransport` over the private broker
// (when it is there), so the two keep the semantics the commit protocol
// relies on — the ones the protocol's doc comments promise.

/// The in-memory transport: never skipped, it needs no broker.
@Suite struct InMemoryTransportConformanceTests {
    @Test(arguments: TransportCheck.allCases)
    func conforms(_ check: TransportCheck) async throws {
        try await check.runAndTearDown(InMemoryFixture(deliveryLimit: check.deliveryLimit))
    }
}

/// RabbitMQ: each check in a namespace of its own whose queues it deletes at the end.
@Suite(.serialized, .usesBroker, .enabled(if: TestBroker.enabled, "needs the private broker: run ops/test"))
struct AMQPTransportConformanceTests {
    @Test(arguments: TransportCheck.allCases)
    func conforms(_ check: TransportCheck) async throws {
        try await check.runAndTearDown(try await AMQPFixture.connect(deliveryLimit: check.deliveryLimit))
    }
}

// MARK: - The transport under test

/// The two sides of one transport: the coordinator's, and workers that can
/// come and go.
protocol TransportFixture: Sendable {
    /// The coordinator's side: publishes tasks, reads the inbox.
    var coordinator: any FleetTransport { get }
    /// A worker's side (over RabbitMQ a connection of its own).
    func worker() async throws -> any FleetTransport
    /// The worker is gone as if killed; its consumers are already stopped.
    /// What it held unsettled must come back.
    func vanish(_ worker: any FleetTransport) async
    /// What a dead letter's reason says for a task returned past the delivery limit.
    var deliveryLimitReason: String { get }
    /// Closes what the check opened (and deletes its queues).
    func tearDown() async
}

struct InMemoryFixture: TransportFixture {
    let transport: InMemoryTransport
    init(deliveryLimit: Int) { transport = InMemoryTransport(deliveryLimit: deliveryLimit) }

    var coordinator: any FleetTransport { transport }
    func worker() async throws -> any FleetTransport { transport }
    /// In one process a worker is its consumer: its stream has ended, and
    /// the consumer detaches a moment later; wait for that, as a broker's
    /// connection close is waited for.
    func vanish(_ worker: any FleetTransport) async {
        for _ in 0..<200 where await transport.consumerCount() > 0 {
            try? await Task.sleep(for: .milliseconds(10))
        }
    }
    var deliveryLimitReason: String { "delivery limit" }
    func tearDown() async { await transport.close() }
}

struct AMQPFixture: TransportFixture {
    let url: String
    let namespace: String
    let policy: RetryPolicy
    let key: FleetKey
    let transport: AMQPTransport
    /// Worker connections open, closed at the end.
    let workers = Workers()

    final class Workers: Sendable {
        let list = Mutex<[AMQPTransport]>([])
    }

    static func connect(deliveryLimit: Int) async throws -> AMQPFixture {
        guard let url = TestBroker.urlString else { throw TestBroker.Missing(variable: "BIS_TEST_AMQP_URL") }
        let namespace = TestBroker.uniqueName("conformance")
        let policy = RetryPolicy(deliveryLimit: deliveryLimit)
        let key = FleetKey.random()
        let transport = try await AMQPTransport.connect(url: url, key: key, namespace: namespace, policy: policy,
                                                        connectionName: "bis-tests-coordinator")
        return AMQPFixture(url: url, namespace: namespace, policy: policy, key: key, transport: transport)
    }

    var coordinator: any FleetTransport { transport }
    func worker() async throws -> any FleetTransport {
        let worker = try await AMQPTransport.connect(url: url, key: key, namespace: namespace, policy: policy,
                                                     connectionName: "bis-tests-worker")
        workers.list.withLock { $0.append(worker) }
        return worker
    }
    /// The worker's connection closes: the broker returns what it held.
    func vanish(_ worker: any FleetTransport) async {
        workers.list.withLock { $0.removeAll { $0 === worker as AnyObject } }
        await worker.close()
    }
    var deliveryLimitReason: String { "delivery_limit" }

    func tearDown() async {
        for worker in workers.list.withLock({ $0 }) { await worker.close() }
        await transport.deleteQueues()
        await transport.close()
    }
}

// MARK: - The checks

enum TransportCheck: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case aPublishedTaskIsDeliveredOnceAndAnAckRemovesIt
    case anEncodedTaskArrivesAsTheTaskItEncodes
    case aNackWithRequeueDeliversTheTaskAgainWithAHigherCount
    case whatAVanishedWorkerHeldIsDeliveredAgainWithAHigherCount
    case pastTheDeliveryLimitATaskReachesTheInboxAsADeadLetter
    case aNackWithoutRequeueReachesTheInboxAsADeadLetter
    case aDelayedTaskArrivesNotBeforeMostOfItsDelay
    case eventsAndHeartbeatsReachTheInbox
    case aConsumerHoldsAtMostPrefetchUnsettledTasks
    case oneConsumerTakesTasksOfSeveralStages
    case queueDepthsCountReadyTasksPerStage

    var testDescription: String { rawValue }

    /// The delivery limit the transport is made with.
    var deliveryLimit: Int { self == .pastTheDeliveryLimitATaskReachesTheInboxAsADeadLetter ? 2 : 5 }

    func runAndTearDown(_ f: some TransportFixture) async throws {
        do {
            try await run(f)
        } catch {
            await f.tearDown()
            throw error
        }
        await f.tearDown()
    }

    func run(_ f: some TransportFixture) async throws {
        switch self {
        case .aPublishedTaskIsDeliveredOnceAndAnAckRemovesIt: try await publishedTaskIsDeliveredOnce(f)
        case .anEncodedTaskArrivesAsTheTaskItEncodes: try await encodedTaskArrives(f)
        case .aNackWithRequeueDeliversTheTaskAgainWithAHigherCount: try await nackWithRequeue(f)
        case .whatAVanishedWorkerHeldIsDeliveredAgainWithAHigherCount: try await vanishedWorker(f)
        case .pastTheDeliveryLimitATaskReachesTheInboxAsADeadLetter: try await deliveryLimit(f)
        case .aNackWithoutRequeueReachesTheInboxAsADeadLetter: try await nackWithoutRequeue(f)
        case .aDelayedTaskArrivesNotBeforeMostOfItsDelay: try await delayedTask(f)
        case .eventsAndHeartbeatsReachTheInbox: try await eventsAndHeartbeats(f)
        case .aConsumerHoldsAtMostPrefetchUnsettledTasks: try await prefetch(f)
        case .oneConsumerTakesTasksOfSeveralStages: try await severalStages(f)
        case .queueDepthsCountReadyTasksPerStage: try await queueDepths(f)
        }
    }

    static func task(_ stage: Stage = .noop, index: Int = 0) -> TaskMessage {
        TaskMessage(run: "conformance", stage: stage, index: index, attempt: 1, spec: nil, parameters: ["k": "v"])
    }

    /// The worker acks the task; after it is gone, a new worker gets only
    /// what was published since.
    private func publishedTaskIsDeliveredOnce(_ f: some TransportFixture) async throws {
        let first = Self.task(index: 1), second = Self.task(index: 2)
        try await f.coordinator.publishTask(first, delayMilliseconds: 0)
        let worker = try await f.worker()
        let tap = Tap(try await worker.taskDeliveries(stages: [.noop], prefetch: 1))
        let d = try #require(await tap.next(), "the task")
        #expect(d.task == first)
        #expect(d.decodeError == nil)
        #expect(d.deliveryCount == 0)
        try await d.ack()
        tap.stop()
        await f.vanish(worker)

        try await f.coordinator.publishTask(second, delayMilliseconds: 0)
        let next = try await f.worker()
        let again = Tap(try await next.taskDeliveries(stages: [.noop], prefetch: 1))
        let d2 = try #require(await again.next(), "the second task")
        #expect(d2.task == second, "the acked task came again")
        #expect(d2.deliveryCount == 0)
        try await d2.ack()
        #expect(await again.next(within: 0.5) == nil, "a task was delivered twice")
        #expect(await f.coordinator.queueDepths()[.noop] == 0)
        again.stop()
    }

    private func encodedTaskArrives(_ f: some TransportFixture) async throws {
        let sent = Self.task(.ingest, index: 4)
        try await f.coordinator.publishEncodedTask(try WireCoding.encode(sent), stage: sent.stage, taskID: sent.taskID,
                                                   attempt: sent.attempt, delayMilliseconds: 0)
        let tap = Tap(try await f.worker().taskDeliveries(stages: [.ingest], prefetch: 1))
        let d = try #require(await tap.next(), "the task")
        #expect(d.task == sent)
        try await d.ack()
        tap.stop()
    }

    private func nackWithRequeue(_ f: some TransportFixture) async throws {
        let sent = Self.task()
        try await f.coordinator.publishTask(sent, delayMilliseconds: 0)
        let tap = Tap(try await f.worker().taskDeliveries(stages: [.noop], prefetch: 1))
        let d = try #require(await tap.next(), "the task")
        #expect(d.deliveryCount == 0)
        try await d.nack(requeue: true)
        let again = try #require(await tap.next(), "the task again")
        #expect(again.task == sent)
        #expect(again.deliveryCount == 1)
        try await again.ack()
        tap.stop()
    }

    /// A delivery left unsettled when its consumer goes away (a worker
    /// killed) is delivered again.
    private func vanishedWorker(_ f: some TransportFixture) async throws {
        let sent = Self.task(.normalize, index: 7)
        try await f.coordinator.publishTask(sent, delayMilliseconds: 0)
        let worker = try await f.worker()
        let tap = Tap(try await worker.taskDeliveries(stages: [.normalize], prefetch: 1))
        let held = try #require(await tap.next(), "the task")
        #expect(held.deliveryCount == 0)
        tap.stop()
        await f.vanish(worker)

        let other = Tap(try await f.worker().taskDeliveries(stages: [.normalize], prefetch: 1))
        let d = try #require(await other.next(), "the task after its worker vanished")
        #expect(d.task == sent)
        #expect(d.deliveryCount == 1)
        try await d.ack()
        other.stop()
    }

    /// Past the delivery limit (2 here) a task is dead-lettered and reaches
    /// the coordinator as `deadLetter`.
    private func deliveryLimit(_ f: some TransportFixture) async throws {
        let sent = Self.task(index: 3)
        try await f.coordinator.publishTask(sent, delayMilliseconds: 0)
        let tap = Tap(try await f.worker().taskDeliveries(stages: [.noop], prefetch: 1))
        var counts: [Int] = []
        for _ in 0..<3 {
            let d = try #require(await tap.next(), "delivery \(counts.count + 1)")
            #expect(d.task == sent)
            counts.append(d.deliveryCount)
            try await d.nack(requeue: true)
        }
        #expect(counts == [0, 1, 2])
        let inbox = Tap(try await f.coordinator.coordinatorInbox(prefetch: 10))
        let (dead, reason) = try await Self.deadLetter(from: inbox)
        #expect(dead == sent)
        #expect(reason.contains(f.deliveryLimitReason), "\(reason)")
        #expect(await tap.next(within: 0.5) == nil, "a dead-lettered task was delivered again")
        tap.stop()
        inbox.stop()
    }

    private func nackWithoutRequeue(_ f: some TransportFixture) async throws {
        let sent = Self.task(.validate, index: 2)
        try await f.coordinator.publishTask(sent, delayMilliseconds: 0)
        let tap = Tap(try await f.worker().taskDeliveries(stages: [.validate], prefetch: 1))
        let d = try #require(await tap.next(), "the task")
        try await d.nack(requeue: false)
        let inbox = Tap(try await f.coordinator.coordinatorInbox(prefetch: 10))
        let (dead, reason) = try await Self.deadLetter(from: inbox)
        #expect(dead == sent)
        #expect(reason.contains("reject"), "\(reason)")
        #expect(await tap.next(within: 0.5) == nil, "a rejected task was delivered again")
        tap.stop()
        inbox.stop()
    }

    private func delayedTask(_ f: some TransportFixture) async throws {
        let tap = Tap(try await f.worker().taskDeliveries(stages: [.ingest], prefetch: 1))
        let start = ContinuousClock.now
        try await f.coordinator.publishTask(Self.task(.ingest), delayMilliseconds: 1000)
        let d = try #require(await tap.next(), "the delayed task")
        let waited = ContinuousClock.now - start
        #expect(d.task == Self.task(.ingest))
        #expect(waited >= .milliseconds(800), "arrived after \(waited)")
        try await d.ack()
        tap.stop()
    }

    /// Events and heartbeats reach the coordinator intact, also when sent
    /// before it reads its inbox (a heartbeat may be dropped when nobody
    /// listens for long; both transports keep it for a while).
    private func eventsAndHeartbeats(_ f: some TransportFixture) async throws {
        let worker = try await f.worker()
        let identity = WorkerIdentity(id: "h:1:abcd", host: "h", pid: 1, version: "test")
        let event = TaskEvent(kind: .succeeded, task: Self.task(), execution: "0123456789abcdef", worker: identity,
                              deliveryCount: 0, startedAt: Date(timeIntervalSince1970: 1_000),
                              finishedAt: Date(timeIntervalSince1970: 1_001),
                              outputs: [ChunkRef(path: "runs/r/noop/0/x/a.parquet", sha256: "ab", rows: 1, bytes: 2,
                                                 kind: .data, partition: 0)],
                              result: "{}")
        let beat = WorkerHeartbeat(worker: identity, at: Date(timeIntervalSince1970: 1_002), state: .draining,
                                   stages: [.noop], concurrency: 2, running: ["r/noop/0"])
        try await worker.publishEvent(event)
        try await worker.publishHeartbeat(beat)
        let inbox = Tap(try await f.coordinator.coordinatorInbox(prefetch: 10))
        var gotEvent: TaskEvent?, gotBeat: WorkerHeartbeat?
        while gotEvent == nil || gotBeat == nil {
            let m = try #require(await inbox.next(), "the event and the heartbeat")
            try await m.ack()
            switch m.body {
            case .event(let e): gotEvent = e
            case .heartbeat(let b): gotBeat = b
            default: Issue.record("unexpected message in the inbox: \(m.body)")
            }
        }
        #expect(gotEvent == event)
        #expect(gotBeat == beat)
        #expect(await f.coordinator.queueDepths()[.noop] == 0)
        inbox.stop()
    }

    private func prefetch(_ f: some TransportFixture) async throws {
        for i in 0..<3 { try await f.coordinator.publishTask(Self.task(.consolidate, index: i), delayMilliseconds: 0) }
        let tap = Tap(try await f.worker().taskDeliveries(stages: [.consolidate], prefetch: 2))
        let a = try #require(await tap.next(), "the first task")
        let b = try #require(await tap.next(), "the second task")
        #expect(await tap.next(within: 0.5) == nil, "more than prefetch (2) unsettled deliveries")
        try await a.ack()
        let c = try #require(await tap.next(), "the third task once one was settled")
        #expect(Set([a, b, c].compactMap { $0.task?.index }) == [0, 1, 2])
        try await b.ack()
        try await c.ack()
        tap.stop()
    }

    private func severalStages(_ f: some TransportFixture) async throws {
        let sent = [Self.task(.publish), Self.task(.report), Self.task(.publish, index: 1)]
        for t in sent { try await f.coordinator.publishTask(t, delayMilliseconds: 0) }
        let tap = Tap(try await f.worker().taskDeliveries(stages: [.publish, .report], prefetch: 5))
        var got: [TaskMessage] = []
        for _ in sent {
            let d = try #require(await tap.next(), "task \(got.count + 1) of \(sent.count)")
            got.append(try #require(d.task))
            try await d.ack()
        }
        #expect(Set(got) == Set(sent))
        tap.stop()
    }

    /// Ready tasks, per stage queue; a delivered task is no longer ready.
    private func queueDepths(_ f: some TransportFixture) async throws {
        for i in 0..<2 { try await f.coordinator.publishTask(Self.task(.deliver, index: i), delayMilliseconds: 0) }
        let before = await f.coordinator.queueDepths()
        #expect(before[.deliver] == 2)
        #expect(before[.ingest] == 0)
        let tap = Tap(try await f.worker().taskDeliveries(stages: [.deliver], prefetch: 5))
        for i in 0..<2 {
            let d = try #require(await tap.next(), "task \(i)")
            try await d.ack()
        }
        #expect(await f.coordinator.queueDepths()[.deliver] == 0)
        tap.stop()
    }

    /// The next dead letter in the inbox (other messages are acked and skipped).
    static func deadLetter(from inbox: Tap<InboundEvent>) async throws -> (TaskMessage, String) {
        while true {
            let e = try #require(await inbox.next(), "the dead letter")
            try await e.ack()
            if case .deadLetter(let t, let reason) = e.body { return (t, reason) }
        }
    }
}

// MARK: - Reading a stream with a time bound

/// Reads a stream on a task of its own into a mailbox, so that waiting for
/// the next element with a time bound never cancels the stream (cancelling
/// a read of the stream itself would end it, and a consumer ended that way
/// hands back what it holds). `stop()` ends the stream, as a consumer that
/// goes away.
struct Tap<Element: Sendable>: Sendable {
    private let mailbox = Mailbox<Element>()
    private let pump: Task<Void, Never>

    init(_ stream: AsyncThrowingStream<Element, Error>) {
        let mailbox = self.mailbox
        pump = Task {
            do {
                for try await element in stream { await mailbox.put(element) }
                await mailbox.finish("the stream ended")
            } catch {
                await mailbox.finish("the stream failed: \(error)")
            }
        }
    }

    /// The next element, or nil when none comes within `seconds` (or the stream ended).
    func next(within seconds: Double = 60) async -> Element? {
        await mailbox.next(within: seconds)
    }

    func stop() { pump.cancel() }
}

actor Mailbox<Element: Sendable> {
    private var elements: [Element] = []
    private var ended: String?
    private var waiting: (id: Int, continuation: CheckedContinuation<Element?, Never>)?
    private var lastID = 0

    func put(_ element: Element) {
        if let w = waiting {
            waiting = nil
            w.continuation.resume(returning: element)
        } else {
            elements.append(element)
        }
    }

    func finish(_ why: String) {
        ended = why
        if let w = waiting {
            waiting = nil
            w.continuation.resume(returning: nil)
        }
    }

    func next(within seconds: Double) async -> Element? {
        if !elements.isEmpty { return elements.removeFirst() }
        if ended != nil { return nil }
        lastID += 1
        let id = lastID
        return await withCheckedContinuation { c in
            waiting = (id, c)
            Task {
                try? await Task.sleep(for: .milliseconds(Int(seconds * 1000)))
                self.expire(id)
            }
        }
    }

    private func expire(_ id: Int) {
        guard let w = waiting, w.id == id else { return }
        waiting = nil
        w.continuation.resume(returning: nil)
    }
}
