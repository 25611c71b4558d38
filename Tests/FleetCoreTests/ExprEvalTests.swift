import Columnar
import Testing
@testable import FleetCore

/// Operators, null propagation, three-valued logic, in/between/case,
/// every function, decimal exactness, overflow and filtering.
struct ExprEvalTests {
    /// Rows 0...2 of the fixture: ordinary, negative, nulls.
    static let base = ExprFixture.batch.slice(0..<3)
    /// Row 3 alone: the extremes.
    static let extremes = ExprFixture.batch.slice(3..<4)

    static func v(_ text: String) throws -> [String?] { try ExprFixture.values(text, base) }

    @Test func integerArithmetic() throws {
        #expect(try Self.v("i + j") == ["11", "-5", nil])
        #expect(try Self.v("i - j") == ["-9", "-9", nil])
        #expect(try Self.v("i * j") == ["10", "-14", nil])
        #expect(try Self.v("i // 2") == ["0", "-3", nil])
        #expect(try Self.v("i % 2") == ["1", "-1", nil])
        #expect(try Self.v("-j") == ["-10", "-2", "0"])
    }

    @Test func divisionIsDoubleAsInDuckDB() throws {
        #expect(try Self.v("i / j") == ["0.1", "-3.5", nil])
        #expect(try Self.v("i / 0") == ["inf", "-inf", nil])
        #expect(try ExprFixture.constant("0 / 0") == "nan")
        let quotient = try Self.v("d / e")
        #expect(quotient == ["30.0", "1000.0", nil], "\(quotient)")
    }

    @Test func integerDivisionByZeroIsAnError() throws {
        let error = try #require(ExprFixture.runtimeError("100 // j", ExprFixture.batch))
        #expect(error.row == 2)
        #expect(error.message == "division by zero in '100 // j'")
        #expect(error.offset == 0 && error.length == 8)
        // Rows whose divisor is null are null, not errors.
        #expect(try Self.v("j // i") == ["10", "0", nil])
    }

    @Test func decimalArithmetic() throws {
        #expect(try Self.v("d + e") == ["1.55", "100.10", nil])
        #expect(try Self.v("d - e") == ["1.45", "99.90", nil])
        #expect(try Self.v("d * e") == ["0.0750", "10.0000", nil])
        #expect(try Self.v("d * 2") == ["3.00", "200.00", nil])
        #expect(try Self.v("d + 0.005") == ["1.505", "100.005", nil])
        #expect(try Self.v("-d") == ["-1.50", "-100.00", nil])
        #expect(try Self.v("d + i") == ["2.50", "93.00", nil])
    }

    @Test func decimalsAreExact() throws {
        #expect(try ExprFixture.constant("0.1 + 0.2") == "0.3")
        #expect(try ExprFixture.constant("0.1 + 0.2 = 0.3") == "true")
        #expect(try ExprFixture.constant("0.1 * 3") == "0.3")
        #expect(try ExprFixture.constant("1.10 * 1.10") == "1.2100")
        #expect(try ExprFixture.constant("0.5 * 0.25") == "0.125")
        #expect(try ExprFixture.constant("1 - 0.01") == "0.99")
    }

    @Test func derivedRevenue() throws {
        let schema = Schema([Field("l_extendedprice", .decimal(precision: 15, scale: 2)),
                             Field("l_discount", .decimal(precision: 15, scale: 2))])
        let batch = try ColumnBatch(schema: schema, columns: [
            Column(.decimal(precision: 15, scale: 2), scalars: [.int(10000), .int(3333), nil]),
            Column(.decimal(precision: 15, scale: 2), scalars: [.int(5), .int(10), .int(0)]),
        ])
        #expect(try ExprFixture.values("l_extendedprice * (1 - l_discount)", batch) == ["95.0000", "29.9970", nil])
    }

    @Test func doubleArithmetic() throws {
        #expect(try Self.v("f * 2") == ["5.0", "-1.0", nil])
        #expect(try Self.v("d + f") == ["4.0", "99.5", nil])
        #expect(try Self.v("f - j") == ["-7.5", "-2.5", nil])
    }

    @Test func int64OverflowIsAnErrorNamingTheRow() throws {
        let error = try #require(ExprFixture.runtimeError("i + 1", ExprFixture.batch))
        #expect(error.message == "overflow: 9223372036854775807 + 1 does not fit int64 in 'i + 1'")
        #expect(error.row == 3)
        #expect(error.offset == 0 && error.length == 5)
        #expect(error.description == "overflow: 9223372036854775807 + 1 does not fit int64 in 'i + 1' at 0…5, row 3")
        #expect(ExprFixture.runtimeError("-(-9223372036854775808)") != nil)
        #expect(ExprFixture.runtimeError("abs(-9223372036854775808)")?.message
            == "overflow: abs(-9223372036854775808) does not fit int64 in 'abs(-9223372036854775808)'")
        #expect(ExprFixture.runtimeError("i * 2", Self.extremes)?.row == 0)
    }

    @Test func decimalOverflowIsAnError() throws {
        let error = try #require(ExprFixture.runtimeError("d * d", ExprFixture.batch))
        #expect(error.row == 3)
        #expect(error.message
            == "overflow: 9999999999999.99 * 9999999999999.99 does not fit decimal(18,4) in 'd * d'")
        // Precision 18 caps sums too: 999999999999999999 + 1 needs 19 digits.
        #expect(ExprFixture.runtimeError("999999999999999999 + 1 + 0.0")?.message.hasPrefix("overflow") == true)
    }

    @Test func comparisons() throws {
        #expect(try Self.v("i = 1") == ["true", "false", nil])
        #expect(try Self.v("i <> 1") == ["false", "true", nil])
        #expect(try Self.v("i != 1") == ["false", "true", nil])
        #expect(try Self.v("i < 1") == ["false", "true", nil])
        #expect(try Self.v("i <= 1") == ["true", "true", nil])
        #expect(try Self.v("i > -7") == ["true", "false", nil])
        #expect(try Self.v("i >= -7") == ["true", "true", nil])
        #expect(try Self.v("d > 2") == ["false", "true", nil])
        #expect(try Self.v("d >= 1.5") == ["true", "true", nil])
        #expect(try Self.v("i = 1.0") == ["true", "false", nil])
        #expect(try Self.v("j > 2.5e0") == ["true", "false", "false"])
        #expect(try Self.v("f < 0") == ["false", "true", nil])
        #expect(try Self.v("s < 'I'") == ["true", "true", nil])
        #expect(try Self.v("s = 'Hello'") == ["true", "false", nil])
        #expect(try Self.v("day <= date '1998-09-02'") == ["true", "false", nil])
        #expect(try Self.v("ts > day") == ["true", "false", nil])
        #expect(try Self.v("b = true") == ["true", "false", nil])
        #expect(try Self.v("b > false") == ["true", "false", nil])
        #expect(try ExprFixture.values("i > d", Self.extremes) == ["true"])
    }

    static let truth: [String: Bool?] = ["true": true, "false": false, "null": nil]

    @Test func threeValuedLogic() throws {
        for (x, a) in Self.truth {
            for (y, b) in Self.truth {
                let and: Bool? = a == false || b == false ? false : (a == nil || b == nil ? nil : true)
                let or: Bool? = a == true || b == true ? true : (a == nil || b == nil ? nil : false)
                #expect(try ExprFixture.constant("\(x) and \(y)") == and.map { "\($0)" }, "\(x) and \(y)")
                #expect(try ExprFixture.constant("\(x) or \(y)") == or.map { "\($0)" }, "\(x) or \(y)")
            }
            #expect(try ExprFixture.constant("not \(x)") == a.map { "\(!$0)" }, "not \(x)")
        }
        // The same over columns, row by row.
        #expect(try Self.v("b and i > 0") == ["true", "false", nil])
        #expect(try Self.v("b or i > 0") == ["true", "false", nil])
        #expect(try Self.v("(i > 0) and b is null") == ["false", "false", nil])
        #expect(try Self.v("b is null or i > 0") == ["true", "false", "true"])
        #expect(try Self.v("not b") == ["false", "true", nil])
    }

    @Test func nullsPropagate() throws {
        #expect(try Self.v("i + null") == [nil, nil, nil])
        #expect(try Self.v("s || null") == [nil, nil, nil])
        #expect(try Self.v("null = null") == [nil, nil, nil])
        #expect(try Self.v("upper(s)") == ["HELLO", "  PAD ", nil])
        #expect(try Self.v("i is null") == ["false", "false", "true"])
        #expect(try Self.v("s is not null") == ["true", "true", "false"])
    }

    @Test func inLists() throws {
        #expect(try Self.v("i in (1, 2)") == ["true", "false", nil])
        #expect(try Self.v("i not in (1, 2)") == ["false", "true", nil])
        #expect(try Self.v("i in (1, null)") == ["true", nil, nil])
        #expect(try Self.v("i not in (1, null)") == ["false", nil, nil])
        #expect(try Self.v("s in ('Hello', 'x')") == ["true", "false", nil])
        #expect(try Self.v("d in (1.5, 100)") == ["true", "true", nil])
    }

    @Test func between() throws {
        #expect(try Self.v("i between -7 and 1") == ["true", "true", nil])
        #expect(try Self.v("i not between 0 and 5") == ["false", "true", nil])
        #expect(try Self.v("d between 1 and 2") == ["true", "false", nil])
        #expect(try Self.v("day between date '1998-09-01' and date '1998-09-02'") == ["true", "false", nil])
        #expect(try ExprFixture.constant("null between 1 and 2") == nil)
        #expect(try ExprFixture.constant("5 between 1 and null") == nil)
        #expect(try ExprFixture.constant("0 between 1 and null") == "false")
    }

    @Test func caseExpressions() throws {
        #expect(try Self.v("case when i > 0 then 'pos' when i < 0 then 'neg' end") == ["pos", "neg", nil])
        #expect(try Self.v("case when i > 0 then 1 else 2.5 end") == ["1.0", "2.5", "2.5"])
        #expect(try Self.v("case when b then d when not b then e end") == ["1.50", "0.10", nil])
        #expect(try Self.v("case when j > 5 then i else j end") == ["1", "2", "0"])
        #expect(try Self.v("CASE WHEN s IS NULL THEN 'none' ELSE s END") == ["Hello", "  pad ", "none"])
    }

    @Test func caseEvaluatesBranchesOnlyForTheirRows() throws {
        #expect(try ExprFixture.values("case when j = 0 then null else 100 // j end", ExprFixture.batch)
            == ["10", "50", nil, "0"])
        // Errors in a taken branch still name the caller's row.
        let error = try #require(ExprFixture.runtimeError("case when j < 5 then i + 9223372036854775807 end", ExprFixture.batch))
        #expect(error.row == 3)  // local row 2 of the branch (rows 1, 2, 3)
    }

    @Test func stringFunctions() throws {
        #expect(try Self.v("lower(s)") == ["hello", "  pad ", nil])
        #expect(try Self.v("upper(s)") == ["HELLO", "  PAD ", nil])
        #expect(try ExprFixture.constant("lower('ÉA')") == "éa")
        #expect(try Self.v("trim(s)") == ["Hello", "pad", nil])
        #expect(try ExprFixture.constant("trim('\tx ')") == "\tx")
        #expect(try Self.v("length(s)") == ["5", "6", nil])
        #expect(try ExprFixture.constant("length('日本語')") == "3")
        #expect(try ExprFixture.constant("length('e\u{301}')") == "2")
        #expect(try Self.v("s || '!'") == ["Hello!", "  pad !", nil])
    }

    /// substr counts characters (code points) from 1, like DuckDB.
    @Test func substrSemantics() throws {
        let cases: [(String, String)] = [
            ("substr('hello', 2, 3)", "ell"), ("substr('hello', 0, 2)", "h"), ("substr('hello', -2, 2)", "lo"),
            ("substr('hello', 10, 2)", ""), ("substr('hello', 3, -1)", "e"), ("substr('hello', 2)", "ello"),
            ("substr('hello', 0)", "hello"), ("substr('hello', -10, 3)", ""), ("substr('日本語', 2, 1)", "本"),
            ("substr('日本語', -1)", "語"),
        ]
        for (text, expected) in cases {
            #expect(try ExprFixture.constant(text) == expected, "\(text)")
        }
        #expect(try Self.v("substr(s, 1, 2)") == ["He", "  ", nil])
        #expect(try Self.v("substr(s, j - 8)") == ["ello", "  pad ", nil])
        #expect(try Self.v("substr('abc', i)") == ["abc", "abc", nil])
    }

    @Test func coalesce() throws {
        #expect(try Self.v("coalesce(i, j)") == ["1", "-7", "0"])
        #expect(try Self.v("coalesce(d, 0)") == ["1.50", "100.00", "0.00"])
        #expect(try Self.v("coalesce(s, null, 'z')") == ["Hello", "  pad ", "z"])
        #expect(try Self.v("coalesce(null, i)") == ["1", "-7", nil])
    }

    @Test func abs() throws {
        #expect(try Self.v("abs(i)") == ["1", "7", nil])
        #expect(try Self.v("abs(d - 200)") == ["198.50", "100.00", nil])
        #expect(try Self.v("abs(f)") == ["2.5", "0.5", nil])
    }

    @Test func round() throws {
        let cases: [(String, String)] = [
            ("round(2.5)", "3"), ("round(-2.5)", "-3"), ("round(2.345, 2)", "2.35"), ("round(-2.345, 2)", "-2.35"),
            ("round(1.2345, 2)", "1.23"), ("round(1234.5, -2)", "1200"), ("round(15, -1)", "20"),
            ("round(-15, -1)", "-20"), ("round(14, 0)", "14"), ("round(2.345e0, 2)", "2.35"),
            ("round(1.005e0, 2)", "1.0"), ("round(2.5e0)", "3.0"), ("round(-2.5e0)", "-3.0"),
            ("round(1234.5e0, -2)", "1200.0"), ("round(9.95, 1)", "10.0"),
        ]
        for (text, expected) in cases {
            #expect(try ExprFixture.constant(text) == expected, "\(text)")
        }
        #expect(try Self.v("round(d)") == ["2", "100", nil])
        #expect(try Self.v("round(f)") == ["3.0", "-1.0", nil])
    }

    @Test func dateParts() throws {
        #expect(try Self.v("year(day)") == ["1998", "1998", nil])
        #expect(try Self.v("month(day)") == ["9", "9", nil])
        #expect(try Self.v("day(day)") == ["2", "3", nil])
        #expect(try Self.v("year(ts)") == ["2026", "1998", nil])
        // 1969-12-31T23:59:59.5Z: parts of negative timestamps floor to the right day.
        #expect(try ExprFixture.values("year(ts) * 10000 + month(ts) * 100 + day(ts)", Self.extremes) == ["19691231"])
        #expect(try ExprFixture.values("month(day) * 100 + day(day)", Self.extremes) == ["229"])
    }

    @Test func dateArithmeticCountsDays() throws {
        #expect(try Self.v("day + 30") == ["1998-10-02", "1998-10-03", nil])
        #expect(try Self.v("day - j") == ["1998-08-23", "1998-09-01", nil])
        #expect(try Self.v("1 + day") == ["1998-09-03", "1998-09-04", nil])
        #expect(try Self.v("day - l_shipdate") == ["1", "1", nil])
        #expect(try ExprFixture.constant("date '2000-03-01' - 1") == "2000-02-29")
        #expect(try Self.v("l_shipdate <= date '1998-12-01' - 90") == ["true", "true", "false"])
        let error = try #require(ExprFixture.runtimeError("day + 9223372036854775807", Self.base))
        #expect(error.message.hasPrefix("date out of range: 1998-09-02 + 9223372036854775807"))
        #expect(error.row == 0)
    }

    @Test func dateTrunc() throws {
        #expect(try Self.v("date_trunc('month', day)") == ["1998-09-01T00:00:00Z", "1998-09-01T00:00:00Z", nil])
        #expect(try Self.v("date_trunc('YEAR', ts)") == ["2026-01-01T00:00:00Z", "1998-01-01T00:00:00Z", nil])
        #expect(try Self.v("date_trunc('day', ts)") == ["2026-01-02T00:00:00Z", "1998-09-02T00:00:00Z", nil])
        #expect(try ExprFixture.values("date_trunc('day', ts)", Self.extremes) == ["1969-12-31T00:00:00Z"])
    }

    @Test func filterKeepsRowsWhereThePredicateIsTrue() throws {
        let predicate = try Expression.parse("l_shipdate <= date '1998-09-02'").check(ExprFixture.schema)
        let kept = try predicate.filter(ExprFixture.batch)
        #expect(kept.rowCount == 2)
        #expect(kept.schema == ExprFixture.schema)
        #expect(kept["i"]?.scalar(at: 1) == .int(-7))
        // b is null in row 2: null is not true, so the row goes.
        #expect(try Expression.parse("b").check(ExprFixture.schema).selection(ExprFixture.batch) == [0, 3])
        #expect(try Expression.parse("true").check(ExprFixture.schema).filter(ExprFixture.batch).rowCount == 4)
        #expect(try Expression.parse("null").check(ExprFixture.schema).type == .int32)
        #expect(try Expression.parse("false and b").check(ExprFixture.schema).filter(ExprFixture.batch).rowCount == 0)
        #expect(throws: ExpressionError.self) {
            try Expression.parse("i + 1").check(ExprFixture.schema).filter(ExprFixture.batch)
        }
    }

    @Test func takingReordersRows() throws {
        let batch = ExprFixture.batch.taking([3, 0, 0])
        #expect(batch.rowCount == 3)
        #expect(batch["i"].map { (0..<3).map($0.scalar(at:)) } == [.int(Int64.max), .int(1), .int(1)])
        #expect(ExprFixture.batch.taking([1, 0, 2, 3])["j"]?.scalar(at: 0) == .int(2))
    }

    @Test func constantsEvaluateToScalars() throws {
        #expect(try Expression.constant("0.10") == (.int(10), .decimal(precision: 2, scale: 2)))
        #expect(try Expression.constant("date '2026-01-01'").value == .int(20454))
        #expect(try Expression.constant("'x' || 'y'").value == .string("xy"))
        #expect(try Expression.constant("null").value == nil)
        #expect(try Expression.constant("upper('a') = 'A'").value == .bool(true))
        #expect(throws: ExpressionError.self) {
            try Expression.parse("i + 1").check(ExprFixture.schema).evaluateConstant()
        }
    }

    @Test func constantsConvertExactlyToAColumnType() throws {
        let money = ColumnType.decimal(precision: 15, scale: 2)
        #expect(try Expression.constant("0", as: money) == .int(0))
        #expect(try Expression.constant("0.1", as: money) == .int(10))
        #expect(try Expression.constant("7", as: .double) == .double(7))
        #expect(try Expression.constant("'2026-01-01'", as: .date) == .int(20454))
        #expect(try Expression.constant("date '2026-01-01'", as: .timestamp) == .int(20454 * 86_400_000_000))
        #expect(try Expression.constant("null", as: .string) == nil)
        #expect(throws: ExpressionError("'0.125' does not fit decimal(15,2) exactly", offset: 0, length: 5)) {
            try Expression.constant("0.125", as: money)
        }
        #expect(throws: ExpressionError.self) { try Expression.constant("1.5", as: .int64) }
        #expect(throws: ExpressionError.self) { try Expression.constant("'abc'", as: .int64) }
        #expect(throws: ExpressionError("cannot use date '2026-01-01' (date) as int64", offset: 0, length: 17)) {
            try Expression.constant("date '2026-01-01'", as: .int64)
        }
    }

    @Test func emptyBatches() throws {
        let empty = ColumnBatch.empty(ExprFixture.schema)
        #expect(try ExprFixture.values("i + 1", empty).isEmpty)
        #expect(try ExprFixture.values("1 // 0", empty).isEmpty)
        #expect(try Expression.parse("i > 0").check(ExprFixture.schema).filter(empty).rowCount == 0)
    }

    @Test func batchMustMatchTheCheckedSchema() throws {
        let typed = try Expression.parse("i + 1").check(ExprFixture.schema)
        let other = try ColumnBatch(schema: Schema([Field("i", .double)]),
                                    columns: [Column(.double, scalars: [.double(1)])])
        #expect(throws: ExpressionError.self) { try typed.evaluate(other) }
        let missing = try ColumnBatch(schema: Schema([Field("k", .int64)]), columns: [Column(.int64, scalars: [.int(1)])])
        #expect(throws: ExpressionError.self) { try typed.evaluate(missing) }
    }

    @Test func implicitConversionErrorsNameTheRow() throws {
        // An int64 beyond 18 digits cannot take part in decimal arithmetic.
        let error = try #require(ExprFixture.runtimeError("i + 0.5", ExprFixture.batch))
        #expect(error.row == 3)
        #expect(error.message.contains("9223372036854775807"))
    }

    @Test func explicitCasts() throws {
        #expect(try Self.v("cast(d as int64)") == ["2", "100", nil])
        #expect(try Self.v("cast(i AS varchar) || '#'") == ["1#", "-7#", nil])
        #expect(try Self.v("cast(d as decimal(15,1))") == ["1.5", "100.0", nil])
        #expect(try Self.v("cast(day as timestamp)") == ["1998-09-02T00:00:00Z", "1998-09-03T00:00:00Z", nil])
        #expect(try ExprFixture.constant("cast('2026-01-02' as date)") == "2026-01-02")
        #expect(try ExprFixture.constant("cast(null as date)") == nil)
        #expect(try ExprFixture.constant("cast(1.5 as decimal)") == "1.500")
        let error = try #require(ExprFixture.runtimeError("cast(s as int64)", Self.base))
        #expect(error.message == "cannot convert string value Hello to int64: is not a number in 'cast(s as int64)'")
        #expect(error.row == 0)
        #expect(ExprFixture.error("cast(day as int64)")?.message == "cannot cast date to int64")
        #expect(ExprFixture.error("cast('x' as int64)")?.message == "cannot cast string 'x' to int64: is not a number")
        #expect(ExprFixture.error("cast(i as bigint2)")?.message == "unknown type 'bigint2'")
        #expect(ExprFixture.error("cast(i as strng)")?.message == "unknown type 'strng'; did you mean 'string'?")
        #expect(ExprFixture.error("cast(i as decimal(20,2))")?.message == "decimal(20,2) needs precision 1...18 and scale 0...precision")
    }

    @Test func nanSortsAboveNumbersAndEqualsItself() throws {
        #expect(try ExprFixture.constant("0 / 0 = 0 / 0") == "true")
        #expect(try ExprFixture.constant("0 / 0 > 1e308") == "true")
        #expect(try ExprFixture.constant("1 / 0 < 0 / 0") == "true")
    }

    @Test func deepNestingIsAnErrorNotACrash() throws {
        let deep = String(repeating: "(", count: 500) + "1" + String(repeating: ")", count: 500)
        #expect(ExprFixture.error(deep)?.message == "expression nested more than 200 levels deep")
        #expect(ExprFixture.error(String(repeating: "not ", count: 500) + "true") != nil)
        #expect(ExprFixture.error(String(repeating: "- ", count: 500) + "1") != nil)
        #expect(try ExprFixture.constant(String(repeating: "(", count: 50) + "1" + String(repeating: ")", count: 50)) == "1")
    }

    /// A long flat chain builds a tree as deep as it is long: it is bounded
    /// like parentheses (a 10,000-term sum crashed the type checker).
    @Test func longFlatChainsAreAnErrorNotACrash() throws {
        for (term, op) in [("i", " + "), ("i", " * "), ("s", " || "), ("b", " and "), ("b", " or "), ("i", " - ")] {
            let chain = Array(repeating: term, count: 10_000).joined(separator: op)
            let error = ExprFixture.error(chain)
            #expect(error?.message == "expression nested more than 200 levels deep", "\(op)")
            #expect((error?.offset ?? 0) > 0, "the error points into the chain")
        }
        #expect(try ExprFixture.constant(Array(repeating: "1", count: 150).joined(separator: " + ")) == "150")
    }

    /// A long `in` list is one flat list to the parser; the checker joins
    /// its comparisons as a balanced tree, so 10,000 values neither crash
    /// nor change the answer.
    @Test func longInListsAreBalancedNotDeep() throws {
        let values = (1...10_000).map(String.init).joined(separator: ", ")
        #expect(try ExprFixture.constant("9999 in (\(values))") == "true")
        #expect(try ExprFixture.constant("10001 in (\(values))") == "false")
        #expect(try ExprFixture.constant("1 not in (\(values))") == "false")
    }

    @Test func nullsInAColumnCheckedAsRequiredAreRefused() throws {
        let required = Schema([Field("x", .int64, nullable: false)])
        let typed = try Expression.parse("x + 1").check(required)
        #expect(!typed.nullable)
        let batch = try ColumnBatch(schema: Schema([Field("x", .int64)]), columns: [Column(.int64, scalars: [nil])])
        #expect(throws: ExpressionError.self) { try typed.evaluate(batch) }
    }

    @Test func slotsUnderNullsHoldZero() throws {
        let column = try Expression.parse("j + i").check(ExprFixture.schema).evaluate(Self.base)
        guard case .int64(let v) = column.values else { Issue.record("not int64"); return }
        #expect(v[2] == 0)
        let strings = try Expression.parse("s || 'x'").check(ExprFixture.schema).evaluate(Self.base)
        guard case .bytes(let s) = strings.values else { Issue.record("not bytes"); return }
        #expect(s.length(at: 2) == 0)
    }
}
