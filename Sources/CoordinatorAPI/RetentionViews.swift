import FleetWire
import Foundation

/// What one garbage-collection pass (`bis gc`, `GET`/`POST /api/gc`, the
/// coordinator's hourly pass) would remove or removed.
public struct GCReport: Codable, Sendable, Hashable {
    /// One folder removed (or to be).
    public struct Item: Codable, Sendable, Hashable {
        /// `intermediate`: a finished run's `runs/<run>/`; `version`: a
        /// published version `published/<dataset>/<run>/`.
        public var kind: String
        /// Relative to the data root.
        public var path: String
        public var run: String?
        public var dataset: String?
        /// Regular files under it and their bytes (a file hard-linked into a
        /// published version frees its blocks only with its last link).
        public var bytes: Int64
        public var files: Int
        /// Why it goes: the rule that let it.
        public var reason: String
        /// `removed`, `planned` (dry run), `kept` (found pointed at when its
        /// turn came: nothing touched) or `failed: …`.
        public var outcome: String

        public init(kind: String, path: String, run: String?, dataset: String?, bytes: Int64, files: Int,
                    reason: String, outcome: String) {
            self.kind = kind
            self.path = path
            self.run = run
            self.dataset = dataset
            self.bytes = bytes
            self.files = files
            self.reason = reason
            self.outcome = outcome
        }
    }

    public var dryRun: Bool
    public var at: Date
    public var items: [Item]
    /// Bytes and files of the items removed (planned, in a dry run).
    public var bytes: Int64
    public var files: Int
    /// Lineage rows of executions older than --keep-lineage: executions and
    /// their edges pruned (would be, in a dry run).
    public var lineageExecutionsPruned: Int
    public var lineageEdgesPruned: Int
    /// The retention in force, in seconds (the coordinator's --keep-* flags).
    public var keepIntermediateSeconds: Double
    public var keepDeliveredSeconds: Double
    public var keepLineageSeconds: Double

    public init(dryRun: Bool, at: Date, items: [Item] = [], bytes: Int64 = 0, files: Int = 0,
                lineageExecutionsPruned: Int = 0, lineageEdgesPruned: Int = 0,
                keepIntermediateSeconds: Double = 0, keepDeliveredSeconds: Double = 0, keepLineageSeconds: Double = 0) {
        self.dryRun = dryRun
        self.at = at
        self.items = items
        self.bytes = bytes
        self.files = files
        self.lineageExecutionsPruned = lineageExecutionsPruned
        self.lineageEdgesPruned = lineageEdgesPruned
        self.keepIntermediateSeconds = keepIntermediateSeconds
        self.keepDeliveredSeconds = keepDeliveredSeconds
        self.keepLineageSeconds = keepLineageSeconds
    }
}

/// Durations of the retention flags: a whole number and a unit, `90s`,
/// `15m`, `2h`, `7d` (or `0s`: at once).
public enum RetentionDuration {
    /// Seconds, or nil when `text` is not such a duration.
    public static func seconds(_ text: String) -> Double? {
        let t = text.trimmingCharacters(in: .whitespaces).lowercased()
        guard let unit = t.last, let n = Int(t.dropLast()), n >= 0 else { return nil }
        switch unit {
        case "s": return Double(n)
        case "m": return Double(n) * 60
        case "h": return Double(n) * 3600
        case "d": return Double(n) * 86400
        default: return nil
        }
    }

    /// `7d`, `2h`, `90s`: the largest unit that divides it.
    public static func text(_ seconds: Double) -> String {
        let s = Int(seconds)
        if s > 0, s % 86400 == 0 { return "\(s / 86400)d" }
        if s > 0, s % 3600 == 0 { return "\(s / 3600)h" }
        if s > 0, s % 60 == 0 { return "\(s / 60)m" }
        return "\(s)s"
    }
}
