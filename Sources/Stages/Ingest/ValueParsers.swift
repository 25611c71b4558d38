#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Columnar

/// Exact parsers from field bytes to column values: no String, no allocation.
/// Each takes a pointer and a length and returns nil (or a failure) when the
/// whole text is not a value of its type; no surrounding spaces are allowed.
enum ValueParsers {
    @inline(__always) static func isDigit(_ b: UInt8) -> Bool { b &- 0x30 < 10 }

    /// `[+-]?digits`, within Int64.
    @inline(__always)
    static func int64(_ p: UnsafePointer<UInt8>, _ n: Int) -> Int64? {
        guard n > 0 else { return nil }
        var i = 0
        var negative = false
        if p[0] == UInt8(ascii: "-") || p[0] == UInt8(ascii: "+") {
            negative = p[0] == UInt8(ascii: "-")
            i = 1
            guard n > 1 else { return nil }
        }
        // Up to 18 digits cannot overflow: the fast path.
        if n - i <= 18 {
            var v: Int64 = 0
            while i < n {
                let d = p[i] &- 0x30
                guard d < 10 else { return nil }
                v = v &* 10 &+ Int64(d)
                i += 1
            }
            return negative ? -v : v
        }
        var v: UInt64 = 0
        while i < n {
            let d = p[i] &- 0x30
            guard d < 10 else { return nil }
            let (m, o1) = v.multipliedReportingOverflow(by: 10)
            let (a, o2) = m.addingReportingOverflow(UInt64(d))
            guard !o1, !o2 else { return nil }
            v = a
            i += 1
        }
        if negative {
            guard v <= UInt64(Int64.max) + 1 else { return nil }
            return v == UInt64(Int64.max) + 1 ? Int64.min : -Int64(v)
        }
        guard v <= UInt64(Int64.max) else { return nil }
        return Int64(v)
    }

    enum DecimalFailure {
        case syntax
        /// More integer digits than precision - scale allow.
        case overflow
        /// Non-zero digits beyond the scale.
        case tooManyFractionDigits
    }

    /// `[+-]?(digits[.digits*]|.digits)` as an unscaled Int64 with `scale`
    /// fraction digits. Fraction digits beyond the scale must be zeros (the
    /// value is then exact); otherwise the text is refused, never rounded.
    @inline(__always)
    static func decimal(_ p: UnsafePointer<UInt8>, _ n: Int, precision: Int, scale: Int)
        -> DecimalParse
    {
        guard n > 0 else { return .failure(.syntax) }
        var i = 0
        var negative = false
        if p[0] == UInt8(ascii: "-") || p[0] == UInt8(ascii: "+") {
            negative = p[0] == UInt8(ascii: "-")
            i = 1
        }
        var v: Int64 = 0
        var intDigits = 0
        var sawDigit = false
        // Integer part; leading zeros do not count toward the precision.
        while i < n {
            let d = p[i] &- 0x30
            guard d < 10 else { break }
            sawDigit = true
            if v != 0 || d != 0 {
                intDigits += 1
                if intDigits > 18 { return .failure(.overflow) }
            }
            v = v &* 10 &+ Int64(d)
            i += 1
        }
        var frac = 0
        if i < n && p[i] == UInt8(ascii: ".") {
            i += 1
            while i < n {
                let d = p[i] &- 0x30
                guard d < 10 else { break }
                sawDigit = true
                if frac < scale {
                    v = v &* 10 &+ Int64(d)
                    frac += 1
                } else if d != 0 {
                    // Keep scanning to tell syntax errors from extra digits.
                    var j = i + 1
                    while j < n, isDigit(p[j]) { j += 1 }
                    return .failure(j == n ? .tooManyFractionDigits : .syntax)
                }
                i += 1
            }
        }
        guard sawDigit, i == n else { return .failure(.syntax) }
        guard intDigits <= precision - scale else { return .failure(.overflow) }
        while frac < scale {
            v = v &* 10
            frac += 1
        }
        return .value(negative ? -v : v)
    }

    enum DecimalParse {
        case value(Int64)
        case failure(DecimalFailure)
    }

    /// true/false/1/0/t/f/yes/no, any case.
    static func bool(_ p: UnsafePointer<UInt8>, _ n: Int) -> Bool? {
        guard n >= 1, n <= 5 else { return nil }
        var w: UInt64 = 0
        for i in 0..<n {
            var c = p[i]
            if c >= 0x41 && c <= 0x5A { c |= 0x20 }
            w = w << 8 | UInt64(c)
        }
        switch (n, w) {
        case (1, 0x31), (1, 0x74), (1, 0x79): return true  // 1 t y
        case (1, 0x30), (1, 0x66), (1, 0x6E): return false  // 0 f n
        case (4, 0x7472_7565): return true  // true
        case (5, 0x66_616C_7365): return false  // false
        case (3, 0x79_6573): return true  // yes
        case (2, 0x6E6F): return false  // no
        default: return nil
        }
    }

    /// Days since 1970-01-01 of a proleptic Gregorian date (Hinnant's algorithm).
    @inline(__always)
    static func days(year: Int64, month: Int64, day: Int64) -> Int64 {
        CivilDate.days(year: year, month: month, day: day)
    }

    @inline(__always)
    static func twoDigits(_ p: UnsafePointer<UInt8>, _ i: Int) -> Int64? {
        let a = p[i] &- 0x30, b = p[i + 1] &- 0x30
        guard a < 10, b < 10 else { return nil }
        return Int64(a) * 10 + Int64(b)
    }

    @inline(__always)
    static func isLeap(_ y: Int64) -> Bool { (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 }

    /// `YYYY-MM-DD` at the start of `p` (exactly 10 bytes are read) as days.
    @inline(__always)
    static func datePrefix(_ p: UnsafePointer<UInt8>) -> Int64? {
        guard let c = twoDigits(p, 0), let y2 = twoDigits(p, 2),
              p[4] == UInt8(ascii: "-"), let m = twoDigits(p, 5),
              p[7] == UInt8(ascii: "-"), let d = twoDigits(p, 8)
        else { return nil }
        let y = c * 100 + y2
        guard m >= 1, m <= 12, d >= 1 else { return nil }
        let monthDays: Int64
        switch m {
        case 2: monthDays = isLeap(y) ? 29 : 28
        case 4, 6, 9, 11: monthDays = 30
        default: monthDays = 31
        }
        guard d <= monthDays else { return nil }
        return days(year: y, month: m, day: d)
    }

    /// `YYYY-MM-DD` as days since 1970-01-01.
    @inline(__always)
    static func date(_ p: UnsafePointer<UInt8>, _ n: Int) -> Int32? {
        guard n == 10, let d = datePrefix(p) else { return nil }
        return Int32(d)
    }

    /// ISO 8601 `YYYY-MM-DD[T ]HH:MM:SS[.f{1,6}][Z|±HH:MM]` as UTC
    /// microseconds; without an offset the time is UTC.
    static func timestamp(_ p: UnsafePointer<UInt8>, _ n: Int) -> Int64? {
        guard n >= 19, let day = datePrefix(p) else { return nil }
        let sep = p[10]
        guard sep == UInt8(ascii: "T") || sep == UInt8(ascii: " ") || sep == UInt8(ascii: "t") else { return nil }
        guard let hh = twoDigits(p, 11), p[13] == UInt8(ascii: ":"), let mm = twoDigits(p, 14),
              p[16] == UInt8(ascii: ":"), let ss = twoDigits(p, 17),
              hh < 24, mm < 60, ss < 60
        else { return nil }
        var i = 19
        var micros: Int64 = 0
        if i < n && p[i] == UInt8(ascii: ".") {
            i += 1
            var digits = 0
            while i < n, isDigit(p[i]) {
                guard digits < 6 else { return nil }
                micros = micros * 10 + Int64(p[i] &- 0x30)
                digits += 1
                i += 1
            }
            guard digits > 0 else { return nil }
            while digits < 6 {
                micros *= 10
                digits += 1
            }
        }
        var offsetSeconds: Int64 = 0
        if i < n {
            let c = p[i]
            if c == UInt8(ascii: "Z") || c == UInt8(ascii: "z") {
                i += 1
            } else if c == UInt8(ascii: "+") || c == UInt8(ascii: "-") {
                guard n - i == 6, let oh = twoDigits(p, i + 1), p[i + 3] == UInt8(ascii: ":"),
                      let om = twoDigits(p, i + 4), oh < 24, om < 60
                else { return nil }
                offsetSeconds = (oh * 3600 + om * 60) * (c == UInt8(ascii: "+") ? 1 : -1)
                i += 6
            } else {
                return nil
            }
        }
        guard i == n else { return nil }
        let seconds = day * 86_400 + hh * 3600 + mm * 60 + ss - offsetSeconds
        return seconds * 1_000_000 + micros
    }

    /// A decimal floating-point text (`[+-]?(d+[.d*]|.d+)([eE][+-]?d+)?`, or
    /// nan, inf, infinity in any case), converted by strtod.
    static func double(_ p: UnsafePointer<UInt8>, _ n: Int) -> Double? {
        guard n > 0, n < 400 else { return nil }
        var i = 0
        if p[0] == UInt8(ascii: "-") || p[0] == UInt8(ascii: "+") { i = 1 }
        var digits = 0
        while i < n, isDigit(p[i]) { i += 1; digits += 1 }
        if i < n, p[i] == UInt8(ascii: ".") {
            i += 1
            while i < n, isDigit(p[i]) { i += 1; digits += 1 }
        }
        if digits == 0 {
            // nan / inf / infinity
            let rest = n - i
            guard rest == 3 || rest == 8 else { return nil }
            var word = [UInt8]()
            for k in i..<n { word.append(p[k] | 0x20) }
            switch word {
            case Array("nan".utf8): return .nan
            case Array("inf".utf8), Array("infinity".utf8): return p[0] == UInt8(ascii: "-") ? -.infinity : .infinity
            default: return nil
            }
        }
        if i < n, p[i] | 0x20 == UInt8(ascii: "e") {
            i += 1
            if i < n, p[i] == UInt8(ascii: "-") || p[i] == UInt8(ascii: "+") { i += 1 }
            var e = 0
            while i < n, isDigit(p[i]) { i += 1; e += 1 }
            guard e > 0 else { return nil }
        }
        guard i == n else { return nil }
        return withUnsafeTemporaryAllocation(of: CChar.self, capacity: n + 1) { buf in
            for k in 0..<n { buf[k] = CChar(bitPattern: p[k]) }
            buf[n] = 0
            return strtod(buf.baseAddress!, nil)
        }
    }

    /// Whether the bytes are well-formed UTF-8 (no overlongs, surrogates or
    /// code points past U+10FFFF). ASCII runs are checked 8 bytes at a time.
    @inline(__always)
    static func isValidUTF8(_ p: UnsafePointer<UInt8>, _ n: Int) -> Bool {
        var i = 0
        while i + 8 <= n {
            let w = UnsafeRawPointer(p + i).loadUnaligned(as: UInt64.self)
            if w & 0x8080_8080_8080_8080 != 0 { break }
            i += 8
        }
        while i < n {
            if p[i] < 0x80 { i += 1; continue }
            return validateTail(p + i, n - i)
        }
        return true
    }

    static func validateTail(_ p: UnsafePointer<UInt8>, _ n: Int) -> Bool {
        var i = 0
        while i < n {
            let c = p[i]
            if c < 0x80 { i += 1; continue }
            var need = 0
            var lo: UInt8 = 0x80, hi: UInt8 = 0xBF
            switch c {
            case 0xC2...0xDF: need = 1
            case 0xE0: need = 2; lo = 0xA0
            case 0xE1...0xEC, 0xEE...0xEF: need = 2
            case 0xED: need = 2; hi = 0x9F
            case 0xF0: need = 3; lo = 0x90
            case 0xF1...0xF3: need = 3
            case 0xF4: need = 3; hi = 0x8F
            default: return false
            }
            guard i + need < n else { return false }
            let b1 = p[i + 1]
            guard b1 >= lo, b1 <= hi else { return false }
            for k in 2..<(need + 1) {
                guard p[i + k] & 0xC0 == 0x80 else { return false }
            }
            i += need + 1
        }
        return true
    }
}
