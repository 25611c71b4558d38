import Testing
@testable import FleetCore

struct ReportSpecTests {
    static let publish = """
        publish:
          dataset: orders
          summaries:
            by_day:
              group_by: [day]
              aggregates:
                total: sum(amount)
                rows: count()

        """

    @Test func typesTitleAndMainAggregate() throws {
        let spec = try parseSpec(baseSpec + Self.publish + "report: {title: Daily orders, main_aggregate: by_day.rows}\n")
        let report = try spec.reportSpec()
        #expect(report.title == "Daily orders")
        #expect(report.mainAggregate == ReportSpec.MainAggregate(summary: "by_day", column: "rows"))
        #expect(report.mainAggregate?.description == "by_day.rows")
    }

    @Test func defaultsWhenAbsentOrEmpty() throws {
        #expect(try parseSpec(baseSpec).reportSpec() == ReportSpec())
        let empty = try parseSpec(baseSpec + "report:\n").reportSpec()
        #expect(empty.title == nil && empty.mainAggregate == nil)
        // The design's example: a title only.
        #expect(try parseSpec(designExampleSpec, checker: nil).reportSpec().title == "Lineitem summary")
    }

    @Test func mistakesAreReportedWhereTheyAre() {
        // Lines: baseSpec has 10, publish 8, so report starts at line 19.
        #expect(specErrors(baseSpec + Self.publish + "report:\n  title: T\n  main_aggregate: by_day.totl\n") == [
            "spec.yml:21:19: 'totl' is not an aggregate of summary 'by_day'; did you mean 'total'?; it has total, rows",
        ])
        #expect(specErrors(baseSpec + Self.publish + "report:\n  main_aggregate: by_dya.total\n") == [
            "spec.yml:20:19: no summary 'by_dya' in publish; did you mean 'by_day'?; it has by_day",
        ])
        #expect(specErrors(baseSpec + Self.publish + "report:\n  main_aggregate: total\n") == [
            "spec.yml:20:19: 'main_aggregate: total' must be summary.column, e.g. by_country.revenue",
        ])
        #expect(specErrors(baseSpec + "report:\n  titel: T\n") == [
            "spec.yml:12:3: unknown key 'titel' in report; did you mean 'title'?; report takes title, main_aggregate",
        ])
        #expect(specErrors(baseSpec + "report: [a]\n") == [
            "spec.yml:11:9: 'report' must be a mapping such as {title: Daily orders}",
        ])
        #expect(specErrors(baseSpec + "report: {main_aggregate: a.b}\n") == [
            "spec.yml:11:26: main_aggregate names summary 'a', but publish has no summaries",
        ])
    }
}
