import Columnar
import Foundation
import ZIPFoundation

/// The report's `.xlsx` workbook (Office Open XML, SpreadsheetML): a "Run"
/// sheet (the run, its stages, quality gates and lineage), then one sheet per summary
/// table. Numbers are number cells (`t="n"`, the exact text as the value),
/// dates are serial numbers with a date style, texts are inline strings.
enum ReportWorkbook {
    /// Cell styles in xl/styles.xml, by index.
    enum Style: Int {
        case plain = 0, date = 1, dateTime = 2, header = 3
    }

    enum Cell {
        case text(String)
        case number(String)
        case date(days: Int64)
        case dateTime(Date)
        case header(String)
        case empty
    }

    struct Sheet {
        var name: String
        var rows: [[Cell]]
        /// Column widths in characters, if known.
        var widths: [Double] = []
    }

    /// The sheets for `summary`, named as Excel allows.
    static func sheets(_ summary: RunSummary) -> [Sheet] {
        var sheets = [runSheet(summary)]
        var used: Set<String> = ["run"]
        for table in summary.summaries {
            let name = sheetName(table.name, used: &used)
            var rows: [[Cell]] = [table.columns.map { .header($0.name) }]
            for row in table.rows {
                rows.append(row.map { cell in
                    switch cell {
                    case .string(let s): return .text(s)
                    case .int(let v): return .number(String(v))
                    case .number(let s): return .number(s)
                    case .date(let d): return .date(days: d)
                    case .null: return .empty
                    }
                })
            }
            let widths = table.columns.indices.map { c in
                min(60, Double(max(table.columns[c].name.count, table.rows.prefix(200).map { $0[c].text.count }.max() ?? 0) + 2))
            }
            sheets.append(Sheet(name: name, rows: rows, widths: widths))
        }
        return sheets
    }

    static func runSheet(_ s: RunSummary) -> Sheet {
        var rows: [[Cell]] = [
            [.header("pipeline"), .text(s.pipeline)],
            [.header("run"), .text(s.runID)],
            [.header("title"), .text(s.title)],
            [.header("status"), .text(s.status)],
            [.header("started (UTC)"), .dateTime(s.startedAt)],
            [.header("finished (UTC)"), s.finishedAt.map { .dateTime($0) } ?? .empty],
            [.header("duration (s)"), s.finishedAt.map { .number(ReportCell.doubleText($0.timeIntervalSince(s.startedAt))) } ?? .empty],
            [],
            ["stage", "tasks", "rows in", "rows out", "rows quarantined", "duration (s)"].map { .header($0) },
        ]
        for st in s.stages {
            rows.append([.text(st.name), .number(String(st.tasks)), .number(String(st.rowsIn)), .number(String(st.rowsOut)),
                         .number(String(st.rowsQuarantined)), .number(ReportCell.doubleText(st.durationSeconds))])
        }
        if !s.gates.isEmpty {
            rows.append([])
            rows.append(["rule", "passed", "failing rows", "rate", "threshold"].map { .header($0) })
            for g in s.gates {
                rows.append([.text(g.rule), .text(g.passed ? "PASS" : "FAIL"), .number(String(g.failingRows)),
                             g.rate.map { .number(ReportCell.doubleText($0)) } ?? .empty, g.threshold.map { .text($0) } ?? .empty])
            }
        }
        if !s.lineage.datasets.isEmpty {
            rows.append([])
            rows.append(["dataset", "version", "rows", "manifest sha256"].map { .header($0) })
            for d in s.lineage.datasets {
                rows.append([.text(d.name), .text(d.version), d.rows.map { .number(String($0)) } ?? .empty, .text(d.manifestSHA256)])
            }
        }
        if !s.lineage.inputs.isEmpty {
            rows.append([])
            rows.append(["input file", "bytes", "sha256"].map { .header($0) })
            for f in s.lineage.inputs {
                rows.append([.text(f.path), .number(String(f.bytes)), .text(f.sha256)])
            }
        }
        return Sheet(name: "Run", rows: rows, widths: [22, 44, 14, 14, 18, 14])
    }

    /// A sheet name Excel accepts: `[]:*?/\` become `_`, no leading or
    /// trailing `'`, at most 31 characters, unique ignoring case (a `~2`,
    /// `~3`… suffix when needed), never empty.
    static func sheetName(_ wanted: String, used: inout Set<String>) -> String {
        var base = String(wanted.map { "[]:*?/\\".contains($0) ? "_" : $0 })
        base = base.trimmingCharacters(in: CharacterSet(charactersIn: "'"))
        if base.isEmpty { base = "Sheet" }
        var name = String(base.prefix(31))
        var n = 2
        while used.contains(name.lowercased()) {
            let suffix = "~\(n)"
            name = String(base.prefix(31 - suffix.count)) + suffix
            n += 1
        }
        used.insert(name.lowercased())
        return name
    }

    // MARK: XML parts

    static func xmlText(_ s: String) -> String {
        var out = ""
        for c in s.unicodeScalars {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "\t", "\n", "\r": out.unicodeScalars.append(c)
            default:
                // XML 1.0 cannot hold other control characters or U+FFFE/FFFF at all.
                if c.value < 0x20 || c.value == 0xFFFE || c.value == 0xFFFF { out += "\u{FFFD}" } else { out.unicodeScalars.append(c) }
            }
        }
        return out
    }

    /// 0 → A, 25 → Z, 26 → AA.
    static func columnLetters(_ index: Int) -> String {
        var i = index + 1
        var s = ""
        while i > 0 {
            let r = (i - 1) % 26
            s = String(UnicodeScalar(UInt8(65 + r))) + s
            i = (i - 1) / 26
        }
        return s
    }

    /// Excel's serial day: days since 1899-12-30 (right for dates after
    /// 1900-03-01, which is every date a pipeline has).
    static func serial(days: Int64) -> Int64 { days + 25_569 }

    static func worksheet(_ sheet: Sheet) -> String {
        var x = "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n"
        x += "<worksheet xmlns=\"http://schemas.openxmlformats.org/spreadsheetml/2006/main\">"
        x += "<sheetViews><sheetView workbookViewId=\"0\"/></sheetViews>"
        if !sheet.widths.isEmpty {
            x += "<cols>"
            for (i, w) in sheet.widths.enumerated() {
                x += "<col min=\"\(i + 1)\" max=\"\(i + 1)\" width=\"\(ReportCharts.n(max(w, 8)))\" customWidth=\"1\"/>"
            }
            x += "</cols>"
        }
        x += "<sheetData>"
        for (r, row) in sheet.rows.enumerated() {
            x += "<row r=\"\(r + 1)\">"
            for (c, cell) in row.enumerated() {
                let ref = columnLetters(c) + String(r + 1)
                switch cell {
                case .text(let s):
                    x += "<c r=\"\(ref)\" t=\"inlineStr\"><is><t xml:space=\"preserve\">\(xmlText(s))</t></is></c>"
                case .header(let s):
                    x += "<c r=\"\(ref)\" s=\"\(Style.header.rawValue)\" t=\"inlineStr\"><is><t xml:space=\"preserve\">\(xmlText(s))</t></is></c>"
                case .number(let s):
                    x += "<c r=\"\(ref)\" t=\"n\"><v>\(xmlText(s))</v></c>"
                case .date(let d):
                    x += "<c r=\"\(ref)\" s=\"\(Style.date.rawValue)\" t=\"n\"><v>\(serial(days: d))</v></c>"
                case .dateTime(let date):
                    let v = date.timeIntervalSince1970 / 86_400 + 25_569
                    x += "<c r=\"\(ref)\" s=\"\(Style.dateTime.rawValue)\" t=\"n\"><v>\(ReportCell.doubleText(v))</v></c>"
                case .empty:
                    continue
                }
            }
            x += "</row>"
        }
        x += "</sheetData></worksheet>"
        return x
    }

    static let styles = """
    <?xml version="1.0" encoding="UTF-8" standalone="yes"?>
    <styleSheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">\
    <numFmts count="2"><numFmt numFmtId="164" formatCode="yyyy\\-mm\\-dd"/><numFmt numFmtId="165" formatCode="yyyy\\-mm\\-dd\\ hh:mm:ss"/></numFmts>\
    <fonts count="2"><font><sz val="11"/><name val="Calibri"/></font><font><b/><sz val="11"/><name val="Calibri"/></font></fonts>\
    <fills count="2"><fill><patternFill patternType="none"/></fill><fill><patternFill patternType="gray125"/></fill></fills>\
    <borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>\
    <cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>\
    <cellXfs count="4">\
    <xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>\
    <xf numFmtId="164" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>\
    <xf numFmtId="165" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>\
    <xf numFmtId="0" fontId="1" fillId="0" borderId="0" xfId="0" applyFont="1"/>\
    </cellXfs>\
    <cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>\
    </styleSheet>
    """

    static func parts(_ sheets: [Sheet]) -> [(path: String, text: String)] {
        let header = "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n"
        var contentTypes = header + "<Types xmlns=\"http://schemas.openxmlformats.org/package/2006/content-types\">"
        contentTypes += "<Default Extension=\"rels\" ContentType=\"application/vnd.openxmlformats-package.relationships+xml\"/>"
        contentTypes += "<Default Extension=\"xml\" ContentType=\"application/xml\"/>"
        contentTypes += "<Override PartName=\"/xl/workbook.xml\" ContentType=\"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml\"/>"
        contentTypes += "<Override PartName=\"/xl/styles.xml\" ContentType=\"application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml\"/>"
        for i in sheets.indices {
            contentTypes += "<Override PartName=\"/xl/worksheets/sheet\(i + 1).xml\" ContentType=\"application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml\"/>"
        }
        contentTypes += "</Types>"

        let rootRels = header + "<Relationships xmlns=\"http://schemas.openxmlformats.org/package/2006/relationships\">"
            + "<Relationship Id=\"rId1\" Type=\"http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument\" Target=\"xl/workbook.xml\"/>"
            + "</Relationships>"

        var workbook = header + "<workbook xmlns=\"http://schemas.openxmlformats.org/spreadsheetml/2006/main\" xmlns:r=\"http://schemas.openxmlformats.org/officeDocument/2006/relationships\"><sheets>"
        var workbookRels = header + "<Relationships xmlns=\"http://schemas.openxmlformats.org/package/2006/relationships\">"
        for (i, sheet) in sheets.enumerated() {
            workbook += "<sheet name=\"\(xmlText(sheet.name))\" sheetId=\"\(i + 1)\" r:id=\"rId\(i + 1)\"/>"
            workbookRels += "<Relationship Id=\"rId\(i + 1)\" Type=\"http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet\" Target=\"worksheets/sheet\(i + 1).xml\"/>"
        }
        workbook += "</sheets></workbook>"
        workbookRels += "<Relationship Id=\"rId\(sheets.count + 1)\" Type=\"http://schemas.openxmlformats.org/officeDocument/2006/relationships/styles\" Target=\"styles.xml\"/>"
        workbookRels += "</Relationships>"

        var parts: [(String, String)] = [
            ("[Content_Types].xml", contentTypes),
            ("_rels/.rels", rootRels),
            ("xl/workbook.xml", workbook),
            ("xl/_rels/workbook.xml.rels", workbookRels),
            ("xl/styles.xml", styles),
        ]
        for (i, sheet) in sheets.enumerated() {
            parts.append(("xl/worksheets/sheet\(i + 1).xml", worksheet(sheet)))
        }
        return parts
    }

    /// Writes the workbook to `path` (replacing nothing: the caller gives a
    /// fresh temporary name). Entries are deflated and dated 1980-01-01, so
    /// the same summary gives the same bytes.
    static func write(_ summary: RunSummary, to path: String) throws {
        let archive = try Archive(url: URL(fileURLWithPath: path), accessMode: .create)
        let fixedDate = Date(timeIntervalSince1970: 315_532_800)
        for part in parts(sheets(summary)) {
            let data = Data(part.text.utf8)
            try archive.addEntry(with: part.path, type: .file, uncompressedSize: Int64(data.count),
                                 modificationDate: fixedDate, compressionMethod: .deflate) { position, size in
                data.subdata(in: Int(position)..<Int(position) + size)
            }
        }
    }
}
