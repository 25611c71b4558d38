import Foundation

/// A five-field cron expression: minute, hour, day of month, month, day of
/// week. Each field is `*`, a number or name, a range `a-b`, a step `*/n`,
/// `a-b/n` or `a/n`, or a comma list of those. Months take JAN–DEC, days of
/// week SUN–SAT (0 and 7 are both Sunday), case-insensitive. `@hourly`,
/// `@daily` (`@midnight`), `@weekly`, `@monthly` and `@yearly` (`@annually`)
/// stand for their usual lines.
///
/// As in Vixie cron: when both day of month and day of week are restricted
/// (neither field starts with `*`), a day matches if either does; otherwise
/// both must. A stepped `*` (`*/2`) counts as unrestricted, as in Vixie;
/// croniter reads `0 0 */2 * 5` with OR instead.
public struct CronExpression: Sendable, Hashable, CustomStringConvertible {
    public let text: String
    public let minutes: Set<Int>
    public let hours: Set<Int>
    public let daysOfMonth: Set<Int>
    public let months: Set<Int>
    /// 0 (Sunday) to 6.
    public let daysOfWeek: Set<Int>
    let domRestricted: Bool
    let dowRestricted: Bool

    public var description: String { text }

    public struct ParseError: Error, Sendable, CustomStringConvertible {
        /// Offset in the expression (Unicode scalars, from 0) where the problem starts.
        public var offset: Int
        public var message: String
        public var description: String { message }
    }

    static let monthNames = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
    static let dayNames = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"]
    static let macros = ["@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
                         "@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *"]

    public init(_ text: String) throws(ParseError) {
        self.text = text
        var line = text.trimmingCharacters(in: .whitespaces)
        if line.hasPrefix("@") {
            guard let expanded = Self.macros[line.lowercased()] else {
                throw ParseError(offset: 0, message: "unknown cron macro '\(line)'; use one of "
                                 + Self.macros.keys.sorted().joined(separator: ", ") + ", or five fields")
            }
            line = expanded
        }
        // Fields with their offsets in `text`.
        var fields: [(String, Int)] = []
        var current = ""
        var start = 0
        let leading = text.unicodeScalars.prefix { $0 == " " }.count
        for (i, c) in line.unicodeScalars.enumerated() {
            if c == " " || c == "\t" {
                if !current.isEmpty { fields.append((current, start + leading)) }
                current = ""
            } else {
                if current.isEmpty { start = i }
                current.unicodeScalars.append(c)
            }
        }
        if !current.isEmpty { fields.append((current, start + leading)) }
        guard fields.count == 5 else {
            throw ParseError(offset: 0, message: "a cron line has five fields (minute hour day-of-month month day-of-week), "
                             + "this one has \(fields.count): '\(text)'")
        }
        if text.hasPrefix("@") { fields = fields.map { ($0.0, 0) } }
        minutes = try Self.field(fields[0], "minute", 0...59, names: [])
        hours = try Self.field(fields[1], "hour", 0...23, names: [])
        daysOfMonth = try Self.field(fields[2], "day of month", 1...31, names: [])
        months = try Self.field(fields[3], "month", 1...12, names: Self.monthNames, nameBase: 1)
        // `*` and `a/n` run to Saturday: 7 is only another name for Sunday.
        let dow = try Self.field(fields[4], "day of week", 0...7, names: Self.dayNames, openEnd: 6)
        daysOfWeek = Set(dow.map { $0 == 7 ? 0 : $0 })
        domRestricted = !fields[2].0.hasPrefix("*")
        dowRestricted = !fields[4].0.hasPrefix("*")
    }

    private static func field(_ f: (String, Int), _ what: String, _ range: ClosedRange<Int>, names: [String],
                              nameBase: Int = 0, openEnd: Int? = nil) throws(ParseError) -> Set<Int> {
        // Where `*` and `a/n` end.
        let end = openEnd ?? range.upperBound
        var out = Set<Int>()
        var offset = f.1
        for item in f.0.split(separator: ",", omittingEmptySubsequences: false).map(String.init) {
            defer { offset += item.unicodeScalars.count + 1 }
            func fail(_ m: String) -> ParseError { ParseError(offset: offset, message: "\(what) field '\(f.0)': \(m)") }
            guard !item.isEmpty else { throw fail("an empty item in the list") }
            var body = item
            var step = 1
            if let slash = item.firstIndex(of: "/") {
                body = String(item[..<slash])
                let stepText = String(item[item.index(after: slash)...])
                guard let s = Int(stepText), s >= 1, s <= range.upperBound + 1 else {
                    throw fail("step '\(stepText)' must be a whole number from 1 to \(range.upperBound + 1)")
                }
                step = s
            }
            func value(_ t: String) throws(ParseError) -> Int {
                if let n = Int(t) {
                    guard range.contains(n) else { throw fail("\(n) is outside \(range.lowerBound)-\(range.upperBound)") }
                    return n
                }
                if let i = names.firstIndex(of: t.uppercased()) { return i + nameBase }
                let hint = names.isEmpty ? "" : " or a name (\(names.first!)–\(names.last!))"
                throw fail("'\(t)' is not a number from \(range.lowerBound) to \(range.upperBound)\(hint)")
            }
            let lo: Int, hi: Int
            if body == "*" {
                lo = range.lowerBound; hi = end
            } else if let dash = body.firstIndex(of: "-") {
                lo = try value(String(body[..<dash]))
                hi = try value(String(body[body.index(after: dash)...]))
                guard lo <= hi else { throw fail("the range \(body) runs backwards") }
            } else {
                lo = try value(body)
                // `a/n` means a through the end, every n.
                hi = item.contains("/") ? max(end, lo) : lo
            }
            var v = lo
            while v <= hi { out.insert(v); v += step }
        }
        return out
    }

    /// Whether the local calendar day matches the day fields.
    func matchesDay(year: Int, month: Int, day: Int, weekday: Int) -> Bool {
        guard months.contains(month) else { return false }
        let dom = daysOfMonth.contains(day)
        let dow = daysOfWeek.contains(weekday)
        if domRestricted && dowRestricted { return dom || dow }
        return dom && dow
    }

    /// The expression in words: "at 02:15 every day", "every 15 minutes on Mon–Fri".
    public var inWords: String {
        func list(_ s: Set<Int>, _ f: (Int) -> String) -> String { s.sorted().map(f).joined(separator: ", ") }
        var time: String
        if minutes.count == 1 && hours.count <= 4 {
            let m = minutes.first!
            time = "at " + hours.sorted().map { String(format: "%02d:%02d", $0, m) }.joined(separator: ", ")
            if hours.count == 24 { time = "at minute \(m) of every hour" }
        } else if minutes.count == 60 && hours.count == 24 {
            time = "every minute"
        } else {
            let mins = minutes.count == 60 ? "every minute" : "at minute " + list(minutes) { "\($0)" }
            time = hours.count == 24 ? mins + " of every hour" : mins + " of hour " + list(hours) { "\($0)" }
        }
        var days: [String] = []
        let dow = daysOfWeek.count == 7 ? nil : list(daysOfWeek) { Self.dayNames[$0].capitalized }
        let dom = daysOfMonth.count == 31 ? nil : "day " + list(daysOfMonth) { "\($0)" } + " of the month"
        switch (dom, dow) {
        case (nil, nil): days.append("every day")
        case (let d?, nil): days.append("on " + d)
        case (nil, let w?): days.append("on " + w)
        case (let d?, let w?): days.append(domRestricted && dowRestricted ? "on \(d) or on \(w)" : "on \(d) if \(w)")
        }
        if months.count != 12 { days.append("in " + list(months) { Self.monthNames[$0 - 1].capitalized }) }
        return ([time] + days).joined(separator: " ")
    }
}

/// Calendar days as whole days since 1970-01-01 (proleptic Gregorian), with
/// no time zone: the local dates a schedule is written in.
public enum LocalDay {
    /// (year, month, day) of `days` since 1970-01-01.
    public static func ymd(_ days: Int) -> (year: Int, month: Int, day: Int) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let y = yoe + era * 400
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (m <= 2 ? y + 1 : y, m, d)
    }

    public static func days(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = month > 2 ? month - 3 : month + 9
        let doy = (153 * mp + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    /// 0 Sunday … 6 Saturday.
    public static func weekday(_ days: Int) -> Int { ((days % 7) + 7 + 4) % 7 }

    /// `YYYY-MM-DD`.
    public static func text(_ days: Int) -> String {
        let (y, m, d) = ymd(days)
        return String(format: "%04d-%02d-%02d", y, m, d)
    }

    /// Days of a `YYYY-MM-DD` text; nil when it is not a real date.
    public static func parse(_ text: String) -> Int? {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0].count == 4, parts[1].count == 2, parts[2].count == 2,
              let y = Int(parts[0]), let m = Int(parts[1]), let d = Int(parts[2]), (1...12).contains(m), (1...31).contains(d)
        else { return nil }
        let days = days(year: y, month: m, day: d)
        let back = ymd(days)
        return back.year == y && back.month == m && back.day == d ? days : nil
    }
}

/// A UTC instant as ISO 8601 (`2026-11-01T00:15:00Z`): how slots are stored and shown.
public enum SlotText {
    public static func utc(_ date: Date) -> String {
        let s = Int(date.timeIntervalSince1970.rounded(.down))
        let days = Int((Double(s) / 86400).rounded(.down))
        let rest = s - days * 86400
        return LocalDay.text(days) + String(format: "T%02d:%02d:%02dZ", rest / 3600, rest % 3600 / 60, rest % 60)
    }

    /// Local wall time in `zone`, with its offset: `2026-11-01T02:15:00+02:00`.
    public static func local(_ date: Date, in zone: TimeZone) -> String {
        let offset = zone.secondsFromGMT(for: date)
        let s = Int(date.timeIntervalSince1970.rounded(.down)) + offset
        let days = Int((Double(s) / 86400).rounded(.down))
        let rest = s - days * 86400
        let sign = offset < 0 ? "-" : "+"
        let a = abs(offset)
        return LocalDay.text(days) + String(format: "T%02d:%02d:%02d%@%02d:%02d", rest / 3600, rest % 3600 / 60, rest % 60,
                                             sign, a / 3600, a % 3600 / 60)
    }

    public static func parseUTC(_ text: String) -> Date? {
        guard text.count == 20, text.hasSuffix("Z"), let days = LocalDay.parse(String(text.prefix(10))) else { return nil }
        let t = text.dropFirst(11).dropLast()
        let p = t.split(separator: ":")
        guard p.count == 3, let h = Int(p[0]), let m = Int(p[1]), let s = Int(p[2]) else { return nil }
        return Date(timeIntervalSince1970: Double(days * 86400 + h * 3600 + m * 60 + s))
    }

    /// The local date (`YYYY-MM-DD`) of `date` in `zone`.
    public static func localDate(_ date: Date, in zone: TimeZone) -> String {
        LocalDay.text(localDays(date, in: zone))
    }

    static func localDays(_ date: Date, in zone: TimeZone) -> Int {
        let s = Int(date.timeIntervalSince1970.rounded(.down)) + zone.secondsFromGMT(for: date)
        return Int((Double(s) / 86400).rounded(.down))
    }
}
