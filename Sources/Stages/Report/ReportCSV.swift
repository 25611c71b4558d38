import Columnar

/// Summary tables as CSV (RFC 4180): a header row of column names, then one
/// line per row, CRLF line ends; numbers exactly as their text (decimals
/// keep their scale), dates as YYYY-MM-DD, null as an empty field.
public enum ReportCSV {
    public static func text(_ table: SummaryTable) -> String {
        var out = table.columns.map { ValueText.csvField($0.name) }.joined(separator: ",") + "\r\n"
        for row in table.rows {
            out += row.map { cell in
                if case .string(let s) = cell, s.isEmpty { return "\"\"" }   // empty text, unlike null
                return ValueText.csvField(cell.text)
            }.joined(separator: ",")
            out += "\r\n"
        }
        return out
    }
}
