import Columnar
import Testing
@testable import FleetCore

/// Result types, nullability and type errors.
struct ExprTypeTests {
    static func type(_ text: String) throws -> ColumnType {
        try Expression.parse(text).check(ExprFixture.schema).type
    }

    @Test func decimalResultTypes() throws {
        #expect(try Self.type("d + e") == .decimal(precision: 16, scale: 2))
        #expect(try Self.type("d - 1") == .decimal(precision: 16, scale: 2))
        #expect(try Self.type("d + 0.005") == .decimal(precision: 17, scale: 3))
        // An int64 column counts as decimal(18,0): the precision caps at 18.
        #expect(try Self.type("d - i") == .decimal(precision: 18, scale: 2))
        #expect(try Self.type("j + d") == .decimal(precision: 16, scale: 2))
    }

    @Test func productsAddScales() throws {
        #expect(try Self.type("d * e") == .decimal(precision: 18, scale: 4))
        #expect(try Self.type("0.5 * 0.25") == .decimal(precision: 3, scale: 3))
        #expect(try Self.type("d * 2") == .decimal(precision: 16, scale: 2))
        let schema = Schema([Field("l_extendedprice", .decimal(precision: 15, scale: 2)),
                             Field("l_discount", .decimal(precision: 15, scale: 2))])
        let revenue = try Expression.parse("l_extendedprice * (1 - l_discount)").check(schema)
        #expect(revenue.type == .decimal(precision: 18, scale: 4))
        #expect(revenue.field(named: "revenue") == Field("revenue", .decimal(precision: 18, scale: 4)))
    }

    @Test func wideningRules() throws {
        #expect(try Self.type("i + j") == .int64)
        #expect(try Self.type("j + j") == .int64)
        #expect(try Self.type("-j") == .int64)
        #expect(try Self.type("d + f") == .double)
        #expect(try Self.type("i * 1.5e0") == .double)
        #expect(try Self.type("i / j") == .double)
        #expect(try Self.type("d / e") == .double)
        #expect(try Self.type("i // j") == .int64)
        #expect(try Self.type("coalesce(j, d)") == .decimal(precision: 15, scale: 2))
        #expect(try Self.type("case when b then day else ts end") == .timestamp)
        #expect(try Self.type("length(s)") == .int64)
        #expect(try Self.type("year(day)") == .int64)
        #expect(try Self.type("date_trunc('month', day)") == .timestamp)
        #expect(try Self.type("round(d, 1)") == .decimal(precision: 15, scale: 1))
        #expect(try Self.type("round(d, 5)") == .decimal(precision: 15, scale: 2))
        #expect(try Self.type("abs(j)") == .int64)
        #expect(try Self.type("null") == .int32)
        #expect(try Self.type("day + 1") == .date)
        #expect(try Self.type("j + day") == .date)
        #expect(try Self.type("day - l_shipdate") == .int64)
        #expect(try Self.type("day + null") == .date)
    }

    @Test func nullability() throws {
        func nullable(_ t: String) throws -> Bool { try Expression.parse(t).check(ExprFixture.schema).nullable }
        #expect(try nullable("i + 1"))
        #expect(try !nullable("j + 1"))
        #expect(try !nullable("e * 2"))
        #expect(try !nullable("coalesce(i, 0)"))
        #expect(try nullable("coalesce(i, d)"))
        #expect(try !nullable("i is null"))
        #expect(try nullable("case when j > 0 then 1 end"))
        #expect(try !nullable("case when j > 0 then 1 else 2 end"))
        #expect(try nullable("j in (1, null)"))
    }

    /// (text, message, offset, length)
    static let typeErrors: [(String, String, Int, Int)] = [
        ("l_shipdate = '1998-09-02'", "cannot compare date with string", 0, 25),
        ("l_shipdat <= date '1998-09-02'", "unknown column 'l_shipdat'; did you mean 'l_shipdate'?", 0, 9),
        ("lenght(s) > 3", "unknown function 'lenght'; did you mean 'length'?", 0, 6),
        ("nosuchthing + 1", "unknown column 'nosuchthing'", 0, 11),
        ("frobnicate(s)", "unknown function 'frobnicate'", 0, 10),
        ("s + 1", "cannot apply '+' to string and int64", 0, 5),
        ("day * 2", "cannot apply '*' to date and int64", 0, 7),
        ("1 - day", "cannot apply '-' to int64 and date", 0, 7),
        ("day + ts", "cannot apply '+' to date and timestamp", 0, 8),
        ("not i", "'not' needs a bool operand, got int64", 4, 1),
        ("b and 1", "'and' needs a bool operand, got int64", 6, 1),
        ("upper(i)", "'upper' needs a string, got int64", 6, 1),
        ("round(d, j)", "round's digits must be an integer literal", 9, 1),
        ("date_trunc('week', day)", "date_trunc supports 'year', 'month' and 'day', not 'week'", 11, 6),
        ("substr(s)", "substr takes 2 or 3 arguments, got 1", 0, 9),
        ("case when b then 1 else 'x' end", "case branches mix int64 and string", 17, 10),
        ("i // 1.5", "'//' needs integers, got int64 and decimal(2,1)", 0, 8),
        ("year(s)", "year needs a date or timestamp, got string", 5, 1),
        ("i in (1, 'a')", "cannot compare int64 with string", 0, 12),
        ("d * d * d * d * d * d * d * d * d * d", "product of decimal scales 18 and 2 exceeds 18 digits after the point; round an operand first", 0, 37),
        ("-s", "cannot negate string", 0, 2),
        ("s || 1", "'||' needs a string, got int64", 5, 1),
        ("coalesce(s, day)", "coalesce arguments mix string and date", 9, 6),
    ]

    @Test(arguments: typeErrors.indices)
    func typeErrorsCarryPositionsAndHints(index: Int) throws {
        let (text, message, offset, length) = Self.typeErrors[index]
        let error = try #require(ExprFixture.error(text), "\(text) checked")
        #expect(error.message == message, "\(text)")
        #expect(error.offset == offset, "\(text)")
        #expect(error.length == length, "\(text)")
    }

    @Test func inputsListTheColumnsRead() throws {
        let typed = try Expression.parse("i + j > i and s is null").check(ExprFixture.schema)
        #expect(typed.inputs.map(\.name) == ["i", "j", "s"])
        #expect(!typed.isConstant)
    }
}
