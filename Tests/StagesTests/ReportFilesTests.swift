import Columnar
import Foundation
import Testing
@testable import Stages

struct ReportFilesTests {
    @Test func csvIsRFC4180WithExactNumbers() {
        let csv = ReportCSV.text(sampleRunSummary().summaries[0])
        #expect(csv == "country,revenue,orders,first_day\r\n"
            + "DE,1234.50,10,2025-11-26\r\n"
            + "\"FR, \"\"Sud\"\"\",-250.25,3,2025-11-08\r\n"
            + "Ünïcødé <x>,987654321.05,12345,\r\n"
            + ",,0,1970-01-01\r\n"
            + "\"\",0.00,1,2025-11-27\r\n")
    }

    /// Text a spreadsheet would run as a formula is neutralised with a
    /// leading quote; numbers (a negative one too) stay numbers.
    @Test func csvTextCellsCannotBecomeFormulas() throws {
        let batch = try opBatch([
            ("name", .string, [.string("=HYPERLINK(\"http://x\",\"y\")"), .string("+1"), .string("-2"), .string("@SUM(A1)"),
                               .string("\tx"), .string("\rx"), .string("plain"), .string("a=b")]),
            ("n", .int64, [.int(-5), .int(1), .int(2), .int(3), .int(4), .int(5), .int(6), .int(7)]),
        ])
        let csv = ReportCSV.text(SummaryTable(name: "t", groupBy: ["name"], batch: batch))
        #expect(csv == "name,n\r\n"
            + "\"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\",-5\r\n"
            + "'+1,1\r\n"
            + "'-2,2\r\n"
            + "'@SUM(A1),3\r\n"
            + "'\tx,4\r\n"
            + "\"'\rx\",5\r\n"
            + "plain,6\r\n"
            + "a=b,7\r\n")
    }

    @Test func cellsFromAColumnBatchKeepExactText() throws {
        let batch = try opBatch([
            ("g", .string, [.string("a"), nil]),
            ("d", .decimal(precision: 18, scale: 3), [.int(-5), .int(123_456_789)]),
            ("x", .double, [.double(2.0), .double(0.1)]),
            ("n", .int32, [.int(7), nil]),
            ("day", .date, [.int(-1), .int(20_418)]),
            ("ts", .timestamp, [.int(1_500_000), nil]),
            ("b", .bool, [.bool(true), nil]),
        ])
        let t = SummaryTable(name: "t", groupBy: ["g"], batch: batch)
        #expect(t.columns.map(\.type) == [.string, .number, .number, .int, .date, .string, .string])
        #expect(t.rows[0] == [.string("a"), .number("-0.005"), .number("2"), .int(7), .date(days: -1), .string("1970-01-01T00:00:01.500000Z"), .string("true")])
        #expect(t.rows[1] == [.null, .number("123456.789"), .number("0.1"), .null, .date(days: 20_418), .null, .null])
        #expect(t.aggregateColumns == ["d", "x", "n", "day", "ts", "b"])
    }

    @Test func summaryRoundTripsThroughJSON() throws {
        let s = sampleRunSummary()
        let json = try s.jsonData()
        let text = String(decoding: json, as: UTF8.self)
        #expect(text.contains("\"started_at\" : \"2026-11-26T18:15:00Z\""))
        #expect(text.contains("{\n              \"number\" : \"1234.50\"\n            }") || text.contains("\"number\" : \"1234.50\""))
        #expect(text.contains("\"date\" : \"2025-11-26\""))
        #expect(try RunSummary(json: json) == s)
        // Lists may be left out; the title defaults to the pipeline.
        let minimal = try RunSummary(json: Data(#"{"pipeline":"p","run_id":"r","started_at":"2026-01-02T03:04:05.5Z","status":"running"}"#.utf8))
        #expect(minimal.title == "p" && minimal.stages.isEmpty && minimal.finishedAt == nil)
        #expect(minimal.startedAt.timeIntervalSince1970 == 1_767_323_045.5)
        #expect(throws: DecodingError.self) {
            try RunSummary(json: Data(#"{"pipeline":"p","run_id":"r","started_at":"yesterday","status":"x"}"#.utf8))
        }
        #expect(throws: DecodingError.self) {
            try RunSummary(json: Data(#"{"pipeline":"p","run_id":"r","started_at":"2026-01-02T03:04:05Z","status":"x","summaries":[{"name":"s","columns":[{"name":"a","type":"date"}],"rows":[[{"date":"2026-02-30"}]]}]}"#.utf8))
        }
    }

    @Test func writeReportWritesEveryFileWithItsChecksum() throws {
        let dir = try OpTempDir()
        defer { dir.cleanup() }
        let result = try writeReport(sampleRunSummary(), to: dir.file("out"))
        #expect(dir.entries("out") == ["by_country.csv", "by_day__x_.csv", "report.html", "report.xlsx"])
        #expect(result.csv.map(\.summary) == ["by_country", "by/day:[x]"])
        #expect(result.csv.map(\.rows) == [5, 2])
        for f in result.files {
            #expect(try sha256(ofFile: f.path) == f.sha256)
            #expect(f.bytes == (try FileManager.default.attributesOfItem(atPath: f.path)[.size] as? NSNumber)?.int64Value)
        }
        #expect(try String(contentsOfFile: result.csv[1].path, encoding: .utf8) == "day,avg_price\r\n2025-11-26,2.5\r\n2025-11-27,1e-05\r\n")
        // The same summary gives the same bytes, the workbook included.
        let again = try writeReport(sampleRunSummary(), to: dir.file("again"))
        #expect(again.files.map(\.sha256) == result.files.map(\.sha256))
    }

    @Test func sheetNamesAreValidAndUnique() {
        var used: Set<String> = ["run"]
        let names = ["by/day:[x]", "Run", String(repeating: "a", count: 40), String(repeating: "a", count: 35), "'quoted'", "RUN", "*?"]
            .map { ReportWorkbook.sheetName($0, used: &used) }
        #expect(names == ["by_day__x_", "Run~2", String(repeating: "a", count: 31), String(repeating: "a", count: 29) + "~2",
                          "quoted", "RUN~3", "__"])
        for n in names {
            #expect(n.count <= 31 && !n.contains { "[]:*?/\\".contains($0) })
        }
        #expect(ReportWorkbook.columnLetters(0) == "A" && ReportWorkbook.columnLetters(25) == "Z"
            && ReportWorkbook.columnLetters(26) == "AA" && ReportWorkbook.columnLetters(702) == "AAA")
        #expect(ReportWorkbook.serial(days: 0) == 25_569)
    }
}
