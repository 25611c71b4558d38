import AMQP
import FleetAMQP
import Foundation
import TestSupport
import Testing

/// The AMQP layer against the real private node. Serialized: one test
/// restarts the broker, which would break the others' connections.
@Suite(.serialized, .usesBroker, .enabled(if: TestBroker.enabled, "needs the private broker: run ops/test"))
struct BrokerTests {
    /// Closing twice returns; a call after the close fails at once with
    /// `closed`. (The second close used to wait for a loop that had gone,
    /// forever: a test fixture that closed twice hung the broker suites.)
    @Test(.timeLimit(.minutes(1))) func closingTwiceReturnsAndLaterCallsFailAtOnce() async throws {
        let amqp = try await TestBroker.connect()
        await amqp.close()
        await amqp.close()
        await #expect(throws: AMQPError.self) {
            try await amqp.declare(.queue(QueueSpec(TestBroker.uniqueName("after-close"))))
        }
    }

    @Test func roundTripKeepsBodyAndProperties() async throws {
        let amqp = try await TestBroker.connect()
        let queue = TestBroker.uniqueName("roundtrip")
        try await amqp.declare(.queue(QueueSpec(queue)))
        var message = OutgoingMessage(body: Array("grüße, 🚚".utf8), contentType: "text/plain", messageID: "m-1",
                                      headers: ["run": .string("sales-1"), "attempt": .int(3)])
        message.correlationID = "c-9"
        try await amqp.publish(message, exchange: "", routingKey: queue)

        let consumer = try await amqp.consume(queue: queue, prefetch: 1)
        let d = try #require(try await take(1, from: consumer).first)
        #expect(d.text == "grüße, 🚚")
        #expect(d.routingKey == queue && d.exchange == "")
        #expect(d.properties.messageID == "m-1" && d.properties.correlationID == "c-9")
        #expect(d.properties.persistent)
        #expect(d.properties.headers["run"] == .string("sales-1"))
        #expect(d.properties.headers["attempt"] == .int(3))
        #expect(d.deliveryCount == 0 && !d.redelivered)
        try await d.ack()
        consumer.cancel()
        try await amqp.deleteQueue(queue)
        await amqp.close()
    }

    @Test func tenThousandConfirmedPublishesAreAllConsumed() async throws {
        let amqp = try await TestBroker.connect()
        let queue = TestBroker.uniqueName("window")
        try await amqp.declare(.queue(QueueSpec(queue)))
        let total = 10_000
        try await withThrowingTaskGroup(of: Void.self) { group in
            for i in 0..<total {
                group.addTask {
                    try await amqp.publish(OutgoingMessage(body: Array(String(i).utf8)), exchange: "", routingKey: queue)
                }
            }
            try await group.waitForAll()
        }
        #expect(try await amqp.messageCount(queue: queue) == total)

        let consumer = try await amqp.consume(queue: queue, prefetch: 500)
        var seen = Set<Int>()
        try await withTimeout(60, "consuming \(total) messages") {
            var seen = Set<Int>()
            for try await d in consumer {
                seen.insert(Int(d.text)!)
                try await d.ack()
                if seen.count == total { break }
            }
            return seen
        }.forEach { seen.insert($0) }
        #expect(seen == Set(0..<total))
        try await amqp.deleteQueue(queue)
        await amqp.close()
    }

    @Test func unroutableMandatoryPublishFails() async throws {
        let amqp = try await TestBroker.connect()
        let key = TestBroker.uniqueName("nowhere")
        await #expect(throws: AMQPError.unroutable(exchange: "amq.direct", routingKey: key, replyCode: 312,
                                                   replyText: "NO_ROUTE")) {
            try await amqp.publish(OutgoingMessage("lost"), exchange: "amq.direct", routingKey: key, mandatory: true)
        }
        // Without mandatory the broker drops it and confirms: AMQP's rule.
        try await amqp.publish(OutgoingMessage("dropped"), exchange: "amq.direct", routingKey: key)

        // A missing exchange closes the publish channel: that publish fails
        // with the broker's 404, and the connection goes on working.
        do {
            try await amqp.publish(OutgoingMessage("x"), exchange: "no-such-exchange-\(key)", routingKey: "k")
            Issue.record("publishing to a missing exchange must fail")
        } catch let AMQPError.server(_, code, text) {
            #expect(code == 404 && text.contains("no-such-exchange"))
        }
        let queue = TestBroker.uniqueName("after404")
        try await amqp.declare(.queue(QueueSpec(queue)))
        try await amqp.publish(OutgoingMessage("ok"), exchange: "", routingKey: queue, mandatory: true)
        #expect(try await amqp.messageCount(queue: queue) == 1)
        try await amqp.deleteQueue(queue)
        await amqp.close()
    }

    @Test func redeclaringWithOtherArgumentsIsAClearErrorAndTheConnectionSurvives() async throws {
        let amqp = try await TestBroker.connect()
        let queue = TestBroker.uniqueName("conflict")
        try await amqp.declare(.queue(QueueSpec(queue, deliveryLimit: 3)))
        do {
            try await amqp.declare(.queue(QueueSpec(queue, deliveryLimit: 4)))
            Issue.record("a conflicting declaration must fail")
        } catch let AMQPError.server(operation, code, _) {
            #expect(code == 406)
            #expect(operation.contains(queue))
        }
        #expect(try await amqp.messageCount(queue: queue) == 0)
        try await amqp.deleteQueue(queue)
        await amqp.close()
    }

    @Test func nackWithRequeueRedeliversWithAHigherDeliveryCount() async throws {
        let amqp = try await TestBroker.connect()
        let queue = TestBroker.uniqueName("nack")
        try await amqp.declare(.queue(QueueSpec(queue)))
        try await amqp.publish(OutgoingMessage("again"), exchange: "", routingKey: queue)
        let consumer = try await amqp.consume(queue: queue, prefetch: 1)
        let first = try #require(try await take(1, from: consumer).first)
        #expect(first.deliveryCount == 0 && !first.redelivered)
        try await first.nack(requeue: true)
        let second = try #require(try await take(1, from: consumer).first)
        #expect(second.text == "again")
        #expect(second.deliveryCount == 1 && second.redelivered)
        try await second.ack()
        consumer.cancel()
        try await amqp.deleteQueue(queue)
        await amqp.close()
    }

    @Test func pastTheDeliveryLimitTheMessageIsDeadLettered() async throws {
        let amqp = try await TestBroker.connect()
        let dlx = TestBroker.uniqueName("dlx")
        let dead = TestBroker.uniqueName("dead")
        let work = TestBroker.uniqueName("work")
        try await amqp.declare([
            .exchange(ExchangeSpec(dlx, kind: .fanout)),
            .queue(QueueSpec(dead)),
            .binding(BindingSpec(queue: dead, exchange: dlx, routingKey: "")),
            .queue(.work(work, deliveryLimit: 2, deadLetterExchange: dlx)),
        ])
        try await amqp.publish(OutgoingMessage("poison"), exchange: "", routingKey: work)
        let consumer = try await amqp.consume(queue: work, prefetch: 1)
        var counts: [Int] = []
        // limit 2: delivered three times (counts 0, 1, 2), then dead-lettered.
        for _ in 0..<3 {
            let d = try #require(try await take(1, from: consumer).first)
            counts.append(d.deliveryCount)
            try await d.nack(requeue: true)
        }
        #expect(counts == [0, 1, 2])
        let deadConsumer = try await amqp.consume(queue: dead, prefetch: 1)
        let d = try #require(try await take(1, from: deadConsumer).first)
        #expect(d.text == "poison")
        #expect(d.properties.headers["x-first-death-reason"] == .string("delivery_limit"))
        // x-death (an array of tables, decoded apart): the most recent death first.
        #expect(d.properties.deaths.first?.reason == "delivery_limit", "\(d.properties.deaths)")
        #expect(d.properties.deaths.first?.queue == work, "\(d.properties.deaths)")
        // Limit 2: handed back three times.
        let reason = AMQPTransport.deadLetterReason(d.properties, deliveryLimit: 2)
        #expect(reason.hasPrefix("delivery_limit: delivery limit reached from \(work): the task was handed back 3 times"), "\(reason)")
        try await d.ack()
        #expect(try await amqp.messageCount(queue: work) == 0)
        consumer.cancel()
        deadConsumer.cancel()
        try await amqp.deleteQueue(work)
        try await amqp.deleteQueue(dead)
        await amqp.close()
    }

    /// A publish the broker nacks (here: a full `reject-publish` queue) is
    /// sent again on a new channel a bounded number of times, then fails with
    /// `publishNacked`; the connection goes on publishing afterwards.
    @Test(.timeLimit(.minutes(1))) func aNackedPublishIsSentAgainABoundedNumberOfTimesThenFails() async throws {
        var config = try TestBroker.configuration()
        config.nackResends = 3
        config.nackResendDelay = 0.1
        let amqp = try await AMQPConnection.connect(config)
        let queue = TestBroker.uniqueName("nack-full")
        // Classic: its length limit is exact (a quorum queue's lets one more in).
        var spec = QueueSpec(queue, kind: .classic)
        spec.maxLength = 1
        try await amqp.declare(.queue(spec))
        try await amqp.publish(OutgoingMessage("first"), exchange: "", routingKey: queue)
        let t0 = monotonicSeconds()
        do {
            try await amqp.publish(OutgoingMessage("second"), exchange: "", routingKey: queue)
            Issue.record("a publish into a full reject-publish queue was confirmed")
        } catch let error as AMQPError {
            guard case .publishNacked = error else { Issue.record("expected publishNacked, got \(error)"); return }
        }
        // Sent again after 0.1, 0.2 and 0.4 s: the nack surfaces after them.
        let waited = monotonicSeconds() - t0
        #expect(waited >= 0.65, "the nack surfaced after \(waited) s: not sent again")
        #expect(waited < 20, "the nack surfaced after \(waited) s")
        #expect(amqp.nacksToResend == 3, "resends counted: \(amqp.nacksToResend)")
        #expect(amqp.publishChannelSwitches == 3, "each resend goes out on a new channel: \(amqp.publishChannelSwitches)")
        try await amqp.purge(queue: queue)
        try await amqp.publish(OutgoingMessage("third"), exchange: "", routingKey: queue)
        #expect(try await amqp.messageCount(queue: queue) == 1)
        try await amqp.deleteQueue(queue)
        await amqp.close()
    }

    /// A nacked publish sent again once there is room is confirmed: the
    /// caller never sees the nack. Publishes queued meanwhile go out too.
    @Test(.timeLimit(.minutes(1))) func aNackedPublishIsConfirmedWhenSentAgainLater() async throws {
        var config = try TestBroker.configuration()
        config.nackResends = 4
        config.nackResendDelay = 0.5   // sent again after 0.5, 1, 2, 4 s
        let amqp = try await AMQPConnection.connect(config)
        let queue = TestBroker.uniqueName("nack-room")
        // Classic: its length limit is exact (a quorum queue's lets one more in).
        var spec = QueueSpec(queue, kind: .classic)
        spec.maxLength = 1
        try await amqp.declare(.queue(spec))
        try await amqp.publish(OutgoingMessage("first"), exchange: "", routingKey: queue)
        let second = Task { try await amqp.publish(OutgoingMessage("second"), exchange: "", routingKey: queue) }
        // Purge only once the nack has come (by condition, not a fixed sleep:
        // on a slow broker the purge could land first and no resend happen).
        let nackedBy = monotonicSeconds() + 10
        while amqp.nacksToResend == 0 && monotonicSeconds() < nackedBy { try await Task.sleep(for: .milliseconds(5)) }
        #expect(amqp.nacksToResend >= 1, "the second publish was never nacked: no resend was exercised")
        let other = try await TestBroker.connect()
        try await other.purge(queue: queue)
        try await second.value
        #expect(try await other.messageCount(queue: queue) == 1)
        let consumer = try await other.consume(queue: queue, prefetch: 1)
        let d = try #require(try await take(1, from: consumer).first)
        #expect(d.text == "second")
        try await d.ack()
        // Closed before the next publish: a cancelled consumer whose cancel
        // the broker has not yet seen could take "third" (a CI run saw
        // the count at 0 that way).
        consumer.cancel()
        await other.close()
        try await amqp.publish(OutgoingMessage("third"), exchange: "", routingKey: queue)
        let counter = try await TestBroker.connect()
        #expect(try await counter.messageCount(queue: queue) == 1)
        try await counter.deleteQueue(queue)
        await counter.close()
        await amqp.close()
    }

    /// Many nacks in a row (each publish into a full `reject-publish` queue
    /// is nacked, moved to a new channel, nacked again): the publish channel
    /// numbers wrap round the spare range more than once, the I/O thread
    /// never blocks, and a consumer on the same connection still receives.
    @Test(.timeLimit(.minutes(2))) func publishChannelNumbersWrapRoundAfterManyNacks() async throws {
        var config = try TestBroker.configuration()
        config.nackResends = 1
        config.nackResendDelay = 0.001
        let amqp = try await AMQPConnection.connect(config)
        let full = TestBroker.uniqueName("nack-wrap")
        var spec = QueueSpec(full, kind: .classic)
        spec.maxLength = 1
        let open = TestBroker.uniqueName("nack-wrap-open")
        try await amqp.declare([.queue(spec), .queue(QueueSpec(open))])
        try await amqp.publish(OutgoingMessage("first"), exchange: "", routingKey: full)
        let publishes = 110   // more than the 96 spare numbers
        for i in 0..<publishes {
            do {
                try await amqp.publish(OutgoingMessage("refused \(i)"), exchange: "", routingKey: full)
                Issue.record("publish \(i) into a full reject-publish queue was confirmed")
            } catch let error as AMQPError {
                guard case .publishNacked = error else { Issue.record("expected publishNacked, got \(error)"); return }
            }
        }
        #expect(amqp.publishChannelSwitches >= publishes, "switches: \(amqp.publishChannelSwitches)")
        #expect(amqp.reconnects == 0, "close-oks came back: every switch found a free number")
        let consumer = try await amqp.consume(queue: open, prefetch: 1)
        try await amqp.publish(OutgoingMessage("still flowing"), exchange: "", routingKey: open)
        let d = try #require(try await take(1, from: consumer).first)
        #expect(d.text == "still flowing")
        try await d.ack()
        consumer.cancel()
        #expect(try await amqp.messageCount(queue: full) == 1)
        for q in [full, open] { try await amqp.deleteQueue(q) }
        await amqp.close()
    }

    @Test func delayedRetryArrivesAfterItsTTLAndNotBefore() async throws {
        let amqp = try await TestBroker.connect()
        let tasks = TestBroker.uniqueName("tasks")
        let target = TestBroker.uniqueName("target")
        let delay = TestBroker.uniqueName("delay")
        let ttl = 1500
        try await amqp.declare([
            .exchange(ExchangeSpec(tasks, kind: .direct)),
            .queue(QueueSpec(target)),
            .binding(BindingSpec(queue: target, exchange: tasks, routingKey: "ingest")),
            .queue(.delay(delay, delayMilliseconds: ttl, targetExchange: tasks, targetRoutingKey: "ingest")),
        ])
        let start = monotonicSeconds()
        try await amqp.publish(OutgoingMessage("retry me"), exchange: "", routingKey: delay)
        try await Task.sleep(for: .milliseconds(ttl / 3))
        #expect(try await amqp.messageCount(queue: target) == 0, "must not arrive before its TTL")
        let consumer = try await amqp.consume(queue: target, prefetch: 1)
        let d = try #require(try await take(1, from: consumer, within: 30).first)
        let elapsed = monotonicSeconds() - start
        #expect(d.text == "retry me")
        #expect(elapsed >= Double(ttl) / 1000, "arrived after \(elapsed) s, before the \(ttl) ms TTL")
        try await d.ack()
        consumer.cancel()
        for q in [target, delay] { try await amqp.deleteQueue(q) }
        await amqp.close()
    }

    @Test func aDeliveryHeldForThreeHeartbeatsIsStillAckedOnTheSameConnection() async throws {
        let heartbeat = 1
        let amqp = try await TestBroker.connect(heartbeat: heartbeat)
        let queue = TestBroker.uniqueName("slow")
        try await amqp.declare(.queue(QueueSpec(queue)))
        try await amqp.publish(OutgoingMessage("long task"), exchange: "", routingKey: queue)
        let consumer = try await amqp.consume(queue: queue, prefetch: 1)
        let d = try #require(try await take(1, from: consumer).first)
        // The consuming code "works" for 3.5 heartbeat intervals; the I/O
        // thread must keep the connection alive meanwhile.
        try await Task.sleep(for: .milliseconds(3500 * heartbeat))
        try await d.ack()
        #expect(amqp.reconnects == 0)
        consumer.cancel()
        try await Task.sleep(for: .milliseconds(300))
        #expect(try await amqp.messageCount(queue: queue) == 0, "the ack was lost: the message is back")
        try await amqp.deleteQueue(queue)
        await amqp.close()
    }

    @Test func wrongPasswordIsALoginErrorThatDoesNotShowThePassword() async throws {
        var config = try TestBroker.configuration()
        config.url.password = "definitely-wrong-\(UInt16.random(in: 0...9999))"
        do {
            _ = try await AMQPConnection.connect(config)
            Issue.record("login with a wrong password must fail")
        } catch let error as AMQPError {
            guard case .loginFailed = error else { Issue.record("expected loginFailed, got \(error)"); return }
            #expect(!error.description.contains(config.url.password))
            #expect(error.description.contains(config.url.user))
        }
    }

    /// Of a list of nodes, one whose handshake fails for its own reasons (a
    /// 530: here a vhost it does not have, as a restarting node's vhost is
    /// down) does not stop the first connect; a refused login (403, the same
    /// credentials everywhere) does.
    @Test func onlyARefusedLoginStopsTryingTheOtherNodes() async throws {
        let good = try TestBroker.configuration().url
        var noVhost = good
        noVhost.vhost = "bis-no-such-vhost"
        var config = try TestBroker.configuration()
        config.urls = [noVhost, good]
        config.startPosition = 0
        let amqp = try await AMQPConnection.connect(config)
        #expect(amqp.node == good.node)
        await amqp.close()

        var wrong = good
        wrong.password = "definitely-wrong-\(UInt16.random(in: 0...9999))"
        config.urls = [wrong, good]
        do {
            _ = try await AMQPConnection.connect(config)
            Issue.record("a refused login must not be retried on the next node")
        } catch let error as AMQPError {
            guard case .loginFailed(_, _, code: 403?) = error else { Issue.record("expected a 403 loginFailed, got \(error)"); return }
        }
    }

    @Test func nothingListeningIsAConnectError() async throws {
        var config = try TestBroker.configuration()
        config.url.port = 1  // nothing listens on tcpmux here
        config.url.password = "secret-password"
        do {
            _ = try await AMQPConnection.connect(config)
            Issue.record("connecting to a closed port must fail")
        } catch let error as AMQPError {
            guard case .connectFailed = error else { Issue.record("expected connectFailed, got \(error)"); return }
            #expect(!error.description.contains("secret-password"))
        }
    }
}
