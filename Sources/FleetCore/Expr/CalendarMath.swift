import Columnar

/// Calendar arithmetic for dates (days since 1970-01-01) and timestamps
/// (microseconds since 1970-01-01T00:00:00Z), proleptic Gregorian.
enum CalendarMath {
    static let microsPerDay: Int64 = 86_400_000_000

    static func days(year: Int64, month: Int64, day: Int64) -> Int64 {
        CivilDate.days(year: year, month: month, day: day)
    }

    static func civil(_ days: Int64) -> (year: Int64, month: Int64, day: Int64) { CivilDate.civil(days) }

    static func daysInMonth(_ year: Int64, _ month: Int64) -> Int64 { CivilDate.daysInMonth(year: year, month: month) }

    /// The day of a timestamp (floor division, so times before 1970 work).
    static func day(ofMicros micros: Int64) -> Int64 {
        let d = micros / microsPerDay
        return micros % microsPerDay < 0 ? d - 1 : d
    }

    /// `YYYY-MM-DD` (surrounding spaces allowed) as days since the epoch;
    /// nil when malformed or not a real day (1998-02-30).
    static func parseDate(_ text: String) -> Int32? {
        var scanner = DateScanner(text)
        scanner.skipSpaces()
        guard let days = scanner.date(), scanner.atEndAfterSpaces() else { return nil }
        return Int32(exactly: days)
    }

    /// ISO 8601: `YYYY-MM-DD`, then optionally `T` or a space and
    /// `HH:MM[:SS[.f…]]`, then optionally `Z` or an offset `±HH[:MM]`. Without
    /// an offset the time is taken as UTC. Fractions beyond microseconds are
    /// refused rather than silently cut.
    static func parseTimestamp(_ text: String) -> Int64? {
        var s = DateScanner(text)
        s.skipSpaces()
        guard let days = s.date() else { return nil }
        var micros: Int64 = 0
        if s.peek == UInt8(ascii: "T") || s.peek == UInt8(ascii: " ") {
            s.index += 1
            guard let h = s.digits(2), s.take(":"), let m = s.digits(2), h < 24, m < 60 else { return nil }
            var sec: Int64 = 0, frac: Int64 = 0
            if s.take(":") {
                guard let v = s.digits(2), v < 60 else { return nil }
                sec = v
                if s.take(".") {
                    var n = 0
                    while let c = s.peek, c >= 0x30, c <= 0x39 {
                        guard n < 6 else { return nil }
                        frac = frac * 10 + Int64(c - 0x30)
                        n += 1
                        s.index += 1
                    }
                    guard n > 0 else { return nil }
                    for _ in n..<6 { frac *= 10 }
                }
            }
            micros = ((h * 60 + m) * 60 + sec) * 1_000_000 + frac
            if s.take("Z") || s.take("z") {
            } else if let sign = s.peek, sign == UInt8(ascii: "+") || sign == UInt8(ascii: "-") {
                s.index += 1
                guard let oh = s.digits(2), oh < 24 else { return nil }
                var om: Int64 = 0
                if s.take(":") {
                    guard let v = s.digits(2) else { return nil }
                    om = v
                } else if let v = s.digits(2) {
                    om = v
                }
                guard om < 60 else { return nil }
                let offset = (oh * 60 + om) * 60_000_000
                micros += sign == UInt8(ascii: "+") ? -offset : offset
            }
        }
        guard s.atEndAfterSpaces() else { return nil }
        let (dayMicros, o1) = days.multipliedReportingOverflow(by: microsPerDay)
        let (total, o2) = dayMicros.addingReportingOverflow(micros)
        return o1 || o2 ? nil : total
    }
}

/// A cursor over ASCII digits and punctuation for date parsing.
struct DateScanner {
    let bytes: [UInt8]
    var index = 0

    init(_ text: String) {
        bytes = Array(text.utf8)
    }

    var peek: UInt8? { index < bytes.count ? bytes[index] : nil }

    mutating func take(_ c: Unicode.Scalar) -> Bool {
        guard peek == UInt8(ascii: c) else { return false }
        index += 1
        return true
    }

    mutating func skipSpaces() {
        while peek == 0x20 { index += 1 }
    }

    mutating func atEndAfterSpaces() -> Bool {
        skipSpaces()
        return index == bytes.count
    }

    /// Exactly `n` digits.
    mutating func digits(_ n: Int) -> Int64? {
        guard index + n <= bytes.count else { return nil }
        var v: Int64 = 0
        for k in 0..<n {
            let c = bytes[index + k]
            guard c >= 0x30, c <= 0x39 else { return nil }
            v = v * 10 + Int64(c - 0x30)
        }
        index += n
        return v
    }

    /// `YYYY-MM-DD` (a year of 4 to 6 digits, optionally negative) as days.
    mutating func date() -> Int64? {
        let negative = take("-")
        var year: Int64 = 0, n = 0
        while let c = peek, c >= 0x30, c <= 0x39, n < 6 {
            year = year * 10 + Int64(c - 0x30)
            n += 1
            index += 1
        }
        guard n >= 4, take("-"), let month = digits(2), take("-"), let day = digits(2) else { return nil }
        if negative { year = -year }
        guard (1...12).contains(month), day >= 1, day <= CalendarMath.daysInMonth(year, month) else { return nil }
        return CalendarMath.days(year: year, month: month, day: day)
    }
}
