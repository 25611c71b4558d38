/// Exchanges, queues and bindings. The connection remembers every declaration
/// that succeeded and declares it again after a reconnect.
public enum Declaration: Sendable, Equatable {
    case exchange(ExchangeSpec)
    case queue(QueueSpec)
    case binding(BindingSpec)
}

public struct ExchangeSpec: Sendable, Equatable {
    public enum Kind: String, Sendable { case direct, topic, fanout, headers }
    public var name: String
    public var kind: Kind
    public var durable: Bool
    public init(_ name: String, kind: Kind = .direct, durable: Bool = true) {
        self.name = name
        self.kind = kind
        self.durable = durable
    }
}

/// A queue. Quorum queues are always durable; `deliveryLimit` counts returns
/// (nack/reject with requeue, a consumer's channel closing): past it the
/// message is dead-lettered, so it is delivered `limit + 1` times at most.
public struct QueueSpec: Sendable, Equatable {
    public enum Kind: String, Sendable { case quorum, classic }
    public var name: String
    public var kind: Kind
    public var durable: Bool
    public var deliveryLimit: Int?
    public var deadLetterExchange: String?
    public var deadLetterRoutingKey: String?
    /// At-least-once dead-lettering (quorum only; implies `x-overflow=reject-publish`).
    public var atLeastOnceDeadLettering: Bool
    /// Per-queue message TTL in milliseconds.
    public var messageTTL: Int?
    /// Quorum only: how many nodes hold a replica when the queue is created
    /// (`x-quorum-initial-group-size`). RabbitMQ takes the smaller of this and
    /// the cluster's size, so 3 is fine on a single node.
    public var initialGroupSize: Int?
    /// Quorum only: where the leader goes when the queue is created
    /// (`x-queue-leader-locator`: `balanced` or `client-local`).
    public var leaderLocator: String?
    /// `x-max-length` with `x-overflow: reject-publish`: a publish past it is
    /// nacked (what a full delay queue answers; a quorum queue lets one more in).
    public var maxLength: Int? = nil

    public init(_ name: String, kind: Kind = .quorum, durable: Bool = true, deliveryLimit: Int? = nil,
                deadLetterExchange: String? = nil, deadLetterRoutingKey: String? = nil,
                atLeastOnceDeadLettering: Bool = false, messageTTL: Int? = nil) {
        self.name = name
        self.kind = kind
        self.durable = kind == .quorum ? true : durable
        self.deliveryLimit = deliveryLimit
        self.deadLetterExchange = deadLetterExchange
        self.deadLetterRoutingKey = deadLetterRoutingKey
        self.atLeastOnceDeadLettering = atLeastOnceDeadLettering
        self.messageTTL = messageTTL
    }

    /// The same queue replicated: `initialGroupSize` replicas, leaders
    /// spread over the nodes (`balanced`). Quorum queues only.
    public func replicated(_ groupSize: Int = 3, leaderLocator: String = "balanced") -> QueueSpec {
        guard kind == .quorum else { return self }
        var q = self
        q.initialGroupSize = groupSize
        q.leaderLocator = leaderLocator
        return q
    }

    /// Without the arguments that only matter when a queue is created
    /// (group size, leader locator): what a queue declared before they
    /// existed carries. RabbitMQ checks them for equivalence all the same,
    /// so an existing queue is declared again in this form.
    public var withoutCreationArguments: QueueSpec {
        var q = self
        q.initialGroupSize = nil
        q.leaderLocator = nil
        return q
    }

    /// Whether `text` (a 406 reply) complains only about a creation argument.
    static func isCreationArgumentMismatch(_ text: String) -> Bool {
        text.contains("inequivalent arg 'x-quorum-initial-group-size'") || text.contains("inequivalent arg 'x-queue-leader-locator'")
    }

    /// A work queue: quorum, a delivery limit, and at-least-once
    /// dead-lettering to `deadLetterExchange` past the limit.
    public static func work(_ name: String, deliveryLimit: Int, deadLetterExchange: String,
                            deadLetterRoutingKey: String? = nil) -> QueueSpec {
        QueueSpec(name, kind: .quorum, deliveryLimit: deliveryLimit, deadLetterExchange: deadLetterExchange,
                  deadLetterRoutingKey: deadLetterRoutingKey, atLeastOnceDeadLettering: true)
    }

    /// A delay queue for retries with backoff: nobody consumes it; messages
    /// wait `delayMilliseconds`, then are dead-lettered to `targetExchange`
    /// (with their original routing key unless `targetRoutingKey` is set).
    public static func delay(_ name: String, delayMilliseconds: Int, targetExchange: String,
                             targetRoutingKey: String? = nil) -> QueueSpec {
        QueueSpec(name, kind: .quorum, deadLetterExchange: targetExchange, deadLetterRoutingKey: targetRoutingKey,
                  atLeastOnceDeadLettering: true, messageTTL: delayMilliseconds)
    }

    /// The `x-…` arguments this spec declares.
    var arguments: [(String, HeaderValue)] {
        var args: [(String, HeaderValue)] = []
        if kind == .quorum { args.append(("x-queue-type", .string("quorum"))) }
        if let v = deliveryLimit { args.append(("x-delivery-limit", .int(Int64(v)))) }
        if let v = deadLetterExchange { args.append(("x-dead-letter-exchange", .string(v))) }
        if let v = deadLetterRoutingKey { args.append(("x-dead-letter-routing-key", .string(v))) }
        if atLeastOnceDeadLettering {
            args.append(("x-dead-letter-strategy", .string("at-least-once")))
        }
        if atLeastOnceDeadLettering || maxLength != nil { args.append(("x-overflow", .string("reject-publish"))) }
        if let v = maxLength { args.append(("x-max-length", .int(Int64(v)))) }
        if let v = messageTTL { args.append(("x-message-ttl", .int(Int64(v)))) }
        if let v = initialGroupSize { args.append(("x-quorum-initial-group-size", .int(Int64(v)))) }
        if let v = leaderLocator { args.append(("x-queue-leader-locator", .string(v))) }
        return args
    }
}

public struct BindingSpec: Sendable, Equatable {
    public var queue: String
    public var exchange: String
    public var routingKey: String
    public init(queue: String, exchange: String, routingKey: String) {
        self.queue = queue
        self.exchange = exchange
        self.routingKey = routingKey
    }
}
