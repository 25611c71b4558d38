import AMQP
import FleetAMQP
import FleetCore
import Foundation
import TestSupport
import Testing
import WorkerRuntime

/// `AMQPTransport` against the private broker, each test in a namespace of
/// its own whose queues it deletes at the end.
@Suite(.serialized, .usesBroker, .enabled(if: TestBroker.enabled, "needs the private broker: run ops/test"))
struct AMQPTransportTests {
    func connect(deliveryLimit: Int = 2) async throws -> AMQPTransport {
        guard let url = TestBroker.urlString else { throw TestBroker.Missing(variable: "BIS_TEST_AMQP_URL") }
        return try await AMQPTransport.connect(url: url, namespace: TestBroker.uniqueName("fleet"),
                                               policy: RetryPolicy(deliveryLimit: deliveryLimit), connectionName: "bis-tests")
    }

    func task(_ stage: Stage = .noop, index: Int = 0) -> TaskMessage {
        TaskMessage(run: "amqp-test", stage: stage, index: index, attempt: 1, spec: nil, parameters: ["k": "v"])
    }

    @Test func aTaskReturnedPastTheDeliveryLimitReachesTheCoordinatorAsADeadLetter() async throws {
        let transport = try await connect(deliveryLimit: 2)
        let sent = task(index: 3)
        try await transport.publishTask(sent, delayMilliseconds: 0)
        let deliveries = try await transport.taskDeliveries(stages: [.noop], prefetch: 1)
        let counts = try await withTimeout(60, "deliveries up to the limit") {
            var counts: [Int] = []
            for try await d in deliveries {
                #expect(d.task == sent)
                counts.append(d.deliveryCount)
                try await d.nack(requeue: true)
                if counts.count == 3 { break }
            }
            return counts
        }
        #expect(counts == [0, 1, 2])
        let inbox = try await transport.coordinatorInbox(prefetch: 10)
        let (dead, reason) = try await withTimeout(60, "the dead letter") { () -> (TaskMessage?, String) in
            for try await e in inbox {
                try await e.ack()
                if case .deadLetter(let t, let reason) = e.body { return (t, reason) }
            }
            return (nil, "")
        }
        #expect(dead == sent)
        #expect(reason.contains("delivery_limit"), "\(reason)")
        await transport.deleteQueues()
        await transport.close()
    }

    @Test func aDelayedTaskArrivesNotBeforeMostOfItsDelay() async throws {
        let transport = try await connect()
        let deliveries = try await transport.taskDeliveries(stages: [.ingest], prefetch: 1)
        let start = ContinuousClock.now
        try await transport.publishTask(task(.ingest), delayMilliseconds: 1000)
        let got = try await withTimeout(60, "the delayed task") { () -> TaskMessage? in
            for try await d in deliveries {
                try await d.ack()
                return d.task
            }
            return nil
        }
        let waited = ContinuousClock.now - start
        #expect(got == task(.ingest))
        #expect(waited >= .milliseconds(800), "arrived after \(waited)")
        #expect(AMQPTransport.delayBucket(for: 700) == 1000)
        #expect(AMQPTransport.delayBucket(for: 0) == nil)
        #expect(AMQPTransport.delayBucket(for: 10_000_000) == AMQPTransport.delayLadder.last)
        await transport.deleteQueues()
        await transport.close()
    }

    @Test func eventsAndHeartbeatsRoundTrip() async throws {
        let transport = try await connect()
        let worker = WorkerIdentity(id: "h:1:abcd", host: "h", pid: 1, version: "test")
        let event = TaskEvent(kind: .succeeded, task: task(), execution: "0123456789abcdef", worker: worker, deliveryCount: 0,
                              startedAt: Date(timeIntervalSince1970: 1_000), finishedAt: Date(timeIntervalSince1970: 1_001),
                              outputs: [ChunkRef(path: "runs/r/noop/0/x/a.parquet", sha256: "ab", rows: 1, bytes: 2, kind: .data, partition: 0)],
                              result: "{}")
        let beat = WorkerHeartbeat(worker: worker, at: Date(timeIntervalSince1970: 1_002), state: .draining, stages: [.noop],
                                   concurrency: 2, running: ["r/noop/0"])
        try await transport.publishEvent(event)
        try await transport.publishHeartbeat(beat)
        let inbox = try await transport.coordinatorInbox(prefetch: 10)
        let (e, b) = try await withTimeout(60, "the event and the heartbeat") { () -> (TaskEvent?, WorkerHeartbeat?) in
            var e: TaskEvent?, b: WorkerHeartbeat?
            for try await m in inbox {
                try await m.ack()
                switch m.body {
                case .event(let x): e = x
                case .heartbeat(let x): b = x
                default: break
                }
                if e != nil, b != nil { break }
            }
            return (e, b)
        }
        #expect(e == event)
        #expect(b == beat)
        #expect(await transport.queueDepths()[.noop] == 0)
        await transport.deleteQueues()
        await transport.close()
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
