import Testing
@testable import Stages

@Suite struct IngestValueParserTests {
    func with<T>(_ s: String, _ body: (UnsafePointer<UInt8>, Int) -> T) -> T {
        var bytes = Array(s.utf8)
        bytes.append(0)  // a valid pointer even for ""
        return bytes.withUnsafeBufferPointer { body($0.baseAddress!, $0.count - 1) }
    }

    @Test func dates() {
        #expect(with("1970-01-01", ValueParsers.date) == 0)
        #expect(with("2000-02-29", ValueParsers.date) == 11016)
        #expect(with("1900-02-29", ValueParsers.date) == nil)
        #expect(with("1969-12-31", ValueParsers.date) == -1)
        #expect(with("0000-03-01", ValueParsers.date) == -719_468)
        #expect(with("9999-12-31", ValueParsers.date) == 2_932_896)
        for bad in ["2024-00-10", "2024-04-31", "2024-1-1", "2024/01/01", "2024-01-011", " 2024-01-01", "abcd-ef-gh"] {
            #expect(with(bad, ValueParsers.date) == nil, "\(bad)")
        }
    }

    @Test func timestamps() {
        #expect(with("1970-01-01T00:00:00", ValueParsers.timestamp) == 0)
        #expect(with("1970-01-01 00:00:01.5", ValueParsers.timestamp) == 1_500_000)
        #expect(with("1970-01-01T00:00:00.000001Z", ValueParsers.timestamp) == 1)
        #expect(with("1970-01-01T01:00:00+01:00", ValueParsers.timestamp) == 0)
        #expect(with("1969-12-31T23:00:00-01:00", ValueParsers.timestamp) == 0)
        #expect(with("1969-12-31T23:59:59.999999Z", ValueParsers.timestamp) == -1)
        for bad in ["1970-01-01T00:00", "1970-01-01T00:00:60", "1970-01-01T00:00:00.", "1970-01-01T00:00:00+0100",
                    "1970-01-01T00:00:00 Z", "1970-01-01X00:00:00", "1970-01-01T00:00:00+01:00:00"] {
            #expect(with(bad, ValueParsers.timestamp) == nil, "\(bad)")
        }
    }

    @Test func integersAndBools() {
        #expect(with("-0", ValueParsers.int64) == 0)
        #expect(with("+42", ValueParsers.int64) == 42)
        #expect(with("000000000000000000000000012", ValueParsers.int64) == 12)
        #expect(with("-9223372036854775808", ValueParsers.int64) == Int64.min)
        for bad in ["", "-", "+", "1e3", "1.0", "9223372036854775808", "-9223372036854775809", "0x10"] {
            #expect(with(bad, ValueParsers.int64) == nil, "\(bad)")
        }
        for (text, value) in [("TRUE", true), ("False", false), ("Y", true), ("n", false), ("YES", true), ("No", false), ("1", true), ("0", false)] {
            #expect(with(text, ValueParsers.bool) == value, "\(text)")
        }
        for bad in ["", "2", "tru", "yess", "truefalse"] { #expect(with(bad, ValueParsers.bool) == nil, "\(bad)") }
    }

    @Test func decimals() {
        func dec(_ s: String, _ p: Int, _ sc: Int) -> String {
            switch with(s, { ValueParsers.decimal($0, $1, precision: p, scale: sc) }) {
            case .value(let v): return "\(v)"
            case .failure(let f): return "\(f)"
            }
        }
        #expect(dec("0.01", 15, 2) == "1")
        #expect(dec("-12.5", 15, 2) == "-1250")
        #expect(dec("999999999999999999", 18, 0) == "999999999999999999")
        #expect(dec("0.999999999999999999", 18, 18) == "999999999999999999")
        #expect(dec("1", 18, 18) == "overflow")
        #expect(dec("1000", 5, 2) == "overflow")
        #expect(dec("999.99", 5, 2) == "99999")
        #expect(dec("1.005", 5, 2) == "tooManyFractionDigits")
        #expect(dec("1.0050x", 5, 2) == "syntax")
        #expect(dec("1e2", 5, 2) == "syntax")
        #expect(dec(".", 5, 2) == "syntax")
        #expect(dec("", 5, 2) == "syntax")
        #expect(dec("12345678901234567890", 18, 0) == "overflow")
    }

    @Test func doubles() {
        #expect(with("1e-3", ValueParsers.double) == 0.001)
        #expect(with("-.5", ValueParsers.double) == -0.5)
        #expect(with("5.", ValueParsers.double) == 5)
        #expect(with("-Infinity", ValueParsers.double) == -.infinity)
        #expect(with("NaN", ValueParsers.double)?.isNaN == true)
        for bad in ["", ".", "e5", "1e", "1,5", "0x1p3", "1e5x", "infinit"] {
            #expect(with(bad, ValueParsers.double) == nil, "\(bad)")
        }
    }

    @Test func utf8Validation() {
        func valid(_ bytes: [UInt8]) -> Bool { bytes.withUnsafeBufferPointer { ValueParsers.isValidUTF8($0.baseAddress ?? UnsafePointer(bitPattern: 1)!, $0.count) } }
        #expect(valid(Array("plain ascii text longer than eight bytes".utf8)))
        #expect(valid(Array("日本語 é 😀 \u{10FFFF}".utf8)))
        #expect(!valid([0xC0, 0x80]))              // overlong NUL
        #expect(!valid([0xE0, 0x80, 0x80]))        // overlong
        #expect(!valid([0xED, 0xA0, 0x80]))        // surrogate
        #expect(!valid([0xF4, 0x90, 0x80, 0x80]))  // past U+10FFFF
        #expect(!valid(Array("12345678".utf8) + [0xE6, 0x97]))  // cut short
        #expect(!valid([0x80]))
        #expect(!valid([0xFF]))
    }
}
