import Columnar
import Testing
@testable import FleetCore

/// The cast helper normalize's `cast` step uses.
struct ExprCastTests {
    static func texts(_ c: Column) -> [String?] {
        (0..<c.count).map { c.isNull($0) ? nil : Cast.text(c, $0) }
    }

    static func strings(_ values: [String?]) throws -> Column {
        try Column(.string, scalars: values.map { $0.map(Scalar.string) })
    }

    @Test func stringToIntegerListsEveryBadRow() throws {
        let input = try Self.strings(["12", " -3 ", "12.5", "1e3", "abc", nil, "9223372036854775807", ""])
        do {
            _ = try Cast.cast(input, to: .int64)
            Issue.record("cast succeeded")
        } catch {
            #expect(error.failures.map(\.row) == [4, 7])
            #expect(error.failures[0] == CastFailure(row: 4, value: "abc", reason: "is not a number"))
            #expect(error.description
                == "cannot cast 2 values from string to int64: row 4: 'abc' is not a number; row 7: '' is not a number")
        }
        let (column, failures) = try Cast.castCollectingFailures(input, to: .int64)
        #expect(failures.count == 2)
        #expect(Self.texts(column) == ["12", "-3", "13", "1000", nil, nil, "9223372036854775807", nil])
    }

    @Test func stringToInt32ChecksRange() throws {
        let (column, failures) = try Cast.castCollectingFailures(try Self.strings(["2147483647", "2147483648"]), to: .int32)
        #expect(Self.texts(column) == ["2147483647", nil])
        #expect(failures.first?.reason == "out of range for int32")
    }

    @Test func stringToDecimalRoundsHalfAwayFromZero() throws {
        let type = ColumnType.decimal(precision: 5, scale: 2)
        let (column, failures) = try Cast.castCollectingFailures(
            try Self.strings(["1.235", "-1.235", "1.5e2", "999.994", "999.995", "+0.1", "1.2.3"]), to: type)
        #expect(Self.texts(column) == ["1.24", "-1.24", "150.00", "999.99", nil, "0.10", nil])
        #expect(failures.map(\.reason) == ["out of range for decimal(5,2)", "is not a number"])
    }

    @Test func decimalRescale() throws {
        let input = try Column(.decimal(precision: 15, scale: 2), scalars: [.int(125), .int(-125), .int(99_999), nil])
        #expect(Self.texts(try Cast.cast(input, to: .decimal(precision: 15, scale: 1))) == ["1.3", "-1.3", "1000.0", nil])
        #expect(Self.texts(try Cast.cast(input, to: .decimal(precision: 18, scale: 4))) == ["1.2500", "-1.2500", "999.9900", nil])
        let (narrow, failures) = try Cast.castCollectingFailures(input, to: .decimal(precision: 4, scale: 2))
        #expect(Self.texts(narrow) == ["1.25", "-1.25", nil, nil])
        #expect(failures == [CastFailure(row: 2, value: "999.99", reason: "out of range for decimal(4,2)")])
    }

    @Test func numbersToIntegers() throws {
        let decimals = try Column(.decimal(precision: 5, scale: 1), scalars: [.int(25), .int(-25), .int(-75)])
        #expect(Self.texts(try Cast.cast(decimals, to: .int64)) == ["3", "-3", "-8"])
        // Doubles round half to even, as DuckDB's cast does.
        let doubles = try Column(.double, scalars: [.double(2.5), .double(3.5), .double(-2.5), .double(.nan), .double(1e300)])
        let (ints, failures) = try Cast.castCollectingFailures(doubles, to: .int64)
        #expect(Self.texts(ints) == ["2", "4", "-2", nil, nil])
        #expect(failures.map(\.reason) == ["is not a finite number", "out of range for int64"])
        let wide = try Column(.int64, scalars: [.int(1 << 31), .int(-(1 << 31))])
        let (narrow, f2) = try Cast.castCollectingFailures(wide, to: .int32)
        #expect(Self.texts(narrow) == [nil, "-2147483648"])
        #expect(f2.map(\.row) == [0])
    }

    @Test func numbersToDecimalsAndDoubles() throws {
        let doubles = try Column(.double, scalars: [.double(1.1), .double(2.345), .double(-0.005)])
        #expect(Self.texts(try Cast.cast(doubles, to: .decimal(precision: 5, scale: 2))) == ["1.10", "2.35", "-0.01"])
        let ints = try Column(.int64, scalars: [.int(99), .int(100)])
        let (decimals, failures) = try Cast.castCollectingFailures(ints, to: .decimal(precision: 3, scale: 1))
        #expect(Self.texts(decimals) == ["99.0", nil])
        #expect(failures.count == 1)
        let d = try Column(.decimal(precision: 9, scale: 3), scalars: [.int(1234)])
        #expect(Self.texts(try Cast.cast(d, to: .double)) == ["1.234"])
        #expect(Self.texts(try Cast.cast(try Self.strings([" 2.5 ", "nan"]), to: .double)) == ["2.5", "nan"])
    }

    @Test func valuesToStrings() throws {
        let d = try Column(.decimal(precision: 9, scale: 2), scalars: [.int(1250), .int(-5)])
        #expect(Self.texts(try Cast.cast(d, to: .string)) == ["12.50", "-0.05"])
        let dates = try Column(.date, scalars: [.int(10471), nil])
        #expect(Self.texts(try Cast.cast(dates, to: .string)) == ["1998-09-02", nil])
        let ts = try Column(.timestamp, scalars: [.int(1_767_323_045_000_001)])
        #expect(Self.texts(try Cast.cast(ts, to: .string)) == ["2026-01-02T03:04:05.000001Z"])
        let b = try Column(.bool, scalars: [.bool(true), .bool(false)])
        #expect(Self.texts(try Cast.cast(b, to: .string)) == ["true", "false"])
        #expect(Self.texts(try Cast.cast(try Column(.int32, scalars: [.int(-4)]), to: .string)) == ["-4"])
    }

    @Test func stringsToDatesAndTimestamps() throws {
        let (dates, failures) = try Cast.castCollectingFailures(
            try Self.strings(["1998-09-02", "1998-02-30", "2026-01-02T23:04:05-02:00", "02/09/1998"]), to: .date)
        #expect(Self.texts(dates) == ["1998-09-02", nil, "2026-01-03", nil])
        #expect(failures.map(\.row) == [1, 3])
        #expect(failures.first?.reason == "is not a date (YYYY-MM-DD)")
        let ts = try Cast.cast(try Self.strings(["2026-01-02 03:04:05+01:00", "1970-01-01T00:00:00.5Z"]), to: .timestamp)
        #expect(Self.texts(ts) == ["2026-01-02T02:04:05Z", "1970-01-01T00:00:00.500000Z"])
    }

    @Test func datesAndTimestamps() throws {
        let dates = try Column(.date, scalars: [.int(0), .int(-1)])
        let ts = try Cast.cast(dates, to: .timestamp)
        #expect(Self.texts(ts) == ["1970-01-01T00:00:00Z", "1969-12-31T00:00:00Z"])
        let back = try Cast.cast(try Column(.timestamp, scalars: [.int(-1), .int(86_400_000_000)]), to: .date)
        #expect(Self.texts(back) == ["1969-12-31", "1970-01-02"])
    }

    @Test func booleans() throws {
        let (b, failures) = try Cast.castCollectingFailures(try Self.strings(["TRUE", "f", "yes", "0", "maybe"]), to: .bool)
        #expect(Self.texts(b) == ["true", "false", "true", "false", nil])
        #expect(failures.count == 1)
        #expect(Self.texts(try Cast.cast(try Column(.int64, scalars: [.int(0), .int(-3)]), to: .bool)) == ["false", "true"])
        #expect(Self.texts(try Cast.cast(b, to: .int32)) == ["1", "0", "1", "0", nil])
    }

    @Test func unsupportedCastsSaySo() throws {
        #expect(!Cast.isSupported(from: .date, to: .int64))
        #expect(Cast.isSupported(from: .string, to: .date))
        let dates = try Column(.date, scalars: [.int(1)])
        do {
            _ = try Cast.cast(dates, to: .int64)
            Issue.record("cast succeeded")
        } catch {
            #expect(error.failures.isEmpty)
            #expect(error.description == "cannot cast date to int64")
        }
    }

    @Test func identityKeepsTheColumn() throws {
        let c = try Column(.int64, scalars: [.int(1), nil])
        #expect(try Cast.cast(c, to: .int64).isIdentical(to: c))
    }
}
