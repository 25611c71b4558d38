import Columnar

/// Summary tables as CSV (RFC 4180): a header row of column names, then one
/// line per row, CRLF line ends; numbers exactly as their text (decimals
/// keep their scale), dates as YYYY-MM-DD, null as an empty field.
///
/// Text that a spreadsheet would run as a formula (a cell or column name
/// starting with `=`, `+`, `-`, `@`, tab or carriage return) gets a leading
/// `'`, so a delivered CSV opened in Excel or LibreOffice shows it as text
/// (`=HYPERLINK(…)` in the data cannot become a link). Numbers, dates and
/// booleans are never changed: `-5` stays a number.
public enum ReportCSV {
    public static func text(_ table: SummaryTable) -> String {
        var out = table.columns.map { ValueText.csvField(neutralized($0.name)) }.joined(separator: ",") + "\r\n"
        for row in table.rows {
            out += row.map { cell in
                if case .string(let s) = cell {
                    if s.isEmpty { return "\"\"" }   // empty text, unlike null
                    return ValueText.csvField(neutralized(s))
                }
                return ValueText.csvField(cell.text)
            }.joined(separator: ",")
            out += "\r\n"
        }
        return out
    }

    /// `s` with a leading `'` when a spreadsheet would read it as a formula.
    static func neutralized(_ s: String) -> String {
        guard let first = s.unicodeScalars.first, formulaStarts.contains(first) else { return s }
        return "'" + s
    }

    static let formulaStarts: Set<Unicode.Scalar> = ["=", "+", "-", "@", "\t", "\r"]
}
