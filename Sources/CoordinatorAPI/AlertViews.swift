import FleetWire
import Foundation

/// One alert as `bis alerts` and `GET /api/alerts` show it (docs/alerts.md).
public struct AlertView: Codable, Sendable, Hashable {
    /// The idempotency key: run + event [+ task].
    public var key: String
    public var event: AlertEvent
    /// A resolution (a late run that finished) rather than the alert itself.
    public var resolved: Bool
    public var run: String?
    public var pipeline: String?
    public var task: String?
    /// The run's state when it was raised.
    public var state: String?
    public var message: String
    public var raisedAt: Date
    public var deliveries: [AlertDeliveryView]

    public init(key: String, event: AlertEvent, resolved: Bool, run: String?, pipeline: String?, task: String?, state: String?,
                message: String, raisedAt: Date, deliveries: [AlertDeliveryView]) {
        self.key = key
        self.event = event
        self.resolved = resolved
        self.run = run
        self.pipeline = pipeline
        self.task = task
        self.state = state
        self.message = message
        self.raisedAt = raisedAt
        self.deliveries = deliveries
    }
}

/// An alert's delivery to one receiver.
public struct AlertDeliveryView: Codable, Sendable, Hashable {
    public enum State: String, Codable, Sendable {
        /// Not sent yet (waiting for its first try or a retry).
        case pending
        case sent
        /// Given up after the last attempt, or its receiver is no longer configured.
        case failed
    }
    /// The receiver's name: one of `--alerts`, or `spec:notify[N]`.
    public var receiver: String
    /// Scheme, host and port of its URL only (a webhook's path may be its secret).
    public var target: String
    public var state: State
    public var attempts: Int
    public var sentAt: Date?
    public var nextAttemptAt: Date?
    public var lastError: String?

    public init(receiver: String, target: String, state: State, attempts: Int, sentAt: Date?, nextAttemptAt: Date?,
                lastError: String?) {
        self.receiver = receiver
        self.target = target
        self.state = state
        self.attempts = attempts
        self.sentAt = sentAt
        self.nextAttemptAt = nextAttemptAt
        self.lastError = lastError
    }
}
