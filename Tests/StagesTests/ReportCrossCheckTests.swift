import Columnar
import Foundation
import Testing
@testable import Stages

/// The report's numbers against independent readers: openpyxl for the
/// workbook, DuckDB for the summary CSV, headless Chromium for the page.
struct ReportCrossCheckTests {
    static func json(_ output: String) throws -> [String: Any] {
        let line = output.split(separator: "\n").last.map(String.init) ?? ""
        return try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], "not JSON: \(output)")
    }

    @Test(.enabled(if: ReportTools.openpyxlEnabled, "no Python with openpyxl (set BIS_PYTHON or create .venv)"))
    func workbookOpensWithOpenpyxlWithNumbersAndDates() throws {
        let dir = try OpTempDir()
        defer { dir.cleanup() }
        let summary = sampleRunSummary()
        let result = try writeReport(summary, to: dir.path)
        func cell(_ c: ReportCell) -> Any {
            switch c {
            case .string(let s): return ["s": s]
            case .number(let s): return ["n": s]
            case .int(let v): return ["i": v]
            case .date(let d): return ["d": ValueText.date(days: d)]
            case .null: return NSNull()
            }
        }
        let expected: [String: Any] = [
            "sheets": ["Run", "by_country", "by_day__x_"],
            "run_id": summary.runID,
            "started_at": "2026-11-26T18:15:00",
            "first_input_bytes": summary.lineage.inputs[0].bytes,
            "tables": zip(["by_country", "by_day__x_"], summary.summaries).map { sheet, table in
                ["sheet": sheet, "rows": [table.columns.map { ["s": $0.name] }] + table.rows.map { $0.map(cell) }] as [String: Any]
            },
        ]
        let expectedPath = dir.file("expected.json")
        try JSONSerialization.data(withJSONObject: expected).write(to: URL(fileURLWithPath: expectedPath))
        let python = try #require(ReportTools.openpyxlPython, "BIS_REQUIRE_PYTHON=1 but no Python with openpyxl: set BIS_PYTHON")
        let r = try StagesPython.run(python, [StagesPython.scripts + "/check_report_xlsx.py", result.xlsx.path, expectedPath])
        #expect(r.status == 0, "\(r.output)")
        let report = try Self.json(r.output)
        #expect(report["ok"] as? Bool == true, "\(report["mismatches"] ?? r.output)")
    }

    /// Rows for the summary: groups with texts that need quoting, an empty
    /// text, nulls, negative decimals, dates.
    static func orders(rows: Int, seed: UInt64) throws -> ColumnBatch {
        var rng = OpRandom(seed: seed)
        let regions = ["north", "South, East", "say \"hi\"", "", "ä日本", "line\nbreak"]
        return try opBatch([
            ("region", .string, (0..<rows).map { _ in rng.chance(0.05) ? nil : .string(regions[rng.int(0...regions.count - 1)]) }),
            ("day", .date, (0..<rows).map { _ in rng.chance(0.03) ? nil : .int(Int64(rng.int(20_400...20_403))) }),
            ("amount", .decimal(precision: 12, scale: 2), (0..<rows).map { _ in rng.chance(0.1) ? nil : .int(Int64(rng.int(-900_000...5_000_000))) }),
            ("qty", .int64, (0..<rows).map { _ in .int(Int64(rng.int(-3...40))) }),
            ("shipped", .date, (0..<rows).map { _ in rng.chance(0.2) ? nil : .int(Int64(rng.int(20_000...20_500))) }),
        ])
    }

    @Test(.enabled(if: StagesPython.enabled, "no Python with duckdb (set BIS_PYTHON or create .venv)"))
    func summaryCSVEqualsDuckDBGroupBy() throws {
        let dir = try OpTempDir()
        defer { dir.cleanup() }
        // Two partitions' chunks, aggregated separately and merged, as validate and publish do.
        let a = try opWriteChunk(dir.file("p0.parquet"), [try Self.orders(rows: 3000, seed: 7)], rowGroupRows: 700).path
        let b = try opWriteChunk(dir.file("p1.parquet"), [try Self.orders(rows: 2000, seed: 8)], rowGroupRows: 700).path
        let aggregates = [AggregateColumn("orders", .count), AggregateColumn("revenue", .sum("amount")),
                          AggregateColumn("qty", .sum("qty")), AggregateColumn("priced", .countNonNull("amount")),
                          AggregateColumn("smallest", .min("amount")), AggregateColumn("last_shipped", .max("shipped"))]
        var partial = try #require(try partialAggregate(chunks: [a], groupBy: ["region", "day"], aggregates: aggregates))
        try partial.merge(try #require(try partialAggregate(chunks: [b], groupBy: ["region", "day"], aggregates: aggregates)))
        let table = SummaryTable(name: "by_region_day", groupBy: ["region", "day"], batch: try partial.result())
        #expect(table.rows.count > 20)

        var summary = sampleRunSummary()
        summary.summaries = [table]
        summary.mainAggregate = nil
        let result = try writeReport(summary, to: dir.file("report"))
        // One file for DuckDB to group: both partitions' rows.
        let all = try opWriteChunk(dir.file("all.parquet"), [try Self.orders(rows: 3000, seed: 7), try Self.orders(rows: 2000, seed: 8)]).path
        let query = """
            SELECT region, day, count(*) AS orders, sum(amount) AS revenue, sum(qty) AS qty, count(amount) AS priced,
                   min(amount) AS smallest, max(shipped) AS last_shipped
            FROM t GROUP BY region, day ORDER BY region NULLS FIRST, day NULLS FIRST
            """
        let r = try StagesPython.script("check_report_csv.py", [all, result.csv[0].path, query])
        #expect(r.status == 0, "\(r.output)")
        let report = try Self.json(r.output)
        #expect(report["ok"] as? Bool == true, "\(report["mismatches"] ?? r.output)")
        #expect(report["rows"] as? Int == table.rows.count)
        // The chart caps the groups and says so.
        let html = try String(contentsOfFile: result.html.path, encoding: .utf8)
        #expect(try ReportHTMLTests.bars(html).count == 20)
        #expect(html.contains("more are in the table below and in by_region_day.csv"))
    }

    @Test(.enabled(if: ReportTools.chromiumEnabled, "no chromium (ops/setup installs it; BIS_REQUIRE_CHROMIUM=1 to insist)"))
    func reportRendersInHeadlessChromium() throws {
        let dir = try OpTempDir()
        defer { dir.cleanup() }
        let result = try writeReport(sampleRunSummary(), to: dir.path)
        let png = dir.file("shots/report.png")
        let r = try StagesPython.run("/bin/bash", [StagesPython.packageRoot + "/ops/render-report", result.html.path, png, "1024x1400"])
        #expect(r.status == 0, "\(r.output)")
        let python = try #require(ReportTools.anyPython, "no python3 to decode the PNG")
        let check = try StagesPython.run(python, [StagesPython.scripts + "/check_png.py", png])
        #expect(check.status == 0, "\(check.output)")
        let info = try Self.json(check.output)
        #expect(info["width"] as? Int == 1024 && info["height"] as? Int == 1400)
        // Text, tables, bars and the badge's colors: far more than a blank page's one.
        #expect((info["colors"] as? Int ?? 0) > 50, "\(info)")
        #expect((info["non_white"] as? Double ?? 0) > 0.01, "\(info)")
    }
}
