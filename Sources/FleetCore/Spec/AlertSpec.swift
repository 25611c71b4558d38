import Foundation
import Yams

/// `notify:` one receiver of the pipeline's alerts (docs/alerts.md).
public struct NotifySpec: Sendable, Hashable {
    public enum Format: String, Sendable, Hashable, CaseIterable {
        /// The generic JSON payload, signed when a secret is configured.
        case json
        /// Slack's incoming-webhook form, `{"text": …}`.
        case slack
        /// Alertmanager's `POST /api/v2/alerts`; the URL is Alertmanager's base.
        case alertmanager
    }
    public var webhook: String
    /// The events sent to it; `AlertEvent.defaults` when not given.
    public var on: [AlertEvent]
    public var format: Format
    /// The environment variable of the coordinator that holds the HMAC
    /// secret; its name starts with `secretEnvPrefix`.
    public var secretEnv: String?
    /// Where `secret_env` is in the spec, for the coordinator's refusal when
    /// the variable is not set in its environment.
    public var secretEnvLocation: SpecLocation?

    /// The only variables a spec may name: never the coordinator's other secrets.
    public static let secretEnvPrefix = "BIS_ALERT_SECRET_"

    public init(webhook: String, on: [AlertEvent] = AlertEvent.defaults, format: Format = .json, secretEnv: String? = nil) {
        self.webhook = webhook
        self.on = on
        self.format = format
        self.secretEnv = secretEnv
    }

    /// Equal by what it means (the location is only for messages).
    public static func == (a: NotifySpec, b: NotifySpec) -> Bool {
        (a.webhook, a.on, a.format, a.secretEnv) == (b.webhook, b.on, b.format, b.secretEnv)
    }

    public func hash(into h: inout Hasher) {
        h.combine(webhook)
        h.combine(on)
        h.combine(format)
        h.combine(secretEnv)
    }
}

/// `timeouts: {default: 1h, ingest: 10m}`: how long one execution of a stage may run.
public struct TimeoutsSpec: Sendable, Hashable {
    public var defaultSeconds: Double?
    public var byStage: [Stage: Double]

    public init(defaultSeconds: Double? = nil, byStage: [Stage: Double] = [:]) {
        self.defaultSeconds = defaultSeconds
        self.byStage = byStage
    }

    /// The stage's timeout in seconds, nil for none.
    public func seconds(for stage: Stage) -> Double? { byStage[stage] ?? defaultSeconds }
}

/// `deadline: {within: 2h, by: "06:30"}`: when the run must have finished.
public struct DeadlineSpec: Sendable, Hashable {
    public var withinSeconds: Double?
    /// Minutes after midnight, local time in the schedule's time zone (UTC
    /// for a pipeline without a schedule).
    public var byMinuteOfDay: Int?

    public init(withinSeconds: Double? = nil, byMinuteOfDay: Int? = nil) {
        self.withinSeconds = withinSeconds
        self.byMinuteOfDay = byMinuteOfDay
    }

    /// The deadline for a run whose base (its slot, or its submit time for
    /// an ad-hoc run) is `base` (seconds since 1970): the earlier of
    /// `base + within` and `by` on the base's local date in `timeZone`. A
    /// `by` that falls in a daylight-saving gap moves on by the gap's length
    /// (02:30 on a day the clock jumps from 02:00 to 03:00 is 03:30), as
    /// Foundation's calendar places it.
    public func due(base: Double, timeZone: TimeZone = TimeZone(identifier: "UTC")!) -> Double? {
        var candidates: [Double] = []
        if let w = withinSeconds { candidates.append(base + w) }
        if let m = byMinuteOfDay {
            var calendar = Calendar(identifier: .gregorian)
            calendar.timeZone = timeZone
            var day = calendar.dateComponents([.year, .month, .day], from: Date(timeIntervalSince1970: base))
            day.hour = m / 60
            day.minute = m % 60
            if let at = calendar.date(from: day) { candidates.append(at.timeIntervalSince1970) }
        }
        return candidates.min()
    }
}

/// Durations in the spec: a whole number and s, m, h or d (90s, 10m, 2h, 7d),
/// as the coordinator's own flags (`--keep-intermediate`) take them.
public typealias SpecDuration = DurationText

extension SpecLoader {
    static let notifyKeys = ["webhook", "on", "format", "secret_env"]
    static let deadlineKeys = ["within", "by"]

    mutating func duration(_ node: Node, _ what: String, positive: Bool = true) -> Double? {
        guard let text = string(node, what) else { return nil }
        guard let s = SpecDuration.seconds(text), !positive || s > 0 else {
            sink.add(node.location, "\(what) must be a duration: a whole number and s, m, h or d (90s, 10m, 2h), not '\(text)'")
            return nil
        }
        return s
    }

    mutating func loadNotify(_ node: Node) -> [NotifySpec] {
        guard let items = sequence(node, "'notify'") else { return [] }
        var result: [NotifySpec] = []
        for (i, item) in items.enumerated() {
            let context = "notify entry \(i + 1)"
            guard let entries = mapping(item, context) else { continue }
            checkKeys(entries, allowed: Self.notifyKeys, in: context)
            let byKey = Dictionary(entries.map { ($0.key, $0) }, uniquingKeysWith: { a, _ in a })
            var spec = NotifySpec(webhook: "")
            if let entry = byKey["webhook"] {
                if let url = string(entry.value, "'webhook' in \(context)") {
                    if let u = URL(string: url), ["http", "https"].contains(u.scheme?.lowercased() ?? ""), u.host != nil {
                        spec.webhook = url
                    } else {
                        sink.add(entry.value.location, "'webhook' in \(context) must be an http:// or https:// URL with a host")
                    }
                }
            } else {
                reportMissing("webhook", in: entries, allowed: Self.notifyKeys, at: item.location,
                              "\(context) needs 'webhook: URL'")
            }
            if let entry = byKey["on"] {
                var events: [AlertEvent] = []
                for name in stringList(entry.value, "'on' in \(context)", allowSingle: true) {
                    if let e = AlertEvent(rawValue: name.value) {
                        if !events.contains(e) { events.append(e) }
                    } else {
                        sink.add(name.location, "unknown event '\(name.value)' in 'on' of \(context); expected one of "
                                 + AlertEvent.allCases.map(\.rawValue).joined(separator: ", "))
                    }
                }
                spec.on = events
            }
            if let entry = byKey["format"], let f: NotifySpec.Format = choice(entry.value, "'format' in \(context)") {
                spec.format = f
            }
            if let entry = byKey["secret_env"], let name = string(entry.value, "'secret_env' in \(context)") {
                // Only variables meant for it: a spec must not make the
                // coordinator key an HMAC with its broker password or a token.
                if name.hasPrefix(NotifySpec.secretEnvPrefix), name.count > NotifySpec.secretEnvPrefix.count,
                   name.allSatisfy({ $0.isASCII && ($0.isUppercase || $0.isNumber || $0 == "_") }) {
                    spec.secretEnv = name
                    spec.secretEnvLocation = entry.value.location
                } else {
                    sink.add(entry.value.location, "'secret_env' in \(context) must name an environment variable "
                             + "\(NotifySpec.secretEnvPrefix)NAME (A-Z, 0-9, _), not '\(name)'")
                }
            }
            if !spec.webhook.isEmpty { result.append(spec) }
        }
        return result
    }

    mutating func loadTimeouts(_ node: Node) -> TimeoutsSpec? {
        guard let entries = mapping(node, "'timeouts'") else { return nil }
        let allowed = ["default"] + Stage.pipeline.map(\.rawValue)
        checkKeys(entries, allowed: allowed, in: "'timeouts'")
        var spec = TimeoutsSpec()
        for entry in entries where allowed.contains(entry.key) {
            guard let s = duration(entry.value, "timeout '\(entry.key)'") else { continue }
            if entry.key == "default" { spec.defaultSeconds = s } else if let stage = Stage(rawValue: entry.key) { spec.byStage[stage] = s }
        }
        return spec
    }

    mutating func loadDeadline(_ node: Node) -> DeadlineSpec? {
        guard let entries = mapping(node, "'deadline'") else { return nil }
        checkKeys(entries, allowed: Self.deadlineKeys, in: "'deadline'")
        let byKey = Dictionary(entries.map { ($0.key, $0) }, uniquingKeysWith: { a, _ in a })
        var spec = DeadlineSpec()
        if let entry = byKey["within"] { spec.withinSeconds = duration(entry.value, "'within' in 'deadline'") }
        if let entry = byKey["by"], let text = string(entry.value, "'by' in 'deadline'") {
            let parts = text.split(separator: ":", omittingEmptySubsequences: false)
            if parts.count == 2, parts[0].count == 2, parts[1].count == 2, let h = Int(parts[0]), let m = Int(parts[1]),
               (0..<24).contains(h), (0..<60).contains(m) {
                spec.byMinuteOfDay = h * 60 + m
            } else {
                sink.add(entry.value.location, "'by' in 'deadline' must be a wall time HH:MM (quote it: \"06:30\"), not '\(text)'")
            }
        }
        if byKey["within"] == nil, byKey["by"] == nil {
            sink.add(node.location, "'deadline' needs 'within: DURATION' (2h) or 'by: \"HH:MM\"'")
        }
        return spec
    }
}
