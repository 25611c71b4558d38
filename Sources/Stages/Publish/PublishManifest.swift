import Columnar
import FleetCore
import Foundation

/// `_manifest.json` of one published version: what it holds and where it
/// came from. Written with sorted keys and pretty-printed, so equal
/// manifests are equal bytes. Keys are snake_case:
///
/// ```json
/// {
///   "bis_version" : "0.1.0",
///   "bytes" : 5123,
///   "created" : "2026-11-27T03:40:00.000Z",
///   "dataset" : "orders",
///   "files" : [ { "bytes" : 5123, "name" : "part-00000.parquet", "rows" : 42, "sha256" : "…" } ],
///   "format_version" : 1,
///   "kind" : "dataset",
///   "pipeline" : "orders-daily",
///   "rows" : 42,
///   "run" : "orders-daily-20261127T034000Z-7f3a",
///   "schema" : [ { "name" : "order_id", "nullable" : false, "type" : "int64" } ]
/// }
/// ```
///
/// A summary's manifest has `"kind" : "summary"` and `"summary_of"`: the
/// dataset whose rows it aggregates.
public struct PublishManifest: Codable, Sendable, Equatable {
    public struct Column: Codable, Sendable, Equatable {
        public var name: String
        /// The spec's type names: int64, int32, double, bool, string, date,
        /// timestamp, decimal(p,s).
        public var type: String
        public var nullable: Bool
    }

    public struct File: Codable, Sendable, Equatable {
        /// The file name inside the version folder.
        public var name: String
        public var sha256: String
        public var rows: Int64
        public var bytes: Int64
    }

    public var formatVersion: Int
    public var pipeline: String
    public var run: String
    public var dataset: String
    /// "dataset" (the validated rows) or "summary".
    public var kind: String
    public var summaryOf: String?
    public var schema: [Column]
    public var files: [File]
    public var rows: Int64
    public var bytes: Int64
    /// ISO 8601 UTC with milliseconds, e.g. 2026-11-27T03:40:00.000Z.
    public var created: String
    public var bisVersion: String

    enum CodingKeys: String, CodingKey {
        case formatVersion = "format_version", pipeline, run, dataset, kind, summaryOf = "summary_of", schema, files,
             rows, bytes, created, bisVersion = "bis_version"
    }

    init(pipeline: String, run: String, dataset: String, kind: String, summaryOf: String?, schema: Schema,
         files: [File], created: Date) {
        formatVersion = 1
        self.pipeline = pipeline
        self.run = run
        self.dataset = dataset
        self.kind = kind
        self.summaryOf = summaryOf
        self.schema = schema.fields.map { Column(name: $0.name, type: $0.type.description, nullable: $0.nullable) }
        self.files = files
        rows = files.reduce(0) { $0 + $1.rows }
        bytes = files.reduce(0) { $0 + $1.bytes }
        self.created = PublishManifest.timestamp(created)
        bisVersion = FleetVersion.string
    }

    /// Whether two manifests describe the same version: everything but the
    /// creation time and the writing version.
    public func sameContent(as other: PublishManifest) -> Bool {
        difference(from: other) == nil
    }

    /// What differs in content, for the error message; nil when the same.
    func difference(from other: PublishManifest) -> String? {
        if pipeline != other.pipeline { return "pipeline '\(other.pipeline)' vs '\(pipeline)'" }
        if kind != other.kind || summaryOf != other.summaryOf { return "kind \(other.kind) vs \(kind)" }
        if schema != other.schema {
            return "schema \(other.schema.map { "\($0.name) \($0.type)" }) vs \(schema.map { "\($0.name) \($0.type)" })"
        }
        if files.count != other.files.count { return "\(other.files.count) files published vs \(files.count) now" }
        for (a, b) in zip(other.files, files) where a != b {
            return "\(a.name): sha256 \(a.sha256), \(a.rows) rows published vs sha256 \(b.sha256), \(b.rows) rows now"
        }
        return nil
    }

    public func jsonBytes() throws -> [UInt8] {
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return Array(try e.encode(self)) + [0x0A]
    }

    public init(json: [UInt8]) throws {
        self = try JSONDecoder().decode(PublishManifest.self, from: Data(json))
    }

    static func timestamp(_ date: Date) -> String {
        let f = ISO8601DateFormatter()
        f.timeZone = TimeZone(identifier: "UTC")
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return f.string(from: date)
    }
}
