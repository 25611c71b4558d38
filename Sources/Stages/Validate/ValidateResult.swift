import Columnar
import Foundation

/// What one partition's validate found and wrote. Codable, so the
/// coordinator can store it and decide the run's gates over every
/// partition's result (`GateDecision.decide`).
public struct ValidateResult: Sendable, Codable, Equatable {
    public var partition: Int
    public var rowsIn: Int64
    public var rowsPassed: Int64
    /// Rows that failed at least one rule (each counted once here, and once
    /// under every rule it failed).
    public var rowsFailed: Int64
    /// Every row rule, in spec order, with its failures.
    public var rules: [RuleResult]
    /// The passing rows: `validated-00000.parquet`, … (none when no row passed).
    public var chunks: [ChunkRecord]
    /// `quarantine.parquet`, nil when every row passed.
    public var quarantine: ChunkRecord?
    /// Partial aggregates of the spec's summaries over the passing rows, in
    /// spec order; publish merges them across partitions.
    public var summaries: [SummaryPartial]

    public init(partition: Int, rowsIn: Int64, rowsPassed: Int64, rowsFailed: Int64, rules: [RuleResult],
                chunks: [ChunkRecord], quarantine: ChunkRecord?, summaries: [SummaryPartial]) {
        self.partition = partition
        self.rowsIn = rowsIn
        self.rowsPassed = rowsPassed
        self.rowsFailed = rowsFailed
        self.rules = rules
        self.chunks = chunks
        self.quarantine = quarantine
        self.summaries = summaries
    }

    /// Pretty JSON with sorted keys (as written to `validate-result.json`).
    public func jsonBytes() throws -> [UInt8] {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        e.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return Array(try e.encode(self))
    }

    public init(json: [UInt8]) throws {
        let d = JSONDecoder()
        d.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        self = try d.decode(ValidateResult.self, from: Data(json))
    }
}

/// One rule's failures in one partition.
public struct RuleResult: Sendable, Codable, Equatable {
    public var name: String
    public var failed: Int64
    /// The first failing rows (at most `ValidateOptions.examplesPerRule`), in input order.
    public var examples: [FailureExample]

    public init(name: String, failed: Int64, examples: [FailureExample]) {
        self.name = name
        self.failed = failed
        self.examples = examples
    }
}

/// A failing row as an operator reads it: the identifying columns and the
/// rule's columns, and why it failed.
public struct FailureExample: Sendable, Codable, Equatable {
    public var values: [ExampleValue]
    public var reason: String

    public init(values: [ExampleValue], reason: String) {
        self.values = values
        self.reason = reason
    }

    /// `{l_orderkey: 7, l_discount: 0.12}`.
    public var rowText: String {
        "{" + values.map { "\($0.column): \($0.value ?? "null")" }.joined(separator: ", ") + "}"
    }
}

/// A column's value as exact text (`ValueText`); nil is null.
public struct ExampleValue: Sendable, Codable, Equatable {
    public var column: String
    public var value: String?

    public init(column: String, value: String?) {
        self.column = column
        self.value = value
    }
}

/// A written chunk: what a chunk record in the lineage store needs.
public struct ChunkRecord: Sendable, Codable, Equatable {
    public var path: String
    public var sha256: String
    public var rows: Int64
    public var bytes: Int64

    public init(path: String, sha256: String, rows: Int64, bytes: Int64) {
        self.path = path
        self.sha256 = sha256
        self.rows = rows
        self.bytes = bytes
    }

    public init(_ w: WriteResult) {
        self.init(path: w.path, sha256: w.sha256, rows: w.rows, bytes: w.bytes)
    }
}

/// A summary's partial aggregate over one partition's passing rows.
public struct SummaryPartial: Sendable, Codable, Equatable {
    public var name: String
    public var partial: PartialAggregate

    public init(name: String, partial: PartialAggregate) {
        self.name = name
        self.partial = partial
    }
}

extension ValidateResult {
    /// Writes `jsonBytes()` to `path` durably (temp name, fsync, rename,
    /// fsync of the folder): `validate-result.json`.
    public func write(to path: String) throws {
        try DurableFiles.replace(path, with: try jsonBytes())
    }

    /// Writes `dir/validate-result.json` and, when the spec has summaries,
    /// their partial aggregates in the form publish reads
    /// (`dir/partition-NNNNN.partials.json`, see `PartialsFile`). Returns
    /// both paths.
    public func writeFiles(to dir: String) throws -> (result: String, partials: String?) {
        let resultPath = dir + "/validate-result.json"
        try write(to: resultPath)
        guard !summaries.isEmpty else { return (resultPath, nil) }
        let path = dir + "/partition-" + String(format: "%05d", partition) + ".partials.json"
        try PartialsFile.write(Dictionary(uniqueKeysWithValues: summaries.map { ($0.name, $0.partial) }), to: path)
        return (resultPath, path)
    }
}
