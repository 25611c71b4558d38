import Foundation
import Testing
@testable import Stages

struct ReportHTMLTests {
    @Test func pageIsSelfContainedAndEscaped() throws {
        let html = try reportHTML(sampleRunSummary())
        #expect(html.hasPrefix("<!DOCTYPE html>"))
        for forbidden in ["http://", "https://", "src=", "<script", "<link", "@import", "url("] {
            #expect(!html.contains(forbidden), "the page must not reference \(forbidden)")
        }
        #expect(html.contains("<style>") && html.contains("<svg"))
        // Every text from the summary arrives escaped, never as markup.
        #expect(html.contains("Orders &lt;daily&gt; &amp; &quot;friends&quot;"))
        #expect(!html.contains("<daily>"))
        #expect(html.contains("&lt;b&gt;42&lt;/b&gt;") && !html.contains("<b>42</b>"))
        #expect(html.contains("Ünïcødé &lt;x&gt;"))
        #expect(html.contains("FR, &quot;Sud&quot;"))
        #expect(html.contains("data/orders-&lt;2026-11-26&gt;.csv"))
    }

    @Test func pageShowsTheNumbers() throws {
        let s = sampleRunSummary()
        let html = try reportHTML(s)
        // Stage counts (grouped), durations, the run's times.
        for text in ["1,234,567", "1,234,560", "1,199,990", "990", "12.5 s", "8.25 s", "20.0 s", "1 min 24 s",
                     "2026-11-26 18:15:00 UTC", "orders-daily-20261126T181500Z-7f3a"] {
            #expect(html.contains(text), "missing \(text)")
        }
        // Gates: pass and fail, rate as a percentage, the threshold, examples.
        #expect(html.contains("PASS") && html.contains("FAIL"))
        #expect(html.contains("0.08 %") && html.contains("max_failure_rate: 0.05%"))
        #expect(html.contains("<td>0.50</td>") && html.contains("<td>-1.00</td>"))
        #expect(html.contains("1 of 2 passed"))
        // Summary cells exactly as their text; dates ISO; null marked.
        for text in ["1234.50", "-250.25", "987654321.05", "12345", "2025-11-26", "1970-01-01", "1e-05", ">null<"] {
            #expect(html.contains(text), "missing \(text)")
        }
        // Lineage.
        #expect(html.contains(String(repeating: "c3", count: 32)) && html.contains("113,234 bytes"))
    }

    /// The bars of the chart in the page: (height, y, data-value).
    static func bars(_ html: String) throws -> [(height: Double, y: Double, value: String)] {
        try ReportTools.captures(#"<rect class="bar[^"]*" x="[^"]*" y="([^"]*)" width="[^"]*" height="([^"]*)" data-value="([^"]*)""#, in: html)
            .map { (Double($0[1])!, Double($0[0])!, $0[2]) }
    }

    @Test func barHeightsAreProportionalToValuesIncludingNegatives() throws {
        let html = try reportHTML(sampleRunSummary())
        let bars = try Self.bars(html)
        // by_country.revenue: the null group is not drawn; the rest are, in table order.
        #expect(bars.map(\.value) == ["1234.50", "-250.25", "987654321.05", "0.00"])
        let perUnit = bars[2].height / 987654321.05
        for bar in bars {
            let v = abs(Double(bar.value)!)
            #expect(abs(bar.height - v * perUnit) <= 0.011, "bar \(bar.value): height \(bar.height), expected \(v * perUnit)")
        }
        // The negative bar hangs from the zero line; the positive ones stand on it.
        let zero = bars[0].y + bars[0].height
        #expect(abs(bars[1].y - zero) < 0.02)
        #expect(abs(bars[2].y + bars[2].height - zero) < 0.02)
        #expect(html.contains("1 group has no value (null)"))
    }

    @Test func manyGroupsAreCappedAtTheLargestTwenty() throws {
        var s = sampleRunSummary()
        var rows: [[ReportCell]] = []
        for i in 1...35 {
            let v: Int = i % 2 == 0 ? i * 10 : -i * 10
            rows.append([ReportCell.int(Int64(i)), ReportCell.int(Int64(v))])
        }
        let columns = [SummaryColumn(name: "g", type: .int), SummaryColumn(name: "v", type: .int)]
        s.summaries = [SummaryTable(name: "many", groupBy: ["g"], columns: columns, rows: rows)]
        let html = try reportHTML(s)
        let bars = try Self.bars(html)
        #expect(bars.count == 20)
        // The 20 largest by magnitude are 16…35, in table order.
        let expected: [String] = (16...35).map { (i: Int) -> String in String(i % 2 == 0 ? i * 10 : -i * 10) }
        #expect(bars.map(\.value) == expected)
        #expect(html.contains("15 more are in the table below"))
        let perUnit = bars[0].height / 160
        for bar in bars { #expect(abs(bar.height - abs(Double(bar.value)!) * perUnit) <= 0.011) }
        #expect(html.contains("<rect class=\"bar negative\""))
    }

    @Test func mainAggregateChoosesTheChartAndBadNamesAreErrors() throws {
        var s = sampleRunSummary()
        s.mainAggregate = "by_country.orders"
        #expect(try Self.bars(try reportHTML(s)).map(\.value) == ["10", "3", "12345", "0", "1"])
        s.mainAggregate = "by_country.country"
        #expect(throws: ReportError.unknownAggregate(summary: "by_country", column: "country", known: ["revenue", "orders", "first_day"])) {
            try reportHTML(s)
        }
        s.mainAggregate = "by_countyr.revenue"
        #expect(throws: ReportError.unknownSummary("by_countyr", known: ["by_country", "by/day:[x]"])) { try reportHTML(s) }
        s.mainAggregate = "revenue"
        #expect(throws: ReportError.malformedMainAggregate("revenue")) { try reportHTML(s) }
        // A date aggregate has no bars, and says so.
        s.mainAggregate = "by_country.first_day"
        let html = try reportHTML(s)
        #expect(try Self.bars(html).isEmpty && html.contains("No group has a value for first_day"))
    }

    @Test func funnelShowsEveryStage() throws {
        let html = try reportHTML(sampleRunSummary())
        let rows = try ReportTools.captures(#"<rect class="rows-in" x="[^"]*" y="[^"]*" width="([^"]*)" height="[^"]*" data-value="([^"]*)""#, in: html)
        #expect(rows.map { $0[1] } == ["1234567", "1234560", "1200000", "1199990"])
        let widths = rows.map { Double($0[0])! }
        #expect(abs(widths[3] / widths[0] - 1_199_990.0 / 1_234_567) < 0.0001)
    }

    @Test func emptyRunStillRenders() throws {
        let s = RunSummary(pipeline: "p", runID: "r", title: "t", startedAt: Date(timeIntervalSince1970: 0), status: "running")
        let html = try reportHTML(s)
        #expect(html.contains("not finished") && html.contains("publishes no summaries") && html.contains("no validate rules"))
        var named = s
        named.mainAggregate = "by_day.total"   // the run stopped before publish: no chart, no error
        #expect(try reportHTML(named) == html)
    }
}
