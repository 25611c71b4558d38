import AMQP
import Foundation
import Synchronization
import TestSupport
import Testing

extension BrokerTests {
    /// `ops/broker restart` while a publisher streams: the client reconnects
    /// by itself, and every message whose publish was confirmed is consumed
    /// at least once.
    @Test(.restartsBroker) func brokerRestartDuringAStreamOfPublishesLosesNoConfirmedMessage() async throws {
        let amqp = try await TestBroker.connect(heartbeat: 5)
        let queue = TestBroker.uniqueName("restart")
        try await amqp.declare(.queue(QueueSpec(queue)))

        let tally = Tally()

        let publisher = Task {
            var next = 0
            var afterRestart = 0
            // Keep publishing through the restart and for a while after it.
            while afterRestart < 300 {
                let batch = next..<(next + 20)
                next += 20
                await withTaskGroup(of: Void.self) { group in
                    for i in batch {
                        group.addTask {
                            // Retry each message until the broker confirms it.
                            for _ in 0..<200 {
                                do {
                                    try await amqp.publish(OutgoingMessage(body: Array(String(i).utf8)),
                                                           exchange: "", routingKey: queue)
                                    tally.confirmed(i)
                                    return
                                } catch {
                                    tally.failedAttempt()
                                    try? await Task.sleep(for: .milliseconds(100))
                                }
                            }
                        }
                    }
                }
                if tally.restartDone.load(ordering: .acquiring) { afterRestart += 20 }
                try? await Task.sleep(for: .milliseconds(20))
            }
            return next
        }

        try await Task.sleep(for: .milliseconds(500))
        try await TestBroker.control(["restart"])
        tally.restartDone.store(true, ordering: .releasing)
        let attempted = await publisher.value

        let want = tally.confirmedSet
        #expect(amqp.reconnects >= 1, "the client should have reconnected after the restart")
        #expect(want.count == attempted, "every message is eventually confirmed by retrying")

        let consumer = try await amqp.consume(queue: queue, prefetch: 200)
        let got = try await withTimeout(60, "consuming \(want.count) confirmed messages") {
            var got = Set<Int>()
            for try await d in consumer {
                got.insert(Int(d.text)!)
                try await d.ack()
                if got.isSuperset(of: want) { break }
            }
            return got
        }
        #expect(want.subtracting(got).isEmpty, "confirmed but lost: \(want.subtracting(got).sorted().prefix(10))")
        try await amqp.deleteQueue(queue)
        await amqp.close()
    }

    @Test func tlsWithTheBrokersCAWorksAndAWrongCAFailsClearly() async throws {
        let env = TestBroker.environment
        let tlsURL = try #require(env["BIS_TEST_AMQPS_URL"], "BIS_TEST_AMQPS_URL is not set: run ops/test")
        let caFile = try #require(env["BIS_TEST_CA_FILE"], "BIS_TEST_CA_FILE is not set: run ops/test")

        var config = try AMQPConfiguration(url: tlsURL)
        config.tls = TLSOptions(caFile: caFile)
        let amqp = try await AMQPConnection.connect(config)
        let queue = TestBroker.uniqueName("tls")
        try await amqp.declare(.queue(QueueSpec(queue)))
        try await amqp.publish(OutgoingMessage("over tls"), exchange: "", routingKey: queue)
        let consumer = try await amqp.consume(queue: queue, prefetch: 1)
        let d = try #require(try await take(1, from: consumer).first)
        #expect(d.text == "over tls")
        try await d.ack()
        consumer.cancel()
        try await amqp.deleteQueue(queue)
        await amqp.close()

        // A CA this test makes itself has not signed the broker's certificate.
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("bis-wrong-ca-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let wrongCA = dir.appendingPathComponent("ca.pem").path
        try await runTool("/usr/bin/openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                                     "-subj", "/CN=not-the-bis-ca", "-keyout", dir.appendingPathComponent("ca.key").path,
                                     "-out", wrongCA])
        config.tls = TLSOptions(caFile: wrongCA)
        config.url.password = "tls-secret-\(UInt16.random(in: 0...9999))"
        do {
            _ = try await AMQPConnection.connect(config)
            Issue.record("a connection verified against the wrong CA must fail")
        } catch let error as AMQPError {
            guard case .connectFailed = error else { Issue.record("expected connectFailed, got \(error)"); return }
            #expect(error.description.contains("certificate"), "\(error)")
            #expect(!error.description.contains(config.url.password))
        }

        config.tls = TLSOptions(caFile: dir.appendingPathComponent("missing.pem").path)
        await #expect(throws: AMQPError.self) { _ = try await AMQPConnection.connect(config) }
    }
}

private final class Tally: Sendable {
    private let state = Mutex((confirmed: Set<Int>(), failed: 0))
    let restartDone = Atomic<Bool>(false)
    func confirmed(_ i: Int) { state.withLock { _ = $0.confirmed.insert(i) } }
    func failedAttempt() { state.withLock { $0.failed += 1 } }
    var confirmedSet: Set<Int> { state.withLock { $0.confirmed } }
}

