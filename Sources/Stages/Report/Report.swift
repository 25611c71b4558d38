import Columnar
import Foundation

/// What the report stage wrote, each file with its sha256.
public struct ReportResult: Sendable, Hashable, Codable {
    public var html: ReportFile
    /// One per summary table, in the summary's order.
    public var csv: [ReportFile]
    public var xlsx: ReportFile

    /// Every file: the page, the CSVs, the workbook.
    public var files: [ReportFile] { [html] + csv + [xlsx] }
}

public struct ReportFile: Sendable, Hashable, Codable {
    public var path: String
    public var sha256: String
    public var bytes: Int64
    /// For a CSV: the summary it holds; its data rows (without the header).
    public var summary: String?
    public var rows: Int64?

    public init(path: String, sha256: String, bytes: Int64, summary: String? = nil, rows: Int64? = nil) {
        self.path = path
        self.sha256 = sha256
        self.bytes = bytes
        self.summary = summary
        self.rows = rows
    }
}

public struct ReportOptions: Sendable, Hashable {
    /// Failing-row examples shown per rule.
    public var maxExamples = 5
    /// Rows of a summary table shown in the page (all are in the CSV and workbook).
    public var maxTableRows = 200

    public init() {}
}

/// A report that cannot be written as asked: says what is wrong and what to do.
public enum ReportError: Error, Sendable, Hashable, CustomStringConvertible {
    /// `main_aggregate` names no summary of the run.
    case unknownSummary(String, known: [String])
    /// `main_aggregate` names no aggregate column of its summary.
    case unknownAggregate(summary: String, column: String, known: [String])
    /// `main_aggregate` is not `summary.column`.
    case malformedMainAggregate(String)

    public var description: String {
        switch self {
        case .unknownSummary(let s, let known):
            return "main_aggregate names summary '\(s)', which the run does not have; it has \(known.isEmpty ? "none" : known.joined(separator: ", "))"
        case .unknownAggregate(let s, let c, let known):
            return "main_aggregate names '\(s).\(c)', but '\(c)' is not an aggregate of '\(s)'; its aggregates are \(known.isEmpty ? "none" : known.joined(separator: ", "))"
        case .malformedMainAggregate(let text):
            return "main_aggregate '\(text)' must be summary.column, e.g. by_country.revenue"
        }
    }
}

/// Which table and column the bar chart shows (indexes into `summaries`
/// and that table's `columns`).
struct MainAggregateChoice: Hashable {
    var table: Int
    var column: Int
}

/// File names of the report's outputs.
public enum ReportFiles {
    public static let html = "report.html"
    public static let xlsx = "report.xlsx"

    /// `<summary>.csv`, with any character other than letters, digits,
    /// `_`, `-` and `.` replaced by `_`.
    public static func csvName(_ summary: String) -> String {
        let safe = String(summary.unicodeScalars.map { c -> Character in
            (c.properties.isAlphabetic && c.isASCII) || ("0"..."9").contains(c) || "_-.".unicodeScalars.contains(c) ? Character(c) : "_"
        })
        return (safe.isEmpty || safe.hasPrefix(".") ? "summary" + safe : safe) + ".csv"
    }
}

/// The bar chart's table and column: `summary.mainAggregate` when set
/// (an error when it names no aggregate of the run's summaries), else the
/// first summary's first aggregate; nil when there are no summaries (a run
/// that failed before publish) or no aggregate columns.
func chooseMainAggregate(_ summary: RunSummary) throws(ReportError) -> MainAggregateChoice? {
    // A run that stopped before publish has no summaries: no chart, no error.
    if let wanted = summary.mainAggregate, !summary.summaries.isEmpty {
        guard let dot = wanted.lastIndex(of: "."), dot != wanted.startIndex, wanted.index(after: dot) != wanted.endIndex else {
            throw .malformedMainAggregate(wanted)
        }
        let name = String(wanted[..<dot]), column = String(wanted[wanted.index(after: dot)...])
        guard let t = summary.summaries.firstIndex(where: { $0.name == name }) else {
            throw .unknownSummary(name, known: summary.summaries.map(\.name))
        }
        let table = summary.summaries[t]
        guard table.aggregateColumns.contains(column), let c = table.columns.firstIndex(where: { $0.name == column }) else {
            throw .unknownAggregate(summary: name, column: column, known: table.aggregateColumns)
        }
        return MainAggregateChoice(table: t, column: c)
    }
    for (t, table) in summary.summaries.enumerated() {
        if let first = table.aggregateColumns.first, let c = table.columns.firstIndex(where: { $0.name == first }) {
            return MainAggregateChoice(table: t, column: c)
        }
        break   // the first summary's first aggregate, or no chart
    }
    return nil
}

/// The HTML page alone, as `writeReport` writes it.
public func reportHTML(_ summary: RunSummary, options: ReportOptions = ReportOptions()) throws -> String {
    ReportPage.html(summary, chart: try chooseMainAggregate(summary), options: options)
}

/// Writes the run's report into `dir` (created if needed):
/// `report.html` (self-contained: inline CSS and SVG, no script, no external
/// reference), one `<summary>.csv` per summary table and `report.xlsx`.
/// Each file is written to a temporary name, flushed to disk and renamed, so
/// a reader never sees half a file.
///
/// ```swift
/// let summary = try RunSummary(json: Data(contentsOf: URL(fileURLWithPath: "summary.json")))
/// let result = try writeReport(summary, to: "runs/r1/report/0/e1")
/// print(result.html.path, result.html.sha256)
/// ```
///
/// Throws `ReportError` when `main_aggregate` names no aggregate of the
/// run's summaries, or the file system's error.
public func writeReport(_ summary: RunSummary, to dir: String, options: ReportOptions = ReportOptions()) throws -> ReportResult {
    let chart = try chooseMainAggregate(summary)
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)

    let html = try writeAtomically(dir + "/" + ReportFiles.html) { tmp in
        try writeFile(tmp, Data(ReportPage.html(summary, chart: chart, options: options).utf8))
    }

    var csvs: [ReportFile] = []
    var usedNames = Set<String>()
    for table in summary.summaries {
        var name = ReportFiles.csvName(table.name)
        var n = 2
        while !usedNames.insert(name).inserted || name == ReportFiles.html || name == ReportFiles.xlsx {
            name = String(ReportFiles.csvName(table.name).dropLast(4)) + "-\(n).csv"
            n += 1
        }
        var file = try writeAtomically(dir + "/" + name) { tmp in
            try writeFile(tmp, Data(ReportCSV.text(table).utf8))
        }
        file.summary = table.name
        file.rows = Int64(table.rows.count)
        csvs.append(file)
    }

    let xlsx = try writeAtomically(dir + "/" + ReportFiles.xlsx) { tmp in
        try ReportWorkbook.write(summary, to: tmp)
    }
    return ReportResult(html: html, csv: csvs, xlsx: xlsx)
}

/// Calls `body` with a fresh temporary path beside `path`, flushes it to
/// disk, renames it to `path`, flushes the folder and returns its size and
/// sha256.
private func writeAtomically(_ path: String, _ body: (String) throws -> Void) throws -> ReportFile {
    let tmp = path + ".tmp-" + UUID().uuidString
    do {
        try body(tmp)
        let handle = try FileHandle(forUpdating: URL(fileURLWithPath: tmp))
        try handle.synchronize()
        try handle.close()
        if rename(tmp, path) != 0 {
            throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: path,
                NSLocalizedDescriptionKey: "cannot rename \(tmp) to \(path): \(String(cString: strerror(errno)))"])
        }
        // The rename is durable only once the folder is: a crash right after
        // it could otherwise leave the report without this file.
        try DurableFiles.sync((path as NSString).deletingLastPathComponent)
    } catch {
        try? FileManager.default.removeItem(atPath: tmp)
        throw error
    }
    let bytes = (try FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber)?.int64Value ?? 0
    return ReportFile(path: path, sha256: try sha256(ofFile: path), bytes: bytes)
}

private func writeFile(_ path: String, _ data: Data) throws {
    guard FileManager.default.createFile(atPath: path, contents: data) else {
        throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: path,
            NSLocalizedDescriptionKey: "cannot create \(path): \(String(cString: strerror(errno)))"])
    }
}
