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
    let deliveries: [(String, TaskMessage?)]

    init(deliveries: [(String, TaskMessage?)], failEvents: Bool = false) {
        self.deliveries = deliveries
        self.failEvents = failEvents
    }

    struct Refused: Error {}

    func taskDeliveries(stages: [Stage], prefetch: Int) async throws -> AsyncThrowingStream<InboundTask, Error> {
        let (stream, continuation) = AsyncThrowingStream<InboundTask, Error>.makeStream()
        for (name, task) in deliveries {
            continuation.yield(InboundTask(task: task, decodeError: task == nil ? "not JSON" : nil, deliveryCount: 0) { s in
                self.settlements.withLock { $0[name] = s }
            })
        }
        return stream
    }

    func publishEvent(_ event: TaskEvent) async throws {
        if failEvents, event.kind != .started { throw Refused() }
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
        let worker = FleetWorker(transport: transport, chunkStore: ChunkStore(root: NSTemporaryDirectory()), concurrency: 1, fault: nil)
        let running = Task { try await worker.run() }
        let s = try await transport.settled(1)
        #expect(s["noop"] == .nack(requeue: true))
        worker.drain()
        try await running.value
    }
}
