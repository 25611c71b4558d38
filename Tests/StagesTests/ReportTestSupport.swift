import Foundation
import TestSupport
@testable import Stages

/// A run summary with a bit of everything: texts that need escaping, a
/// failing gate with examples, negative and null aggregates, dates.
func sampleRunSummary() -> RunSummary {
    let started = Date(timeIntervalSince1970: 1_795_716_900)   // 2026-11-26T18:15:00Z
    return RunSummary(
        pipeline: "orders-daily",
        runID: "orders-daily-20261126T181500Z-7f3a",
        title: "Orders <daily> & \"friends\"",
        startedAt: started,
        finishedAt: started.addingTimeInterval(83.5),
        status: "failed",
        stages: [
            StageSummary(name: "ingest", rowsIn: 1_234_567, rowsOut: 1_234_560, rowsQuarantined: 7, durationSeconds: 12.5, tasks: 4),
            StageSummary(name: "normalize", rowsIn: 1_234_560, rowsOut: 1_200_000, durationSeconds: 8.25, tasks: 4),
            StageSummary(name: "consolidate", rowsIn: 1_200_000, rowsOut: 1_199_990, durationSeconds: 20, tasks: 2),
            StageSummary(name: "validate", rowsIn: 1_199_990, rowsOut: 1_199_000, rowsQuarantined: 990, durationSeconds: 5, tasks: 2),
        ],
        gates: [
            GateResult(rule: "not_null: [order_id]", passed: true, failingRows: 0, rate: 0),
            GateResult(rule: "range: {column: discount, min: 0, max: 0.10}", passed: false, failingRows: 990,
                       rate: 0.000825, threshold: "max_failure_rate: 0.05%",
                       exampleColumns: ["order_id", "discount"],
                       examples: [["order_id": "17", "discount": "0.50"], ["order_id": "<b>42</b>", "discount": "-1.00"],
                                  ["order_id": "99"]]),
        ],
        summaries: [
            SummaryTable(name: "by_country", groupBy: ["country"],
                         columns: [SummaryColumn(name: "country", type: .string), SummaryColumn(name: "revenue", type: .number),
                                   SummaryColumn(name: "orders", type: .int), SummaryColumn(name: "first_day", type: .date)],
                         rows: [
                            [.string("DE"), .number("1234.50"), .int(10), .date(days: 20_418)],
                            [.string("FR, \"Sud\""), .number("-250.25"), .int(3), .date(days: 20_400)],
                            [.string("Ünïcødé <x>"), .number("987654321.05"), .int(12_345), .null],
                            [.null, .null, .int(0), .date(days: 0)],
                            [.string(""), .number("0.00"), .int(1), .date(days: 20_419)],
                         ]),
            SummaryTable(name: "by/day:[x]", groupBy: ["day"],
                         columns: [SummaryColumn(name: "day", type: .date), SummaryColumn(name: "avg_price", type: .number)],
                         rows: [[.date(days: 20_418), .number("2.5")], [.date(days: 20_419), .number("1e-05")]]),
        ],
        lineage: LineageSummary(
            inputs: [InputFile(path: "data/orders-2026-11-25.csv", sha256: String(repeating: "a1", count: 32), bytes: 52_000),
                     InputFile(path: "data/orders-<2026-11-26>.csv", sha256: String(repeating: "b2", count: 32), bytes: 61_234)],
            datasets: [PublishedDataset(name: "orders", version: "orders-daily-20261126T181500Z-7f3a",
                                        manifestSHA256: String(repeating: "c3", count: 32), rows: 1_199_000)]))
}

enum ReportTools {
    /// Python with openpyxl (see TestSupport's `PythonTool`).
    static let openpyxlPython: String? = PythonTool(importing: "openpyxl").interpreter
    static var openpyxlEnabled: Bool { openpyxlPython != nil || StagesPython.required }

    /// Any Python 3 (the PNG check needs only the standard library).
    static let anyPython: String? = {
        var candidates = [String]()
        if let p = ProcessInfo.processInfo.environment["BIS_PYTHON"], !p.isEmpty { candidates.append(p) }
        candidates += [StagesPython.packageRoot + "/.venv/bin/python", "/usr/bin/python3"]
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) }
    }()

    static let chromium: String? = {
        if let p = ProcessInfo.processInfo.environment["BIS_CHROMIUM"], !p.isEmpty { return p }
        return ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"]
            .first { FileManager.default.isExecutableFile(atPath: $0) }
    }()
    static var chromiumRequired: Bool { ProcessInfo.processInfo.environment["BIS_REQUIRE_CHROMIUM"] == "1" }
    static var chromiumEnabled: Bool { (chromium != nil && anyPython != nil) || chromiumRequired }

    /// Every match of `pattern`'s first capture group in `text`.
    static func captures(_ pattern: String, in text: String) throws -> [[String]] {
        let re = try NSRegularExpression(pattern: pattern)
        let ns = text as NSString
        return re.matches(in: text, range: NSRange(location: 0, length: ns.length)).map { m in
            (1..<m.numberOfRanges).map { ns.substring(with: m.range(at: $0)) }
        }
    }
}
