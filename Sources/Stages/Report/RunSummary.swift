import Columnar
import Foundation

/// Everything the report stage shows about one run, assembled by the
/// coordinator from the lineage store and the stages' results. It is the
/// report's whole input: the report reads no chunk, queue or database.
///
/// JSON keys are snake_case; times are ISO 8601 text (`2026-11-26T18:15:00Z`,
/// fractional seconds allowed). Every list may be absent and then is empty.
///
/// ```json
/// {"pipeline": "orders-daily", "run_id": "orders-daily-20261126T181500Z-7f3a",
///  "title": "Orders", "started_at": "2026-11-26T18:15:00Z", "status": "succeeded",
///  "stages": [{"name": "ingest", "rows_in": 10, "rows_out": 9, "rows_quarantined": 1,
///              "duration_seconds": 0.4, "tasks": 2}],
///  "summaries": [{"name": "by_country", "group_by": ["country"],
///                 "columns": [{"name": "country", "type": "string"}, {"name": "revenue", "type": "number"}],
///                 "rows": [[{"string": "DE"}, {"number": "12.50"}]]}]}
/// ```
public struct RunSummary: Sendable, Hashable, Codable {
    public var pipeline: String
    public var runID: String
    /// The spec's `report: title`; the pipeline name when it has none.
    public var title: String
    public var startedAt: Date
    /// Nil while the run has not finished.
    public var finishedAt: Date?
    /// The run's state: `succeeded`, `failed`, `running`, … (shown as written).
    public var status: String
    /// In pipeline order.
    public var stages: [StageSummary]
    /// The validate stage's rules and gates, in spec order.
    public var gates: [GateResult]
    /// The published summary tables, in spec order.
    public var summaries: [SummaryTable]
    /// `summary.column`: the aggregate the bar chart shows (the spec's
    /// `report: main_aggregate`); nil means the first summary's first aggregate.
    public var mainAggregate: String?
    public var lineage: LineageSummary

    public init(pipeline: String, runID: String, title: String, startedAt: Date, finishedAt: Date? = nil,
                status: String, stages: [StageSummary] = [], gates: [GateResult] = [],
                summaries: [SummaryTable] = [], mainAggregate: String? = nil, lineage: LineageSummary = LineageSummary()) {
        self.pipeline = pipeline
        self.runID = runID
        self.title = title
        self.startedAt = startedAt
        self.finishedAt = finishedAt
        self.status = status
        self.stages = stages
        self.gates = gates
        self.summaries = summaries
        self.mainAggregate = mainAggregate
        self.lineage = lineage
    }

    private enum CodingKeys: String, CodingKey {
        case pipeline, runID = "run_id", title, startedAt = "started_at", finishedAt = "finished_at", status
        case stages, gates, summaries, mainAggregate = "main_aggregate", lineage
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        pipeline = try c.decode(String.self, forKey: .pipeline)
        runID = try c.decode(String.self, forKey: .runID)
        title = try c.decodeIfPresent(String.self, forKey: .title) ?? pipeline
        startedAt = try Self.time(try c.decode(String.self, forKey: .startedAt), c, .startedAt)
        finishedAt = try c.decodeIfPresent(String.self, forKey: .finishedAt).map { try Self.time($0, c, .finishedAt) }
        status = try c.decode(String.self, forKey: .status)
        stages = try c.decodeIfPresent([StageSummary].self, forKey: .stages) ?? []
        gates = try c.decodeIfPresent([GateResult].self, forKey: .gates) ?? []
        summaries = try c.decodeIfPresent([SummaryTable].self, forKey: .summaries) ?? []
        mainAggregate = try c.decodeIfPresent(String.self, forKey: .mainAggregate)
        lineage = try c.decodeIfPresent(LineageSummary.self, forKey: .lineage) ?? LineageSummary()
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(pipeline, forKey: .pipeline)
        try c.encode(runID, forKey: .runID)
        try c.encode(title, forKey: .title)
        try c.encode(ReportTime.iso(startedAt), forKey: .startedAt)
        try c.encodeIfPresent(finishedAt.map(ReportTime.iso), forKey: .finishedAt)
        try c.encode(status, forKey: .status)
        try c.encode(stages, forKey: .stages)
        try c.encode(gates, forKey: .gates)
        try c.encode(summaries, forKey: .summaries)
        try c.encodeIfPresent(mainAggregate, forKey: .mainAggregate)
        try c.encode(lineage, forKey: .lineage)
    }

    private static func time(_ text: String, _ c: KeyedDecodingContainer<CodingKeys>, _ key: CodingKeys) throws -> Date {
        guard let date = ReportTime.parse(text) else {
            throw DecodingError.dataCorruptedError(forKey: key, in: c,
                debugDescription: "'\(text)' is not an ISO 8601 time such as 2026-11-26T18:15:00Z")
        }
        return date
    }

    /// Reads a summary from JSON (what `bis stage run report --input` takes).
    public init(json: Data) throws {
        self = try JSONDecoder().decode(RunSummary.self, from: json)
    }

    /// Pretty, key-sorted JSON.
    public func jsonData() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(self)
    }
}

/// One stage of the run, summed over its tasks.
public struct StageSummary: Sendable, Hashable, Codable {
    /// ingest, normalize, consolidate, validate, publish, report or deliver.
    public var name: String
    public var rowsIn: Int64
    public var rowsOut: Int64
    public var rowsQuarantined: Int64
    /// Wall time from the stage's first task starting to its last finishing.
    public var durationSeconds: Double
    public var tasks: Int

    public init(name: String, rowsIn: Int64, rowsOut: Int64, rowsQuarantined: Int64 = 0,
                durationSeconds: Double, tasks: Int) {
        self.name = name
        self.rowsIn = rowsIn
        self.rowsOut = rowsOut
        self.rowsQuarantined = rowsQuarantined
        self.durationSeconds = durationSeconds
        self.tasks = tasks
    }

    private enum CodingKeys: String, CodingKey {
        case name, rowsIn = "rows_in", rowsOut = "rows_out", rowsQuarantined = "rows_quarantined"
        case durationSeconds = "duration_seconds", tasks
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        name = try c.decode(String.self, forKey: .name)
        rowsIn = try c.decode(Int64.self, forKey: .rowsIn)
        rowsOut = try c.decode(Int64.self, forKey: .rowsOut)
        rowsQuarantined = try c.decodeIfPresent(Int64.self, forKey: .rowsQuarantined) ?? 0
        durationSeconds = try c.decodeIfPresent(Double.self, forKey: .durationSeconds) ?? 0
        tasks = try c.decodeIfPresent(Int.self, forKey: .tasks) ?? 0
    }
}

/// One validate rule or run gate and how the run fared against it.
public struct GateResult: Sendable, Hashable, Codable {
    /// As the spec writes it, e.g. `not_null: [l_orderkey]` or `max_failure_rate: 5%`.
    public var rule: String
    public var passed: Bool
    public var failingRows: Int64
    /// Failing rows over rows checked, 0…1; nil when not meaningful (a row-count gate).
    public var rate: Double?
    /// The gate's limit as written (`5%`, `1000 rows`); nil for a plain rule.
    public var threshold: String?
    /// The order the examples' columns are shown in; nil: sorted by name.
    public var exampleColumns: [String]?
    /// A few failing rows, column → value as text (the validate stage keeps
    /// a bounded number; the report shows at most `ReportOptions.maxExamples`).
    public var examples: [[String: String]]

    public init(rule: String, passed: Bool, failingRows: Int64, rate: Double? = nil, threshold: String? = nil,
                exampleColumns: [String]? = nil, examples: [[String: String]] = []) {
        self.rule = rule
        self.passed = passed
        self.failingRows = failingRows
        self.rate = rate
        self.threshold = threshold
        self.exampleColumns = exampleColumns
        self.examples = examples
    }

    private enum CodingKeys: String, CodingKey {
        case rule, passed, failingRows = "failing_rows", rate, threshold, exampleColumns = "example_columns", examples
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        rule = try c.decode(String.self, forKey: .rule)
        passed = try c.decode(Bool.self, forKey: .passed)
        failingRows = try c.decodeIfPresent(Int64.self, forKey: .failingRows) ?? 0
        rate = try c.decodeIfPresent(Double.self, forKey: .rate)
        threshold = try c.decodeIfPresent(String.self, forKey: .threshold)
        exampleColumns = try c.decodeIfPresent([String].self, forKey: .exampleColumns)
        examples = try c.decodeIfPresent([[String: String]].self, forKey: .examples) ?? []
    }

    /// The examples' columns in display order.
    public var columnsShown: [String] {
        if let exampleColumns { return exampleColumns }
        return Set(examples.flatMap(\.keys)).sorted()
    }
}

/// Where the run's data came from and what it became.
public struct LineageSummary: Sendable, Hashable, Codable {
    public var inputs: [InputFile]
    public var datasets: [PublishedDataset]

    public init(inputs: [InputFile] = [], datasets: [PublishedDataset] = []) {
        self.inputs = inputs
        self.datasets = datasets
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        inputs = try c.decodeIfPresent([InputFile].self, forKey: .inputs) ?? []
        datasets = try c.decodeIfPresent([PublishedDataset].self, forKey: .datasets) ?? []
    }
}

/// One input file the run read.
public struct InputFile: Sendable, Hashable, Codable {
    public var path: String
    public var sha256: String
    public var bytes: Int64

    public init(path: String, sha256: String, bytes: Int64) {
        self.path = path
        self.sha256 = sha256
        self.bytes = bytes
    }
}

/// A dataset the run published: `published/<name>/<version>/_manifest.json`.
public struct PublishedDataset: Sendable, Hashable, Codable {
    public var name: String
    /// The run id that wrote this version.
    public var version: String
    public var manifestSHA256: String
    public var rows: Int64?
    /// `SchemaContract.hash` of the version's columns.
    public var schemaSHA256: String?

    public init(name: String, version: String, manifestSHA256: String, rows: Int64? = nil, schemaSHA256: String? = nil) {
        self.name = name
        self.version = version
        self.manifestSHA256 = manifestSHA256
        self.rows = rows
        self.schemaSHA256 = schemaSHA256
    }

    private enum CodingKeys: String, CodingKey {
        case name, version, manifestSHA256 = "manifest_sha256", rows, schemaSHA256 = "schema_sha256"
    }
}

/// ISO 8601 times as the report's JSON and pages write them.
enum ReportTime {
    static func iso(_ date: Date) -> String {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime]
        if date.timeIntervalSince1970.rounded(.down) != date.timeIntervalSince1970 {
            f.formatOptions.insert(.withFractionalSeconds)
        }
        return f.string(from: date)
    }

    static func parse(_ text: String) -> Date? {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime]
        if let d = f.date(from: text) { return d }
        f.formatOptions.insert(.withFractionalSeconds)
        return f.date(from: text)
    }

    /// `2026-11-26 18:15:00 UTC` for people.
    static func display(_ date: Date) -> String {
        let micros = Int64((date.timeIntervalSince1970 * 1_000_000).rounded())
        let text = ValueText.timestamp(micros: micros - micros % 1_000_000)
        return text.replacingOccurrences(of: "T", with: " ").replacingOccurrences(of: "Z", with: " UTC")
    }
}
