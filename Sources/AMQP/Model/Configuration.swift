/// How a connection is opened and kept alive.
public struct AMQPConfiguration: Sendable {
    public var url: AMQPURL
    /// Heartbeat interval in seconds (0 turns heartbeats off). The lower
    /// non-zero value of client and broker wins.
    public var heartbeat: Int = 30
    /// TCP (and TLS) connect timeout in seconds.
    public var connectTimeout: Double = 10
    public var tls: TLSOptions = TLSOptions()
    public var reconnect: ReconnectPolicy = ReconnectPolicy()
    /// Publishes sent but not yet confirmed at most at once (per connection).
    /// One at a time gives ~2.4k msg/s into a quorum queue; 1000 ~47k.
    public var confirmWindow: Int = 1000
    /// On connection loss, publish again what was not confirmed instead of
    /// failing it with `connectionLostBeforeConfirm`. Either way a message may
    /// arrive twice: the broker may have stored it before the loss.
    public var resendUnconfirmed: Bool = false
    /// Shown in the broker's connection list.
    public var connectionName: String = "bis-fleet"

    public init(url: AMQPURL) { self.url = url }
    public init(url string: String) throws(AMQPError) { self.url = try AMQPURL(string) }
}

/// TLS for `amqps://`: the CA file is required (rabbitmq-c 0.11 has no call
/// for the system CAs). A client certificate and key are optional.
public struct TLSOptions: Sendable {
    public var caFile: String?
    public var certFile: String?
    public var keyFile: String?
    /// Checks the broker's certificate chain against the CA (and hostname).
    public var verifyPeer: Bool = true
    public var verifyHostname: Bool = true
    public init(caFile: String? = nil, certFile: String? = nil, keyFile: String? = nil) {
        self.caFile = caFile
        self.certFile = certFile
        self.keyFile = keyFile
    }
}

/// When a lost connection is tried again: exponential backoff from
/// `initialDelay`, doubling up to `maxDelay`, forever unless `maxAttempts`
/// is set. The first connect is never retried: `connect` fails at once so a
/// wrong URL is reported rather than hidden.
public struct ReconnectPolicy: Sendable {
    public var initialDelay: Double = 0.1
    public var maxDelay: Double = 5
    public var maxAttempts: Int? = nil
    public init(initialDelay: Double = 0.1, maxDelay: Double = 5, maxAttempts: Int? = nil) {
        self.initialDelay = initialDelay
        self.maxDelay = maxDelay
        self.maxAttempts = maxAttempts
    }

    /// Delay before reconnect attempt `attempt` (1-based).
    public func delay(forAttempt attempt: Int) -> Double {
        let exp = initialDelay * Double(1 << min(max(attempt - 1, 0), 30))
        return min(exp, maxDelay)
    }
}
