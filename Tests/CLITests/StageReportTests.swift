import Foundation
import TestSupport
import Testing

@Suite struct StageReportTests {
    static let spec = ordersSpec + """
        publish:
          dataset: orders
          summaries:
            by_day:
              group_by: [day]
              aggregates:
                total: sum(amount)
                rows: count()
        report: {title: "Orders & more", main_aggregate: by_day.rows}

        """

    static let summary = """
        {"pipeline": "orders", "run_id": "orders-20260101T000000Z-0001", "started_at": "2026-01-01T00:00:00Z",
         "finished_at": "2026-01-01T00:01:00Z", "status": "succeeded",
         "stages": [{"name": "ingest", "rows_in": 3, "rows_out": 2, "rows_quarantined": 1, "duration_seconds": 0.5, "tasks": 1}],
         "summaries": [{"name": "by_day", "group_by": ["day"],
                        "columns": [{"name": "day", "type": "date"}, {"name": "total", "type": "number"}, {"name": "rows", "type": "int"}],
                        "rows": [[{"date": "2026-01-01"}, {"number": "10.50"}, {"int": 1}],
                                 [{"date": "2026-01-03"}, {"number": "7.25"}, {"int": 1}]]}]}
        """

    @Test func reportWritesThePageCSVAndWorkbookFromASummary() throws {
        let ws = try Workspace()
        defer { ws.remove() }
        try ws.write("p.yml", Self.spec)
        try ws.write("summary.json", Self.summary)
        let r = try Bis.run(["stage", "run", "report", "--spec", "p.yml", "--input", "summary.json", "--out", "rep", "--json"], in: ws.path)
        #expect(r.status == 0, "\(r.stderr)")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any], "\(r.stdout)")
        let paths = (json["outputs"] as? [[String: Any]] ?? []).compactMap { $0["path"] as? String }
        #expect(paths.map { ($0 as NSString).lastPathComponent } == ["report.html", "by_day.csv", "report.xlsx"])
        let csv = try String(contentsOfFile: ws.path + "/rep/by_day.csv", encoding: .utf8)
        #expect(csv == "day,total,rows\r\n2026-01-01,10.50,1\r\n2026-01-03,7.25,1\r\n")
        let html = try String(contentsOfFile: ws.path + "/rep/report.html", encoding: .utf8)
        #expect(html.contains("<h1>Orders &amp; more</h1>"))   // the spec's title
        #expect(html.contains("by_day: rows by day"))            // the spec's main aggregate
    }

    @Test func aBadSummaryExitsWith2AndSaysWhere() throws {
        let ws = try Workspace()
        defer { ws.remove() }
        try ws.write("p.yml", Self.spec)
        try ws.write("summary.json", Self.summary.replacingOccurrences(of: "\"2026-01-03\"", with: "\"2026-02-30\""))
        let r = try Bis.run(["stage", "run", "report", "--spec", "p.yml", "--input", "summary.json", "--out", "rep"], in: ws.path)
        #expect(r.status == 2)
        #expect(r.stderr.contains("'2026-02-30' is not a date YYYY-MM-DD") && r.stderr.contains("summaries"), "\(r.stderr)")
    }
}
