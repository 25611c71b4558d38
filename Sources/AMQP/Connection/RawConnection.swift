import CRabbitMQ
import Glibc

/// The channels of one connection, each with one job, so that an error on one
/// (a failed declare, an unknown exchange) never disturbs the others.
enum Channel {
    /// Declarations (RPCs). A server error closes it; it is reopened at once.
    static let control: amqp_channel_t = 1
    /// Publishes in confirm mode: the first publish channel of a connection.
    /// A nacked publish makes the loop retire it for a new one (numbers from
    /// `publishSpare`, in turn), see `IOLoop.reopenPublishChannelIfDue`.
    static let publish: amqp_channel_t = 2
    /// All consumers, each with its own prefetch.
    static let consume: amqp_channel_t = 3
    /// The numbers later publish channels take, in turn.
    static let publishSpare: ClosedRange<amqp_channel_t> = 4...99

    /// The publish channel to move to from `current`: the next number of
    /// `spare` after `current`, in turn (wrapping round to the first), that
    /// is neither `current` nor `retired` (closed by us, close-ok not yet
    /// received: the broker still holds it). Nil when there is none: reusing
    /// a number whose close has not completed would send channel.open to a
    /// closing channel, which the broker never answers.
    static func nextPublishChannel(after current: amqp_channel_t, retired: Set<amqp_channel_t>,
                                   spare: ClosedRange<amqp_channel_t> = publishSpare) -> amqp_channel_t? {
        var next = current
        for _ in 0..<spare.count {
            next = spare.contains(next) && next < spare.upperBound ? next + 1 : spare.lowerBound
            if next != current && !retired.contains(next) { return next }
        }
        return nil
    }
}

/// One rabbitmq-c connection. Not thread-safe: only the I/O thread of its
/// `IOLoop` ever touches it. It owns the C state and destroys it on `deinit`.
final class RawConnection {
    let state: amqp_connection_state_t
    let url: AMQPURL

    private init(state: amqp_connection_state_t, url: AMQPURL) {
        self.state = state
        self.url = url
    }

    deinit {
        amqp_destroy_connection(state)
    }

    /// Opens the socket (TCP or TLS) to `url` (one of `config.urls`; the
    /// first when nil), logs in and opens the three channels. TLS checks the
    /// certificate against that URL's own host.
    static func open(_ config: AMQPConfiguration, url: AMQPURL? = nil) throws(AMQPError) -> RawConnection {
        let url = url ?? config.url
        guard let state = amqp_new_connection() else {
            throw AMQPError.connectFailed(url: url.description, status: -1, message: "out of memory")
        }
        let conn = RawConnection(state: state, url: url)
        let socket: OpaquePointer?
        if url.tls {
            socket = amqp_ssl_socket_new(state)
            guard let socket else {
                throw AMQPError.connectFailed(url: url.description, status: -1, message: "cannot create a TLS socket")
            }
            let tls = config.tls
            guard let ca = tls.caFile else {
                throw AMQPError.invalidConfiguration("amqps:// needs a CA file (rabbitmq-c 0.11 cannot use the system CAs)")
            }
            guard access(ca, R_OK) == 0 else {
                throw AMQPError.invalidConfiguration("the CA file \(ca) cannot be read")
            }
            let s1 = amqp_ssl_socket_set_cacert(socket, ca)
            if s1 != 0 {
                throw AMQPError.connectFailed(url: url.description, status: s1,
                                              message: "cannot load the CA file \(ca): \(statusText(s1))")
            }
            if let cert = tls.certFile {
                guard let key = tls.keyFile else {
                    throw AMQPError.invalidConfiguration("a client certificate needs its key file")
                }
                let s2 = amqp_ssl_socket_set_key(socket, cert, key)
                if s2 != 0 {
                    throw AMQPError.connectFailed(url: url.description, status: s2,
                                                  message: "cannot load the client certificate \(cert) or key: \(statusText(s2))")
                }
            }
            amqp_ssl_socket_set_verify_peer(socket, tls.verifyPeer ? 1 : 0)
            amqp_ssl_socket_set_verify_hostname(socket, tls.verifyHostname ? 1 : 0)
            _ = amqp_ssl_socket_set_ssl_versions(socket, AMQP_TLSv1_2, AMQP_TLSvLATEST)
        } else {
            socket = amqp_tcp_socket_new(state)
            guard socket != nil else {
                throw AMQPError.connectFailed(url: url.description, status: -1, message: "cannot create a socket")
            }
        }
        var timeout = timeval(tv_sec: Int(config.connectTimeout),
                              tv_usec: Int((config.connectTimeout - Double(Int(config.connectTimeout))) * 1e6))
        let status = amqp_socket_open_noblock(socket, url.host, Int32(url.port), &timeout)
        if status != 0 {
            var message = statusText(status)
            if url.tls && status == Int32(AMQP_STATUS_SSL_CONNECTION_FAILED.rawValue) {
                message += " (the broker's certificate was not accepted: check the CA file and host name)"
            } else if url.tls && status == Int32(AMQP_STATUS_SSL_HOSTNAME_VERIFY_FAILED.rawValue) {
                message += " (the certificate does not name host \(url.host))"
            } else if url.tls && status == Int32(AMQP_STATUS_SSL_PEER_VERIFY_FAILED.rawValue) {
                message += " (the broker's certificate is not signed by the given CA)"
            }
            throw AMQPError.connectFailed(url: url.description, status: status, message: message)
        }

        let arena = CArena()
        let capabilities = arena.table([
            ("publisher_confirms", .bool(true)),
            ("consumer_cancel_notify", .bool(true)),
            ("basic.nack", .bool(true)),
            ("exchange_exchange_bindings", .bool(true)),
            ("connection.blocked", .bool(false)),
            ("authentication_failure_close", .bool(true)),
        ])
        var props = arena.rawTable([
            ("capabilities", arena.tableField(capabilities)),
            ("product", arena.field(.string("bis-fleet"))),
            ("connection_name", arena.field(.string(config.connectionName))),
        ])
        let reply = withUnsafePointer(to: &props) { p in
            bis_amqp_login_plain(state, url.vhost, 0, 131072, Int32(config.heartbeat), p, url.user, url.password)
        }
        if reply.reply_type != AMQP_RESPONSE_NORMAL {
            let message: String
            var replyCode: UInt16?
            switch reply.reply_type {
            case AMQP_RESPONSE_SERVER_EXCEPTION:
                let (code, text) = serverReply(reply.reply)
                message = "\(code) \(text)"
                replyCode = code
            case AMQP_RESPONSE_LIBRARY_EXCEPTION:
                message = statusText(reply.library_error)
            default:
                message = "the broker closed the connection during login"
            }
            throw AMQPError.loginFailed(url: url.description, message: message, code: replyCode)
        }
        // From here every RPC is bounded: a reply that never comes becomes
        // AMQP_STATUS_TIMEOUT (the socket is closed), a connection-level
        // `library` error, so the loop reconnects instead of blocking.
        let rpc = max(0.001, config.rpcTimeout)
        var rpcTimeout = timeval(tv_sec: Int(rpc), tv_usec: Int((rpc - Double(Int(rpc))) * 1e6))
        try check(amqp_set_rpc_timeout(state, &rpcTimeout), "setting the RPC timeout")
        for ch in [Channel.control, Channel.publish, Channel.consume] {
            try conn.openChannel(ch)
        }
        try conn.enableConfirms()
        return conn
    }

    func openChannel(_ ch: amqp_channel_t) throws(AMQPError) {
        _ = amqp_channel_open(state, ch)
        try check(amqp_get_rpc_reply(state), "opening channel \(ch)")
    }

    func enableConfirms(on ch: amqp_channel_t = Channel.publish) throws(AMQPError) {
        _ = amqp_confirm_select(state, ch)
        try check(amqp_get_rpc_reply(state), "enabling publisher confirms")
    }

    var socketFD: Int32 { amqp_get_sockfd(state) }

    var hasBufferedInput: Bool {
        amqp_frames_enqueued(state) != 0 || amqp_data_in_buffer(state) != 0
    }

    /// Declares on the control channel. A server error (406 for a queue that
    /// exists with other arguments, 404, …) closes the control channel; it is
    /// acknowledged and reopened before the error is thrown.
    func declare(_ d: Declaration) throws(AMQPError) {
        let arena = CArena()
        let what: String
        switch d {
        case let .exchange(e):
            what = "declaring exchange '\(e.name)'"
            _ = amqp_exchange_declare(state, Channel.control, arena.bytes(e.name), arena.bytes(e.kind.rawValue),
                                      0, e.durable ? 1 : 0, 0, 0, amqp_empty_table)
        case let .queue(q):
            what = "declaring queue '\(q.name)'"
            _ = amqp_queue_declare(state, Channel.control, arena.bytes(q.name), 0, q.durable ? 1 : 0, 0, 0,
                                   arena.table(q.arguments))
        case let .binding(b):
            what = "binding queue '\(b.queue)' to exchange '\(b.exchange)' with key '\(b.routingKey)'"
            _ = amqp_queue_bind(state, Channel.control, arena.bytes(b.queue), arena.bytes(b.exchange),
                                arena.bytes(b.routingKey), amqp_empty_table)
        }
        try rpcResult(on: Channel.control, what)
    }

    /// Number of ready messages in a queue (passive declare), or nil if absent.
    func messageCount(queue: String) throws(AMQPError) -> UInt32? {
        let arena = CArena()
        let ok = amqp_queue_declare(state, Channel.control, arena.bytes(queue), 1, 0, 0, 0, amqp_empty_table)
        do {
            try rpcResult(on: Channel.control, "inspecting queue '\(queue)'")
        } catch let AMQPError.server(_, code, _) where code == 404 {
            return nil
        }
        return ok?.pointee.message_count
    }

    func purge(queue: String) throws(AMQPError) {
        let arena = CArena()
        _ = amqp_queue_purge(state, Channel.control, arena.bytes(queue))
        try rpcResult(on: Channel.control, "purging queue '\(queue)'")
    }

    func deleteQueue(_ queue: String) throws(AMQPError) {
        let arena = CArena()
        _ = amqp_queue_delete(state, Channel.control, arena.bytes(queue), 0, 0)
        try rpcResult(on: Channel.control, "deleting queue '\(queue)'")
    }

    /// Checks the reply of the last RPC on `ch`; a server channel.close is
    /// answered with close-ok and the channel reopened; a connection.close is
    /// answered and thrown (the caller then reconnects).
    private func rpcResult(on ch: amqp_channel_t, _ what: String) throws(AMQPError) {
        let reply = amqp_get_rpc_reply(state)
        if reply.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION {
            if reply.reply.id == AMQP_CHANNEL_CLOSE_METHOD {
                sendChannelCloseOk(ch)
                try openChannel(ch)
            } else if reply.reply.id == AMQP_CONNECTION_CLOSE_METHOD {
                sendConnectionCloseOk()
            }
        }
        try check(reply, what)
    }

    func publish(on ch: amqp_channel_t = Channel.publish, exchange: String, routingKey: String, mandatory: Bool,
                 message: OutgoingMessage, extraHeaders: [(String, HeaderValue)]) throws(AMQPError) {
        let arena = CArena()
        var props = arena.properties(message, extraHeaders: extraHeaders)
        let status = message.body.withUnsafeBytes { body in
            amqp_basic_publish(state, ch, arena.bytes(exchange), arena.bytes(routingKey),
                               mandatory ? 1 : 0, 0, &props,
                               amqp_bytes_t(len: body.count, bytes: UnsafeMutableRawPointer(mutating: body.baseAddress)))
        }
        try check(status, "publishing to exchange '\(exchange)'")
    }

    func startConsumer(queue: String, tag: String, prefetch: Int) throws(AMQPError) {
        _ = amqp_basic_qos(state, Channel.consume, 0, UInt16(clamping: prefetch), 0)
        try rpcResult(on: Channel.consume, "setting prefetch \(prefetch)")
        let arena = CArena()
        _ = amqp_basic_consume(state, Channel.consume, arena.bytes(queue), arena.bytes(tag), 0, 0, 0, amqp_empty_table)
        try rpcResult(on: Channel.consume, "consuming from queue '\(queue)'")
    }

    func cancelConsumer(tag: String) throws(AMQPError) {
        let arena = CArena()
        _ = amqp_basic_cancel(state, Channel.consume, arena.bytes(tag))
        try rpcResult(on: Channel.consume, "cancelling consumer")
    }

    func ack(_ tag: UInt64, multiple: Bool) throws(AMQPError) {
        try check(amqp_basic_ack(state, Channel.consume, tag, multiple ? 1 : 0), "acknowledging delivery \(tag)")
    }

    func nack(_ tag: UInt64, requeue: Bool) throws(AMQPError) {
        try check(amqp_basic_nack(state, Channel.consume, tag, 0, requeue ? 1 : 0), "nacking delivery \(tag)")
    }

    func reject(_ tag: UInt64, requeue: Bool) throws(AMQPError) {
        try check(amqp_basic_reject(state, Channel.consume, tag, requeue ? 1 : 0), "rejecting delivery \(tag)")
    }

    /// Waits for the next frame at most `timeout` seconds (0: only what is
    /// already there). Returns nil on timeout. Also sends due heartbeats.
    func nextFrame(timeout: Double) throws(AMQPError) -> amqp_frame_t? {
        var frame = amqp_frame_t()
        var tv = timeval(tv_sec: Int(timeout), tv_usec: Int((timeout - Double(Int(timeout))) * 1e6))
        let status = amqp_simple_wait_frame_noblock(state, &frame, &tv)
        if status == Int32(AMQP_STATUS_TIMEOUT.rawValue) { return nil }
        try check(status, "reading from the broker")
        return frame
    }

    /// Reads the header and body frames that follow a deliver or return.
    func readContent(channel: amqp_channel_t) throws(AMQPError) -> (MessageProperties, [UInt8]) {
        var message = amqp_message_t()
        let reply = amqp_read_message(state, channel, &message, 0)
        try check(reply, "reading a message body")
        defer { amqp_destroy_message(&message) }
        return (decodeProperties(message.properties), message.body.array)
    }

    func sendChannelCloseOk(_ ch: amqp_channel_t) {
        var ok = amqp_channel_close_ok_t()
        _ = amqp_send_method(state, ch, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok)
    }

    /// Sends channel.close without waiting for close-ok (it arrives later,
    /// among other frames, and is ignored): frames of other channels are not
    /// held up behind an RPC.
    func sendChannelClose(_ ch: amqp_channel_t, text: String) throws(AMQPError) {
        let arena = CArena()
        var close = amqp_channel_close_t(reply_code: UInt16(AMQP_REPLY_SUCCESS), reply_text: arena.bytes(text),
                                         class_id: 0, method_id: 0)
        try check(amqp_send_method(state, ch, AMQP_CHANNEL_CLOSE_METHOD, &close), "closing channel \(ch)")
    }

    func sendConnectionCloseOk() {
        var ok = amqp_connection_close_ok_t()
        _ = amqp_send_method(state, 0, AMQP_CONNECTION_CLOSE_OK_METHOD, &ok)
    }

    func releaseBuffersIfIdle() {
        if amqp_frames_enqueued(state) == 0 { amqp_maybe_release_buffers(state) }
    }

    /// Polite close: connection.close and wait for close-ok (bounded by the socket).
    func close() {
        _ = amqp_connection_close(state, Int32(AMQP_REPLY_SUCCESS))
    }
}

