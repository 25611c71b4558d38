import Columnar
import Foundation
import Testing
@testable import Stages

/// Reads what publish wrote through DuckDB, as a user would: the view file,
/// and the summary against DuckDB's own GROUP BY over the published rows.
@Suite(.enabled(if: StagesPython.enabled, "no Python with duckdb (set BIS_PYTHON or create .venv)"))
struct PublishCrossCheckTests {
    @Test func theViewReadsThePublishedRowsAndSummariesEqualDuckDBsGroupBy() throws {
        let f = try PublishFixture()
        defer { f.dir.cleanup() }
        let chunks = try f.chunks("a", count: 4, rows: 300, seed: 11)
        let r = try f.publishRun("run-1", chunks)
        let v = try f.duckdbView("orders")
        #expect(v.rows == 1200 && v.ids == Array(0..<1200))

        let check = try StagesPython.script("check_publish.py", [
            "summary", f.published + "/orders/view.sql", "orders", f.published + "/by_flag/view.sql", "by_flag",
            "flag", PublishFixture.duckdbAggregates,
        ])
        #expect(check.status == 0, "\(check.output)")
        let json = try JSONSerialization.jsonObject(with: Data(check.output.utf8)) as? [String: Any]
        #expect(json?["ok"] as? Bool == true, "\(check.output)")
        #expect(json?["groups"] as? Int == 4)
        #expect(r.summaries.first?.manifest.rows == 4)
    }

    @Test func aSummaryOverTwoColumnsEqualsDuckDB() throws {
        let f = try PublishFixture()
        defer { f.dir.cleanup() }
        let chunks = try f.chunks("a", count: 3, rows: 400, seed: 5)
        let partials = try chunks.map {
            try #require(try partialAggregate(chunks: [$0], groupBy: ["flag", "name"], aggregates: PublishFixture.summaryColumns))
        }
        _ = try publish(dataset: "orders", run: "r1", pipeline: "p", chunks: chunks, summaries: ["by_flag_name": partials],
                        root: f.root, retention: 2, now: Date())
        let check = try StagesPython.script("check_publish.py", [
            "summary", f.published + "/orders/view.sql", "orders", f.published + "/by_flag_name/view.sql", "by_flag_name",
            "flag,name", PublishFixture.duckdbAggregates,
        ])
        let json = try JSONSerialization.jsonObject(with: Data(check.output.utf8)) as? [String: Any]
        #expect(json?["ok"] as? Bool == true, "\(check.output)")
        #expect((json?["groups"] as? Int ?? 0) > 12)
    }

    @Test func anEmptyDatasetIsOneEmptyFileTheViewReads() throws {
        let f = try PublishFixture()
        defer { f.dir.cleanup() }
        let schema = Schema([Field("id", .int64), Field("name", .string)])
        let r = try publish(dataset: "orders", run: "r1", pipeline: "p", chunks: [], summaries: [:], root: f.root,
                            retention: 2, now: Date(), schema: schema)
        #expect(r.dataset.manifest.rows == 0 && r.dataset.manifest.files.count == 1)
        let v = try f.duckdbView("orders")
        #expect(v.rows == 0)
    }
}
