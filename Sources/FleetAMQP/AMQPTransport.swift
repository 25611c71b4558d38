import AMQP
import FleetWire
import Foundation
import Logging

/// The fleet's transport over RabbitMQ (3.10+).
///
/// Topology, declared on connect and declared again by the AMQP module after
/// every reconnect (`<ns>` is the namespace, `bis` by default):
///
/// | name | what |
/// |---|---|
/// | exchange `<ns>.tasks` (direct) | task messages, routing key = stage |
/// | quorum queue `<ns>.stage.<stage>` | one per stage and `noop`, bound by the stage name; `x-delivery-limit` = the policy's; past it dead-lettered at-least-once to `<ns>.dead` |
/// | exchange + quorum queue `<ns>.dead` (fanout) | task messages a stage queue gave up on, or that a worker rejected |
/// | exchange + quorum queue `<ns>.events` (fanout) | results and heartbeats, told apart by the `bis-kind` header |
/// | exchange + quorum queue `<ns>.delay.<ms>` (fanout) | retries with backoff: a message waits `<ms>` (`x-message-ttl`) and is dead-lettered to `<ns>.tasks` with its routing key (its stage) |
/// | exchange + quorum queue `<ns>.rejected` (fanout) | messages refused for a missing or wrong MAC, with `bis-rejected-reason` and `bis-rejected-detail` headers; nobody consumes it (inspect and purge it by hand) |
///
/// Every message carries `bis-mac`: HMAC-SHA256 under the fleet key over
/// its body (`FleetKey`). A worker dead-letters a task message whose MAC is
/// missing or wrong without decoding it (nack without requeue); the
/// coordinator checks the MAC of everything it reads from `<ns>.events` and
/// `<ns>.dead` and moves what fails to `<ns>.rejected`, counting it.
///
/// Delays form a ladder 250 ms·2^k up to 64 s; a delay goes to the smallest
/// bucket at least as long (the longest for anything beyond).
///
/// Every queue is a quorum queue created with three replicas
/// (`x-quorum-initial-group-size` 3: RabbitMQ takes fewer on a smaller
/// cluster, one on a single node) and its leader placed by
/// `x-queue-leader-locator: balanced`, so a three-node cluster loses no
/// queue, and no message it confirmed, with one node. A queue declared by an
/// older version without those two arguments is kept as it is (see
/// `IOLoop.declareTolerant` and docs/fleet.md).
///
/// `url` may list several nodes, comma-separated: see `AMQPConfiguration.urls`.
///
/// Heartbeats are transient and expire after a minute, so they do not pile
/// up when no coordinator listens; task messages and events are persistent,
/// mandatory and confirmed before a publish returns.
public final class AMQPTransport: FleetTransport {
    public let namespace: String
    public let policy: RetryPolicy
    private let amqp: AMQPConnection
    private let logger: Logger
    private let key: FleetKey

    /// The delay buckets, in milliseconds.
    public static let delayLadder: [Int] = (0...8).map { 250 << $0 }
    /// How long an unread heartbeat stays in the events queue.
    public static let heartbeatExpirationMilliseconds = 60_000
    static let kindHeader = "bis-kind"
    static let macHeader = "bis-mac"
    static let rejectedReasonHeader = "bis-rejected-reason"
    static let rejectedDetailHeader = "bis-rejected-detail"

    private init(amqp: AMQPConnection, namespace: String, policy: RetryPolicy, key: FleetKey, logger: Logger) {
        self.amqp = amqp
        self.key = key
        self.namespace = namespace
        self.policy = policy
        self.logger = logger
    }

    /// Connects and declares the topology. Throws the AMQP module's error
    /// when the broker cannot be reached or refuses the login. `heartbeat`
    /// is the AMQP heartbeat in seconds (nil: the AMQP module's default; the
    /// lower non-zero value of client and broker wins): the broker drops a
    /// peer silent for about two intervals and redelivers its unacked tasks.
    /// `resendUnconfirmed`: a publish the connection lost before the broker
    /// confirmed it is sent again after the reconnect instead of failing
    /// (workers set it: their events may then arrive twice, which the
    /// coordinator's intake, idempotent by execution id, absorbs).
    /// `key`: the fleet key every message is signed and checked with.
    /// `password`, when given, replaces the URL's (see `BrokerSecrets`).
    public static func connect(url: String, key: FleetKey, namespace: String = "bis", policy: RetryPolicy = .standard,
                               tls: TLSOptions = .init(), connectionName: String = "bis-fleet", heartbeat: Int? = nil,
                               resendUnconfirmed: Bool = false, password: String? = nil,
                               logger: Logger = Logger(label: "bis.amqp")) async throws -> AMQPTransport {
        var config = try AMQPConfiguration(url: url)
        if let password { config.setPassword(password) }
        config.tls = tls
        if let heartbeat { config.heartbeat = heartbeat }
        config.resendUnconfirmed = resendUnconfirmed
        config.connectionName = connectionName
        let amqp = try await AMQPConnection.connect(config, logger: logger)
        let transport = AMQPTransport(amqp: amqp, namespace: namespace, policy: policy, key: key, logger: logger)
        do {
            try await amqp.declare(transport.topology)
        } catch {
            await amqp.close()
            throw error
        }
        return transport
    }

    // MARK: - Names

    public var tasksExchange: String { "\(namespace).tasks" }
    public var deadName: String { "\(namespace).dead" }
    public var eventsName: String { "\(namespace).events" }
    public var rejectedName: String { "\(namespace).rejected" }
    public func stageQueue(_ stage: Stage) -> String { "\(namespace).stage.\(stage.rawValue)" }
    public func delayName(_ milliseconds: Int) -> String { "\(namespace).delay.\(milliseconds)" }

    /// The smallest bucket of the ladder at least `milliseconds` long (the
    /// longest when none is); nil for no delay.
    public static func delayBucket(for milliseconds: Int) -> Int? {
        guard milliseconds > 0 else { return nil }
        return delayLadder.first { $0 >= milliseconds } ?? delayLadder.last!
    }

    var topology: [Declaration] {
        var d: [Declaration] = [
            .exchange(ExchangeSpec(tasksExchange, kind: .direct)),
            .exchange(ExchangeSpec(deadName, kind: .fanout)),
            .queue(QueueSpec(deadName).replicated()),
            .binding(BindingSpec(queue: deadName, exchange: deadName, routingKey: "")),
            .exchange(ExchangeSpec(eventsName, kind: .fanout)),
            .queue(QueueSpec(eventsName).replicated()),
            .binding(BindingSpec(queue: eventsName, exchange: eventsName, routingKey: "")),
            .exchange(ExchangeSpec(rejectedName, kind: .fanout)),
            .queue(QueueSpec(rejectedName).replicated()),
            .binding(BindingSpec(queue: rejectedName, exchange: rejectedName, routingKey: "")),
        ]
        for stage in Stage.allCases {
            d.append(.queue(.work(stageQueue(stage), deliveryLimit: policy.deliveryLimit, deadLetterExchange: deadName).replicated()))
            d.append(.binding(BindingSpec(queue: stageQueue(stage), exchange: tasksExchange, routingKey: stage.rawValue)))
        }
        for ms in Self.delayLadder {
            d.append(.exchange(ExchangeSpec(delayName(ms), kind: .fanout)))
            d.append(.queue(.delay(delayName(ms), delayMilliseconds: ms, targetExchange: tasksExchange).replicated()))
            d.append(.binding(BindingSpec(queue: delayName(ms), exchange: delayName(ms), routingKey: "")))
        }
        return d
    }

    // MARK: - FleetTransport

    public func publishTask(_ task: TaskMessage, delayMilliseconds: Int) async throws {
        try await publishEncodedTask(try WireCoding.encode(task), stage: task.stage, taskID: task.taskID, attempt: task.attempt,
                                     delayMilliseconds: delayMilliseconds)
    }

    public func publishEncodedTask(_ body: [UInt8], stage: Stage, taskID: String, attempt: Int, delayMilliseconds: Int) async throws {
        var message = OutgoingMessage(body: body, contentType: "application/json", messageID: "\(taskID)#\(attempt)",
                                      headers: [Self.macHeader: .string(key.mac(.task, body))])
        message.persistent = true
        // A delayed task goes through its bucket's fanout exchange, keeping
        // the stage as routing key for the dead-lettering back to the tasks.
        let exchange = Self.delayBucket(for: delayMilliseconds).map(delayName) ?? tasksExchange
        try await amqp.publish(message, exchange: exchange, routingKey: stage.rawValue, mandatory: true)
    }

    public func publishEvent(_ event: TaskEvent) async throws {
        let body = try WireCoding.encode(event)
        var message = OutgoingMessage(body: body, contentType: "application/json",
                                      messageID: event.execution + "." + event.kind.rawValue,
                                      headers: [Self.kindHeader: .string("event"), Self.macHeader: .string(key.mac(.event, body))])
        message.persistent = true
        try await amqp.publish(message, exchange: eventsName, routingKey: "", mandatory: true)
    }

    public func publishHeartbeat(_ beat: WorkerHeartbeat) async throws {
        let body = try WireCoding.encode(beat)
        var message = OutgoingMessage(body: body, contentType: "application/json",
                                      headers: [Self.kindHeader: .string("heartbeat"), Self.macHeader: .string(key.mac(.heartbeat, body))])
        message.persistent = false
        message.expirationMilliseconds = Self.heartbeatExpirationMilliseconds
        try await amqp.publish(message, exchange: eventsName, routingKey: "")
    }

    public func coordinatorInbox(prefetch: Int) async throws -> AsyncThrowingStream<InboundEvent, Error> {
        let events = try await amqp.consume(queue: eventsName, prefetch: prefetch)
        let dead = try await amqp.consume(queue: deadName, prefetch: prefetch)
        let (stream, continuation) = AsyncThrowingStream<InboundEvent, Error>.makeStream()
        let pumps = [
            Task { await Self.pump(events, into: continuation) { self.checked(event: $0) } },
            Task { await Self.pump(dead, into: continuation) { self.checked(dead: $0) } },
        ]
        continuation.onTermination = { _ in
            events.cancel()
            dead.cancel()
            pumps.forEach { $0.cancel() }
        }
        return stream
    }

    /// One consumer per stage queue, merged. Prefetch is per consumer in
    /// RabbitMQ: a worker listening to several stages may hold up to
    /// `prefetch` unsettled messages of each. `FleetWorker` passes its
    /// concurrency and pulls a delivery only when it has a free slot, so it
    /// starts no more than it can run; messages it holds unstarted (at most
    /// `prefetch` per extra stage) are handed back when it drains. Give
    /// workers fewer stages (`--stages`) to hold fewer.
    public func taskDeliveries(stages: [Stage], prefetch: Int) async throws -> AsyncThrowingStream<InboundTask, Error> {
        var consumers: [Consumer] = []
        do {
            for stage in stages { consumers.append(try await amqp.consume(queue: stageQueue(stage), prefetch: max(1, prefetch))) }
        } catch {
            consumers.forEach { $0.cancel() }
            throw error
        }
        let (stream, continuation) = AsyncThrowingStream<InboundTask, Error>.makeStream()
        let started = consumers
        let key = self.key
        let pumps = started.map { c in Task { await Self.pump(c, into: continuation) { Self.inbound(task: $0, key: key) } } }
        continuation.onTermination = { _ in
            started.forEach { $0.cancel() }
            pumps.forEach { $0.cancel() }
        }
        return stream
    }

    public func queueDepths() async -> [Stage: Int] {
        var depths: [Stage: Int] = [:]
        for stage in Stage.allCases {
            if let n = try? await amqp.messageCount(queue: stageQueue(stage)) { depths[stage] = n }
        }
        return depths
    }

    public func close() async { await amqp.close() }

    public var brokerNode: String? { amqp.node }
    public var brokerReconnects: Int { amqp.reconnects }

    /// Deletes every queue of the namespace (tests clean up with it).
    public func deleteQueues() async {
        let queues = [deadName, eventsName, rejectedName] + Stage.allCases.map(stageQueue) + Self.delayLadder.map(delayName)
        for q in queues { try? await amqp.deleteQueue(q) }
    }

    // MARK: - Decoding

    private static func pump<T: Sendable>(_ consumer: Consumer, into continuation: AsyncThrowingStream<T, Error>.Continuation,
                                          _ transform: @escaping @Sendable (Delivery) -> T) async {
        do {
            for try await delivery in consumer { continuation.yield(transform(delivery)) }
            continuation.finish()
        } catch {
            continuation.finish(throwing: error)
        }
    }

    /// A task delivery; one without a valid MAC is handed over without its
    /// content (the worker rejects it: dead-lettered, and the coordinator
    /// counts it when the dead letter arrives).
    static func inbound(task d: Delivery, key: FleetKey) -> InboundTask {
        let settle: @Sendable (InboundTask.Settlement) async throws -> Void = { s in
            switch s {
            case .ack: try await d.ack()
            case .nack(let requeue): try await d.nack(requeue: requeue)
            }
        }
        if let reason = key.verify(.task, d.body, mac: d.properties.headers[macHeader]?.stringValue).rejection {
            return InboundTask(task: nil, decodeError: "refused unread: \(reason.rawValue) (the fleet key's MAC)",
                               deliveryCount: d.deliveryCount, settle: settle)
        }
        do {
            return InboundTask(task: try WireCoding.decode(TaskMessage.self, from: d.body), deliveryCount: d.deliveryCount, settle: settle)
        } catch {
            return InboundTask(task: nil, decodeError: "not a task message: \(error)", deliveryCount: d.deliveryCount, settle: settle)
        }
    }

    /// An events-queue delivery, its MAC checked first.
    func checked(event d: Delivery) -> InboundEvent {
        let kind = d.properties.headers[Self.kindHeader]?.stringValue
        let purpose: FleetKey.Purpose = kind == "heartbeat" ? .heartbeat : .event
        if let reason = key.verify(purpose, d.body, mac: d.properties.headers[Self.macHeader]?.stringValue).rejection {
            return rejected(d, MessageRejection(reason, "a message of kind '\(kind ?? "none")' on \(eventsName)"))
        }
        return Self.inbound(event: d)
    }

    /// A dead letter, its MAC checked first: a task message a worker refused
    /// for its MAC comes back here and is refused again, counted.
    func checked(dead d: Delivery) -> InboundEvent {
        if let reason = key.verify(.task, d.body, mac: d.properties.headers[Self.macHeader]?.stringValue).rejection {
            let h = d.properties.headers
            let death = d.properties.deaths.first
            let from = Self.headerText(death?.queue ?? h["x-first-death-queue"]?.stringValue, or: "a stage queue")
            let why = Self.headerText(death?.reason ?? h["x-first-death-reason"]?.stringValue, or: "unknown")
            return rejected(d, MessageRejection(reason, "a task message dead-lettered from \(from) (\(why)), never executed"))
        }
        return Self.inbound(dead: d, deliveryLimit: policy.deliveryLimit)
    }

    /// `.rejected`, acked by moving it to `<ns>.rejected` with the reason.
    private func rejected(_ d: Delivery, _ r: MessageRejection) -> InboundEvent {
        let amqp = self.amqp
        let exchange = rejectedName
        return InboundEvent(body: .rejected(r)) {
            var headers = d.properties.headers
            headers[Self.rejectedReasonHeader] = .string(r.reason.rawValue)
            headers[Self.rejectedDetailHeader] = .string(r.detail)
            var message = OutgoingMessage(body: d.body, contentType: d.properties.contentType, messageID: d.properties.messageID,
                                          headers: headers)
            message.persistent = true
            try await amqp.publish(message, exchange: exchange, routingKey: "")
            try await d.ack()
        }
    }

    static func inbound(event d: Delivery) -> InboundEvent {
        let ack: @Sendable () async throws -> Void = { try await d.ack() }
        do {
            switch d.properties.headers[kindHeader]?.stringValue {
            case "heartbeat": return InboundEvent(body: .heartbeat(try WireCoding.decode(WorkerHeartbeat.self, from: d.body)), ack: ack)
            case "event": return InboundEvent(body: .event(try WireCoding.decode(TaskEvent.self, from: d.body)), ack: ack)
            case let other: return InboundEvent(body: .unreadable("a message of kind '\(other ?? "none")' on the events queue"), ack: ack)
            }
        } catch {
            return InboundEvent(body: .unreadable("\(error)"), ack: ack)
        }
    }

    /// A dead letter's reason, from the most recent entry of its `x-death`
    /// header (what brought it here): `delivery_limit` (its stage queue's
    /// delivery limit: the task was handed back limit + 1 times), `rejected`
    /// (a worker rejected it), `expired`. Only when there is no `x-death`
    /// (not RabbitMQ's dead-lettering) the `x-first-death-*` headers.
    /// `deliveryLimit`: the stage queues' (this transport declared them with
    /// it, and RabbitMQ refuses a declaration with another).
    static func inbound(dead d: Delivery, deliveryLimit: Int? = nil) -> InboundEvent {
        let ack: @Sendable () async throws -> Void = { try await d.ack() }
        let reason = deadLetterReason(d.properties, deliveryLimit: deliveryLimit)
        do {
            return InboundEvent(body: .deadLetter(try WireCoding.decode(TaskMessage.self, from: d.body), reason: reason), ack: ack)
        } catch {
            return InboundEvent(body: .unreadable("dead letter (\(reason)) that is not a task message: \(error)"), ack: ack)
        }
    }
}

extension AMQPTransport {
    /// A header's text as it goes into a reason: anyone may publish a dead
    /// letter's headers, so an empty one reads `fallback` and a long one is
    /// cut at 200 characters (`…` appended).
    static func headerText(_ text: String?, or fallback: String) -> String {
        guard let text, !text.isEmpty else { return fallback }
        return text.count > 200 ? String(text.prefix(200)) + "…" : text
    }

    /// See `inbound(dead:)`. Public for tests.
    public static func deadLetterReason(_ p: MessageProperties, deliveryLimit: Int? = nil) -> String {
        let raw: String
        let queue: String
        let from: String?
        if let last = p.deaths.first {
            raw = headerText(last.reason, or: "unknown")
            from = last.queue
        } else {
            raw = headerText(p.headers["x-first-death-reason"]?.stringValue, or: "unknown")
            from = p.headers["x-first-death-queue"]?.stringValue
        }
        queue = from.map { $0.isEmpty ? "" : " from \(headerText($0, or: ""))" } ?? ""
        switch raw {
        case "delivery_limit":
            // A quorum queue dead-letters a message on the return that takes
            // its count past the limit: limit + 1 returns (the dead letter
            // itself carries no count).
            let returns = deliveryLimit.map { $0 + 1 }
            let times = returns.map { " \($0) times" } ?? ""
            return "delivery_limit: delivery limit reached\(queue): the task was handed back\(times) without a result"
        case "rejected": return "rejected: a worker rejected the task\(queue)"
        default: return "\(raw)\(queue)"
        }
    }
}

extension AMQPTransport {
    /// Runs `connect` again, with a pause growing from 0.2 s to 2 s, until it
    /// succeeds or `seconds` have passed (then its last error): a process
    /// started while the broker restarts — systemd starting both, an operator
    /// restarting the broker — waits for it instead of exiting at once.
    public static func connecting(for seconds: Double, logger: Logger,
                                  _ connect: () async throws -> AMQPTransport) async throws -> AMQPTransport {
        let deadline = ContinuousClock.now + .milliseconds(Int(max(0, seconds) * 1000))
        var pause = 0.2
        var told = false
        while true {
            do {
                return try await connect()
            } catch {
                guard ContinuousClock.now + .milliseconds(Int(pause * 1000)) < deadline else { throw error }
                if !told {
                    logger.warning("the broker does not answer yet; trying again for up to \(Int(seconds)) s", metadata: ["error": "\(error)"])
                    told = true
                }
                try await Task.sleep(for: .milliseconds(Int(pause * 1000)))
                pause = min(2, pause * 2)
            }
        }
    }
}
