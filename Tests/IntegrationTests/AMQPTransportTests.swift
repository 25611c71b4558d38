import AMQP
import FleetAMQP
import FleetCore
import Foundation
import TestSupport
import Testing
import WorkerRuntime

/// A delay goes to the smallest bucket of the ladder at least as long.
@Test func aDelayGoesToTheSmallestBucketAtLeastAsLong() {
    #expect(AMQPTransport.delayBucket(for: 700) == 1000)
    #expect(AMQPTransport.delayBucket(for: 0) == nil)
    #expect(AMQPTransport.delayBucket(for: 10_000_000) == AMQPTransport.delayLadder.last)
}

/// `AMQPTransport` against the private broker, each test in a namespace of
/// its own whose queues it deletes at the end. What every `FleetTransport`
/// must do (deliveries, acks, redeliveries, the delivery limit, delays,
/// events and heartbeats) is checked for both transports in
/// `TransportConformanceTests`.
@Suite(.serialized, .usesBroker, .enabled(if: TestBroker.enabled, "needs the private broker: run ops/test"))
struct AMQPTransportTests {
    func connect(deliveryLimit: Int = 2) async throws -> AMQPTransport {
        guard let url = TestBroker.urlString else { throw TestBroker.Missing(variable: "BIS_TEST_AMQP_URL") }
        return try await AMQPTransport.connect(url: url, key: .random(), namespace: TestBroker.uniqueName("fleet"),
                                               policy: RetryPolicy(deliveryLimit: deliveryLimit), connectionName: "bis-tests")
    }

    func task(_ stage: Stage = .noop, index: Int = 0) -> TaskMessage {
        TaskMessage(run: "amqp-test", stage: stage, index: index, attempt: 1, spec: nil, parameters: ["k": "v"])
    }

    /// A `FleetWorker` over RabbitMQ: every task's result reaches the
    /// coordinator's inbox, every task is acked (the stage queue empties),
    /// and a drain ends with a `stopped` heartbeat.
    @Test func aWorkerExecutesTasksAndAcksAfterItsResultsAreConfirmed() async throws {
        let transport = try await connect()
        let worker = FleetWorker(transport: transport, chunkStore: ChunkStore(root: NSTemporaryDirectory()), stages: [.noop],
                                 concurrency: 2, heartbeatInterval: .milliseconds(200), fault: nil)
        let running = Task { try await worker.run() }
        for i in 0..<20 { try await transport.publishTask(task(index: i), delayMilliseconds: 0) }
        let inbox = try await transport.coordinatorInbox(prefetch: 50)
        let succeeded = try await withTimeout(60, "20 results") { () -> Set<Int> in
            var done = Set<Int>()
            for try await m in inbox {
                try await m.ack()
                if case .event(let e) = m.body, e.kind == .succeeded { done.insert(e.index) }
                if done.count == 20 { break }
            }
            return done
        }
        #expect(succeeded == Set(0..<20))
        worker.drain()
        try await running.value
        let stopped = try await withTimeout(60, "the stopped heartbeat") { () -> Bool in
            for try await m in inbox {
                try await m.ack()
                if case .heartbeat(let b) = m.body, b.state == .stopped { return true }
            }
            return false
        }
        #expect(stopped)
        #expect(await transport.queueDepths()[.noop] == 0)
        await transport.deleteQueues()
        await transport.close()
    }
}
