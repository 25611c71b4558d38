import CRabbitMQ
import Glibc
import Logging
import Synchronization

/// The dedicated thread that owns one broker connection.
///
/// rabbitmq-c has no thread of its own and is not thread-safe, so everything
/// that touches the connection runs here: other threads put `Command`s into
/// the inbox and wake the loop through an eventfd; the loop sends them,
/// reads frames (deliveries, confirms, returns, closes) and keeps heartbeats
/// alive by never blocking longer than a fraction of the heartbeat interval.
/// When the connection breaks it reconnects with backoff, declares the
/// remembered topology again and reopens every consumer.
///
/// Everything below `inbox` is touched only by the I/O thread.
final class IOLoop: @unchecked Sendable {
    enum Command: Sendable {
        case publish(PendingPublish)
        case settle(Settlement, generation: UInt64, tag: UInt64, CheckedContinuation<Void, Error>)
        case declare(Declaration, CheckedContinuation<Void, Error>)
        case consume(ConsumerState, CheckedContinuation<Void, Error>)
        case cancel(tag: String)
        case inspect(queue: String, CheckedContinuation<UInt32?, Error>)
        case purge(queue: String, CheckedContinuation<Void, Error>)
        case deleteQueue(String, CheckedContinuation<Void, Error>)
        case close(CheckedContinuation<Void, Never>)
    }

    enum Settlement: Sendable { case ack, nack(requeue: Bool), reject(requeue: Bool) }

    struct PendingPublish: Sendable {
        var exchange: String
        var routingKey: String
        var mandatory: Bool
        var message: OutgoingMessage
        var continuation: CheckedContinuation<Void, Error>
        /// Times the broker nacked it and it was sent again (`nackResends`).
        var nackResends = 0
    }

    final class ConsumerState: Sendable {
        let tag: String
        let queue: String
        let prefetch: Int
        let continuation: AsyncThrowingStream<Delivery, Error>.Continuation
        init(tag: String, queue: String, prefetch: Int, continuation: AsyncThrowingStream<Delivery, Error>.Continuation) {
            self.tag = tag
            self.queue = queue
            self.prefetch = prefetch
            self.continuation = continuation
        }
    }

    private struct Inbox {
        var commands: [Command] = []
        var signalled = false
        /// The loop has closed for good: nothing would handle a command.
        var finished = false
    }

    let config: AMQPConfiguration
    let logger: Logger
    private let inbox = Mutex(Inbox())
    private let wakeFD: Int32
    /// Bumped on every new connection or consumer channel; deliveries from an
    /// older generation can no longer be settled. Read by other threads.
    private let generationBox = Atomic<UInt64>(1)
    private let reconnectsBox = Atomic<Int>(0)
    private let nacksBox = Atomic<Int>(0)
    private let channelSwitchesBox = Atomic<Int>(0)
    /// The node (`host:port`) of the live connection, nil while there is none.
    private let nodeBox = Mutex<String?>(nil)

    // I/O-thread state.
    private var conn: RawConnection?
    private var topology: [Declaration] = []
    private var consumers: [String: ConsumerState] = [:]
    private var waiting: [PendingPublish] = []
    private var waitingHead = 0
    private var unconfirmed: [UInt64: PendingPublish] = [:]
    private var lowestUnconfirmed: UInt64 = 1
    private var nextSeq: UInt64 = 1
    private var returned: [UInt64: (UInt16, String)] = [:]
    /// The channel publishes go to now (`Channel.publish` on a new
    /// connection; another after a nack, see `reopenPublishChannelIfDue`).
    private var publishChannel: amqp_channel_t = Channel.publish
    /// Publish channels we closed whose close-ok has not come yet: their
    /// confirms and returns are ignored, their numbers not reused.
    private var retiredChannels: Set<amqp_channel_t> = []
    /// Nacked publishes to send again on a new publish channel at `reopenAt`;
    /// publishing pauses until then.
    private var nackedPublishes: [PendingPublish] = []
    private var reopenAt: Double?
    private var deferred: [Command] = []
    private var closing: CheckedContinuation<Void, Never>?
    private var closeDeadline: Double = 0
    private var failure: AMQPError?
    private var reconnectAttempt = 0
    private var nextReconnectAt: Double = 0
    /// Index in `config.urls` of the node of the live (or last) connection.
    private var urlIndex = 0

    init(config: AMQPConfiguration, logger: Logger) {
        self.config = config
        self.logger = logger
        self.wakeFD = bis_wake_fd()
    }

    deinit { Glibc.close(wakeFD) }

    var generation: UInt64 { generationBox.load(ordering: .acquiring) }
    var reconnects: Int { reconnectsBox.load(ordering: .relaxed) }
    var nacksToResend: Int { nacksBox.load(ordering: .relaxed) }
    var publishChannelSwitches: Int { channelSwitchesBox.load(ordering: .relaxed) }
    var connectedNode: String? { nodeBox.withLock { $0 } }

    /// The first connect: every URL once, starting at the configured
    /// position; the last error when none answers.
    private func openFirst() throws(AMQPError) -> RawConnection {
        let urls = config.urls
        let start = (config.startPosition ?? Int.random(in: 0..<Int(Int32.max))) % urls.count
        var lastError = AMQPError.closed
        for k in 0..<urls.count {
            let i = (start + k) % urls.count
            do {
                let c = try RawConnection.open(config, url: urls[i])
                urlIndex = i
                return c
            } catch {
                if urls.count > 1 {
                    logger.info("broker node does not answer, trying the next", metadata: ["amqp.url": "\(urls[i])", "error": "\(error)"])
                }
                lastError = error
                // Bad credentials are the same everywhere: no use trying on. Any
                // other handshake failure (a 530 "vhost down" from a restarting
                // node, a library error) is this node's: try the next.
                if case .loginFailed(_, _, code: 403?) = error { throw error }
            }
        }
        throw lastError
    }

    private func setConnected(_ c: RawConnection?) {
        conn = c
        let node = c.map { $0.url.node }
        nodeBox.withLock { $0 = node }
    }

    /// Declares `d`; a queue that exists without the creation-only arguments
    /// (group size, leader locator: declared by an older version) is declared
    /// again without them, and that form is what is remembered.
    private func declareTolerant(_ d: Declaration, _ c: RawConnection) throws(AMQPError) -> Declaration {
        do {
            try c.declare(d)
            return d
        } catch let AMQPError.server(_, code, text) where code == 406 && QueueSpec.isCreationArgumentMismatch(text) {
            guard case let .queue(q) = d, q.initialGroupSize != nil || q.leaderLocator != nil else {
                throw AMQPError.server(operation: "declaring", replyCode: code, replyText: text)
            }
            let legacy = Declaration.queue(q.withoutCreationArguments)
            try c.declare(legacy)
            logger.warning("queue exists without replication arguments; kept as it is (see docs/fleet.md: rabbitmq-queues grow)",
                           metadata: ["amqp.queue": "\(q.name)"])
            return legacy
        }
    }

    /// Opens the first connection on the I/O thread and starts the loop; throws
    /// at once if the broker cannot be reached or refuses the login.
    func start() async throws {
        try await withCheckedThrowingContinuation { (cont: CheckedContinuation<Void, Error>) in
            startThread { [self] in
                do {
                    setConnected(try openFirst())
                    logger.info("connected to broker", metadata: ["amqp.url": "\(config.urls[urlIndex])"])
                } catch {
                    cont.resume(throwing: error)
                    return
                }
                cont.resume()
                run()
            }
        }
    }

    func submit(_ command: Command) {
        let (wake, finished) = inbox.withLock { box -> (Bool, Bool) in
            if box.finished { return (false, true) }
            box.commands.append(command)
            if box.signalled { return (false, false) }
            box.signalled = true
            return (true, false)
        }
        if finished {
            // After the loop closed (a second `close()`, say): answer at once
            // instead of leaving the caller waiting for a loop that is gone.
            fail(command, with: .closed)
            return
        }
        if wake {
            var one: UInt64 = 1
            _ = write(wakeFD, &one, 8)
        }
    }

    // MARK: - The loop

    private func run() {
        while true {
            drainInbox()
            if let done = closing, shouldFinishClosing() {
                finishClose()
                done.resume()
                return
            }
            if conn == nil { tryReconnect() }
            if let c = conn {
                do {
                    try reopenPublishChannelIfDue(c)
                    try flushPublishes(c)
                    try pumpFrames(c)
                    try flushPublishes(c)
                } catch {
                    connectionLost(error)
                }
            }
            waitForWork()
        }
    }

    private func waitForWork() {
        var fds = [pollfd(fd: wakeFD, events: Int16(POLLIN), revents: 0)]
        var until: [Double] = []
        if let c = conn {
            if c.hasBufferedInput { return }
            fds.append(pollfd(fd: c.socketFD, events: Int16(POLLIN), revents: 0))
            if let at = reopenAt { until.append(at) }
        } else {
            until.append(nextReconnectAt)
        }
        let timeoutMs = Self.pollTimeout(heartbeat: config.heartbeat, now: now(), until: until)
        _ = poll(&fds, nfds_t(fds.count), timeoutMs)
        if fds[0].revents != 0 {
            var value: UInt64 = 0
            _ = read(wakeFD, &value, 8)
        }
    }

    /// Milliseconds `poll` may wait: at most 200 (and a quarter of the
    /// heartbeat), and no later than just past the first of `until`
    /// (monotonic seconds). Clamped as a Double before it becomes an Int32,
    /// so a far, infinite or NaN deadline (a large configured backoff) cannot
    /// trap.
    static func pollTimeout(heartbeat: Int, now: Double, until: [Double]) -> Int32 {
        var ms = 200.0
        if heartbeat > 0 { ms = min(ms, Double(heartbeat) * 250) }
        for at in until {
            let left = (at - now) * 1000 + 1
            if left.isNaN { continue }
            ms = min(ms, max(0, left))
        }
        return Int32(ms.rounded(.down))
    }

    private func drainInbox() {
        let commands = inbox.withLock { box -> [Command] in
            box.signalled = false
            defer { box.commands.removeAll(keepingCapacity: true) }
            return box.commands
        }
        let pending = deferred + commands
        deferred.removeAll()
        for command in pending { handle(command) }
    }

    private func handle(_ command: Command) {
        if let failure {
            fail(command, with: failure)
            return
        }
        switch command {
        case let .publish(p):
            if closing != nil { p.continuation.resume(throwing: AMQPError.closed); return }
            waiting.append(p)
        case let .settle(kind, gen, tag, cont):
            guard let c = conn, gen == generation else {
                cont.resume(throwing: AMQPError.staleDelivery(deliveryTag: tag))
                return
            }
            do {
                switch kind {
                case .ack: try c.ack(tag, multiple: false)
                case let .nack(requeue): try c.nack(tag, requeue: requeue)
                case let .reject(requeue): try c.reject(tag, requeue: requeue)
                }
                cont.resume()
            } catch {
                cont.resume(throwing: error)
                connectionLost(error)
            }
        case let .declare(d, cont):
            guard let c = conn else { deferred.append(command); return }
            do {
                let declared = try declareTolerant(d, c)
                if !topology.contains(declared) { topology.append(declared) }
                cont.resume()
            } catch {
                cont.resume(throwing: error)
                if error.isConnectionLevel { connectionLost(error) }
            }
        case let .consume(state, cont):
            guard let c = conn else { deferred.append(command); return }
            do {
                try c.startConsumer(queue: state.queue, tag: state.tag, prefetch: state.prefetch)
                consumers[state.tag] = state
                cont.resume()
            } catch {
                cont.resume(throwing: error)
                if error.isConnectionLevel { connectionLost(error) }
            }
        case let .cancel(tag):
            guard let state = consumers.removeValue(forKey: tag) else { return }
            state.continuation.finish()
            if let c = conn {
                do { try c.cancelConsumer(tag: tag) } catch { connectionLost(error) }
            }
        case let .inspect(queue, cont):
            guard let c = conn else { deferred.append(command); return }
            do { cont.resume(returning: try c.messageCount(queue: queue)) } catch {
                cont.resume(throwing: error)
                if error.isConnectionLevel { connectionLost(error) }
            }
        case let .purge(queue, cont):
            guard let c = conn else { deferred.append(command); return }
            do { try c.purge(queue: queue); cont.resume() } catch {
                cont.resume(throwing: error)
                if error.isConnectionLevel { connectionLost(error) }
            }
        case let .deleteQueue(queue, cont):
            guard let c = conn else { deferred.append(command); return }
            do {
                try c.deleteQueue(queue)
                topology.removeAll { if case let .queue(q) = $0 { return q.name == queue } else { return false } }
                cont.resume()
            } catch {
                cont.resume(throwing: error)
                if error.isConnectionLevel { connectionLost(error) }
            }
        case let .close(cont):
            if closing != nil { cont.resume(); return }
            closing = cont
            closeDeadline = now() + 5
            for (_, state) in consumers { state.continuation.finish() }
            if let c = conn { for tag in consumers.keys { try? c.cancelConsumer(tag: tag) } }
            consumers.removeAll()
        }
    }

    private func fail(_ command: Command, with error: AMQPError) {
        switch command {
        case let .publish(p): p.continuation.resume(throwing: error)
        case let .settle(_, _, _, cont): cont.resume(throwing: error)
        case let .declare(_, cont): cont.resume(throwing: error)
        case let .consume(state, cont):
            state.continuation.finish(throwing: error)
            cont.resume(throwing: error)
        case .cancel: break
        case let .inspect(_, cont): cont.resume(throwing: error)
        case let .purge(_, cont): cont.resume(throwing: error)
        case let .deleteQueue(_, cont): cont.resume(throwing: error)
        case let .close(cont): cont.resume()
        }
    }

    // MARK: - Publishing

    private func flushPublishes(_ c: RawConnection) throws {
        // After a nack: nothing more on the channel that is being retired.
        if reopenAt != nil { return }
        while waitingHead < waiting.count && unconfirmed.count < config.confirmWindow {
            let p = waiting[waitingHead]
            waitingHead += 1
            let seq = nextSeq
            nextSeq += 1
            // The broker's basic.return carries no delivery tag; the sequence
            // number in a header ties a return to its confirm.
            let extra: [(String, HeaderValue)] = p.mandatory ? [(Self.seqHeader, .int(Int64(seq)))] : []
            unconfirmed[seq] = p
            try c.publish(on: publishChannel, exchange: p.exchange, routingKey: p.routingKey, mandatory: p.mandatory,
                          message: p.message, extraHeaders: extra)
        }
        if waitingHead == waiting.count {
            waiting.removeAll(keepingCapacity: true)
            waitingHead = 0
        } else if waitingHead > 4096 {
            waiting.removeFirst(waitingHead)
            waitingHead = 0
        }
    }

    static let seqHeader = "x-bis-publish-seq"

    private func confirm(tag: UInt64, multiple: Bool, nacked: Bool) {
        if multiple {
            if tag >= lowestUnconfirmed {
                for seq in lowestUnconfirmed...tag { settle(seq, nacked: nacked) }
                lowestUnconfirmed = tag + 1
            }
        } else {
            settle(tag, nacked: nacked)
            while lowestUnconfirmed < nextSeq && unconfirmed[lowestUnconfirmed] == nil { lowestUnconfirmed += 1 }
        }
    }

    private func settle(_ seq: UInt64, nacked: Bool) {
        guard let p = unconfirmed.removeValue(forKey: seq) else { return }
        if let (code, text) = returned.removeValue(forKey: seq) {
            p.continuation.resume(throwing: AMQPError.unroutable(exchange: p.exchange, routingKey: p.routingKey,
                                                                 replyCode: code, replyText: text))
        } else if nacked && p.nackResends < config.nackResends && closing == nil {
            var again = p
            again.nackResends += 1
            let delay = config.nackResendDelay * Double(1 << min(again.nackResends - 1, 20))
            if reopenAt == nil {
                logger.warning("the broker nacked a publish; sending it again on a new channel",
                               metadata: ["amqp.exchange": "\(p.exchange)", "amqp.routing_key": "\(p.routingKey)",
                                          "amqp.resend": "\(again.nackResends)", "amqp.channel": "\(publishChannel)"])
            }
            nackedPublishes.append(again)
            nacksBox.add(1, ordering: .relaxed)
            reopenAt = max(reopenAt ?? 0, now() + delay)
        } else if nacked {
            p.continuation.resume(throwing: AMQPError.publishNacked(exchange: p.exchange, routingKey: p.routingKey))
        } else {
            p.continuation.resume()
        }
    }

    /// A nacked publish is sent again on a new channel, not the one that
    /// nacked it: measured on RabbitMQ 3.10, a channel whose first publish to
    /// a quorum queue came right after the node of the queue's leader was
    /// killed gets nacks for 30 s or more, while a new channel on the same
    /// connection is confirmed at once. At `reopenAt` (publishing paused
    /// meanwhile) the old channel is closed without waiting for its close-ok,
    /// a new one opened in confirm mode, and the nacked publishes go first.
    /// Publishes still unconfirmed on the old channel are treated like those
    /// of a lost connection (sent again with `resendUnconfirmed`, else failed
    /// with `connectionLostBeforeConfirm`).
    /// When every spare number still awaits its close-ok, the connection is
    /// treated as lost (a `library` error to `run`, so `connectionLost` and a
    /// reconnect, which starts afresh on `Channel.publish`): better than
    /// opening a number the broker has not released, or waiting with no end.
    private func reopenPublishChannelIfDue(_ c: RawConnection) throws {
        guard let at = reopenAt, now() >= at else { return }
        reopenAt = nil
        let old = publishChannel
        guard let next = Channel.nextPublishChannel(after: old, retired: retiredChannels) else {
            logger.warning("no free publish channel number: every spare channel still awaits its close-ok; reconnecting",
                           metadata: ["amqp.retired": "\(retiredChannels.count)"])
            throw AMQPError.library(operation: "moving to a new publish channel",
                                    status: Int32(AMQP_STATUS_UNEXPECTED_STATE.rawValue),
                                    message: "no free channel number (\(retiredChannels.count) retired channels await close-ok)")
        }
        try c.sendChannelClose(old, text: "publish nacked: moving to a new channel")
        retiredChannels.insert(old)
        publishChannel = next
        let inFlight = unconfirmed.sorted { $0.key < $1.key }.map(\.value)
        unconfirmed.removeAll()
        returned.removeAll()
        nextSeq = 1
        lowestUnconfirmed = 1
        let again = requeueForResend(inFlight)
        try c.openChannel(next)
        try c.enableConfirms(on: next)
        channelSwitchesBox.add(1, ordering: .relaxed)
        logger.info("publish channel reopened", metadata: ["amqp.channel": "\(next)", "amqp.resending": "\(again.count)"])
    }

    // MARK: - Reading frames

    private func pumpFrames(_ c: RawConnection) throws {
        // Always look once, even with nothing readable: that is where
        // rabbitmq-c sends heartbeats and notices a silent broker.
        var budget = 4096
        while budget > 0, let frame = try c.nextFrame(timeout: 0) {
            budget -= 1
            try dispatch(frame, c)
            if conn !== c { return }
        }
        c.releaseBuffersIfIdle()
    }

    private func dispatch(_ frame: amqp_frame_t, _ c: RawConnection) throws {
        guard frame.frame_type == UInt8(AMQP_FRAME_METHOD) else { return }
        let method = frame.payload.method
        let ch = frame.channel
        switch method.id {
        case AMQP_BASIC_DELIVER_METHOD:
            let d = method.decoded.assumingMemoryBound(to: amqp_basic_deliver_t.self).pointee
            let tag = d.consumer_tag.string
            let deliveryTag = d.delivery_tag
            let exchange = d.exchange.string
            let routingKey = d.routing_key.string
            let redelivered = d.redelivered != 0
            let (props, body) = try c.readContent(channel: ch)
            guard let state = consumers[tag] else {
                try c.nack(deliveryTag, requeue: true)  // a consumer we already cancelled
                return
            }
            state.continuation.yield(Delivery(body: body, exchange: exchange, routingKey: routingKey,
                                              redelivered: redelivered, deliveryTag: deliveryTag,
                                              properties: props, generation: generation, loop: self))
        case AMQP_BASIC_ACK_METHOD:
            let a = method.decoded.assumingMemoryBound(to: amqp_basic_ack_t.self).pointee
            guard ch == publishChannel else { return }  // a retired channel's
            confirm(tag: a.delivery_tag, multiple: a.multiple != 0, nacked: false)
        case AMQP_BASIC_NACK_METHOD:
            let n = method.decoded.assumingMemoryBound(to: amqp_basic_nack_t.self).pointee
            guard ch == publishChannel else { return }
            confirm(tag: n.delivery_tag, multiple: n.multiple != 0, nacked: true)
        case AMQP_BASIC_RETURN_METHOD:
            let r = method.decoded.assumingMemoryBound(to: amqp_basic_return_t.self).pointee
            let code = r.reply_code
            let text = r.reply_text.string
            let (props, _) = try c.readContent(channel: ch)
            if ch == publishChannel, let seq = props.headers[Self.seqHeader]?.intValue {
                returned[UInt64(seq)] = (code, text)
            }
        case AMQP_BASIC_CANCEL_METHOD:
            let m = method.decoded.assumingMemoryBound(to: amqp_basic_cancel_t.self).pointee
            if let state = consumers.removeValue(forKey: m.consumer_tag.string) {
                logger.warning("broker cancelled a consumer", metadata: ["amqp.queue": "\(state.queue)"])
                state.continuation.finish(throwing: AMQPError.consumerCancelled(queue: state.queue))
            }
        case AMQP_CHANNEL_CLOSE_METHOD:
            let (code, text) = serverReply(method)
            c.sendChannelCloseOk(ch)
            if retiredChannels.remove(ch) != nil { return }
            try channelClosed(ch, code: code, text: text, c)
        case AMQP_CHANNEL_CLOSE_OK_METHOD:
            retiredChannels.remove(ch)
        case AMQP_CONNECTION_CLOSE_METHOD:
            let (code, text) = serverReply(method)
            c.sendConnectionCloseOk()
            throw AMQPError.server(operation: "connection", replyCode: code, replyText: text)
        default:
            break
        }
    }

    /// The broker closed the publish or consume channel: reopen it. Publishes
    /// in flight on it fail with the broker's reason; deliveries from it become
    /// stale (the broker requeues them) and consumers start again.
    private func channelClosed(_ ch: amqp_channel_t, code: UInt16, text: String, _ c: RawConnection) throws {
        logger.warning("broker closed a channel", metadata: ["amqp.channel": "\(ch)", "amqp.reply": "\(code) \(text)"])
        try c.openChannel(ch)
        if ch == publishChannel {
            try c.enableConfirms(on: ch)
            let error = AMQPError.server(operation: "publishing", replyCode: code, replyText: text)
            for seq in unconfirmed.keys.sorted() { unconfirmed.removeValue(forKey: seq)?.continuation.resume(throwing: error) }
            returned.removeAll()
            nextSeq = 1
            lowestUnconfirmed = 1
        } else if ch == Channel.consume {
            generationBox.add(1, ordering: .releasing)
            for state in consumers.values {
                try c.startConsumer(queue: state.queue, tag: state.tag, prefetch: state.prefetch)
            }
        }
    }

    /// Puts the nacked publishes, then (when `resendUnconfirmed`, and not
    /// closing) those still unconfirmed on the channel or connection being
    /// left, ahead of the waiting ones; the unconfirmed ones otherwise fail.
    /// What is sent again, in order.
    @discardableResult
    private func requeueForResend(_ inFlight: [PendingPublish]) -> [PendingPublish] {
        var again = nackedPublishes
        nackedPublishes.removeAll()
        if config.resendUnconfirmed && closing == nil {
            again += inFlight
        } else {
            for p in inFlight { p.continuation.resume(throwing: AMQPError.connectionLostBeforeConfirm) }
        }
        waiting = again + waiting[waitingHead...]
        waitingHead = 0
        return again
    }

    // MARK: - Losing and regaining the connection

    private func connectionLost(_ error: Error) {
        guard conn != nil else { return }
        logger.warning("connection to broker lost", metadata: ["amqp.url": "\(config.urls[urlIndex])", "error": "\(error)"])
        setConnected(nil)  // destroys the C state; its delivery tags are void from here on
        generationBox.add(1, ordering: .releasing)
        let inFlight = unconfirmed.sorted { $0.key < $1.key }.map(\.value)
        unconfirmed.removeAll()
        returned.removeAll()
        nextSeq = 1
        lowestUnconfirmed = 1
        // A new connection starts on the first publish channel again.
        publishChannel = Channel.publish
        retiredChannels.removeAll()
        reopenAt = nil
        // Nacked publishes waiting to be sent again go first, whatever the policy.
        requeueForResend(inFlight)
        reconnectAttempt = 0
        scheduleReconnect()
    }

    private func scheduleReconnect() {
        reconnectAttempt += 1
        nextReconnectAt = now() + config.reconnect.delay(forAttempt: reconnectAttempt)
    }

    private func tryReconnect() {
        guard closing == nil, now() >= nextReconnectAt else { return }
        // Each attempt goes to the next node of the list (with one URL: the
        // same one), so a dead node costs one attempt, not a whole backoff.
        if config.urls.count > 1 { urlIndex = (urlIndex + 1) % config.urls.count }
        let url = config.urls[urlIndex]
        do {
            let c = try RawConnection.open(config, url: url)
            conn = c
            for (i, d) in topology.enumerated() { topology[i] = try declareTolerant(d, c) }
            for state in consumers.values {
                try c.startConsumer(queue: state.queue, tag: state.tag, prefetch: state.prefetch)
            }
            setConnected(c)
            reconnectsBox.add(1, ordering: .relaxed)
            logger.info("reconnected to broker", metadata: ["amqp.url": "\(url)",
                                                            "amqp.attempt": "\(reconnectAttempt)"])
            reconnectAttempt = 0
        } catch {
            setConnected(nil)
            // A broker refusing a declaration (406) will not heal by retrying:
            // always a warning, so a loop on it is seen.
            let refused: Bool
            if case .server(_, 406, _) = error { refused = true } else { refused = false }
            let level: Logger.Level = refused ? .warning
                : reconnectAttempt == 1 || reconnectAttempt % 10 == 0 ? .info : .debug
            logger.log(level: level, "reconnect failed",
                       metadata: ["amqp.url": "\(url)", "amqp.attempt": "\(reconnectAttempt)", "error": "\(error)"])
            if let max = config.reconnect.maxAttempts, reconnectAttempt >= max {
                giveUp(error)
            } else {
                scheduleReconnect()
            }
        }
    }

    /// Reconnecting has failed `maxAttempts` times: everything waiting fails
    /// with the last error, and so does everything asked from now on.
    private func giveUp(_ error: AMQPError) {
        logger.error("giving up on the broker", metadata: ["error": "\(error)"])
        failure = error
        for p in nackedPublishes + waiting[waitingHead...] { p.continuation.resume(throwing: error) }
        nackedPublishes.removeAll()
        reopenAt = nil
        waiting.removeAll()
        waitingHead = 0
        for command in deferred { fail(command, with: error) }
        deferred.removeAll()
        for state in consumers.values { state.continuation.finish(throwing: error) }
        consumers.removeAll()
    }

    private func shouldFinishClosing() -> Bool {
        conn == nil || (unconfirmed.isEmpty && waitingHead == waiting.count && nackedPublishes.isEmpty)
            || now() >= closeDeadline
    }

    private func finishClose() {
        if let c = conn { c.close() }
        setConnected(nil)
        generationBox.add(1, ordering: .releasing)
        for p in unconfirmed.values { p.continuation.resume(throwing: AMQPError.closed) }
        unconfirmed.removeAll()
        for p in nackedPublishes + waiting[waitingHead...] { p.continuation.resume(throwing: AMQPError.closed) }
        nackedPublishes.removeAll()
        reopenAt = nil
        waiting.removeAll()
        waitingHead = 0
        for command in deferred { fail(command, with: .closed) }
        deferred.removeAll()
        failure = .closed
        // Commands that raced with the close.
        let late = inbox.withLock { box -> [Command] in
            box.finished = true
            defer { box.commands.removeAll() }
            return box.commands
        }
        for command in late { fail(command, with: .closed) }
    }
}

/// Starts a detached POSIX thread: the loop blocks in C calls, which must
/// never happen on the Swift concurrency pool.
func startThread(_ body: @escaping @Sendable () -> Void) {
    final class Box { let body: @Sendable () -> Void; init(_ b: @escaping @Sendable () -> Void) { body = b } }
    let box = Unmanaged.passRetained(Box(body)).toOpaque()
    var tid = pthread_t()
    let rc = pthread_create(&tid, nil, { arg in
        let box = Unmanaged<Box>.fromOpaque(arg!).takeRetainedValue()
        box.body()
        return nil
    }, box)
    precondition(rc == 0, "pthread_create failed: \(rc)")
    pthread_detach(tid)
}

/// Monotonic seconds.
func now() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}
