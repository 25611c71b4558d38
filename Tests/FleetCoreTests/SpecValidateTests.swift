import Columnar
import Testing
@testable import FleetCore

/// `validate:` decoded into typed rules and gates, and every mistake in it
/// reported with its place and the exact text a user reads.
/// `baseSpec` has columns id int64, name string, amount decimal(12,2), day
/// date; text appended to it starts at line 11.
@Suite struct SpecValidateTests {
    /// Appends `validate:` (line 11) and `lines` (from line 12) to the base spec.
    func validate(_ lines: String, consolidate: Bool = false) -> String {
        baseSpec + "validate:\n" + lines + (consolidate ? "consolidate:\n  partition_by: [id]\n  partitions: 2\n" : "")
    }

    @Test func everyRuleAndGateIsTyped() throws {
        let spec = try parseSpec(validate("""
              - not_null: [id, name]
              - unique: [id, day]
              - range: {column: amount, min: 0, max: 99.5, exclusive_max: true}
              - allowed: {column: name, values: [a, "b"]}
              - regex: {column: name, pattern: "[a-z]+"}
              - expression: "amount > 0"
                name: positive amount
              - range: {column: day, min: 2026-01-01, exclusive_min: true}
              - max_failure_rate: 2.5%
              - min_rows: 1
              - max_rows: 1000
              - min_rows_per_partition: 0

            """, consolidate: true), checker: ExpressionLanguageChecker())
        let v = spec.validate
        #expect(v.rules.map(\.name) == ["not_null id", "not_null name", "unique id, day", "range amount",
                                        "allowed name", "regex name", "positive amount", "range day"])
        #expect(v.rules.map(\.location.line) == [12, 12, 13, 14, 15, 16, 17, 19])
        #expect(v.rules[0].check == .notNull(column: "id"))
        #expect(v.rules[2].check == .unique(columns: ["id", "day"]))
        #expect(v.rules[3].check == .range(RangeCheck(
            column: "amount",
            min: RangeBound(text: "0", exclusive: false, value: .decimal(unscaled: 0, scale: 0)),
            max: RangeBound(text: "99.5", exclusive: true, value: .decimal(unscaled: 995, scale: 1)))))
        #expect(v.rules[4].check == .allowed(AllowedCheck(column: "name", texts: ["a", "b"],
                                                          values: [.string("a"), .string("b")])))
        #expect(v.rules[5].check == .regex(column: "name", pattern: "[a-z]+"))
        #expect(v.rules[6].check == .expression(SpecExpression("amount > 0", location: SpecLocation(line: 17, column: 17))))
        // 2026-01-01 is day 20454 since 1970-01-01.
        #expect(v.rules[7].check == .range(RangeCheck(
            column: "day", min: RangeBound(text: "2026-01-01", exclusive: true, value: .int(20454)), max: nil)))
        #expect(v.gates == QualityGates(maxFailureRate: FailureRate(parts: 25, whole: 1000), minRows: 1, maxRows: 1000,
                                        minRowsPerPartition: 0))
    }

    @Test func failureRatesAreExactFractions() {
        #expect(FailureRate(parsing: "5%") == FailureRate(parts: 5, whole: 100))
        #expect(FailureRate(parsing: "0.05") == FailureRate(parts: 5, whole: 100))
        #expect(FailureRate(parsing: "5 %") == FailureRate(parts: 5, whole: 100))
        #expect(FailureRate(parsing: "0.05")?.description == "5%")
        #expect(FailureRate(parsing: "0.005")?.description == "0.5%")
        #expect(FailureRate(parsing: "100%")?.description == "100%")
        #expect(FailureRate(parsing: "101%") == nil)
        #expect(FailureRate(parsing: "1.5") == nil)
        #expect(FailureRate(parsing: "-1%") == nil)
        #expect(FailureRate(parsing: "five") == nil)
        let five = FailureRate(parts: 5, whole: 100)
        #expect(!five.isExceeded(failed: 70, of: 1400))
        #expect(five.isExceeded(failed: 71, of: 1400))
    }

    @Test func decimalBoundsCompareExactlyAcrossScales() {
        let t = ColumnType.decimal(precision: 15, scale: 2)
        #expect(RuleLiteral.bound("0.105", for: t) == .decimal(unscaled: 105, scale: 3))
        #expect(RuleLiteral.bound("1", for: t) == .decimal(unscaled: 1, scale: 0))
        #expect(RuleLiteral.compare(.decimal(unscaled: 10, scale: 2), .decimal(unscaled: 1, scale: 1)) == 0)
        #expect(RuleLiteral.compare(.decimal(unscaled: 105, scale: 3), .decimal(unscaled: 10, scale: 2)) == 1)
        #expect(RuleLiteral.bound("x", for: t) == nil)
        #expect(RuleLiteral.bound("1.5", for: .int64) == nil)
        #expect(RuleLiteral.bound("a", for: .string) == nil)
    }

    @Test func unknownRulesSuggestTheNearestOrListThemAll() {
        #expect(specErrors(validate("  - not_nul: [id]\n")) == [
            "spec.yml:12:5: unknown validate rule 'not_nul'; did you mean 'not_null'?",
        ])
        #expect(specErrors(validate("  - colour: blue\n")) == [
            "spec.yml:12:5: unknown validate rule 'colour'; rules are not_null, unique, range, allowed, regex, "
                + "expression, max_failure_rate, min_rows, max_rows, min_rows_per_partition",
        ])
        #expect(specErrors(validate("  - range: {column: amount, maxx: 3}\n")) == [
            "spec.yml:12:29: unknown key 'maxx' in range; did you mean 'max'?",
        ])
        #expect(specErrors(validate("  - regex: {column: name, patern: 'a'}\n")) == [
            "spec.yml:12:27: unknown key 'patern' in regex; did you mean 'pattern'?",
        ])
        #expect(specErrors(validate("  - not_null: [id]\n    unique: [id]\n")) == [
            "spec.yml:12:5: a validate rule is a mapping with one key, such as 'not_null: [col]'",
        ])
    }

    @Test func unknownColumnsAndWrongTypes() {
        #expect(specErrors(validate("  - not_null: [idd]\n")) == [
            "spec.yml:12:16: unknown column 'idd' in not_null; did you mean 'id'?",
        ])
        #expect(specErrors(validate("  - range: {column: name, min: a}\n")) == [
            "spec.yml:12:21: range needs a number, decimal, date or timestamp column, but 'name' is string; "
                + "use allowed or regex for other columns",
        ])
        #expect(specErrors(validate("  - regex: {column: amount, pattern: '[0-9]+'}\n")) == [
            "spec.yml:12:21: regex needs a string column, but 'amount' is decimal(12,2); "
                + "cast it to string in a normalize step if that is what you mean",
        ])
        #expect(specErrors(validate("  - allowed: {column: nme, values: [a]}\n")) == [
            "spec.yml:12:23: unknown column 'nme' in allowed; did you mean 'name'?",
        ])
    }

    @Test func literalsAreTypedToTheColumn() {
        #expect(specErrors(validate("  - range: {column: amount, min: 0, max: ten}\n")) == [
            "spec.yml:12:42: range max 'ten' is not a valid decimal(12,2) for column 'amount' (a number with at most 18 digits)",
        ])
        #expect(specErrors(validate("  - range: {column: day, min: 2026-02-30}\n")) == [
            "spec.yml:12:31: range min '2026-02-30' is not a valid date for column 'day' (write dates as YYYY-MM-DD)",
        ])
        #expect(specErrors(validate("  - range: {column: id, min: 0.5}\n")) == [
            "spec.yml:12:30: range min '0.5' is not a valid int64 for column 'id' (a whole number)",
        ])
        #expect(specErrors(validate("  - range: {column: amount, min: 10, max: 9.99}\n")) == [
            "spec.yml:12:43: range max 9.99 is below min 10; no value could pass",
        ])
        #expect(specErrors(validate("  - range: {column: amount, min: 1, max: 1.00, exclusive_min: true}\n")) == [
            "spec.yml:12:42: range max 1.00 is equal to min 1 with an exclusive bound; no value could pass",
        ])
        #expect(specErrors(validate("  - range: {column: amount}\n")) == [
            "spec.yml:12:12: range needs 'min', 'max' or both",
        ])
        #expect(specErrors(validate("  - range: {column: amount, max: 1, exclusive_max: maybe}\n")) == [
            "spec.yml:12:52: 'exclusive_max' in range must be true or false, not 'maybe'",
        ])
        #expect(specErrors(validate("  - allowed: {column: amount, values: [1.5, 1.234]}\n")) == [
            "spec.yml:12:45: allowed value '1.234' is not a valid decimal(12,2) for column 'amount' "
                + "(at most 12 digits, 2 after the point)",
        ])
    }

    @Test func uniqueMustContainThePartitionKey() {
        #expect(specErrors(validate("  - unique: [name, day]\n", consolidate: true)) == [
            "spec.yml:12:13: each partition checks 'unique' on its own rows, so equal keys must meet in one partition: "
                + "the columns must include the partition key id (consolidate partition_by); add it to 'unique'",
        ])
        // Without consolidate there is one partition: any columns will do.
        #expect(specErrors(validate("  - unique: [name]\n")) == [])
    }

    @Test func aBadRegexIsASpecErrorAtThePattern() {
        #expect(specErrors(validate("  - regex: {column: name, pattern: '[a-'}\n")) == [
            "spec.yml:12:36: regex pattern '[a-' does not compile: expected ']'",
        ])
    }

    @Test func expressionsAreCheckedAndMustBeBool() {
        let checker = ExpressionLanguageChecker()
        #expect(specErrors(validate("  - expression: \"amount + 1\"\n"), checker: checker) == [
            "spec.yml:12:17: a validate expression must be bool (true for a good row), but this one is decimal(13,2)",
        ])
        #expect(specErrors(validate("  - expression: \"amout > 0\"\n"), checker: checker) == [
            "spec.yml:12:18: in validate expression: unknown column 'amout'; did you mean 'amount'?",
        ])
    }

    @Test func gatesAreCheckedAndGivenOnce() {
        #expect(specErrors(validate("  - max_failure_rate: 150%\n")) == [
            "spec.yml:12:23: 'max_failure_rate' must be a share of rows such as 5% or 0.05 (0% to 100%), not '150%'",
        ])
        #expect(specErrors(validate("  - min_rows: -1\n")) == [
            "spec.yml:12:15: 'min_rows' must be a whole number of rows (0 or more), not '-1'",
        ])
        #expect(specErrors(validate("  - max_rows: 10\n  - max_rows: 20\n")) == [
            "spec.yml:13:5: 'max_rows' is given twice (first at 12:5); keep one",
        ])
        #expect(specErrors(validate("  - min_rows: 10\n  - max_rows: 5\n")) == [
            "spec.yml:13:5: max_rows 5 is less than min_rows 10; no row count could pass",
        ])
        #expect(specErrors(validate("  - min_rows: 10\n    name: enough\n")) == [
            "spec.yml:13:5: 'name' applies to row rules, not to the gate 'min_rows'",
        ])
    }

    @Test func ruleNamesAreUnique() {
        #expect(specErrors(validate("  - range: {column: amount, min: 0}\n  - range: {column: amount, max: 5}\n")) == [
            "spec.yml:13:5: two validate rules are named 'range amount' (the other at 12:5); give one a 'name:'",
        ])
        #expect(specErrors(validate("  - range: {column: amount, min: 0}\n  - range: {column: amount, max: 5}\n    name: small\n")) == [])
    }

    @Test func missingPartsOfRules() {
        #expect(specErrors(validate("  - name: lonely\n")) == [
            "spec.yml:12:5: a validate rule needs a rule besides 'name', such as 'not_null: [col]'",
        ])
        #expect(specErrors(validate("  - not_null: [id]\n    name: ''\n")) == [
            "spec.yml:13:11: 'name' of a validate rule is empty",
        ])
        #expect(specErrors(validate("  - not_null: []\n")) == [
            "spec.yml:12:15: 'not_null' needs at least one column",
        ])
        #expect(specErrors(validate("  - unique: []\n")) == [
            "spec.yml:12:13: 'unique' needs at least one column",
        ])
        #expect(specErrors(validate("  - range: {column: amount, max: 1, exclusive_min: true}\n")) == [
            "spec.yml:12:37: 'exclusive_min' in range needs 'min'",
        ])
        #expect(specErrors(validate("  - range: {min: 1}\n")) == [
            "spec.yml:12:12: range needs 'column'",
        ])
        #expect(specErrors(validate("  - regex: {column: name}\n")) == [
            "spec.yml:12:12: regex needs 'pattern' (the whole value must match it)",
        ])
        #expect(specErrors(validate("  - allowed: {column: name}\n")) == [
            "spec.yml:12:14: allowed needs 'values' (a list)",
        ])
        #expect(specErrors(validate("  - allowed: {column: name, values: []}\n")) == [
            "spec.yml:12:37: 'values' in allowed needs at least one value",
        ])
        #expect(specErrors(validate("  - expression: \"\"\n")) == [
            "spec.yml:12:17: validate expression has an empty expression",
        ])
        #expect(specErrors("pipeline: x\nsources:\n  a: {format: csv, files: a.csv, columns: {id: int64}}\nvalidate: {not_null: id}\n") == [
            "spec.yml:4:11: 'validate' must be a list, not a mapping",
        ])
    }

    @Test func aNamedNotNullListNamesEachColumn() throws {
        let spec = try parseSpec(validate("  - not_null: [id, day]\n    name: required\n"))
        #expect(spec.validate.rules.map(\.name) == ["required id", "required day"])
    }
}
