import Testing
import Columnar

@Suite struct ValueTextTests {
    @Test func datesAreISOIncludingBefore1970() {
        #expect(ValueText.date(days: 0) == "1970-01-01")
        #expect(ValueText.date(days: -1) == "1969-12-31")
        #expect(ValueText.date(days: 10_957) == "2000-01-01")
        #expect(ValueText.date(days: 11_016) == "2000-02-29")
        #expect(ValueText.date(days: -719_162) == "0001-01-01")
        #expect(ValueText.date(days: 2_932_896) == "9999-12-31")
    }

    @Test func timestampsAreISO8601UTC() {
        #expect(ValueText.timestamp(micros: 0) == "1970-01-01T00:00:00Z")
        #expect(ValueText.timestamp(micros: -1) == "1969-12-31T23:59:59.999999Z")
        #expect(ValueText.timestamp(micros: 1_764_182_096_000_123) == "2025-11-26T18:34:56.000123Z")
    }

    @Test func csvFieldsQuoteOnlyWhenNeeded() {
        #expect(ValueText.csvField("plain") == "plain")
        #expect(ValueText.csvField("a,b") == "\"a,b\"")
        #expect(ValueText.csvField("say \"hi\"") == "\"say \"\"hi\"\"\"")
        #expect(ValueText.csvField("two\nlines") == "\"two\nlines\"")
        #expect(ValueText.csvField("日本") == "日本")
    }

    @Test func decimalsAreExact() {
        #expect(ValueText.decimal(unscaled: -5, scale: 2) == "-0.05")
        #expect(ValueText.decimal(unscaled: 1234, scale: 2) == "12.34")
        #expect(ValueText.decimal(unscaled: 123, scale: 0) == "123")
        #expect(ValueText.decimal(unscaled: 0, scale: 3) == "0.000")
        #expect(ValueText.decimal(unscaled: 999_999_999_999_999_999, scale: 18) == "0.999999999999999999")
        #expect(ValueText.decimal(unscaled: Int64.min, scale: 4) == "-922337203685477.5808")
    }
}
