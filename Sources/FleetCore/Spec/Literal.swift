import Columnar

/// Converts a literal written in a spec (`fill_null` values) to a `Scalar`
/// of a column type, with Columnar's representations: dates as days since
/// 1970-01-01, timestamps as microseconds (UTC), decimals unscaled.
enum SpecLiteral {
    static func scalar(_ text: String, as type: ColumnType) -> Scalar? {
        switch type {
        case .int64:
            return Int64(text).map(Scalar.int)
        case .int32:
            return Int32(text).map { .int(Int64($0)) }
        case .double:
            return Double(text).map(Scalar.double)
        case .bool:
            switch text.lowercased() {
            case "true": return .bool(true)
            case "false": return .bool(false)
            default: return nil
            }
        case .string:
            return .string(text)
        case .decimal(let precision, let scale):
            return decimal(text, precision: precision, scale: scale).map(Scalar.int)
        case .date:
            return date(text).map(Scalar.int)
        case .timestamp:
            return timestamp(text).map(Scalar.int)
        }
    }

    /// `-12.5` at scale 2 → -1250; nil when it has more fraction digits than
    /// the scale or more digits than the precision.
    static func decimal(_ text: String, precision: Int, scale: Int) -> Int64? {
        var s = Substring(text)
        var negative = false
        if s.first == "-" || s.first == "+" {
            negative = s.first == "-"
            s = s.dropFirst()
        }
        let parts = s.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count <= 2 else { return nil }
        let whole = parts[0]
        let fraction = parts.count == 2 ? parts[1] : ""
        guard !(whole.isEmpty && fraction.isEmpty),
              whole.allSatisfy({ $0.isASCII && $0.isNumber }),
              fraction.allSatisfy({ $0.isASCII && $0.isNumber }),
              fraction.count <= scale else { return nil }
        let digits = String(whole.drop { $0 == "0" }) + fraction + String(repeating: "0", count: scale - fraction.count)
        let significant = digits.drop { $0 == "0" }
        guard significant.count <= precision, let value = Int64(significant.isEmpty ? "0" : String(significant)) else {
            return nil
        }
        return negative ? -value : value
    }

    /// `YYYY-MM-DD` → days since 1970-01-01.
    static func date(_ text: String) -> Int64? {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0].count == 4, parts[1].count == 2, parts[2].count == 2,
              let y = Int64(parts[0]), let m = Int64(parts[1]), let d = Int64(parts[2]),
              (1...12).contains(m), d >= 1, d <= daysInMonth(y, m) else { return nil }
        return daysFromCivil(y, m, d)
    }

    /// `YYYY-MM-DD HH:MM:SS[.ffffff]` (or with `T`), optionally ending in `Z`
    /// → microseconds since the epoch, UTC.
    static func timestamp(_ text: String) -> Int64? {
        var s = Substring(text)
        if s.hasSuffix("Z") { s = s.dropLast() }
        guard s.count >= 19 else { return nil }
        let datePart = s.prefix(10)
        let separator = s[s.index(s.startIndex, offsetBy: 10)]
        guard separator == "T" || separator == " ", let days = date(String(datePart)) else { return nil }
        let time = s.dropFirst(11)
        let clockAndFraction = time.split(separator: ".", omittingEmptySubsequences: false)
        guard clockAndFraction.count <= 2 else { return nil }
        let clock = clockAndFraction[0].split(separator: ":", omittingEmptySubsequences: false)
        guard clock.count == 3, clock.allSatisfy({ $0.count == 2 }),
              let h = Int64(clock[0]), let mi = Int64(clock[1]), let se = Int64(clock[2]),
              (0..<24).contains(h), (0..<60).contains(mi), (0..<60).contains(se) else { return nil }
        var micros: Int64 = 0
        if clockAndFraction.count == 2 {
            let f = clockAndFraction[1]
            guard (1...6).contains(f.count), f.allSatisfy({ $0.isASCII && $0.isNumber }),
                  let v = Int64(f + String(repeating: "0", count: 6 - f.count)) else { return nil }
            micros = v
        }
        return ((days * 24 + h) * 60 + mi) * 60_000_000 + se * 1_000_000 + micros
    }

    static func daysInMonth(_ y: Int64, _ m: Int64) -> Int64 { CivilDate.daysInMonth(year: y, month: m) }

    static func daysFromCivil(_ year: Int64, _ m: Int64, _ d: Int64) -> Int64 { CivilDate.days(year: year, month: m, day: d) }
}
