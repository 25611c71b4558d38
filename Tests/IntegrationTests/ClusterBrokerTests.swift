import AMQP
import FleetAMQP
import FleetWire
import Foundation
import TestSupport
import Testing

/// The AMQP layer and the fleet's topology on a private three-node cluster
/// (`ops/broker start --nodes 3`, which `ops/test-cluster` starts): a node
/// killed with SIGKILL loses no confirmed message and no waiting retry, and
/// clients given every node's URL move to another node.
///
/// Only with `BIS_TEST_CLUSTER=1` (ops/test-cluster sets it, with
/// `BIS_TEST_AMQP_URL` the comma-separated URLs of the nodes); `ops/test`
/// keeps to the single node. Serialized, and every test ends with all nodes
/// running again.
@Suite(.serialized, .restartsBroker, .enabled(if: ClusterBroker.enabled, "needs a three-node cluster: run ops/test-cluster"))
struct ClusterBrokerTests {
    /// Publish N persistent messages with confirms, SIGKILL the node that
    /// leads the queue, consume: every confirmed message arrives.
    @Test func everyConfirmedMessageSurvivesTheKillOfTheLeadersNode() async throws {
        try await ClusterBroker.allNodesUp()
        let urls = try ClusterBroker.urls()
        var config = try AMQPConfiguration(url: urls)
        config.reconnect = ReconnectPolicy(initialDelay: 0.2, maxDelay: 1, maxAttempts: 300)
        config.resendUnconfirmed = true
        let amqp = try await AMQPConnection.connect(config)
        let queue = TestBroker.uniqueName("cluster-confirm")
        try await amqp.declare(.queue(QueueSpec(queue).replicated()))

        let n = 3000
        try await withThrowingTaskGroup(of: Void.self) { group in
            for i in 0..<n {
                group.addTask {
                    var m = OutgoingMessage(body: Array(String(i).utf8))
                    m.persistent = true
                    try await amqp.publish(m, exchange: "", routingKey: queue)
                }
                if i % 500 == 499 { try await group.waitForAll() }
            }
            try await group.waitForAll()
        }

        let leader = try await ClusterBroker.leader(of: queue)
        let t0 = monotonicSeconds()
        try await ClusterBroker.control(["kill-node", "\(leader)"])

        // A fresh client, given every node and starting at the dead one,
        // goes on to the next node of the list.
        var readerConfig = config
        readerConfig.startPosition = leader - 1
        let reader = try await AMQPConnection.connect(readerConfig)
        let consumer = try await reader.consume(queue: queue, prefetch: 500)
        let got = try await withTimeout(120, "consuming \(n) confirmed messages after the kill") {
            var got = Set<Int>()
            for try await d in consumer {
                got.insert(Int(d.text)!)
                try await d.ack()
                if got.count == n { break }
            }
            return got
        }
        let failover = monotonicSeconds() - t0
        print("cluster: \(n) confirmed messages all consumed \(String(format: "%.1f", failover)) s after killing node \(leader)")
        #expect(got.count == n, "confirmed but lost: \(n - got.count) of \(n)")
        #expect(reader.node == ClusterBroker.nodeAddress(leader % 3 + 1), "started at the dead node \(leader)")
        try await ClusterBroker.control(["start-node", "\(leader)"])
        try? await reader.deleteQueue(queue)
        await reader.close()
        await amqp.close()
    }

    /// Issue 16's failover defect: a channel whose first publish to a quorum
    /// queue comes right after the node of the queue's leader was killed got
    /// a nack on every publish for 30 s or more (RabbitMQ 3.10). The client
    /// (on a live node, publishes failing rather than sent again on a lost
    /// connection) sends a nacked publish again on a new channel: every
    /// publish is confirmed, and each arrives.
    @Test func publishesRightAfterTheLeadersNodeIsKilledAreAllConfirmed() async throws {
        try await ClusterBroker.allNodesUp()
        let urls = try ClusterBroker.urls()
        var setup = try AMQPConfiguration(url: urls)
        setup.startPosition = 0
        let admin = try await AMQPConnection.connect(setup)
        let queue = TestBroker.uniqueName("cluster-nack")
        try await admin.declare(.queue(QueueSpec(queue).replicated()))
        await admin.close()
        let leader = try await ClusterBroker.leader(of: queue)

        // A client on another node that has not published to the queue yet.
        var config = try AMQPConfiguration(url: urls)
        config.startPosition = leader % 3          // node leader % 3 + 1
        config.reconnect = ReconnectPolicy(initialDelay: 0.2, maxDelay: 1, maxAttempts: 300)
        config.resendUnconfirmed = false
        let amqp = try await AMQPConnection.connect(config)
        #expect(amqp.node == ClusterBroker.nodeAddress(leader % 3 + 1))
        try await amqp.declare(.queue(QueueSpec(queue).replicated()))

        try await ClusterBroker.control(["kill-node", "\(leader)"])
        let t0 = monotonicSeconds()
        let n = 20
        var failures: [String] = []
        for i in 0..<n {
            do {
                try await withTimeout(60, "the confirm of publish \(i)") {
                    try await amqp.publish(OutgoingMessage(String(i)), exchange: "", routingKey: queue)
                }
            } catch {
                failures.append("\(i): \(error)")
            }
        }
        print("cluster: \(n) publishes after killing the leader's node \(leader): \(n - failures.count) confirmed in "
              + "\(String(format: "%.1f", monotonicSeconds() - t0)) s, connection on \(amqp.node ?? "?")")
        #expect(failures.isEmpty, "publishes not confirmed after the kill: \(failures)")
        let confirmed = n - failures.count

        let consumer = try await amqp.consume(queue: queue, prefetch: 50)
        let got: Set<String> = confirmed == 0 ? [] : try await withTimeout(120, "consuming the confirmed publishes") {
            var got = Set<String>()
            for try await d in consumer {
                got.insert(d.text)
                try await d.ack()
                if got.count == confirmed { break }
            }
            return got
        }
        #expect(got.count == confirmed)
        try await ClusterBroker.control(["start-node", "\(leader)"])
        try? await amqp.deleteQueue(queue)
        await amqp.close()
    }

    /// A client connected to a node that dies moves to the next one and
    /// carries on: its consumer is reopened there, its publishes go on.
    @Test func aClientMovesToAnotherNodeWhenItsNodeDies() async throws {
        try await ClusterBroker.allNodesUp()
        var config = try AMQPConfiguration(url: try ClusterBroker.urls())
        config.reconnect = ReconnectPolicy(initialDelay: 0.2, maxDelay: 1, maxAttempts: 300)
        config.resendUnconfirmed = true
        config.heartbeat = 5
        let amqp = try await AMQPConnection.connect(config)
        let queue = TestBroker.uniqueName("cluster-move")
        try await amqp.declare(.queue(QueueSpec(queue).replicated()))
        let consumer = try await amqp.consume(queue: queue, prefetch: 10)
        try await amqp.publish(OutgoingMessage("before"), exchange: "", routingKey: queue)
        let first = try #require(try await take(1, from: consumer).first)
        #expect(first.text == "before")
        try await first.ack()

        let node = try #require(amqp.node)
        let number = try #require(ClusterBroker.nodeNumber(address: node), "\(node) is none of the cluster's nodes")
        let t0 = monotonicSeconds()
        try await ClusterBroker.control(["kill-node", "\(number)"])
        try await amqp.publish(OutgoingMessage("after"), exchange: "", routingKey: queue)
        // The ack of "before" may not have reached the queue's leader before
        // the kill: then "before" comes back, redelivered, first. Skip it.
        var second = try #require(try await take(1, from: consumer, within: 120).first)
        while second.text == "before" {
            #expect(second.redelivered, "\"before\" again, not marked redelivered")
            try await second.ack()
            second = try #require(try await take(1, from: consumer, within: 120).first)
        }
        print("cluster: client moved from node \(number) to \(amqp.node ?? "?") in \(String(format: "%.1f", monotonicSeconds() - t0)) s")
        #expect(second.text == "after")
        try await second.ack()
        #expect(amqp.reconnects >= 1)
        #expect(amqp.node != nil && amqp.node != node)
        try await ClusterBroker.control(["start-node", "\(number)"])
        try? await amqp.deleteQueue(queue)
        await amqp.close()
    }

    /// A retry waiting in a delay queue whose leader is on the node killed
    /// meanwhile still reaches its stage queue when its delay ends.
    @Test func aRetryWaitingOnTheKilledNodeStillArrives() async throws {
        try await ClusterBroker.allNodesUp()
        let key = FleetKey.random()
        let namespace = "tcl" + String(UInt32.random(in: 0...UInt32.max), radix: 16)
        let transport = try await AMQPTransport.connect(url: try ClusterBroker.urls(), key: key, namespace: namespace,
                                                        heartbeat: 5, resendUnconfirmed: true)
        let delay = 8000   // the 8 s bucket
        let delayQueue = transport.delayName(try #require(AMQPTransport.delayBucket(for: delay)))
        let leader = try await ClusterBroker.leader(of: delayQueue)
        let task = TaskMessage(run: "cluster-retry", stage: .noop, index: 0, attempt: 2, spec: nil)
        try await transport.publishTask(task, delayMilliseconds: delay)
        try await ClusterBroker.control(["kill-node", "\(leader)"])
        let deliveries = try await transport.taskDeliveries(stages: [.noop], prefetch: 1)
        let got = try await withTimeout(120, "the delayed retry") { () -> InboundTask? in
            for try await d in deliveries { return d }
            return nil
        }
        #expect(got?.task?.run == "cluster-retry" && got?.task?.attempt == 2, "\(String(describing: got?.task))")
        try await got?.ack()
        try await ClusterBroker.control(["start-node", "\(leader)"])
        await transport.deleteQueues()
        await transport.close()
    }

    /// Declarations with the replication arguments pass on a queue that an
    /// older version declared without them (kept as it is).
    @Test func aQueueDeclaredWithoutReplicationArgumentsIsKept() async throws {
        var config = try AMQPConfiguration(url: try ClusterBroker.urls())
        config.startPosition = 0
        let amqp = try await AMQPConnection.connect(config)
        let queue = TestBroker.uniqueName("cluster-legacy")
        try await amqp.declare(.queue(.work(queue, deliveryLimit: 5, deadLetterExchange: "x")))
        try await amqp.publish(OutgoingMessage("kept"), exchange: "", routingKey: queue)
        try await amqp.declare(.queue(.work(queue, deliveryLimit: 5, deadLetterExchange: "x").replicated()))
        #expect(try await amqp.messageCount(queue: queue) == 1)
        try await amqp.deleteQueue(queue)
        await amqp.close()
    }

    /// The fallback keeps only a queue that differs by the replication
    /// arguments: a real mismatch (another delivery limit) is still the
    /// broker's 406, naming the argument.
    @Test func aRealArgumentMismatchStillFails() async throws {
        var config = try AMQPConfiguration(url: try ClusterBroker.urls())
        config.startPosition = 0
        let amqp = try await AMQPConnection.connect(config)
        let queue = TestBroker.uniqueName("cluster-mismatch")
        try await amqp.declare(.queue(.work(queue, deliveryLimit: 5, deadLetterExchange: "x")))
        do {
            try await amqp.declare(.queue(.work(queue, deliveryLimit: 6, deadLetterExchange: "x").replicated()))
            Issue.record("a declaration with another x-delivery-limit passed")
        } catch let error as AMQPError {
            guard case .server(_, let code, let text) = error else { Issue.record("expected a 406, got \(error)"); return }
            #expect(code == 406)
            #expect(text.contains("x-delivery-limit"), "\(text)")
        }
        let cleanup = try await AMQPConnection.connect(config)
        try? await cleanup.deleteQueue(queue)
        await cleanup.close()
        await amqp.close()
    }

    /// TLS checks each node's own host name: node 1 given as 127.0.0.1 (the
    /// certificate ops/broker makes names localhost as its DNS name, and
    /// rabbitmq-c matches DNS names only) fails the check; the client goes
    /// on to node 2 given as localhost.
    @Test func tlsVerifiesEachNodesOwnHostName() async throws {
        let env = TestBroker.environment
        let tls = try AMQPURL(try #require(env["BIS_TEST_AMQPS_URL"], "BIS_TEST_AMQPS_URL is not set: run ops/test-cluster"))
        let caFile = try #require(env["BIS_TEST_CA_FILE"], "BIS_TEST_CA_FILE is not set: run ops/test-cluster")
        let user = "\(tls.user):\(tls.password)"
        // ops/broker spaces the nodes' ports by 10.
        let list = "amqps://\(user)@127.0.0.1:\(tls.port)/%2F,amqps://\(user)@localhost:\(tls.port + 10)/%2F"
        var config = try AMQPConfiguration(url: list)
        config.tls = TLSOptions(caFile: caFile)
        config.startPosition = 0
        let amqp = try await AMQPConnection.connect(config)
        #expect(amqp.node == "localhost:\(tls.port + 10)")
        await amqp.close()
    }
}

/// The cluster `ops/broker start --nodes 3` runs.
enum ClusterBroker {
    static var enabled: Bool { TestBroker.environment["BIS_TEST_CLUSTER"] == "1" }

    static func urls() throws -> String {
        guard let list = TestBroker.urlString, list.contains(",") else {
            throw TestBroker.Missing(variable: "BIS_TEST_AMQP_URL (the cluster's URLs, comma-separated)")
        }
        return list
    }

    /// `host:port` of node `n` (1-based), as `AMQPConnection.node` names it.
    static func nodeAddress(_ n: Int) -> String? {
        guard let list = try? AMQPURL.list(try urls()), (1...list.count).contains(n) else { return nil }
        return list[n - 1].node
    }

    static func nodeNumber(address: String) -> Int? {
        guard let list = try? AMQPURL.list(try urls()) else { return nil }
        return list.firstIndex { $0.node == address }.map { $0 + 1 }
    }

    /// `ops/broker ARGS`, retried once (a loaded machine makes rabbitmqctl slow).
    @discardableResult
    static func control(_ arguments: [String]) async throws -> String {
        do { return try await TestBroker.control(arguments) } catch {
            try await Task.sleep(for: .seconds(1))
            return try await TestBroker.control(arguments)
        }
    }

    /// Every node running (starts those a failed test left down).
    static func allNodesUp() async throws {
        try await control(["start", "--nodes", "3"])
    }

    /// The node number (1…) that leads a quorum queue, asked of any live node.
    static func leader(of queue: String) async throws -> Int {
        var last: Error = TimedOut(what: "no node answered list_queues")
        for n in 1...3 {
            do {
                let out = try await TestBroker.control(["ctl-node", "\(n)", "list_queues", "name", "leader", "--quiet", "--no-table-headers"])
                for line in out.split(separator: "\n") {
                    let cols = line.split(whereSeparator: { $0 == "\t" || $0 == " " })
                    guard cols.count >= 2, cols[0] == queue else { continue }
                    // bis-<hash>-N@localhost
                    if let at = cols[1].firstIndex(of: "@"), let dash = cols[1][..<at].lastIndex(of: "-"),
                       let number = Int(cols[1][cols[1].index(after: dash)..<at]) {
                        return number
                    }
                }
                last = TimedOut(what: "queue \(queue) is not in list_queues:\n\(out)")
            } catch {
                last = error
            }
        }
        throw last
    }
}
