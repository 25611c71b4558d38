import Foundation

/// Durations as text: a whole number and a unit, `90s`, `15m`, `2h`, `7d`
/// (`0s`: at once). The spec's `timeouts:` and `deadline:` and the
/// coordinator's flags (`--keep-intermediate`, `--queue-stall`) take them.
public enum DurationText {
    /// Seconds, or nil when `text` is not such a duration.
    public static func seconds(_ text: String) -> Double? {
        let t = text.trimmingCharacters(in: .whitespaces).lowercased()
        guard let unit = t.last, let n = Int(t.dropLast()), n >= 0 else { return nil }
        switch unit {
        case "s": return Double(n)
        case "m": return Double(n) * 60
        case "h": return Double(n) * 3600
        case "d": return Double(n) * 86400
        default: return nil
        }
    }

    /// `10m`, `2h`, `90s`: the largest unit that divides it.
    public static func text(_ seconds: Double) -> String {
        let s = Int(seconds)
        if s > 0, s % 86400 == 0 { return "\(s / 86400)d" }
        if s > 0, s % 3600 == 0 { return "\(s / 3600)h" }
        if s > 0, s % 60 == 0 { return "\(s / 60)m" }
        return "\(s)s"
    }
}
