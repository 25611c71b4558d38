import FleetCore

/// The run-level quality decision over every partition's validate result:
/// publish runs only after `.pass`. `.fail`'s message is what an operator
/// reads first, so it names the gate, the counts against the threshold, the
/// failing rules by count (most first) and up to three example rows each.
public enum GateDecision: Sendable, Equatable, Codable {
    case pass(QualitySummary)
    case fail(String)

    /// Checks, in this order, `max_failure_rate` (rows failing any rule over
    /// all rows in), `min_rows` and `max_rows` (rows passed, over all
    /// partitions) and `min_rows_per_partition`; every gate that fails gets
    /// a line of the message, each starting `quality gate failed: `.
    public static func decide(results: [ValidateResult], gates: QualityGates) -> GateDecision {
        let summary = QualitySummary(results)
        var problems: [String] = []
        if let rate = gates.maxFailureRate, rate.isExceeded(failed: summary.rowsFailed, of: summary.rowsIn) {
            var line = "\(percent(summary.rowsFailed, of: summary.rowsIn)) of \(grouped(summary.rowsIn)) rows failed "
                + "(max_failure_rate \(rate))"
            let failing = ruleTotals(results)
            if !failing.isEmpty {
                line += ": " + failing.map { r in
                    "\(r.name): \(rows(r.failed))"
                        + (r.examples.isEmpty ? "" : ", e.g. " + r.examples.prefix(3).map { "row \($0.rowText) (\($0.reason))" }
                            .joined(separator: ", "))
                }.joined(separator: "; ")
            }
            problems.append(line)
        }
        if let min = gates.minRows, summary.rowsPassed < min {
            problems.append("\(rows(summary.rowsPassed)) passed validation, fewer than min_rows \(grouped(min))"
                            + (summary.rowsFailed > 0 ? " (\(grouped(summary.rowsFailed)) of \(grouped(summary.rowsIn)) failed a rule)" : ""))
        }
        if let max = gates.maxRows, summary.rowsPassed > max {
            problems.append("\(rows(summary.rowsPassed)) passed validation, more than max_rows \(grouped(max))")
        }
        if let min = gates.minRowsPerPartition {
            let short = results.filter { $0.rowsPassed < min }.sorted { $0.partition < $1.partition }
            if !short.isEmpty {
                let shown = short.prefix(3).map { "partition \($0.partition) passed \(rows($0.rowsPassed))" }
                problems.append(shown.joined(separator: ", ") + (short.count > 3 ? " and \(short.count - 3) more" : "")
                                + ", fewer than min_rows_per_partition \(grouped(min))")
            }
        }
        if problems.isEmpty { return .pass(summary) }
        return .fail(problems.map { "quality gate failed: " + $0 }.joined(separator: "\n"))
    }

    /// Each rule's failures summed over the partitions, examples in
    /// partition order; only rules that failed, most failures first (spec
    /// order among equals).
    static func ruleTotals(_ results: [ValidateResult]) -> [RuleResult] {
        var totals: [RuleResult] = []
        for result in results.sorted(by: { $0.partition < $1.partition }) {
            for rule in result.rules {
                if let i = totals.firstIndex(where: { $0.name == rule.name }) {
                    totals[i].failed += rule.failed
                    totals[i].examples += rule.examples
                } else {
                    totals.append(rule)
                }
            }
        }
        return totals.enumerated().filter { $0.element.failed > 0 }
            .sorted { ($0.element.failed, -$0.offset) > ($1.element.failed, -$1.offset) }.map(\.element)
    }
}

/// The counts behind a decision.
public struct QualitySummary: Sendable, Equatable, Codable, CustomStringConvertible {
    public var partitions: Int
    public var rowsIn: Int64
    public var rowsPassed: Int64
    public var rowsFailed: Int64
    /// Failures per rule over all partitions, in spec order.
    public var rules: [RuleCount]

    public struct RuleCount: Sendable, Equatable, Codable {
        public var name: String
        public var failed: Int64
    }

    public init(_ results: [ValidateResult]) {
        partitions = results.count
        rowsIn = results.reduce(0) { $0 + $1.rowsIn }
        rowsPassed = results.reduce(0) { $0 + $1.rowsPassed }
        rowsFailed = results.reduce(0) { $0 + $1.rowsFailed }
        var counts: [RuleCount] = []
        for result in results {
            for rule in result.rules {
                if let i = counts.firstIndex(where: { $0.name == rule.name }) {
                    counts[i].failed += rule.failed
                } else {
                    counts.append(RuleCount(name: rule.name, failed: rule.failed))
                }
            }
        }
        rules = counts
    }

    /// `quality gates passed: 1,400 rows in 4 partitions, 1,392 passed, 8 failed (0.6%)`.
    public var description: String {
        "quality gates passed: \(grouped(rowsIn)) rows in \(partitions) partition\(partitions == 1 ? "" : "s"), "
            + "\(grouped(rowsPassed)) passed, \(grouped(rowsFailed)) failed (\(percent(rowsFailed, of: rowsIn)))"
    }
}

/// `1,400`.
func grouped(_ n: Int64) -> String {
    let digits = String(n.magnitude)
    var out = ""
    for (i, c) in digits.enumerated() {
        if i > 0, (digits.count - i) % 3 == 0 { out += "," }
        out.append(c)
    }
    return (n < 0 ? "-" : "") + out
}

/// `1 row`, `1,400 rows`.
func rows(_ n: Int64) -> String {
    "\(grouped(n)) row\(n == 1 ? "" : "s")"
}

/// A share with one decimal (`7.1%`); `<0.1%` rather than `0.0%` for a
/// share that is not zero.
func percent(_ part: Int64, of whole: Int64) -> String {
    guard whole > 0, part > 0 else { return "0%" }
    let tenths = (Int128(part) * 1000 + Int128(whole) / 2) / Int128(whole)
    if tenths == 0 { return "<0.1%" }
    return "\(tenths / 10).\(tenths % 10)%"
}

extension GateDecision {
    /// The gate lines of the run's report: every rule with its failures
    /// summed over the partitions (in the order the rules first appear, at
    /// most `examples` example rows each, as column → value text), then
    /// `max_failure_rate` when the spec sets it, decided as `decide` decides it.
    public static func gateResults(results: [ValidateResult], gates: QualityGates, examples: Int = 20) -> [GateResult] {
        let summary = QualitySummary(results)
        var order: [String] = []
        var byRule: [String: (failed: Int64, examples: [[String: String]])] = [:]
        for result in results {
            for rule in result.rules {
                if byRule[rule.name] == nil { order.append(rule.name) }
                var entry = byRule[rule.name] ?? (0, [])
                entry.failed += rule.failed
                for example in rule.examples where entry.examples.count < examples {
                    entry.examples.append(Dictionary(example.values.map { ($0.column, $0.value ?? "") }, uniquingKeysWith: { a, _ in a }))
                }
                byRule[rule.name] = entry
            }
        }
        func rate(_ failed: Int64) -> Double { summary.rowsIn > 0 ? Double(failed) / Double(summary.rowsIn) : 0 }
        var lines = order.map { name in
            let (failed, shown) = byRule[name]!
            return GateResult(rule: name, passed: failed == 0, failingRows: failed, rate: rate(failed), examples: shown)
        }
        if let limit = gates.maxFailureRate {
            lines.append(GateResult(rule: "max_failure_rate", passed: !limit.isExceeded(failed: summary.rowsFailed, of: summary.rowsIn),
                                    failingRows: summary.rowsFailed, rate: rate(summary.rowsFailed), threshold: limit.description))
        }
        return lines
    }
}
