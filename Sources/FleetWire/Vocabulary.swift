import Foundation

/// The stages of a run, in order. `noop` is not a pipeline stage: it is the
/// empty task `ops/bench/dispatch` sends to measure the fleet's own cost per
/// handoff (a worker answers it at once).
public enum Stage: String, Codable, Sendable, CaseIterable, Comparable {
    case ingest, normalize, consolidate, validate, publish, report, deliver
    case noop

    /// The seven pipeline stages, in run order.
    public static let pipeline: [Stage] = [.ingest, .normalize, .consolidate, .validate, .publish, .report, .deliver]

    public var order: Int { Stage.allCases.firstIndex(of: self)! }
    public static func < (a: Stage, b: Stage) -> Bool { a.order < b.order }
}

/// Ids of runs and executions.
public enum FleetIDs {
    /// `<pipeline>-<UTC yyyyMMddTHHmmssZ>-<4 hex>`, as DESIGN.md's vocabulary shows.
    public static func newRunID(pipeline: String, now: Date = Date()) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let c = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: now)
        let stamp = String(format: "%04d%02d%02dT%02d%02d%02dZ", c.year!, c.month!, c.day!, c.hour!, c.minute!, c.second!)
        return "\(pipeline)-\(stamp)-\(String(format: "%04x", UInt16.random(in: 0...UInt16.max)))"
    }

    /// A random execution id: 16 hex digits.
    public static func newExecutionID() -> String {
        String(format: "%016llx", UInt64.random(in: 0...UInt64.max))
    }

    /// `run/stage/index`, the task's name in logs, events and the store.
    public static func taskID(run: String, stage: Stage, index: Int) -> String { "\(run)/\(stage.rawValue)/\(index)" }
}

/// A file the fleet knows by checksum: an input file (source) or a chunk an
/// execution wrote. Chunk paths are relative to the data root (the chunk
/// store every host mounts at the same place); source paths are absolute.
public struct ChunkRef: Codable, Sendable, Hashable {
    public enum Kind: String, Codable, Sendable {
        /// An input file the pipeline read (or a byte range of one: `range`).
        case source
        /// Rows handed to the next stage.
        case data
        /// Rows set aside with a reason (ingest, validate).
        case quarantine
        /// A stage's side result a later stage reads: validate's result and
        /// partial aggregates, publish's manifests.
        case result
        /// Report files (HTML, CSV, xlsx).
        case report
        /// Files a delivery wrote, and its receipt.
        case delivery
    }

    public var path: String
    public var sha256: String
    public var rows: Int64
    public var bytes: Int64
    public var kind: Kind
    /// normalize outputs, consolidate/validate inputs and outputs: the partition.
    public var partition: Int?
    /// A label: the source name for sources, the dataset or summary for results.
    public var name: String?

    public init(path: String, sha256: String, rows: Int64 = 0, bytes: Int64, kind: Kind, partition: Int? = nil, name: String? = nil) {
        self.path = path
        self.sha256 = sha256
        self.rows = rows
        self.bytes = bytes
        self.kind = kind
        self.partition = partition
        self.name = name
    }
}

/// What an ingest task reads: one shard of one source file.
public struct ShardRef: Codable, Sendable, Hashable {
    public var source: String
    /// Absolute path of the input file.
    public var path: String
    /// Byte range within the file; nil for the whole file.
    public var start: Int64?
    public var end: Int64?
    /// The physical line (1-based, counting the header) the range starts at;
    /// for a Parquet row group, the file row number of its first row.
    public var firstLine: Int64
    /// Parquet sources: the row group (0-based) the shard reads; nil for
    /// CSV and JSON Lines (and for a Parquet file without row groups).
    public var rowGroup: Int?

    public init(source: String, path: String, start: Int64? = nil, end: Int64? = nil, firstLine: Int64 = 1,
                rowGroup: Int? = nil) {
        self.source = source
        self.path = path
        self.start = start
        self.end = end
        self.firstLine = firstLine
        self.rowGroup = rowGroup
    }
}

/// The pipeline spec as the coordinator accepted it: the text and where it
/// came from, so a worker on any host parses exactly the same spec.
public struct SpecRef: Codable, Sendable, Hashable {
    public var text: String
    public var sha256: String
    /// The spec's path when submitted (named in errors).
    public var file: String
    /// Where its relative paths start.
    public var directory: String
    /// Folders inputs may come from besides `directory`.
    public var allowedRoots: [String]

    public init(text: String, sha256: String, file: String, directory: String, allowedRoots: [String] = []) {
        self.text = text
        self.sha256 = sha256
        self.file = file
        self.directory = directory
        self.allowedRoots = allowedRoots
    }
}

extension SpecRef {
    /// What a parsed spec depends on: its text (by hash) and where it was
    /// submitted from, which decides how its relative paths resolve and
    /// which roots its globs may reach. A cache of parsed specs keyed by the
    /// text alone would run the same text submitted from two folders with
    /// the first one's roots.
    public func parseKey(textHash: String) -> String {
        Self.parseKey(textHash: textHash, file: file, directory: directory, allowedRoots: allowedRoots)
    }

    /// The same key, for a spec known by its parts (the coordinator's run row).
    public static func parseKey(textHash: String, file: String, directory: String, allowedRoots: [String]) -> String {
        ([textHash, file, directory] + allowedRoots).joined(separator: "\u{0}")
    }
}

/// Who ran an execution.
public struct WorkerIdentity: Codable, Sendable, Hashable {
    /// `host:pid:random`, unique per worker process.
    public var id: String
    public var host: String
    public var pid: Int32
    public var version: String

    public init(id: String, host: String, pid: Int32, version: String) {
        self.id = id
        self.host = host
        self.pid = pid
        self.version = version
    }

    /// This process.
    public static func current(version: String = FleetVersion.string) -> WorkerIdentity {
        let host = ProcessInfo.processInfo.hostName
        let pid = getpid()
        return WorkerIdentity(id: "\(host):\(pid):\(String(format: "%04x", UInt16.random(in: 0...UInt16.max)))",
                              host: host, pid: pid, version: version)
    }
}
