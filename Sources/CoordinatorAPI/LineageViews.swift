import Foundation
import FleetWire

/// One node of a lineage tree: a chunk (or source file, or published
/// manifest) and the execution that wrote it, with that execution's inputs
/// as children — down to the input files.
public struct LineageNode: Codable, Sendable, Hashable {
    public var kind: ChunkRef.Kind
    public var path: String
    public var sha256: String
    public var rows: Int64
    public var bytes: Int64
    public var name: String?
    /// The execution that wrote it (nil for input files).
    public var producedBy: ProducedBy?
    public var inputs: [LineageNode]
    /// When retention (`bis gc`) removed the chunk's file; the lineage row stays.
    public var removedAt: Date?

    public struct ProducedBy: Codable, Sendable, Hashable {
        public var run: String
        public var stage: Stage
        public var task: String
        public var execution: String
        public var worker: String?
        public var attempt: Int

        public init(run: String, stage: Stage, task: String, execution: String, worker: String?, attempt: Int) {
            self.run = run
            self.stage = stage
            self.task = task
            self.execution = execution
            self.worker = worker
            self.attempt = attempt
        }
    }

    public init(kind: ChunkRef.Kind, path: String, sha256: String, rows: Int64, bytes: Int64, name: String?,
                producedBy: ProducedBy?, inputs: [LineageNode], removedAt: Date? = nil) {
        self.removedAt = removedAt
        self.kind = kind
        self.path = path
        self.sha256 = sha256
        self.rows = rows
        self.bytes = bytes
        self.name = name
        self.producedBy = producedBy
        self.inputs = inputs
    }
}

/// Every run, dataset version and delivery that used one input file.
public struct ImpactReport: Codable, Sendable, Hashable {
    public struct RunUse: Codable, Sendable, Hashable {
        public var run: String
        public var pipeline: String
        public var state: RunState
        public var file: String
        public var sha256: String
        /// dataset → version folder (relative to the data root).
        public var datasets: [String: String]
        public var deliveries: [String]

        public init(run: String, pipeline: String, state: RunState, file: String, sha256: String,
                    datasets: [String: String], deliveries: [String]) {
            self.run = run
            self.pipeline = pipeline
            self.state = state
            self.file = file
            self.sha256 = sha256
            self.datasets = datasets
            self.deliveries = deliveries
        }
    }
    public var query: String
    public var runs: [RunUse]

    public init(query: String, runs: [RunUse]) {
        self.query = query
        self.runs = runs
    }
}

/// One quarantined row, from ingest (a value that did not parse), normalize (a value a cast could not convert) or validate (a rule it failed).
public struct QuarantinedRow: Codable, Sendable, Hashable {
    public var stage: Stage
    /// The input file and the physical line where the row's record starts
    /// (ingest's as it parsed; normalize's and validate's from the row's
    /// provenance columns; nil only for a quarantine chunk written before
    /// rows carried them).
    public var file: String?
    public var line: Int64?
    public var column: String?
    /// ingest: `parse`; normalize: `cast`; validate: the rule's name(s).
    public var rule: String
    public var reason: String
    /// The row as it was (ingest: the raw CSV/JSON text; normalize: the value that did not convert; validate: its values).
    public var row: String
    public var chunk: String

    public init(stage: Stage, file: String?, line: Int64?, column: String?, rule: String, reason: String, row: String, chunk: String) {
        self.stage = stage
        self.file = file
        self.line = line
        self.column = column
        self.rule = rule
        self.reason = reason
        self.row = row
        self.chunk = chunk
    }
}
