/// Exact text for values: ISO dates, ISO 8601 UTC timestamps, decimals
/// without rounding. Used by `bis chunk cat` and reports.
public enum ValueText {
    /// Days since 1970-01-01 as YYYY-MM-DD (proleptic Gregorian).
    public static func date(days: Int64) -> String {
        let (y, m, d) = CivilDate.civil(days)
        return "\(year(y))-\(pad(m, 2))-\(pad(d, 2))"
    }

    /// Microseconds since the epoch as YYYY-MM-DDTHH:MM:SS[.ffffff]Z.
    public static func timestamp(micros: Int64) -> String {
        let perDay: Int64 = 86_400_000_000
        var days = micros / perDay
        var rest = micros % perDay
        if rest < 0 {
            rest += perDay
            days -= 1
        }
        let secs = rest / 1_000_000, frac = rest % 1_000_000
        let time = "\(pad(secs / 3600, 2)):\(pad(secs / 60 % 60, 2)):\(pad(secs % 60, 2))"
        return date(days: days) + "T" + time + (frac == 0 ? "" : "." + pad(frac, 6)) + "Z"
    }

    /// An unscaled integer with `scale` digits after the point.
    public static func decimal(unscaled: Int64, scale: Int) -> String {
        let negative = unscaled < 0
        var digits = String(unscaled.magnitude)
        guard scale > 0 else { return (negative ? "-" : "") + digits }
        if digits.count <= scale {
            digits = String(repeating: "0", count: scale - digits.count + 1) + digits
        }
        let point = digits.index(digits.endIndex, offsetBy: -scale)
        return (negative ? "-" : "") + digits[..<point] + "." + digits[point...]
    }

    /// A value of `type` as text (strings decoded as UTF-8).
    public static func format(_ value: Scalar, as type: ColumnType) -> String {
        switch (type, value) {
        case (.date, .int(let v)): return date(days: v)
        case (.timestamp, .int(let v)): return timestamp(micros: v)
        case (.decimal(_, let s), .int(let v)): return decimal(unscaled: v, scale: s)
        default: return value.description
        }
    }

    /// A CSV field (RFC 4180): quoted when it holds a comma, quote or line
    /// break, with quotes doubled.
    public static func csvField(_ s: String) -> String {
        guard s.utf8.contains(where: { $0 == 0x2C || $0 == 0x22 || $0 == 0x0A || $0 == 0x0D }) else { return s }
        var out = "\""
        for c in s.unicodeScalars {
            if c == "\"" { out += "\"\"" } else { out.unicodeScalars.append(c) }
        }
        return out + "\""
    }

    private static func pad<T: BinaryInteger>(_ v: T, _ width: Int) -> String {
        let s = String(v)
        return s.count >= width ? s : String(repeating: "0", count: width - s.count) + s
    }

    private static func year(_ y: Int64) -> String {
        y < 0 ? "-" + pad(-y, 4) : pad(y, 4)
    }

}
