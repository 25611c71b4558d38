/// A value in a message's headers or a queue's arguments.
public enum HeaderValue: Sendable, Equatable {
    case string(String)
    case int(Int64)
    case bool(Bool)
    case double(Double)
    case bytes([UInt8])

    public var intValue: Int64? {
        if case let .int(v) = self { return v }
        return nil
    }

    public var stringValue: String? {
        if case let .string(v) = self { return v }
        return nil
    }
}

/// What the application publishes. Persistent by default.
public struct OutgoingMessage: Sendable {
    public var body: [UInt8]
    public var persistent: Bool = true
    public var contentType: String?
    public var messageID: String?
    public var correlationID: String?
    /// Per-message TTL in milliseconds (AMQP `expiration`).
    public var expirationMilliseconds: Int?
    public var headers: [String: HeaderValue] = [:]

    public init(body: [UInt8], contentType: String? = nil, messageID: String? = nil,
                headers: [String: HeaderValue] = [:]) {
        self.body = body
        self.contentType = contentType
        self.messageID = messageID
        self.headers = headers
    }

    public init(_ text: String, contentType: String? = "text/plain") {
        self.init(body: Array(text.utf8), contentType: contentType)
    }
}

/// Properties of a received message.
public struct MessageProperties: Sendable, Equatable {
    public var contentType: String?
    public var messageID: String?
    public var correlationID: String?
    public var persistent: Bool = false
    public var headers: [String: HeaderValue] = [:]
    /// A dead letter's `x-death` header (an array of tables, which `headers`
    /// leaves out): one entry per queue and reason it died from, the most
    /// recent first. Empty for a message never dead-lettered.
    public var deaths: [Death] = []
    public init() {}
}

/// One entry of RabbitMQ's `x-death` header.
public struct Death: Sendable, Equatable {
    /// `delivery_limit`, `rejected`, `expired`, `maxlen`.
    public var reason: String
    public var queue: String
    /// How many times the message died from this queue for this reason.
    public var count: Int
    public init(reason: String, queue: String, count: Int) {
        self.reason = reason
        self.queue = queue
        self.count = count
    }
}
