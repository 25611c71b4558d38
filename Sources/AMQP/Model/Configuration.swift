/// How a connection is opened and kept alive.
public struct AMQPConfiguration: Sendable {
    /// The nodes of one broker (a cluster's nodes, or one node): the client
    /// connects to the first that answers, starting at `startPosition`, and
    /// after a loss tries the next ones in turn. Never empty.
    public var urls: [AMQPURL]
    /// The first of `urls`. Setting it replaces the first only.
    public var url: AMQPURL {
        get { urls[0] }
        set { urls[0] = newValue }
    }
    /// Where in `urls` the first connect starts (taken modulo the count), so
    /// that clients with different positions spread over the nodes. Nil:
    /// a random one.
    public var startPosition: Int? = nil
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
    /// A publish the broker nacks is sent again, on a new publish channel,
    /// up to this many times (after `nackResendDelay` s, doubling each time)
    /// before it fails with `publishNacked`. A quorum queue whose leader's
    /// node was just killed nacks every publish of a channel that first
    /// reached it after the kill, for 30 s or more, while a new channel is
    /// confirmed at once; a genuine refusal (a full `reject-publish` queue)
    /// still fails, only later (about 3 s with the defaults). 0: fail at once.
    /// While a nacked publish waits for its resend, publishing on the whole
    /// connection pauses (the channel that nacked is being retired): a queue
    /// that keeps refusing (a full `reject-publish` queue) delays the other
    /// publishes of that connection by up to the backoff each time.
    /// Must be ≥ 0 (`connect` refuses the configuration otherwise).
    public var nackResends: Int = 4
    /// Seconds before the first resend of a nacked publish; finite and ≥ 0.
    public var nackResendDelay: Double = 0.2
    /// Seconds a synchronous request to the broker (channel open, confirm
    /// mode, declare, purge, consume, close) may wait for its reply. When it
    /// runs out, rabbitmq-c closes the socket and the connection is treated as
    /// lost: the client reconnects, as after any other loss. Without it a
    /// broker that never answers (a channel stuck closing, a node under a
    /// resource alarm) would block the connection's I/O thread for good.
    /// Finite and > 0.
    public var rpcTimeout: Double = 30
    /// Shown in the broker's connection list.
    public var connectionName: String = "bis-fleet"

    public init(url: AMQPURL) { self.urls = [url] }
    public init(urls: [AMQPURL]) {
        precondition(!urls.isEmpty, "AMQPConfiguration needs at least one URL")
        self.urls = urls
    }
    /// One URL or a comma-separated list of them (`AMQPURL.list`).
    public init(url string: String) throws(AMQPError) { self.urls = try AMQPURL.list(string) }

    /// Throws `invalidConfiguration` for values the client cannot work with
    /// (checked by `AMQPConnection.connect`).
    public func validate() throws(AMQPError) {
        guard nackResends >= 0 else {
            throw AMQPError.invalidConfiguration("nackResends must be 0 or more, not \(nackResends)")
        }
        guard nackResendDelay.isFinite, nackResendDelay >= 0 else {
            throw AMQPError.invalidConfiguration("nackResendDelay must be a finite number of seconds ≥ 0, not \(nackResendDelay)")
        }
        guard rpcTimeout.isFinite, rpcTimeout > 0 else {
            throw AMQPError.invalidConfiguration("rpcTimeout must be a finite number of seconds > 0, not \(rpcTimeout)")
        }
        guard connectTimeout.isFinite, connectTimeout >= 0 else {
            throw AMQPError.invalidConfiguration("connectTimeout must be a finite number of seconds ≥ 0, not \(connectTimeout)")
        }
        guard heartbeat >= 0, heartbeat <= Int(UInt16.max) else {
            throw AMQPError.invalidConfiguration("heartbeat must be between 0 and 65535 seconds, not \(heartbeat)")
        }
        guard confirmWindow >= 1 else {
            throw AMQPError.invalidConfiguration("confirmWindow must be 1 or more, not \(confirmWindow)")
        }
    }

    /// Sets the password of every URL (a password given apart from the URLs).
    public mutating func setPassword(_ password: String) {
        for i in urls.indices { urls[i].password = password }
    }

    /// A stable position for `identity` (FNV-1a), for `startPosition`.
    public static func position(for identity: String) -> Int {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in identity.utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        return Int(h % UInt64(Int32.max))
    }
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
