import Testing
import Columnar
@testable import Stages

/// `ParquetConversion`, value by value (no Python needed).
@Suite struct ParquetConversionTests {
    @Test func conversionsAreExact() {
        func conv(_ v: ParquetConversion.Value, _ t: ColumnType) -> String {
            switch ParquetConversion.convert(v, to: t) {
            case .success(let s): return ValueText.format(s, as: t)
            case .failure(let r): return "! " + r.text
            }
        }
        #expect(conv(.double(0.1), .decimal(precision: 9, scale: 2)) == "0.10")
        #expect(conv(.double(0.125), .decimal(precision: 9, scale: 2)).hasPrefix("! '0.125' has more than 2 digits"))
        #expect(conv(.double(1e-05), .decimal(precision: 9, scale: 5)) == "0.00001")
        #expect(conv(.double(1.5e20), .decimal(precision: 18, scale: 0)).contains("overflows decimal(18,0)"))
        #expect(conv(.double(3.0), .int32) == "3")
        #expect(conv(.double(3.5), .int32).contains("is not a whole number"))
        #expect(conv(.double(.nan), .int64).contains("is not a whole number"))
        #expect(conv(.decimal(150, scale: 2), .decimal(precision: 5, scale: 1)) == "1.5")
        #expect(conv(.decimal(155, scale: 2), .decimal(precision: 5, scale: 1)).contains("more than 1 digits after the point"))
        #expect(conv(.decimal(12_300, scale: 2), .int64) == "123")
        #expect(conv(.decimal(12_345, scale: 2), .int64).contains("'123.45' is not a whole number"))
        #expect(conv(.decimal(Int128(10).power(30), scale: 2), .double) == "1e+28")
        #expect(conv(.int(Int128(Int32.max) + 1), .int32).contains("does not fit int32"))
        #expect(conv(.int(99_999), .decimal(precision: 5, scale: 0)) == "99999")
        #expect(conv(.int(100_000), .decimal(precision: 5, scale: 0)).contains("overflows decimal(5,0)"))
        #expect(conv(.nanos(1_000_000_001_000), .timestamp) == "1970-01-01T00:16:40.000001Z")
        #expect(conv(.nanos(1_000_000_000_001), .string) == "1970-01-01T00:16:40.000000001Z")
        #expect(conv(.nanos(1_000_000_001_000), .string) == "1970-01-01T00:16:40.000001Z")
        #expect(conv(.nanos(-1), .timestamp).contains("sub-microsecond"))
        #expect(conv(.micros(86_400_000_000), .date) == "1970-01-02")
        #expect(conv(.micros(86_400_000_001), .date).contains("has a time of day"))
        #expect(conv(.date(1), .timestamp) == "1970-01-02T00:00:00Z")
        #expect(conv(.bytes(Array("12.5".utf8)[...]), .decimal(precision: 4, scale: 1)) == "12.5")
        #expect(conv(.bytes(Array("x".utf8)[...]), .int64) == "! 'x' is not an int64")
        #expect(conv(.bytes([0xFF][...]), .string) == "! invalid UTF-8")
        #expect(conv(.bool(true), .string) == "true")
    }

    /// Cases the review found untested: negative decimals scaled down,
    /// FLOAT values, milliseconds past the microsecond range.
    @Test func negativeDecimalsFloatsAndWideTimestamps() {
        func conv(_ v: ParquetConversion.Value, _ t: ColumnType) -> String {
            switch ParquetConversion.convert(v, to: t) {
            case .success(let s): return ValueText.format(s, as: t)
            case .failure(let r): return "! " + r.text
            }
        }
        #expect(conv(.decimal(-150, scale: 2), .decimal(precision: 5, scale: 1)) == "-1.5")
        #expect(conv(.decimal(-155, scale: 2), .decimal(precision: 5, scale: 1)).contains("'-1.55' has more than 1 digits after the point"))
        #expect(conv(.decimal(-12_300, scale: 2), .int64) == "-123")
        #expect(conv(.decimal(-5, scale: 2), .decimal(precision: 3, scale: 2)) == "-0.05")
        #expect(conv(.decimal(-100_000, scale: 0), .decimal(precision: 5, scale: 0)).contains("overflows decimal(5,0)"))
        #expect(conv(.float(0.1), .decimal(precision: 9, scale: 2)) == "0.10")
        #expect(conv(.float(-0.1), .decimal(precision: 9, scale: 2)) == "-0.10")
        #expect(conv(.float(16_777_216), .int64) == "16777216")
        #expect(conv(.float(0.5), .int32).contains("is not a whole number"))
        #expect(conv(.float(.nan), .decimal(precision: 9, scale: 2)).contains("is not a decimal(9,2)"))
        #expect(conv(.float(0.1), .string) == "0.1")
        #expect(conv(.float(0.1), .double) == "0.10000000149011612")
        #expect(conv(.nanos(Int128(Int64.max / 10) * 1_000_000), .timestamp).contains("is out of the timestamp range"))
    }
}
