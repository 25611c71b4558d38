import Logging

/// How `bis coordinator`, `bis run --local` and `bis-worker` write their
/// logs to stderr: `--log-format text|json`, else `$BIS_LOG_FORMAT` (for
/// systemd units), else text.
public enum LogFormat: String, CaseIterable, Sendable {
    /// swift-log's `StreamLogHandler` lines, the default.
    case text
    /// One JSON object per line (`JSONLogHandler`).
    case json

    /// The environment variable that gives the default.
    public static let environmentKey = "BIS_LOG_FORMAT"

    /// The format `flag` names, else the environment's, else text. An
    /// unknown name throws a message that says where it came from.
    public static func resolve(flag: String?, environment: [String: String]) throws(Invalid) -> LogFormat {
        if let flag {
            guard let f = LogFormat(rawValue: flag) else { throw Invalid(source: "--log-format", value: flag) }
            return f
        }
        if let value = environment[environmentKey], !value.isEmpty {
            guard let f = LogFormat(rawValue: value) else { throw Invalid(source: environmentKey, value: value) }
            return f
        }
        return .text
    }

    public struct Invalid: Error, CustomStringConvertible, Sendable {
        public let source: String
        public let value: String
        public var description: String {
            "\(source) '\(value)': the log format is text or json"
        }
    }

    /// Installs this format's handler for every logger of the process;
    /// `level` replaces the handlers' default (info) when given.
    public func bootstrap(level: Logger.Level? = nil) {
        switch self {
        case .text:
            LoggingSystem.bootstrap { label in
                var h = StreamLogHandler.standardError(label: label)
                if let level { h.logLevel = level }
                return h
            }
        case .json:
            LoggingSystem.bootstrap { label in
                var h = JSONLogHandler.standardError(label: label)
                if let level { h.logLevel = level }
                return h
            }
        }
    }
}
