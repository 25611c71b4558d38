import Foundation

/// HTML text escaping: `&`, `<`, `>`, `"` and `'` become entities, and
/// control characters a page cannot show become U+FFFD.
public enum HTML {
    public static func escape(_ s: String) -> String {
        var out = ""
        out.reserveCapacity(s.utf8.count)
        for c in s.unicodeScalars {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            case "\t", "\n", "\r": out.unicodeScalars.append(c)
            default:
                if c.value < 0x20 || c.value == 0x7F || (0xFFFE...0xFFFF).contains(c.value) {
                    out += "\u{FFFD}"
                } else {
                    out.unicodeScalars.append(c)
                }
            }
        }
        return out
    }
}

/// How the report writes numbers and times for people.
enum Format {
    /// 1234567 → 1,234,567.
    static func grouped(_ v: Int64) -> String {
        let digits = String(v.magnitude)
        var out = ""
        for (i, ch) in digits.enumerated() {
            if i > 0, (digits.count - i) % 3 == 0 { out += "," }
            out.append(ch)
        }
        return (v < 0 ? "-" : "") + out
    }

    /// 0.4 s, 12.3 s, 4 min 05 s, 2 h 03 min.
    static func duration(_ seconds: Double) -> String {
        guard seconds.isFinite, seconds >= 0 else { return "–" }
        if seconds < 60 { return String(format: seconds < 10 ? "%.2f s" : "%.1f s", seconds) }
        let s = Int(seconds.rounded())
        if s < 3600 { return String(format: "%d min %02d s", s / 60, s % 60) }
        return String(format: "%d h %02d min", s / 3600, s / 60 % 60)
    }

    /// 0.0123 → 1.23 %.
    static func percent(_ rate: Double) -> String {
        String(format: "%.2f %%", rate * 100)
    }
}

/// The self-contained HTML page: inline CSS and SVG, no script, no external
/// reference, every text escaped.
enum ReportPage {
    static func html(_ summary: RunSummary, chart: MainAggregateChoice?, options: ReportOptions) -> String {
        var h = """
        <!DOCTYPE html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>\(HTML.escape(summary.title)) — \(HTML.escape(summary.runID))</title>
        <style>\(css)</style>
        </head>
        <body>

        """
        h += header(summary)
        h += stages(summary)
        h += gates(summary, options: options)
        h += summaries(summary, chart: chart, options: options)
        h += lineage(summary)
        h += "<footer>Report written by BIS Fleet for run \(HTML.escape(summary.runID)) of pipeline \(HTML.escape(summary.pipeline)).</footer>\n"
        h += "</body>\n</html>\n"
        return h
    }

    static let css = """
    body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;margin:24px auto;max-width:1000px;padding:0 16px;color:#1d2330;background:#fff;line-height:1.4}
    h1{font-size:26px;margin:0 0 4px}h2{font-size:19px;margin:32px 0 8px;border-bottom:2px solid #e3e7ef;padding-bottom:4px}h3{font-size:15px;margin:18px 0 6px}
    .meta{color:#556;margin:0 0 8px}.meta code{font-size:13px}
    .status{display:inline-block;padding:2px 10px;border-radius:10px;font-weight:600;font-size:13px;color:#fff;background:#6b7280}
    .status.succeeded,.pass{background:#15803d}.status.failed,.fail{background:#b91c1c}
    .pass,.fail{display:inline-block;color:#fff;border-radius:4px;padding:0 6px;font-weight:600;font-size:12px}
    table{border-collapse:collapse;margin:6px 0 12px;font-size:13px}th,td{border:1px solid #d8dde8;padding:3px 8px;text-align:left;vertical-align:top}
    th{background:#f1f4f9}td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}td.null{color:#999;font-style:italic}
    td.hash{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:11px;word-break:break-all}
    table.examples{margin:2px 0 4px;font-size:12px}table.examples th{background:#fbecec}
    .note{color:#666;font-size:12px;margin:2px 0 10px}
    svg.chart{max-width:100%;height:auto;display:block;margin:8px 0}
    svg .grid{stroke:#e6e9f0;stroke-width:1}svg .axis,svg .zero{stroke:#444;stroke-width:1}
    svg .bar{fill:#2f6fba}svg .bar.negative{fill:#c2410c}svg .rows-in{fill:#c9d8ee}svg .rows-out{fill:#2f6fba}
    svg text{font-size:11px;fill:#333;font-family:system-ui,"DejaVu Sans",sans-serif}svg .value{font-size:11px;fill:#111}
    footer{margin:36px 0 12px;color:#888;font-size:12px}
    """

    static func header(_ s: RunSummary) -> String {
        var h = "<header>\n<h1>\(HTML.escape(s.title))</h1>\n"
        h += "<p class=\"meta\">Pipeline <strong>\(HTML.escape(s.pipeline))</strong>, run <code>\(HTML.escape(s.runID))</code> "
        h += "<span class=\"status \(HTML.escape(s.status))\">\(HTML.escape(s.status))</span></p>\n"
        h += "<p class=\"meta\">Started \(ReportTime.display(s.startedAt))"
        if let f = s.finishedAt {
            h += ", finished \(ReportTime.display(f)) (\(Format.duration(f.timeIntervalSince(s.startedAt))))"
        } else {
            h += ", not finished"
        }
        h += "</p>\n</header>\n"
        return h
    }

    static func stages(_ s: RunSummary) -> String {
        var h = "<section id=\"stages\">\n<h2>Rows and timings per stage</h2>\n"
        guard !s.stages.isEmpty else { return h + "<p class=\"note\">No stage has reported yet.</p>\n</section>\n" }
        h += "<table><thead><tr><th>stage</th><th>tasks</th><th>rows in</th><th>rows out</th><th>quarantined</th><th>duration</th></tr></thead><tbody>\n"
        for st in s.stages {
            h += "<tr><td>\(HTML.escape(st.name))</td><td class=\"num\">\(st.tasks)</td>"
            h += "<td class=\"num\">\(Format.grouped(st.rowsIn))</td><td class=\"num\">\(Format.grouped(st.rowsOut))</td>"
            h += "<td class=\"num\">\(Format.grouped(st.rowsQuarantined))</td><td class=\"num\">\(Format.duration(st.durationSeconds))</td></tr>\n"
        }
        let total = s.stages.reduce(0) { $0 + $1.durationSeconds }
        h += "</tbody><tfoot><tr><th colspan=\"5\">sum of stage durations</th><td class=\"num\">\(Format.duration(total))</td></tr></tfoot></table>\n"
        h += "<h3>Row-count funnel</h3>\n"
        h += ReportCharts.funnel(s.stages.map { .init(name: $0.name, rowsIn: $0.rowsIn, rowsOut: $0.rowsOut, rowsQuarantined: $0.rowsQuarantined) })
        h += "\n</section>\n"
        return h
    }

    static func gates(_ s: RunSummary, options: ReportOptions) -> String {
        var h = "<section id=\"quality\">\n<h2>Quality gates</h2>\n"
        guard !s.gates.isEmpty else { return h + "<p class=\"note\">The pipeline has no validate rules.</p>\n</section>\n" }
        let failed = s.gates.filter { !$0.passed }.count
        h += "<p class=\"meta\">\(s.gates.count - failed) of \(s.gates.count) passed.</p>\n"
        h += "<table class=\"gates\"><thead><tr><th>rule</th><th>result</th><th>failing rows</th><th>rate</th><th>threshold</th></tr></thead><tbody>\n"
        for g in s.gates {
            h += "<tr><td><code>\(HTML.escape(g.rule))</code></td>"
            h += g.passed ? "<td><span class=\"pass\">PASS</span></td>" : "<td><span class=\"fail\">FAIL</span></td>"
            h += "<td class=\"num\">\(Format.grouped(g.failingRows))</td>"
            h += "<td class=\"num\">\(g.rate.map(Format.percent) ?? "–")</td>"
            h += "<td>\(HTML.escape(g.threshold ?? "–"))</td></tr>\n"
            if !g.examples.isEmpty {
                let cols = g.columnsShown
                let shown = g.examples.prefix(options.maxExamples)
                h += "<tr><td colspan=\"5\"><div class=\"note\">Examples of failing rows (\(shown.count) of \(Format.grouped(g.failingRows))):</div>"
                h += "<table class=\"examples\"><thead><tr>" + cols.map { "<th>\(HTML.escape($0))</th>" }.joined() + "</tr></thead><tbody>"
                for ex in shown {
                    h += "<tr>" + cols.map { c in
                        ex[c].map { "<td>\(HTML.escape($0))</td>" } ?? "<td class=\"null\">null</td>"
                    }.joined() + "</tr>"
                }
                h += "</tbody></table></td></tr>\n"
            }
        }
        h += "</tbody></table>\n</section>\n"
        return h
    }

    static func summaries(_ s: RunSummary, chart: MainAggregateChoice?, options: ReportOptions) -> String {
        var h = "<section id=\"summaries\">\n<h2>Summaries</h2>\n"
        guard !s.summaries.isEmpty else { return h + "<p class=\"note\">The pipeline publishes no summaries.</p>\n</section>\n" }
        if let chart {
            let table = s.summaries[chart.table]
            let column = table.columns[chart.column].name
            h += "<h3>\(HTML.escape(table.name)): \(HTML.escape(column)) by \(HTML.escape(table.groupBy.joined(separator: ", ")))</h3>\n"
            let (bars, nulls) = chartBars(table, column: chart.column)
            let (shown, omitted) = ReportCharts.capped(bars)
            if shown.isEmpty {
                h += "<p class=\"note\">No group has a value for \(HTML.escape(column)).</p>\n"
            } else {
                h += ReportCharts.barChart(shown, title: "\(table.name): \(column)") + "\n"
            }
            var notes: [String] = []
            if omitted > 0 {
                notes.append("Showing the \(shown.count) groups with the largest \(HTML.escape(column)) by magnitude; \(omitted) more are in the table below and in \(HTML.escape(ReportFiles.csvName(table.name))).")
            }
            if nulls > 0 { notes.append("\(nulls) group\(nulls == 1 ? " has" : "s have") no value (null) and \(nulls == 1 ? "is" : "are") not drawn.") }
            if !notes.isEmpty { h += "<p class=\"note\">\(notes.joined(separator: " "))</p>\n" }
        }
        for table in s.summaries {
            h += "<h3 id=\"summary-\(HTML.escape(table.name))\">\(HTML.escape(table.name))</h3>\n"
            h += "<table class=\"summary\"><thead><tr>"
            h += table.columns.map { "<th>\(HTML.escape($0.name))</th>" }.joined() + "</tr></thead><tbody>\n"
            for row in table.rows.prefix(options.maxTableRows) {
                h += "<tr>"
                for cell in row {
                    switch cell {
                    case .null: h += "<td class=\"null\">null</td>"
                    case .int, .number: h += "<td class=\"num\">\(HTML.escape(cell.text))</td>"
                    default: h += "<td>\(HTML.escape(cell.text))</td>"
                    }
                }
                h += "</tr>\n"
            }
            h += "</tbody></table>\n"
            if table.rows.count > options.maxTableRows {
                h += "<p class=\"note\">The first \(options.maxTableRows) of \(Format.grouped(Int64(table.rows.count))) rows; all are in \(HTML.escape(ReportFiles.csvName(table.name))) and report.xlsx.</p>\n"
            } else {
                h += "<p class=\"note\">\(Format.grouped(Int64(table.rows.count))) rows, also in \(HTML.escape(ReportFiles.csvName(table.name))) and report.xlsx.</p>\n"
            }
        }
        h += "</section>\n"
        return h
    }

    /// The bars of `column`: one per row with a number, labelled by the
    /// group-by values; and how many rows had none.
    static func chartBars(_ table: SummaryTable, column: Int) -> ([ReportCharts.Bar], Int) {
        let groupIndexes = table.groupBy.compactMap { g in table.columns.firstIndex { $0.name == g } }
        var bars: [ReportCharts.Bar] = []
        var nulls = 0
        for row in table.rows {
            guard let v = row[column].doubleValue, v.isFinite else { nulls += 1; continue }
            let label = groupIndexes.isEmpty ? "all rows"
                : groupIndexes.map { row[$0] == .null ? "(null)" : row[$0].text }.joined(separator: " · ")
            bars.append(.init(label: label, text: row[column].text, value: v))
        }
        return (bars, nulls)
    }

    static func lineage(_ s: RunSummary) -> String {
        var h = "<section id=\"lineage\">\n<h2>Lineage</h2>\n"
        let l = s.lineage
        let bytes = l.inputs.reduce(Int64(0)) { $0 + $1.bytes }
        h += "<p class=\"meta\">\(l.inputs.count) input file\(l.inputs.count == 1 ? "" : "s") (\(Format.grouped(bytes)) bytes) → "
        h += "\(l.datasets.count) published dataset\(l.datasets.count == 1 ? "" : "s").</p>\n"
        if !l.inputs.isEmpty {
            h += "<h3>Inputs</h3>\n<table><thead><tr><th>file</th><th>bytes</th><th>sha256</th></tr></thead><tbody>\n"
            for f in l.inputs {
                h += "<tr><td>\(HTML.escape(f.path))</td><td class=\"num\">\(Format.grouped(f.bytes))</td><td class=\"hash\">\(HTML.escape(f.sha256))</td></tr>\n"
            }
            h += "</tbody></table>\n"
        }
        if !l.datasets.isEmpty {
            h += "<h3>Published</h3>\n<table><thead><tr><th>dataset</th><th>version (run)</th><th>rows</th><th>manifest sha256</th><th>schema sha256</th></tr></thead><tbody>\n"
            for d in l.datasets {
                h += "<tr><td>\(HTML.escape(d.name))</td><td>\(HTML.escape(d.version))</td>"
                h += "<td class=\"num\">\(d.rows.map(Format.grouped) ?? "–")</td><td class=\"hash\">\(HTML.escape(d.manifestSHA256))</td>"
                h += "<td class=\"hash\">\(HTML.escape(d.schemaSHA256 ?? "–"))</td></tr>\n"
            }
            h += "</tbody></table>\n"
        }
        h += "</section>\n"
        return h
    }
}
