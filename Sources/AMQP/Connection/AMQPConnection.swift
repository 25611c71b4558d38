import Logging

/// A connection to RabbitMQ, safe to use from any task.
///
/// ```swift
/// let amqp = try await AMQPConnection.connect(AMQPConfiguration(url: "amqp://bis:bis@127.0.0.1:5682/%2F"))
/// try await amqp.declare(.queue(.work("bis.stage.ingest", deliveryLimit: 5, deadLetterExchange: "bis.dead")))
/// try await amqp.publish(OutgoingMessage("hello"), exchange: "", routingKey: "bis.stage.ingest")
/// for try await delivery in try await amqp.consume(queue: "bis.stage.ingest", prefetch: 10) {
///     try await delivery.ack()
/// }
/// ```
///
/// A dedicated thread owns the underlying rabbitmq-c connection (see
/// `IOLoop`); this type only hands it commands. After a broker restart or a
/// dropped socket it reconnects by itself, declares again what was declared and
/// reopens consumers; deliveries from the old connection can no longer be
/// settled (`AMQPError.staleDelivery`), the broker redelivers them.
public final class AMQPConnection: Sendable {
    let loop: IOLoop

    private init(loop: IOLoop) { self.loop = loop }

    /// Opens a connection. Fails at once if the broker cannot be reached or
    /// refuses the login; only later losses are retried.
    public static func connect(_ configuration: AMQPConfiguration,
                               logger: Logger = Logger(label: "bis.amqp")) async throws -> AMQPConnection {
        try configuration.validate()
        let loop = IOLoop(config: configuration, logger: logger)
        try await loop.start()
        return AMQPConnection(loop: loop)
    }

    /// Declares an exchange, queue or binding, and remembers it for reconnects.
    public func declare(_ declaration: Declaration) async throws {
        try await withCheckedThrowingContinuation { cont in
            loop.submit(.declare(declaration, cont))
        }
    }

    public func declare(_ declarations: [Declaration]) async throws {
        for d in declarations { try await declare(d) }
    }

    /// Publishes and returns once the broker has confirmed the message
    /// (persistent messages: after it reached disk). Throws `unroutable` for a
    /// mandatory message no queue took, `publishNacked` when the broker refused
    /// it (after `nackResends` tries on new channels), `connectionLostBeforeConfirm` when the connection broke first
    /// (unless `resendUnconfirmed` is set). Many publishes may be in flight at
    /// once, up to `confirmWindow`: call from many tasks to go fast.
    public func publish(_ message: OutgoingMessage, exchange: String, routingKey: String,
                        mandatory: Bool = false) async throws {
        try await withCheckedThrowingContinuation { cont in
            loop.submit(.publish(.init(exchange: exchange, routingKey: routingKey, mandatory: mandatory,
                                       message: message, continuation: cont)))
        }
    }

    /// Starts a consumer with manual acknowledgement. Returns once the broker
    /// accepted it (a missing queue throws 404 here). Each delivery must be
    /// acked, nacked or rejected; at most `prefetch` are unsettled at a time.
    /// Ending the iteration cancels the consumer.
    public func consume(queue: String, prefetch: Int = 10) async throws -> Consumer {
        let tag = "bis-\(queue)-\(UInt64.random(in: 0...UInt64.max) & 0xffff_ffff)"
        let (stream, continuation) = AsyncThrowingStream<Delivery, Error>.makeStream()
        let state = IOLoop.ConsumerState(tag: tag, queue: queue, prefetch: prefetch, continuation: continuation)
        let loop = self.loop
        continuation.onTermination = { @Sendable _ in loop.submit(.cancel(tag: tag)) }
        try await withCheckedThrowingContinuation { cont in
            loop.submit(.consume(state, cont))
        }
        return Consumer(stream: stream, tag: tag, loop: loop)
    }

    /// Ready messages in a queue (not counting unacknowledged ones), nil when
    /// the queue does not exist.
    public func messageCount(queue: String) async throws -> Int? {
        try await withCheckedThrowingContinuation { cont in
            loop.submit(.inspect(queue: queue, cont))
        }.map(Int.init)
    }

    public func purge(queue: String) async throws {
        try await withCheckedThrowingContinuation { cont in loop.submit(.purge(queue: queue, cont)) }
    }

    public func deleteQueue(_ queue: String) async throws {
        try await withCheckedThrowingContinuation { cont in loop.submit(.deleteQueue(queue, cont)) }
    }

    /// How many times the connection was re-established after a loss.
    public var reconnects: Int { loop.reconnects }

    /// Nacks received so far that will be (or were) answered by sending the
    /// publish again (see `AMQPConfiguration.nackResends`); final nacks,
    /// thrown as `publishNacked`, are not counted.
    public var nacksToResend: Int { loop.nacksToResend }

    /// How many times the publish channel was retired for a new one after a
    /// nack (on this connection and the ones it reconnected to).
    public var publishChannelSwitches: Int { loop.publishChannelSwitches }

    /// The node (`host:port` of one of the configured URLs) the connection is
    /// on now; nil while it is down and reconnecting.
    public var node: String? { loop.connectedNode }

    /// Waits (at most 5 s) for outstanding confirms, cancels consumers, closes
    /// the connection and stops its thread. Later calls throw `closed`.
    public func close() async {
        await withCheckedContinuation { cont in loop.submit(.close(cont)) }
    }
}

/// The deliveries of one consumer, in order.
public struct Consumer: AsyncSequence, Sendable {
    public typealias Element = Delivery
    let stream: AsyncThrowingStream<Delivery, Error>
    let tag: String
    let loop: IOLoop

    public func makeAsyncIterator() -> AsyncThrowingStream<Delivery, Error>.AsyncIterator {
        stream.makeAsyncIterator()
    }

    /// Stops the consumer; unsettled deliveries stay settleable until the
    /// connection or channel goes away.
    public func cancel() { loop.submit(.cancel(tag: tag)) }
}

/// One received message. Settle it exactly once with `ack`, `nack` or `reject`.
public struct Delivery: Sendable {
    public let body: [UInt8]
    public let exchange: String
    public let routingKey: String
    /// The broker delivered it before (to this or another consumer).
    public let redelivered: Bool
    public let deliveryTag: UInt64
    public let properties: MessageProperties
    let generation: UInt64
    let loop: IOLoop

    /// How many times a quorum queue returned this message before this
    /// delivery (its `x-delivery-count` header): 0 on the first delivery.
    public var deliveryCount: Int {
        properties.headers["x-delivery-count"]?.intValue.map { Int($0) } ?? 0
    }

    public var text: String { String(decoding: body, as: UTF8.self) }

    public func ack() async throws {
        try await settle(.ack)
    }

    /// Returns the message: to the queue when `requeue` (counting toward a
    /// quorum queue's delivery limit), else to its dead-letter exchange.
    public func nack(requeue: Bool = true) async throws {
        try await settle(.nack(requeue: requeue))
    }

    public func reject(requeue: Bool = false) async throws {
        try await settle(.reject(requeue: requeue))
    }

    private func settle(_ kind: IOLoop.Settlement) async throws {
        try await withCheckedThrowingContinuation { cont in
            loop.submit(.settle(kind, generation: generation, tag: deliveryTag, cont))
        }
    }
}
