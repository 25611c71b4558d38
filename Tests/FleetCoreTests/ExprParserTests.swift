import Columnar
import Testing
@testable import FleetCore

/// Literals, names, precedence and parse errors with exact positions.
struct ExprParserTests {
    @Test func integerLiterals() throws {
        #expect(try ExprFixture.constant("42") == "42")
        #expect(try ExprFixture.constant("-9223372036854775808") == "-9223372036854775808")
        #expect(try Expression.constant("7").type == .int64)
    }

    @Test func decimalLiteralsAreExact() throws {
        let (value, type) = try Expression.constant("0.10")
        #expect(value == .int(10))
        #expect(type == .decimal(precision: 2, scale: 2))
        #expect(try ExprFixture.constant("12.340") == "12.340")
        #expect(try ExprFixture.constant("-.5") == "-0.5")
    }

    @Test func exponentLiteralsAreDoubles() throws {
        let (value, type) = try Expression.constant("1.5e3")
        #expect(value == .double(1500))
        #expect(type == .double)
    }

    @Test func stringLiteralsDoubleTheirQuotes() throws {
        #expect(try ExprFixture.constant("'it''s'") == "it's")
        #expect(try ExprFixture.constant("''") == "")
        #expect(try ExprFixture.constant("'日本'") == "日本")
    }

    @Test func dateLiterals() throws {
        let (value, type) = try Expression.constant("date '1998-09-02'")
        #expect(type == .date)
        #expect(value == .int(10471))
        #expect(try ExprFixture.constant("DATE '2000-02-29'") == "2000-02-29")
        #expect(try ExprFixture.constant("date '1969-12-31'") == "1969-12-31")
    }

    @Test func timestampLiteralsAreStoredAsUTCMicroseconds() throws {
        let (value, type) = try Expression.constant("timestamp '2026-01-02T03:04:05Z'")
        #expect(type == .timestamp)
        #expect(value == .int(1_767_323_045_000_000))
        #expect(try ExprFixture.constant("timestamp '2026-01-02T03:04:05+02:00'") == "2026-01-02T01:04:05Z")
        #expect(try ExprFixture.constant("timestamp '2026-01-02T03:04:05-0130'") == "2026-01-02T04:34:05Z")
        #expect(try ExprFixture.constant("timestamp '2026-01-02 03:04:05.25'") == "2026-01-02T03:04:05.250000Z")
        #expect(try ExprFixture.constant("timestamp '2026-01-02'") == "2026-01-02T00:00:00Z")
    }

    @Test func booleanAndNullLiterals() throws {
        #expect(try ExprFixture.constant("true") == "true")
        #expect(try ExprFixture.constant("FALSE") == "false")
        #expect(try ExprFixture.constant("null") == nil)
        #expect(try ExprFixture.constant("NuLl is null") == "true")
    }

    @Test func columnReferences() throws {
        #expect(try ExprFixture.values("\"odd name\"") == ["a", "b", "c", "d"])
        // Unquoted names match case-insensitively when unambiguous, as in DuckDB.
        #expect(try ExprFixture.values("J") == ["10", "2", "0", "-2147483648"])
        // `date` is a keyword only before a string literal.
        let schema = Schema([Field("date", .date)])
        #expect(try Expression.parse("date >= date '2000-01-01'").check(schema).type == .bool)
    }

    @Test func precedence() throws {
        #expect(try ExprFixture.constant("1 + 2 * 3") == "7")
        #expect(try ExprFixture.constant("(1 + 2) * 3") == "9")
        #expect(try ExprFixture.constant("10 - 4 - 3") == "3")
        #expect(try ExprFixture.constant("-2 * 3") == "-6")
        #expect(try ExprFixture.constant("not true and false") == "false")
        #expect(try ExprFixture.constant("true or false and false") == "true")
        #expect(try ExprFixture.constant("not 1 = 2") == "true")
        #expect(try ExprFixture.constant("1 + 1 between 2 and 3") == "true")
    }

    @Test func keywordsAreCaseInsensitive() throws {
        #expect(try ExprFixture.constant("CASE WHEN 1 IN (1) AND NOT 2 BETWEEN 3 AND 4 THEN 'y' ELSE 'n' END") == "y")
    }

    /// (text, message, offset, length)
    static let parseErrors: [(String, String, Int, Int)] = [
        ("(l_shipdate <= 3", "expected ')'", 16, 0),
        ("substr(s, 1 2)", "expected ')' but found 2", 12, 1),
        ("a +", "expected a value but the expression ends", 3, 0),
        ("'abc", "unterminated string: missing closing '", 0, 4),
        ("1 + @", "unexpected character '@'", 4, 1),
        ("date '1998-02-30'", "invalid date '1998-02-30': expected YYYY-MM-DD", 5, 12),
        ("timestamp '2026-01-02T25:00'", "invalid timestamp '2026-01-02T25:00': expected YYYY-MM-DDTHH:MM:SS[.ffffff][Z|±HH:MM]", 10, 18),
        ("i = 1 )", "unexpected ')' after the expression", 6, 1),
        ("99999999999999999999", "integer 99999999999999999999 is out of range for int64", 0, 20),
        ("case when b then 1", "expected 'end' but found the end", 18, 0),
        ("i between 1", "expected 'and' but found the end", 11, 0),
        ("", "empty expression", 0, 0),
        ("1 + and", "expected a value but found keyword 'and'", 4, 3),
        ("'日本' = 1 +", "expected a value but the expression ends", 14, 0),
        ("1 < 2 = true", "unexpected '=' after the expression", 6, 1),
        ("12abc", "malformed number '12a'", 0, 3),
        ("\"\"", "empty quoted name", 0, 2),
        ("1.2345678901234567890", "decimal 1.2345678901234567890 has more than 18 digits", 0, 21),
    ]

    @Test(arguments: parseErrors.indices)
    func parseErrorsCarryExactPositions(index: Int) throws {
        let (text, message, offset, length) = Self.parseErrors[index]
        let error = try #require(ExprFixture.error(text), "\(text) parsed")
        #expect(error.message == message, "\(text)")
        #expect(error.offset == offset, "\(text)")
        #expect(error.length == length, "\(text)")
        #expect(error.row == nil)
    }

    @Test func errorDescriptionsNameThePosition() {
        #expect(ExprFixture.error("(l_shipdate <= 3")?.description == "expected ')' at 16")
        #expect(ExprFixture.error("l_shipdate = 'x'")?.description == "cannot compare date with string at 0…16")
    }
}
