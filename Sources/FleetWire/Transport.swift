import Foundation

/// How the coordinator and workers exchange messages. Two implementations:
/// AMQP over RabbitMQ (`FleetAMQP.AMQPTransport`, the fleet) and
/// `InMemoryTransport` (`bis run --local` and unit tests).
///
/// Both sign every message they send (task messages, events, heartbeats)
/// with the fleet key (`FleetKey`, HMAC-SHA256 over the body as sent) and
/// verify it on receipt, before decoding: a worker is never handed a task
/// message, nor the coordinator an event or heartbeat, whose MAC is missing
/// or wrong. A worker's transport dead-letters such a task message; the
/// coordinator's inbox hands it and any such event on as
/// `InboundEvent.Body.rejected`.
///
/// Semantics both keep, because the commit protocol relies on them:
/// - every `publish…` returns only once the message is safely queued (a broker
///   confirm); a throw means it may or may not have been queued;
/// - a delivery is settled once: `ack` removes it, `nack(requeue: true)`
///   returns it (counting toward the stage queue's delivery limit),
///   `nack(requeue: false)` dead-letters it;
/// - a delivery left unsettled when its consumer goes away (a worker killed)
///   is delivered again, with a higher `deliveryCount`;
/// - past the delivery limit a task message is dead-lettered and reaches the
///   coordinator as `InboundEvent.Body.deadLetter`.
public protocol FleetTransport: Sendable {
    /// Coordinator: queue a task on its stage's queue, after `delayMilliseconds`
    /// (retries with backoff go through delay queues).
    func publishTask(_ task: TaskMessage, delayMilliseconds: Int) async throws

    /// Coordinator: the same with the message already in its wire form
    /// (the outbox keeps it so); `attempt` is the one the body carries.
    func publishEncodedTask(_ body: [UInt8], stage: Stage, taskID: String, attempt: Int, delayMilliseconds: Int) async throws

    /// Coordinator: results, heartbeats and dead letters, in arrival order.
    /// Ack each once it is committed to the store.
    func coordinatorInbox(prefetch: Int) async throws -> AsyncThrowingStream<InboundEvent, Error>

    /// Worker: task deliveries from these stages' queues, at most `prefetch`
    /// unsettled at once.
    func taskDeliveries(stages: [Stage], prefetch: Int) async throws -> AsyncThrowingStream<InboundTask, Error>

    /// Worker: report an execution (confirmed before it returns).
    func publishEvent(_ event: TaskEvent) async throws

    /// Worker: report liveness (may be dropped when nobody listens).
    func publishHeartbeat(_ beat: WorkerHeartbeat) async throws

    /// Ready messages per stage queue (for status and /metrics); missing
    /// stages are unknown.
    func queueDepths() async -> [Stage: Int]

    func close() async

    /// The broker node (`host:port`) the connection is on now; nil when
    /// unknown or reconnecting.
    var brokerNode: String? { get }

    /// How many times the broker connection was re-established since start.
    var brokerReconnects: Int { get }
}

extension FleetTransport {
    public var brokerNode: String? { nil }
    public var brokerReconnects: Int { 0 }

    public func publishEncodedTask(_ body: [UInt8], stage: Stage, taskID: String, attempt: Int, delayMilliseconds: Int) async throws {
        try await publishTask(try WireCoding.decode(TaskMessage.self, from: body), delayMilliseconds: delayMilliseconds)
    }
}

/// One task delivery to a worker. Settle exactly once.
public struct InboundTask: Sendable {
    /// nil when the body was not a task message (`decodeError` says why);
    /// reject such a delivery without requeue.
    public let task: TaskMessage?
    public let decodeError: String?
    /// Deliveries of this message before this one (0 the first time).
    public let deliveryCount: Int
    private let settle: @Sendable (Settlement) async throws -> Void

    public enum Settlement: Sendable, Equatable {
        case ack
        case nack(requeue: Bool)
    }

    public init(task: TaskMessage?, decodeError: String? = nil, deliveryCount: Int,
                settle: @escaping @Sendable (Settlement) async throws -> Void) {
        self.task = task
        self.decodeError = decodeError
        self.deliveryCount = deliveryCount
        self.settle = settle
    }

    public func ack() async throws { try await settle(.ack) }
    public func nack(requeue: Bool) async throws { try await settle(.nack(requeue: requeue)) }
}

/// One message to the coordinator. Ack it after committing what it says.
public struct InboundEvent: Sendable {
    public enum Body: Sendable {
        case event(TaskEvent)
        case heartbeat(WorkerHeartbeat)
        /// A task message the stage queue gave up on after its delivery
        /// limit (a worker crashing on it each time), or that a worker
        /// rejected as unreadable.
        case deadLetter(TaskMessage, reason: String)
        /// A body that could not be decoded; ack and log it.
        case unreadable(String)
        /// A message refused unread: its MAC is missing or wrong (or a task
        /// message a worker refused so came back dead-lettered). Count and
        /// log it, then ack: acking moves it to the transport's rejected
        /// messages (AMQP: the `<ns>.rejected` queue), kept for inspection.
        case rejected(MessageRejection)
    }
    public let body: Body
    private let settle: @Sendable () async throws -> Void

    public init(body: Body, ack: @escaping @Sendable () async throws -> Void) {
        self.body = body
        self.settle = ack
    }

    public func ack() async throws { try await settle() }
}
