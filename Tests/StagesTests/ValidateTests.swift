import Columnar
import FleetCore
import Foundation
import Testing
@testable import Stages

/// Builders for rules as the spec loader makes them.
enum VRule {
    static let here = SpecLocation(line: 1, column: 1)
    static func notNull(_ c: String) -> RowRule { RowRule(name: "not_null \(c)", check: .notNull(column: c), location: here) }
    static func unique(_ cs: [String]) -> RowRule {
        RowRule(name: "unique \(cs.joined(separator: ", "))", check: .unique(columns: cs), location: here)
    }
    static func range(_ c: String, min: String? = nil, max: String? = nil, exclusiveMin: Bool = false,
                      exclusiveMax: Bool = false, name: String? = nil) -> RowRule {
        RowRule(name: name ?? "range \(c)", check: .range(RangeCheck(
            column: c, min: min.map { RangeBound(text: $0, exclusive: exclusiveMin, value: nil) },
            max: max.map { RangeBound(text: $0, exclusive: exclusiveMax, value: nil) })), location: here)
    }
    static func allowed(_ c: String, _ values: [String]) -> RowRule {
        RowRule(name: "allowed \(c)", check: .allowed(AllowedCheck(column: c, texts: values, values: nil)), location: here)
    }
    static func regex(_ c: String, _ p: String) -> RowRule {
        RowRule(name: "regex \(c)", check: .regex(column: c, pattern: p), location: here)
    }
    static func expression(_ text: String, name: String? = nil) -> RowRule {
        RowRule(name: name ?? "expression \(text)", check: .expression(SpecExpression(text, location: here)), location: here)
    }
}

let dec = ColumnType.decimal(precision: 12, scale: 2)

/// id int64, amount decimal(12,2), flag string.
func ordersBatch(_ rows: [(Int64?, Int64?, String?)]) throws -> ColumnBatch {
    try opBatch([
        ("id", .int64, rows.map { $0.0.map(Scalar.int) }),
        ("amount", dec, rows.map { $0.1.map(Scalar.int) }),
        ("flag", .string, rows.map { $0.2.map(Scalar.string) }),
    ])
}

/// The quarantine's rows as (rule, reason, row JSON); `file` and `line`
/// are null here (these chunks are made by hand, without provenance) and
/// are checked in ProvenanceTests.
func quarantineRows(_ r: ValidateResult) throws -> [[String?]] {
    guard let q = r.quarantine else { return [] }
    let b = try ParquetReader(path: q.path).read()
    #expect(b.schema == validateQuarantineSchema)
    #expect(b["file"]!.nullCount == b.rowCount && b["line"]!.nullCount == b.rowCount)
    let columns = ["rule", "reason", "row"].map { opStrings(b[$0]) }
    return (0..<b.rowCount).map { row in columns.map { $0[row] } }
}

@Suite struct ValidateTests {
    func run(_ batches: [ColumnBatch], _ rules: [RowRule], rowGroupRows: Int = 1 << 20,
             summaries: [SummarySpec] = [], options: ValidateOptions = ValidateOptions(),
             _ body: (ValidateResult, OpTempDir) throws -> Void) throws {
        let dir = try OpTempDir()
        defer { dir.cleanup() }
        var inputs: [String] = []
        for (i, b) in batches.enumerated() {
            inputs.append(try opWriteChunk(dir.file("consolidated-0000\(i).parquet"), [b], rowGroupRows: rowGroupRows).path)
        }
        let r = try validate(inputChunks: inputs, rules: rules, partition: 3, outputDir: try dir.sub("out"),
                             summaries: summaries, options: options)
        try body(r, dir)
    }

    @Test func notNullAndRangeQuarantineTheFailingRowsAndPassTheRest() throws {
        let batch = try ordersBatch([(1, 5, "A"), (nil, 5, "A"), (3, 11, "B"), (4, nil, "B"), (5, 10, nil)])
        try run([batch], [VRule.notNull("id"), VRule.range("amount", min: "0", max: "0.10")]) { (r: ValidateResult, _: OpTempDir) throws in
            #expect(r.partition == 3)
            #expect((r.rowsIn, r.rowsPassed, r.rowsFailed) == (5, 3, 2))
            #expect(r.rules.map(\.name) == ["not_null id", "range amount"])
            #expect(r.rules.map(\.failed) == [1, 1])
            #expect(r.rules[1].examples == [FailureExample(
                values: [ExampleValue(column: "amount", value: "0.11")], reason: "amount 0.11 is above max 0.10")])
            #expect(r.rules[0].examples[0].values == [ExampleValue(column: "id", value: nil)])
            #expect(r.chunks.count == 1)
            #expect(r.chunks[0].path.hasSuffix("/out/validated-00000.parquet"))
            #expect(try opReadRows([r.chunks[0].path]).map { $0[0] } == [.int(1), .int(4), .int(5)])
            #expect(try quarantineRows(r) == [
                ["not_null id", "id is null", #"{"id":null,"amount":0.05,"flag":"A"}"#],
                ["range amount", "amount 0.11 is above max 0.10", #"{"id":3,"amount":0.11,"flag":"B"}"#],
            ])
            #expect(r.quarantine?.path.hasSuffix("/out/quarantine.parquet") == true)
        }
    }

    @Test func rangeBoundsInclusiveExclusiveAndOtherScales() throws {
        // amounts 0.00 0.10 0.11 (scale 2) against bounds written at scales 0, 1 and 3.
        let batch = try ordersBatch([(1, 0, "a"), (2, 10, "a"), (3, 11, "a")])
        let rules = [
            VRule.range("amount", min: "0", max: "0.1", name: "inclusive"),
            VRule.range("amount", min: "0", max: "0.1", exclusiveMin: true, exclusiveMax: true, name: "exclusive"),
            VRule.range("amount", max: "0.105", name: "finer"),
            VRule.range("amount", min: "0.005", name: "finer min"),
        ]
        try run([batch], rules) { (r: ValidateResult, _: OpTempDir) throws in
            #expect(r.rules.map(\.failed) == [1, 3, 1, 1])
            #expect(r.rules[0].examples.map(\.reason) == ["amount 0.11 is above max 0.1"])
            #expect(r.rules[1].examples.map(\.reason) == ["amount 0.00 is not above exclusive min 0",
                                                          "amount 0.10 is not below exclusive max 0.1",
                                                          "amount 0.11 is not below exclusive max 0.1"])
            #expect(r.rules[2].examples.map(\.reason) == ["amount 0.11 is above max 0.105"])
            #expect(r.rules[3].examples.map(\.reason) == ["amount 0.00 is below min 0.005"])
            #expect(r.rowsPassed == 0)
        }
    }

    @Test func rangeOverIntsDatesAndDoubles() throws {
        let batch = try opBatch([
            ("n", .int32, [.int(-1), .int(0), .int(7), nil]),
            ("day", .date, [.int(20454), .int(20453), .int(20500), .int(20454)]),
            ("x", .double, [.double(0.5), .double(.nan), .double(1.0), .double(-0.0)]),
        ])
        let rules = [
            VRule.range("n", min: "0", max: "7"),
            VRule.range("day", min: "2026-01-01"),
            VRule.range("x", min: "0", max: "1", exclusiveMax: true),
        ]
        try run([batch], rules) { (r: ValidateResult, _: OpTempDir) throws in
            #expect(r.rules.map(\.failed) == [1, 1, 2])
            #expect(r.rules.flatMap { $0.examples.map(\.reason) } == [
                "n -1 is below min 0",
                "day 2025-12-31 is below min 2026-01-01",
                "x is NaN, which no range holds",
                "x 1.0 is not below exclusive max 1",
            ])
            #expect((r.rowsPassed, r.rowsFailed) == (1, 3))
        }
    }

    @Test func rangeOverTimestampsAndAllowedBools() throws {
        let midnight: Int64 = 20454 * 86_400_000_000
        let batch = try opBatch([
            ("ts", .timestamp, [.int(midnight - 1_000_000), .int(midnight), nil]),
            ("ok", .bool, [.bool(true), .bool(false), .bool(false)]),
        ])
        let rules = [VRule.range("ts", max: "2026-01-01 00:00:00", exclusiveMax: true), VRule.allowed("ok", ["true"])]
        try run([batch], rules) { (r: ValidateResult, _: OpTempDir) throws in
            #expect(r.rules.map(\.failed) == [1, 2])
            #expect(r.rules[0].examples.map(\.reason) == ["ts 2026-01-01T00:00:00Z is not below exclusive max 2026-01-01 00:00:00"])
            #expect(r.rules[1].examples.map(\.reason) == ["ok false is not one of true", "ok false is not one of true"])
            #expect(try quarantineRows(r).map { $0[2] } == [#"{"ts":"2026-01-01T00:00:00Z","ok":false}"#, #"{"ts":null,"ok":false}"#])
        }
    }

    @Test func allowedRegexAndExpressionLetNullsPass() throws {
        let batch = try ordersBatch([(1, 150, "A"), (2, 10, "X"), (3, nil, nil), (4, 1, "ab"), (5, 0, "B")])
        let rules = [
            VRule.allowed("flag", ["A", "B", "ab"]),
            VRule.allowed("amount", ["1.5", "0.1", "0.01", "0"]),
            VRule.regex("flag", "[A-Z]"),
            VRule.expression("amount > 0", name: "positive"),
        ]
        try run([batch], rules) { (r: ValidateResult, _: OpTempDir) throws in
            #expect(r.rules.map(\.failed) == [1, 0, 1, 1])
            #expect(r.rules[0].examples.map(\.reason) == ["flag 'X' is not one of A, B, ab"])
            #expect(r.rules[2].examples.map(\.reason) == ["flag 'ab' does not match [A-Z]"])
            #expect(r.rules[3].examples.map(\.reason) == ["amount > 0 is false"])
            #expect(r.rules[3].examples[0].values == [ExampleValue(column: "amount", value: "0.00")])
            #expect(try opReadRows(r.chunks.map(\.path)).map { $0[0] } == [.int(1), .int(3)])
        }
    }

    @Test func uniqueKeepsTheFirstAcrossBatchesAndNullKeysNeverCollide() throws {
        let a = try ordersBatch([(1, 1, "A"), (2, 1, "A"), (1, 2, "B"), (nil, 1, "A")])
        let b = try ordersBatch([(2, 1, "A"), (nil, 1, "A"), (3, 1, "A")])
        try run([a, b], [VRule.unique(["id", "flag"])], rowGroupRows: 2) { (r: ValidateResult, _: OpTempDir) throws in
            #expect(r.rules[0].failed == 1)
            #expect(r.rules[0].examples == [FailureExample(
                values: [ExampleValue(column: "id", value: "2"), ExampleValue(column: "flag", value: "A")],
                reason: "id=2, flag=A appeared in an earlier row")])
            #expect(r.rowsPassed == 6)
        }
    }

    @Test func aRowFailingSeveralRulesIsQuarantinedOnceAndCountedUnderEach() throws {
        let batch = try ordersBatch([(nil, 99, "Z"), (2, 1, "A")])
        let rules = [VRule.notNull("id"), VRule.range("amount", max: "0.5"), VRule.allowed("flag", ["A"])]
        try run([batch], rules, options: ValidateOptions(exampleColumns: ["id"])) { (r: ValidateResult, _: OpTempDir) throws in
            #expect(r.rules.map(\.failed) == [1, 1, 1])
            #expect(r.rowsFailed == 1)
            #expect(try quarantineRows(r) == [[
                "not_null id; range amount; allowed flag",
                "id is null; amount 0.99 is above max 0.5; flag 'Z' is not one of A",
                #"{"id":null,"amount":0.99,"flag":"Z"}"#,
            ]])
            // The example columns come first, then the rule's.
            #expect(r.rules[1].examples[0].rowText == "{id: null, amount: 0.99}")
        }
    }

    @Test func examplesAreCappedAtTwentyPerRule() throws {
        let batch = try ordersBatch((0..<50).map { (Int64($0), 100, "A") })
        try run([batch], [VRule.range("amount", max: "0.5")]) { (r: ValidateResult, _: OpTempDir) throws in
            #expect(r.rules[0].failed == 50)
            #expect(r.rules[0].examples.count == 20)
            #expect(r.quarantine?.rows == 50)
            #expect(r.chunks.isEmpty)
        }
    }

    @Test func summariesAggregateOnlyThePassingRows() throws {
        let batch = try ordersBatch([(1, 5, "A"), (2, 7, "A"), (3, 99, "B"), (4, 3, "B")])
        let summary = SummarySpec(name: "by_flag", groupBy: ["flag"], aggregates: [
            AggregateSpec(name: "total", function: .sum, column: "amount"),
            AggregateSpec(name: "n", function: .count, column: nil),
        ])
        try run([batch], [VRule.range("amount", max: "0.5")], summaries: [summary]) { (r: ValidateResult, _: OpTempDir) throws in
            let passing = try ordersBatch([(1, 5, "A"), (2, 7, "A"), (4, 3, "B")])
            var expected = try PartialAggregate(groupBy: ["flag"], aggregates: [
                AggregateColumn("total", .sum("amount")), AggregateColumn("n", .count),
            ], schema: passing.schema)
            try expected.add(passing)
            #expect(r.summaries == [SummaryPartial(name: "by_flag", partial: expected)])
        }
    }

    @Test func theResultRoundTripsThroughJSON() throws {
        let batch = try ordersBatch([(1, 5, "A"), (nil, 5, "A")])
        let summary = SummarySpec(name: "s", groupBy: ["flag"], aggregates: [AggregateSpec(name: "n", function: .count, column: nil)])
        try run([batch], [VRule.notNull("id")], summaries: [summary]) { (r: ValidateResult, _: OpTempDir) throws in
            #expect(try ValidateResult(json: try r.jsonBytes()) == r)
        }
    }

    @Test func noInputsGiveAnEmptyResultAndNoFiles() throws {
        let dir = try OpTempDir()
        defer { dir.cleanup() }
        let r = try validate(inputChunks: [], rules: [VRule.notNull("id")], partition: 0, outputDir: dir.path + "/out")
        #expect(r == ValidateResult(partition: 0, rowsIn: 0, rowsPassed: 0, rowsFailed: 0,
                                    rules: [RuleResult(name: "not_null id", failed: 0, examples: [])],
                                    chunks: [], quarantine: nil, summaries: []))
        #expect(dir.entries("out").isEmpty)
    }

    @Test func rulesNamingMissingColumnsOrBadTypesFailTheTask() throws {
        let batch = try ordersBatch([(1, 5, "A")])
        #expect(throws: OperatorError.self) { try run([batch], [VRule.notNull("nope")]) { _, _ in } }
        #expect(throws: OperatorError.self) { try run([batch], [VRule.regex("amount", "x")]) { _, _ in } }
        #expect(throws: OperatorError.self) { try run([batch], [VRule.range("flag", min: "a")]) { _, _ in } }
    }
}

/// DuckDB reads the quarantine chunk with its reasons, and the JSON rows in it.
@Suite(.enabled(if: StagesPython.enabled, "no Python with duckdb (set BIS_PYTHON or create .venv)"))
struct ValidateDuckDBTests {
    @Test func duckDBReadsTheQuarantineAndTheValidatedChunks() throws {
        let dir = try OpTempDir()
        defer { dir.cleanup() }
        let batch = try ordersBatch([(1, 5, "A"), (nil, 5, "A\"q"), (3, 11, "B"), (4, 2, "Z"), (5, 10, nil)])
        let input = try opWriteChunk(dir.file("consolidated-00000.parquet"), [batch]).path
        let r = try validate(inputChunks: [input],
                             rules: [VRule.notNull("id"), VRule.range("amount", max: "0.10"), VRule.allowed("flag", ["A", "B"])],
                             partition: 0, outputDir: try dir.sub("out"))
        let q = try #require(r.quarantine)
        let out = try StagesPython.script("check_validate.py", [q.path, r.chunks.map(\.path).joined(separator: ",")])
        #expect(out.status == 0, "\(out.output)")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(out.output.utf8)) as? [String: Any], "\(out.output)")
        let rows = try #require(json["quarantine"] as? [[Any]])
        let text = rows.map { $0.map { $0 is NSNull ? "null" : "\($0)" } }
        #expect(text == [
            ["not_null id; allowed flag", "id is null; flag 'A\"q' is not one of A, B", "null", "0.05", "A\"q"],
            ["range amount", "amount 0.11 is above max 0.10", "3", "0.11", "B"],
            ["allowed flag", "flag 'Z' is not one of A, B", "4", "0.02", "Z"],
        ])
        #expect(json["validated"] as? [Int] == [1, 5])
        #expect((json["schema"] as? [[String]])
                == [["file", "VARCHAR"], ["line", "BIGINT"], ["rule", "VARCHAR"], ["reason", "VARCHAR"], ["row", "VARCHAR"]])
    }

    /// Random rows with nulls and duplicates: every rule's count and the
    /// passing rows agree with the same rules written in SQL.
    @Test func randomRowsAgreeWithTheRulesInSQL() throws {
        let dir = try OpTempDir()
        defer { dir.cleanup() }
        var rng = OpRandom(seed: 42)
        let flags = ["A", "B", "C", "D", "a"]
        let rows: [(Int64?, Int64?, String?)] = (0..<3000).map { _ in
            (rng.chance(0.02) ? nil : Int64(rng.int(0...2500)),
             rng.chance(0.05) ? nil : Int64(rng.int(-100...700)),
             rng.chance(0.05) ? nil : flags[rng.int(0...4)])
        }
        let input = try opWriteChunk(dir.file("consolidated-00000.parquet"), [try ordersBatch(rows)], rowGroupRows: 700).path
        let rules = [
            VRule.notNull("id"), VRule.range("amount", min: "0", max: "5.00", exclusiveMax: true),
            VRule.allowed("flag", ["A", "B"]), VRule.regex("flag", "[A-C]"),
            VRule.expression("amount * 2 > 1", name: "positive"), VRule.unique(["id"]),
        ]
        let r = try validate(inputChunks: [input], rules: rules, partition: 0, outputDir: try dir.sub("out"),
                             options: { var o = ValidateOptions(); o.rowsPerChunk = 1000; return o }())
        let out = try StagesPython.script("check_validate_rules.py", [input, r.chunks.map(\.path).joined(separator: ",")])
        #expect(out.status == 0, "\(out.output)")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(out.output.utf8)) as? [String: Any], "\(out.output)")
        let counts = try #require(json["counts"] as? [String: Int])
        #expect(r.rules.map { Int($0.failed) } == ["not_null_id", "range_amount", "allowed_flag", "regex_flag", "positive", "unique_id"]
            .map { counts[$0] ?? -1 })
        #expect(Int(r.rowsPassed) == json["passed"] as? Int)
        #expect(Int(r.rowsFailed) == json["failed"] as? Int)
        #expect(json["same_rows"] as? Bool == true)
        #expect(r.quarantine?.rows == r.rowsFailed)
        #expect(r.rules.allSatisfy { $0.failed > 0 })
    }
}
