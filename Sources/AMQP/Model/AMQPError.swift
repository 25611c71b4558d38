import CRabbitMQ

/// Every failure of the AMQP layer, as a value that says what happened and
/// carries the rabbitmq-c status or the server's reply code and text.
///
/// None of the cases ever carries a password: URLs are kept redacted.
public enum AMQPError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The URL could not be parsed.
    case invalidURL(reason: String, url: String)
    /// A configuration value is unusable (a TLS file that does not exist, …).
    case invalidConfiguration(String)
    /// The TCP or TLS connection could not be opened (`status` is rabbitmq-c's).
    case connectFailed(url: String, status: Int32, message: String)
    /// Login was refused (wrong user or password, no access to the vhost),
    /// or the handshake failed otherwise. `code` is the broker's reply code
    /// when it sent one (403 ACCESS_REFUSED: bad credentials; 530 NOT_ALLOWED:
    /// e.g. the vhost is down on a restarting node), nil for a library error.
    case loginFailed(url: String, message: String, code: UInt16? = nil)
    /// rabbitmq-c reported an error on an open connection.
    case library(operation: String, status: Int32, message: String)
    /// The server closed a channel or the connection with a reply code
    /// (404 NOT_FOUND, 406 PRECONDITION_FAILED, 320 CONNECTION_FORCED, …).
    case server(operation: String, replyCode: UInt16, replyText: String)
    /// A mandatory publish could not be routed to any queue (basic.return).
    case unroutable(exchange: String, routingKey: String, replyCode: UInt16, replyText: String)
    /// The broker refused a published message (basic.nack), e.g. a queue at
    /// its length limit with `x-overflow=reject-publish`.
    case publishNacked(exchange: String, routingKey: String)
    /// The connection was lost before the broker confirmed the publish; it may
    /// or may not have been stored.
    case connectionLostBeforeConfirm
    /// An ack, nack or reject for a delivery received on an earlier connection
    /// or channel: its delivery tag is void, the broker has requeued it.
    case staleDelivery(deliveryTag: UInt64)
    /// The broker cancelled a consumer (its queue was deleted, …).
    case consumerCancelled(queue: String)
    /// The connection has been closed by the application.
    case closed

    public var description: String {
        switch self {
        case let .invalidURL(reason, url):
            return "invalid AMQP URL \(url): \(reason)"
        case let .invalidConfiguration(text):
            return "invalid AMQP configuration: \(text)"
        case let .connectFailed(url, status, message):
            return "cannot connect to \(url): \(message) (rabbitmq-c status \(status))"
        case let .loginFailed(url, message, _):
            return "login to \(url) refused: \(message)"
        case let .library(operation, status, message):
            return "\(operation) failed: \(message) (rabbitmq-c status \(status))"
        case let .server(operation, code, text):
            return "\(operation) failed: broker replied \(code) \(text)"
        case let .unroutable(exchange, key, code, text):
            return "message to exchange '\(exchange)' with routing key '\(key)' could not be routed: \(code) \(text)"
        case let .publishNacked(exchange, key):
            return "broker refused (nacked) the message to exchange '\(exchange)' with routing key '\(key)'"
        case .connectionLostBeforeConfirm:
            return "connection to the broker was lost before the publish was confirmed"
        case let .staleDelivery(tag):
            return "delivery \(tag) came from an earlier connection or channel; it cannot be acknowledged now (the broker redelivers it)"
        case let .consumerCancelled(queue):
            return "the broker cancelled the consumer of queue '\(queue)'"
        case .closed:
            return "the AMQP connection is closed"
        }
    }

    /// True when reconnecting may help (the broker went away, a socket broke).
    public var isConnectionLevel: Bool {
        switch self {
        case .connectFailed, .library, .connectionLostBeforeConfirm: return true
        case let .server(_, code, _): return code == 320 || code == 501 || code == 504 || code == 541
        default: return false
        }
    }
}

/// The one place where rabbitmq-c status codes become typed errors.
@inline(__always)
func check(_ status: Int32, _ operation: @autoclosure () -> String) throws(AMQPError) {
    if status < 0 {
        throw AMQPError.library(operation: operation(), status: status, message: statusText(status))
    }
}

func statusText(_ status: Int32) -> String {
    guard let p = amqp_error_string2(status) else { return "unknown error" }
    return String(cString: p)
}

/// Turns an RPC reply into nothing (success) or a typed error.
func check(_ reply: amqp_rpc_reply_t, _ operation: @autoclosure () -> String) throws(AMQPError) {
    switch reply.reply_type {
    case AMQP_RESPONSE_NORMAL:
        return
    case AMQP_RESPONSE_NONE:
        throw AMQPError.library(operation: operation(), status: Int32(AMQP_STATUS_CONNECTION_CLOSED.rawValue),
                                message: "missing RPC reply (the socket was closed)")
    case AMQP_RESPONSE_LIBRARY_EXCEPTION:
        throw AMQPError.library(operation: operation(), status: reply.library_error,
                                message: statusText(reply.library_error))
    case AMQP_RESPONSE_SERVER_EXCEPTION:
        let (code, text) = serverReply(reply.reply)
        throw AMQPError.server(operation: operation(), replyCode: code, replyText: text)
    default:
        throw AMQPError.library(operation: operation(), status: -1, message: "unknown reply type")
    }
}

/// Reply code and text of a channel.close or connection.close method.
func serverReply(_ method: amqp_method_t) -> (UInt16, String) {
    switch method.id {
    case AMQP_CHANNEL_CLOSE_METHOD:
        let m = method.decoded.assumingMemoryBound(to: amqp_channel_close_t.self).pointee
        return (m.reply_code, m.reply_text.string)
    case AMQP_CONNECTION_CLOSE_METHOD:
        let m = method.decoded.assumingMemoryBound(to: amqp_connection_close_t.self).pointee
        return (m.reply_code, m.reply_text.string)
    default:
        return (0, "unexpected method 0x\(String(method.id, radix: 16))")
    }
}

extension amqp_bytes_t {
    /// Copies the bytes out as a String (UTF-8, lossy).
    var string: String {
        guard len > 0, let bytes else { return "" }
        return String(decoding: UnsafeRawBufferPointer(start: bytes, count: len), as: UTF8.self)
    }

    var array: [UInt8] {
        guard len > 0, let bytes else { return [] }
        return Array(UnsafeRawBufferPointer(start: bytes, count: len))
    }
}
