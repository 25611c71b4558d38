#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import Logging

/// A swift-log handler that writes one JSON object per line to stderr, for
/// log shippers (`--log-format json`):
///
///     {"ts":"2026-12-05T00:31:02.417Z","level":"info","logger":"bis.coordinator",
///      "message":"run submitted","source":"Coordination","run.id":"orders-…", …}
///
/// (one line in the output). `ts` is UTC with milliseconds; `level` is
/// swift-log's name (trace, debug, info, notice, warning, error, critical);
/// `logger` the logger's label; `source` the module that logged. Then every
/// metadata key at the top level, as it is named (`run.id`, `task.id`,
/// `task.stage`, `execution.id`, `amqp.url` …: the dots are part of the
/// name, not nesting); nested metadata becomes JSON objects and arrays. A
/// metadata key that equals one of the five fixed keys is written as
/// `metadata.<key>` so that it never hides them.
///
/// The handler redacts nothing itself: it writes the same message and
/// metadata values the text handler writes, and those are redacted where
/// they are made (`AMQPURL`'s description, `AMQPURL.redact`, delivery URLs),
/// so both formats show exactly the same text.
public struct JSONLogHandler: LogHandler {
    public let label: String
    public var logLevel: Logger.Level = .info
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    private let write: @Sendable (String) -> Void

    /// A handler that writes each line with `write` (tests collect them).
    public init(label: String, metadataProvider: Logger.MetadataProvider? = nil,
                write: @escaping @Sendable (String) -> Void) {
        self.label = label
        self.metadataProvider = metadataProvider
        self.write = write
    }

    /// A handler writing to stderr, the text handler's stream.
    public static func standardError(label: String,
                                     metadataProvider: Logger.MetadataProvider? = LoggingSystem.metadataProvider) -> JSONLogHandler {
        JSONLogHandler(label: label, metadataProvider: metadataProvider, write: StandardError.write)
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var merged = metadata
        if let provided = metadataProvider?.get() { merged.merge(provided) { $1 } }
        if let explicit = event.metadata { merged.merge(explicit) { $1 } }
        if let error = event.error {   // as StreamLogHandler names it
            merged["error.message"] = "\(error)"
            merged["error.type"] = "\(String(reflecting: type(of: error)))"
        }
        write(Self.line(date: Date(), level: event.level, label: label, message: event.message.description,
                        source: event.source, metadata: merged))
    }

    /// The five fixed keys, in the order they are written.
    public static let fixedKeys = ["ts", "level", "logger", "message", "source"]

    /// One entry as a JSON object and a newline: the fixed keys first, then
    /// the metadata keys sorted, so lines are stable to read and to diff.
    public static func line(date: Date, level: Logger.Level, label: String, message: String, source: String,
                            metadata: Logger.Metadata) -> String {
        var out = "{"
        func field(_ key: String, _ value: String) {
            if out.count > 1 { out += "," }
            appendString(key, to: &out)
            out += ":"
            appendString(value, to: &out)
        }
        field("ts", timestamp(date))
        field("level", level.rawValue)
        field("logger", label)
        field("message", message)
        field("source", source)
        for key in metadata.keys.sorted() {
            out += ","
            appendString(fixedKeys.contains(key) ? "metadata." + key : key, to: &out)
            out += ":"
            appendValue(metadata[key]!, to: &out)
        }
        out += "}\n"
        return out
    }

    /// ISO 8601, UTC, milliseconds: 2026-12-05T00:31:02.417Z.
    public static func timestamp(_ date: Date) -> String {
        let ms = Int64((date.timeIntervalSince1970 * 1000).rounded(.down))
        var seconds = time_t(ms >= 0 ? ms / 1000 : (ms - 999) / 1000)
        let millis = Int(ms - Int64(seconds) * 1000)
        var tm = tm()
        gmtime_r(&seconds, &tm)
        func pad(_ n: Int, _ width: Int) -> String {
            let s = String(n)
            return s.count >= width ? s : String(repeating: "0", count: width - s.count) + s
        }
        return "\(pad(Int(tm.tm_year) + 1900, 4))-\(pad(Int(tm.tm_mon) + 1, 2))-\(pad(Int(tm.tm_mday), 2))"
            + "T\(pad(Int(tm.tm_hour), 2)):\(pad(Int(tm.tm_min), 2)):\(pad(Int(tm.tm_sec), 2)).\(pad(millis, 3))Z"
    }

    private static func appendValue(_ value: Logger.Metadata.Value, to out: inout String) {
        switch value {
        case .string(let s):
            appendString(s, to: &out)
        case .stringConvertible(let c):
            appendString(c.description, to: &out)
        case .array(let values):
            out += "["
            for (i, v) in values.enumerated() {
                if i > 0 { out += "," }
                appendValue(v, to: &out)
            }
            out += "]"
        case .dictionary(let dict):
            out += "{"
            for (i, key) in dict.keys.sorted().enumerated() {
                if i > 0 { out += "," }
                appendString(key, to: &out)
                out += ":"
                appendValue(dict[key]!, to: &out)
            }
            out += "}"
        }
    }

    /// A JSON string. Control characters are escaped (a newline in a message
    /// never splits the line), and so are U+2028 and U+2029, valid JSON that
    /// JavaScript and some line splitters take for line ends.
    static func appendString(_ s: String, to out: inout String) {
        out += "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{08}": out += "\\b"
            case "\u{0C}": out += "\\f"
            case "\u{2028}": out += "\\u2028"
            case "\u{2029}": out += "\\u2029"
            default:
                if scalar.value < 0x20 || scalar.value == 0x7F {
                    let hex = String(scalar.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        out += "\""
    }
}

/// Whole lines to fd 2 under one lock: lines from concurrent tasks never
/// interleave.
enum StandardError {
    private static let lock = NSLock()

    @Sendable static func write(_ line: String) {
        var bytes = Array(line.utf8)
        lock.lock()
        defer { lock.unlock() }
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeMutableBytes { buf in
                #if canImport(Glibc)
                Glibc.write(2, buf.baseAddress! + offset, buf.count - offset)
                #else
                Darwin.write(2, buf.baseAddress! + offset, buf.count - offset)
                #endif
            }
            if n < 0 {
                if errno == EINTR { continue }
                return
            }
            offset += n
        }
    }
}
