import FleetCore
import Testing
@testable import Stages

/// The run-level decision over the partitions' results, and the exact
/// message an operator reads.
@Suite struct ValidateGateTests {
    static func example(_ key: String?, _ discount: String, _ reason: String) -> FailureExample {
        FailureExample(values: [ExampleValue(column: "l_orderkey", value: key), ExampleValue(column: "l_discount", value: discount)],
                       reason: reason)
    }

    static func result(_ partition: Int, rowsIn: Int64, passed: Int64, rules: [RuleResult]) -> ValidateResult {
        ValidateResult(partition: partition, rowsIn: rowsIn, rowsPassed: passed, rowsFailed: rowsIn - passed,
                       rules: rules, chunks: [], quarantine: nil, summaries: [])
    }

    /// Two partitions of 700 rows; 100 rows fail: range 92 (46 each), not_null 8.
    static let failing = [
        result(1, rowsIn: 700, passed: 650, rules: [
            RuleResult(name: "not_null l_orderkey", failed: 4,
                       examples: [FailureExample(values: [ExampleValue(column: "l_orderkey", value: nil)], reason: "l_orderkey is null")]),
            RuleResult(name: "range l_discount", failed: 46, examples: [example("9", "0.11", "l_discount 0.11 is above max 0.10")]),
        ]),
        result(0, rowsIn: 700, passed: 650, rules: [
            RuleResult(name: "not_null l_orderkey", failed: 4, examples: []),
            RuleResult(name: "range l_discount", failed: 46, examples: [
                example("7", "0.12", "l_discount 0.12 is above max 0.10"),
                example("8", "-0.01", "l_discount -0.01 is below min 0"),
            ]),
        ]),
    ]

    @Test func theFailureRateMessageNamesRulesCountsAndExamples() {
        let decision = GateDecision.decide(results: Self.failing, gates: QualityGates(maxFailureRate: FailureRate(parsing: "5%")))
        #expect(decision == .fail(
            "quality gate failed: 7.1% of 1,400 rows failed (max_failure_rate 5%): "
                + "range l_discount: 92 rows, e.g. row {l_orderkey: 7, l_discount: 0.12} (l_discount 0.12 is above max 0.10), "
                + "row {l_orderkey: 8, l_discount: -0.01} (l_discount -0.01 is below min 0), "
                + "row {l_orderkey: 9, l_discount: 0.11} (l_discount 0.11 is above max 0.10); "
                + "not_null l_orderkey: 8 rows, e.g. row {l_orderkey: null} (l_orderkey is null)"))
    }

    @Test func aRateAtTheThresholdPasses() {
        let results = [Self.result(0, rowsIn: 1400, passed: 1330, rules: [RuleResult(name: "not_null a", failed: 70, examples: [])])]
        let decision = GateDecision.decide(results: results, gates: QualityGates(maxFailureRate: FailureRate(parsing: "0.05")))
        guard case .pass(let summary) = decision else {
            Issue.record("expected a pass, got \(decision)")
            return
        }
        #expect(summary.description == "quality gates passed: 1,400 rows in 1 partition, 1,330 passed, 70 failed (5.0%)")
        #expect(summary.rules == [QualitySummary.RuleCount(name: "not_null a", failed: 70)])
        let stricter = GateDecision.decide(results: results, gates: QualityGates(maxFailureRate: FailureRate(parsing: "4.9%")))
        #expect(stricter == .fail("quality gate failed: 5.0% of 1,400 rows failed (max_failure_rate 4.9%): not_null a: 70 rows"))
    }

    @Test func withoutGatesFailuresAreOnlyQuarantined() {
        guard case .pass(let summary) = GateDecision.decide(results: Self.failing, gates: QualityGates()) else {
            Issue.record("expected a pass")
            return
        }
        #expect(summary.description == "quality gates passed: 1,400 rows in 2 partitions, 1,300 passed, 100 failed (7.1%)")
    }

    @Test func rowCountGates() {
        let results = (0..<5).map { p in Self.result(p, rowsIn: Int64(p * 10), passed: Int64(p * 10), rules: []) }
        #expect(GateDecision.decide(results: results, gates: QualityGates(minRows: 101)) == .fail(
            "quality gate failed: 100 rows passed validation, fewer than min_rows 101"))
        #expect(GateDecision.decide(results: results, gates: QualityGates(maxRows: 99)) == .fail(
            "quality gate failed: 100 rows passed validation, more than max_rows 99"))
        #expect(GateDecision.decide(results: results, gates: QualityGates(minRowsPerPartition: 40)) == .fail(
            "quality gate failed: partition 0 passed 0 rows, partition 1 passed 10 rows, partition 2 passed 20 rows "
                + "and 1 more, fewer than min_rows_per_partition 40"))
        #expect(GateDecision.decide(results: results, gates: QualityGates(minRows: 1_000, minRowsPerPartition: 1)) == .fail(
            "quality gate failed: 100 rows passed validation, fewer than min_rows 1,000\n"
                + "quality gate failed: partition 0 passed 0 rows, fewer than min_rows_per_partition 1"))
        if case .fail = GateDecision.decide(results: results, gates: QualityGates(minRows: 100, maxRows: 100)) {
            Issue.record("100 rows are within 100...100")
        }
    }

    @Test func minRowsMentionsTheRowsThatFailed() {
        let results = [Self.result(0, rowsIn: 1_500, passed: 12, rules: [RuleResult(name: "not_null a", failed: 1_488, examples: [])])]
        #expect(GateDecision.decide(results: results, gates: QualityGates(minRows: 100)) == .fail(
            "quality gate failed: 12 rows passed validation, fewer than min_rows 100 (1,488 of 1,500 failed a rule)"))
    }
}
