import FleetCore
import Foundation
import Synchronization
import Testing
import WorkerRuntime

/// A transport that hands out the deliveries a test makes and records how
/// each was settled; event publishing can be made to fail.
final class ScriptedTransport: FleetTransport {
    let settlements = Mutex<[String: InboundTask.Settlement]>([:])
    let events = Mutex<[TaskEvent]>([])
    let failEvents: Bool
    /// Result publishes that fail before they start to pass.
    let failures = Mutex(0)
    let deliveries: [(String, TaskMessage?)]
    /// Why a delivery without a task did not decode, by name (default "not JSON").
    let decodeErrors: [String: String]

    init(deliveries: [(String, TaskMessage?)], failEvents: Bool = false, failFirst: Int = 0,
         decodeErrors: [String: String] = [:]) {
        self.deliveries = deliveries
        self.failEvents = failEvents
        failures.withLock { $0 = failFirst }
        self.decodeErrors = decodeErrors
    }

    struct Refused: Error {}

    func taskDeliveries(stages: [Stage], prefetch: Int) async throws -> AsyncThrowingStream<InboundTask, Error> {
        let (stream, continuation) = AsyncThrowingStream<InboundTask, Error>.makeStream()
        for (name, task) in deliveries {
            continuation.yield(InboundTask(task: task, decodeError: task == nil ? decodeErrors[name] ?? "not JSON" : nil,
                                           deliveryCount: 0) { s in
                self.settlements.withLock { $0[name] = s }
            })
        }
        return stream
    }

    func publishEvent(_ event: TaskEvent) async throws {
        if failEvents, event.kind != .started { throw Refused() }
        let failNow = event.kind != .started && failures.withLock { n -> Bool in
            guard n > 0 else { return false }
            n -= 1
            return true
        }
        if failNow { throw Refused() }
        events.withLock { $0.append(event) }
    }

    func publishTask(_ task: TaskMessage, delayMilliseconds: Int) async throws {}
    func coordinatorInbox(prefetch: Int) async throws -> AsyncThrowingStream<InboundEvent, Error> { AsyncThrowingStream { nil } }
    func publishHeartbeat(_ beat: WorkerHeartbeat) async throws {}
    func queueDepths() async -> [Stage: Int] { [:] }
    func close() async {}

    /// Waits until `n` deliveries are settled (bounded, no timing asserted).
    func settled(_ n: Int) async throws -> [String: InboundTask.Settlement] {
        for _ in 0..<3000 {
            let s = settlements.withLock { $0 }
            if s.count >= n { return s }
            try await Task.sleep(for: .milliseconds(10))
        }
        Issue.record("only \(settlements.withLock { $0.count }) of \(n) deliveries were settled")
        return settlements.withLock { $0 }
    }
}

@Suite struct WorkerSettlementTests {
    let task = TaskMessage(run: "r", stage: .noop, index: 0, attempt: 1, spec: nil)

    @Test func anUnreadableBodyIsRejectedWithoutRequeueAndATaskIsAckedAfterItsResult() async throws {
        let transport = ScriptedTransport(deliveries: [("garbage", nil), ("noop", task)])
        let worker = FleetWorker(transport: transport, chunkStore: ChunkStore(root: NSTemporaryDirectory()), concurrency: 2, fault: nil)
        let running = Task { try await worker.run() }
        let s = try await transport.settled(2)
        #expect(s["garbage"] == .nack(requeue: false))
        #expect(s["noop"] == .ack)
        #expect(transport.events.withLock { $0.contains { $0.kind == .succeeded } })
        worker.drain()
        try await running.value
    }

    @Test func aResultThatCannotBePublishedIsNeverAckedButHandedBack() async throws {
        let transport = ScriptedTransport(deliveries: [("noop", task)], failEvents: true)
        let worker = FleetWorker(transport: transport, chunkStore: ChunkStore(root: NSTemporaryDirectory()), concurrency: 1, fault: nil,
                                 resultRetry: .seconds(1))
        let running = Task { try await worker.run() }
        let s = try await transport.settled(1)
        #expect(s["noop"] == .nack(requeue: true))
        worker.drain()
        try await running.value
    }

    /// A result publish that fails a few times (a broker node lost a moment
    /// ago) is tried again: the task is acked after its result, not handed
    /// back (which would count toward the delivery limit).
    @Test func aResultPublishThatFailsForAMomentIsTriedAgain() async throws {
        let transport = ScriptedTransport(deliveries: [("noop", task)], failFirst: 3)
        let worker = FleetWorker(transport: transport, chunkStore: ChunkStore(root: NSTemporaryDirectory()), concurrency: 1, fault: nil,
                                 resultRetry: .seconds(20))
        let running = Task { try await worker.run() }
        let s = try await transport.settled(1)
        #expect(s["noop"] == .ack)
        #expect(transport.events.withLock { $0.filter { $0.kind == .succeeded }.count } == 1)
        #expect(transport.failures.withLock { $0 } == 0)
        worker.drain()
        try await running.value
    }

    /// A task message whose stage this build does not know is not read as
    /// some other stage (never `noop`): it does not decode, the error names
    /// the value, and the worker rejects it without requeue (dead-lettered)
    /// like any unreadable message, running nothing and reporting nothing.
    @Test func aTaskWithAnUnknownStageIsRejectedWithoutRequeue() async throws {
        let good = String(decoding: try WireCoding.encode(task), as: UTF8.self)
        let body = good.replacingOccurrences(of: #""stage":"noop""#, with: #""stage":"mangle""#)
        #expect(body != good, "\(good)")
        var decodeError: String?
        do {
            _ = try WireCoding.decode(TaskMessage.self, from: Array(body.utf8))
        } catch {
            decodeError = "not a task message: \(error)"   // as AMQPTransport reports it
        }
        let message = try #require(decodeError, "a task message with stage 'mangle' decoded")
        #expect(message.contains("mangle"), "\(message)")

        let transport = ScriptedTransport(deliveries: [("mangle", nil)], decodeErrors: ["mangle": message])
        let worker = FleetWorker(transport: transport, chunkStore: ChunkStore(root: NSTemporaryDirectory()), concurrency: 1)
        let running = Task { try await worker.run() }
        let s = try await transport.settled(1)
        #expect(s["mangle"] == .nack(requeue: false))
        #expect(transport.events.withLock { $0.isEmpty })
        worker.drain()
        try await running.value
    }
}
