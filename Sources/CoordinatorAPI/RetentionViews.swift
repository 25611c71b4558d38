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
/// `15m`, `2h`, `7d` (or `0s`: at once). The same text as the spec's
/// durations (`SpecDuration`).
public typealias RetentionDuration = DurationText
