import FleetCore
import Foundation
import Yams

/// A receiver of alerts: where and in which form they are sent.
public struct AlertReceiver: Sendable, Hashable {
    public enum Kind: String, Sendable, Hashable, CaseIterable {
        /// The generic JSON payload (docs/alerts.md), signed when a secret is set.
        case webhook
        /// `{"text": …}`, Slack's incoming-webhook form.
        case slack
        /// Alertmanager's API: `POST <url>/api/v2/alerts`.
        case alertmanager
    }
    public var name: String
    public var kind: Kind
    public var url: String
    /// The HMAC-SHA256 key of the signature header; never logged nor shown.
    public var secret: [UInt8]?

    public init(name: String, kind: Kind, url: String, secret: [UInt8]? = nil) {
        self.name = name
        self.kind = kind
        self.url = url
        self.secret = secret
    }

    /// The URL as logs and `bis alerts` show it: scheme, host and port only
    /// (a Slack webhook's path is its secret).
    public var redactedURL: String { AlertReceiver.redact(url) }

    public static func redact(_ url: String) -> String {
        guard let c = URLComponents(string: url), let scheme = c.scheme, let host = c.host else { return "<a URL>" }
        let port = c.port.map { ":\($0)" } ?? ""
        let rest = (c.path.isEmpty || c.path == "/") && c.query == nil ? "" : "/…"
        return "\(scheme)://\(host)\(port)\(rest)"
    }
}

/// One route of `--alerts FILE`: alerts of pipelines matching `pipeline`
/// (a glob: `*`, `?`) and one of `on` go to `to`.
public struct AlertRoute: Sendable, Hashable {
    public var pipeline: String
    public var on: [AlertEvent]
    public var to: [String]

    public init(pipeline: String = "*", on: [AlertEvent] = AlertEvent.defaults, to: [String]) {
        self.pipeline = pipeline
        self.on = on
        self.to = to
    }

    /// An alert without a pipeline (a worker lost) matches only `*`.
    public func matches(pipeline name: String?, event: AlertEvent) -> Bool {
        guard on.contains(event) else { return false }
        guard let name else { return pipeline == "*" }
        return AlertRoute.glob(pipeline, matches: name)
    }

    static func glob(_ pattern: String, matches text: String) -> Bool {
        let p = Array(pattern), t = Array(text)
        var memo: [Int: Bool] = [:]
        func go(_ i: Int, _ j: Int) -> Bool {
            if let m = memo[i * (t.count + 1) + j] { return m }
            let r: Bool
            if i == p.count { r = j == t.count }
            else if p[i] == "*" { r = go(i + 1, j) || (j < t.count && go(i, j + 1)) }
            else { r = j < t.count && (p[i] == "?" || p[i] == t[j]) && go(i + 1, j + 1) }
            memo[i * (t.count + 1) + j] = r
            return r
        }
        return go(0, 0)
    }
}

/// `bis coordinator --alerts FILE` (YAML), the operators' routing:
///
/// ```yaml
/// receivers:
///   ops:   {webhook: https://hooks.example.com/bis, secret_env: BIS_ALERT_SECRET}   # or secret_file: /etc/bis/hook.key
///   chat:  {slack: https://hooks.slack.com/services/T0/B0/XXXX}
///   am:    {alertmanager: http://127.0.0.1:9093}
/// routes:
///   - {pipeline: "orders-*", on: [run_failed, deadline_missed], to: [ops, chat]}
///   - {to: [am]}                      # every pipeline, every event but run_succeeded
/// ```
public struct AlertsConfig: Sendable, Hashable {
    public var receivers: [String: AlertReceiver]
    public var routes: [AlertRoute]
    /// The receivers' `secret_file`s as read (absolute; a relative one is
    /// resolved against the alerts file's folder): the coordinator adds them
    /// to the files no spec may read.
    public var secretFiles: [String] = []

    public init(receivers: [String: AlertReceiver] = [:], routes: [AlertRoute] = []) {
        self.receivers = receivers
        self.routes = routes
    }

    public struct LoadError: Error, CustomStringConvertible {
        public let description: String
        init(_ file: String, _ message: String) { description = "\(file): \(message)" }
    }

    public static func load(path: String, environment: [String: String]) throws -> AlertsConfig {
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw LoadError(path, "cannot read it: \(error.localizedDescription)")
        }
        return try parse(text, file: path, environment: environment)
    }

    public static func parse(_ text: String, file: String, environment: [String: String]) throws -> AlertsConfig {
        let root: Any?
        do { root = try Yams.load(yaml: text) } catch { throw LoadError(file, "not valid YAML: \(error)") }
        guard let top = root as? [String: Any] else { throw LoadError(file, "must be a mapping with 'receivers' and 'routes'") }
        for key in top.keys where !["receivers", "routes"].contains(key) {
            throw LoadError(file, "unknown key '\(key)'; expected receivers, routes")
        }
        var config = AlertsConfig()
        let receivers = top["receivers"] as? [String: Any] ?? [:]
        if top["receivers"] != nil, top["receivers"] as? [String: Any] == nil {
            throw LoadError(file, "'receivers' must be a mapping of names to receivers")
        }
        for (name, value) in receivers {
            let at = "receiver '\(name)'"
            guard let r = value as? [String: Any] else { throw LoadError(file, "\(at) must be a mapping") }
            // `spec:notify[N]` names a spec's receiver: no configured name may look like one.
            if name.contains(":") { throw LoadError(file, "\(at): a receiver's name may not contain ':'") }
            let kinds = AlertReceiver.Kind.allCases.filter { r[$0.rawValue] != nil }
            guard kinds.count == 1, let kind = kinds.first, let url = r[kind.rawValue] as? String else {
                throw LoadError(file, "\(at) needs exactly one of webhook: URL, slack: URL, alertmanager: URL")
            }
            guard let u = URL(string: url), ["http", "https"].contains(u.scheme?.lowercased() ?? ""), u.host != nil else {
                throw LoadError(file, "\(at): '\(AlertReceiver.redact(url))' is not an http:// or https:// URL")
            }
            for key in r.keys where ![kind.rawValue, "format", "secret_env", "secret_file"].contains(key) {
                throw LoadError(file, "\(at): unknown key '\(key)'; expected \(kind.rawValue), format, secret_env, secret_file")
            }
            var finalKind = kind
            if let format = r["format"] {
                switch (kind, format as? String) {
                case (.webhook, "json"?): finalKind = .webhook
                case (.webhook, "slack"?): finalKind = .slack
                default: throw LoadError(file, "\(at): 'format' is json or slack, for a webhook")
                }
            }
            var secret: [UInt8]?
            if let env = r["secret_env"] {
                guard let name = env as? String, let value = environment[name], !value.isEmpty else {
                    throw LoadError(file, "\(at): secret_env names an environment variable that is not set")
                }
                secret = Array(value.utf8)
            }
            if let path = r["secret_file"] {
                guard let given = path as? String, !given.isEmpty else { throw LoadError(file, "\(at): cannot read secret_file") }
                let p = given.hasPrefix("/") ? given : ((file as NSString).deletingLastPathComponent as NSString).appendingPathComponent(given)
                config.secretFiles.append(p)
                guard let data = FileManager.default.contents(atPath: p) else {
                    throw LoadError(file, "\(at): cannot read secret_file")
                }
                var s = String(decoding: data, as: UTF8.self)
                while s.hasSuffix("\n") || s.hasSuffix("\r") { s.removeLast() }
                guard !s.isEmpty else { throw LoadError(file, "\(at): secret_file is empty") }
                secret = Array(s.utf8)
            }
            config.receivers[name] = AlertReceiver(name: name, kind: finalKind, url: url, secret: secret)
        }
        if top["routes"] != nil, top["routes"] as? [Any] == nil { throw LoadError(file, "'routes' must be a list") }
        for (i, value) in (top["routes"] as? [Any] ?? []).enumerated() {
            let at = "route \(i + 1)"
            guard let r = value as? [String: Any] else { throw LoadError(file, "\(at) must be a mapping") }
            for key in r.keys where !["pipeline", "on", "to"].contains(key) {
                throw LoadError(file, "\(at): unknown key '\(key)'; expected pipeline, on, to")
            }
            var route = AlertRoute(to: [])
            if let p = r["pipeline"] {
                guard let p = p as? String, !p.isEmpty else { throw LoadError(file, "\(at): 'pipeline' is a name or a glob") }
                route.pipeline = p
            }
            if let on = r["on"] {
                let names = (on as? [Any])?.compactMap { $0 as? String } ?? (on as? String).map { [$0] } ?? []
                route.on = try names.map { name in
                    guard let e = AlertEvent(rawValue: name) else {
                        throw LoadError(file, "\(at): unknown event '\(name)'; expected one of "
                                        + AlertEvent.allCases.map(\.rawValue).joined(separator: ", "))
                    }
                    return e
                }
            }
            route.to = (r["to"] as? [Any])?.compactMap { $0 as? String } ?? (r["to"] as? String).map { [$0] } ?? []
            guard !route.to.isEmpty else { throw LoadError(file, "\(at) needs 'to: [RECEIVER, …]'") }
            for name in route.to where config.receivers[name] == nil {
                throw LoadError(file, "\(at): no receiver named '\(name)'")
            }
            config.routes.append(route)
        }
        return config
    }

    /// The receivers' names for an alert of `pipeline`, in route order, each once.
    public func receivers(pipeline: String?, event: AlertEvent) -> [String] {
        var names: [String] = []
        for route in routes where route.matches(pipeline: pipeline, event: event) {
            for n in route.to where !names.contains(n) { names.append(n) }
        }
        return names
    }
}

/// TEST-ONLY fault points of the alert sender (`bis coordinator` wires
/// `BIS_TEST_ALERT_FAULT=before-send` to a SIGKILL).
public struct AlertFaults: Sendable {
    public enum Step: String, Sendable { case beforeSend = "before-send" }
    let hook: @Sendable (Step) -> Void
    public init(_ hook: @escaping @Sendable (Step) -> Void) { self.hook = hook }
    public static let none = AlertFaults { _ in }
}

/// The alert sender's and watcher's tunables (`CoordinatorOptions.alerts`).
public struct AlertOptions: Sendable {
    public var config = AlertsConfig()
    /// The dashboard's base URL for the alerts' links (`--public-url`, else `--http`'s).
    public var dashboardBase: String?
    /// The first retry's delay; each next doubles, up to `retryMax`.
    public var retryBase: Double = 1
    public var retryMax: Double = 300
    /// Attempts per delivery before it is given up (marked failed).
    public var maxAttempts = 40
    /// One request's timeout.
    public var requestTimeout: Double = 10
    /// `--queue-stall`: a stage's tasks queued this long with no worker taking them raise `queue_stalled`; nil for off.
    public var queueStallSeconds: Double?
    /// A worker silent this long while it holds tasks raises `worker_lost`.
    public var workerLostAfterSeconds: Double = 60
    /// How often deadlines, lost workers and stalled queues are checked.
    public var watchInterval: Duration = .seconds(1)
    /// The environment the spec's `secret_env` names are read from.
    public var environment: [String: String] = ProcessInfo.processInfo.environment
    public var faults = AlertFaults.none

    public init() {}
}

/// Never the secret nor the URL's path (a Slack webhook's path is its
/// secret), should a receiver be interpolated into a log or a failed test.
extension AlertReceiver: CustomStringConvertible, CustomDebugStringConvertible {
    public var description: String {
        "AlertReceiver(\(name), \(kind.rawValue), \(redactedURL), secret: \(secret == nil ? "none" : "set"))"
    }
    public var debugDescription: String { description }
}
