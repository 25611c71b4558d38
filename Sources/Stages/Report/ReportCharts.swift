import Foundation

/// Inline SVG charts for the HTML report. Every text is escaped; no script,
/// no external reference. Each bar carries its exact value in `data-value`
/// and a `<title>` (the tooltip a browser shows).
enum ReportCharts {
    /// At most this many bars; the rest are named in a note.
    static let maxBars = 20

    struct Bar {
        var label: String
        /// The exact text of the value.
        var text: String
        var value: Double
    }

    /// The bars a chart of `bars` draws: all of them when few, else the
    /// `maxBars` largest by magnitude, in their original order.
    static func capped(_ bars: [Bar]) -> (shown: [Bar], omitted: Int) {
        guard bars.count > maxBars else { return (bars, 0) }
        let keep = Set(bars.indices.sorted { (abs(bars[$0].value), $1) > (abs(bars[$1].value), $0) }.prefix(maxBars))
        return (bars.indices.filter { keep.contains($0) }.map { bars[$0] }, bars.count - maxBars)
    }

    /// A vertical bar chart with a zero line, a value axis with gridlines,
    /// value labels on the bars and rotated group labels. Negative values
    /// hang below the zero line; a bar's height is |value| × one scale.
    static func barChart(_ bars: [Bar], title: String) -> String {
        let width = 960.0, height = 380.0
        let left = 84.0, right = 16.0, top = 28.0, bottom = 120.0
        let plotW = width - left - right, plotH = height - top - bottom
        let maxV = max(0, bars.map(\.value).max() ?? 0)
        let minV = min(0, bars.map(\.value).min() ?? 0)
        let step = niceStep((maxV - minV) / 5)
        let hi = maxV == 0 ? 0 : (maxV / step).rounded(.up) * step
        let lo = minV == 0 ? 0 : (minV / step).rounded(.down) * step
        let span = hi - lo > 0 ? hi - lo : 1
        let scale = plotH / span
        func y(_ v: Double) -> Double { top + (hi - v) * scale }

        var s = "<svg class=\"chart bar-chart\" viewBox=\"0 0 \(n(width)) \(n(height))\" width=\"\(n(width))\" height=\"\(n(height))\" role=\"img\" aria-label=\"\(HTML.escape(title))\">\n"
        s += "<title>\(HTML.escape(title))</title>\n"
        // Gridlines and the value axis.
        var tick = lo
        var ticks = 0
        while tick <= hi + step / 2, ticks < 40 {
            let ty = y(tick)
            s += "<line class=\"grid\" x1=\"\(n(left))\" y1=\"\(n(ty))\" x2=\"\(n(width - right))\" y2=\"\(n(ty))\"/>"
            s += "<text class=\"tick\" x=\"\(n(left - 6))\" y=\"\(n(ty + 4))\" text-anchor=\"end\">\(HTML.escape(compact(tick)))</text>\n"
            tick += step
            ticks += 1
        }
        s += "<line class=\"axis\" x1=\"\(n(left))\" y1=\"\(n(top))\" x2=\"\(n(left))\" y2=\"\(n(top + plotH))\"/>\n"
        let slot = plotW / Double(max(bars.count, 1))
        let barW = min(slot * 0.7, 80)
        for (i, bar) in bars.enumerated() {
            let x = left + slot * Double(i) + (slot - barW) / 2
            let h = abs(bar.value) * scale
            let by = bar.value >= 0 ? y(0) - h : y(0)
            let cls = bar.value >= 0 ? "bar" : "bar negative"
            s += "<rect class=\"\(cls)\" x=\"\(n(x))\" y=\"\(n(by))\" width=\"\(n(barW))\" height=\"\(n(h))\" data-value=\"\(HTML.escape(bar.text))\"><title>\(HTML.escape(bar.label)): \(HTML.escape(bar.text))</title></rect>\n"
            let ly = bar.value >= 0 ? by - 4 : by + h + 12
            // The exact text when it fits over the bar's slot, else 1.23M.
            let label = Double(bar.text.count) * 6.5 <= slot - 4 ? bar.text : compact(bar.value)
            s += "<text class=\"value\" x=\"\(n(x + barW / 2))\" y=\"\(n(ly))\" text-anchor=\"middle\">\(HTML.escape(label))</text>\n"
            let lx = x + barW / 2, lyLabel = top + plotH + 14
            s += "<text class=\"label\" x=\"\(n(lx))\" y=\"\(n(lyLabel))\" text-anchor=\"end\" transform=\"rotate(-40 \(n(lx)) \(n(lyLabel)))\">\(HTML.escape(truncate(bar.label, 26)))</text>\n"
        }
        s += "<line class=\"zero\" x1=\"\(n(left))\" y1=\"\(n(y(0)))\" x2=\"\(n(width - right))\" y2=\"\(n(y(0)))\"/>\n"
        s += "</svg>"
        return s
    }

    struct FunnelStep {
        var name: String
        var rowsIn: Int64
        var rowsOut: Int64
        var rowsQuarantined: Int64
    }

    /// Rows in and out of each stage as horizontal bars on one scale:
    /// a pale bar for rows in, a solid one for rows out.
    static func funnel(_ steps: [FunnelStep]) -> String {
        let width = 960.0, rowH = 34.0, left = 120.0, right = 300.0, top = 10.0
        let height = top * 2 + rowH * Double(max(steps.count, 1))
        let most = Double(max(steps.map { max($0.rowsIn, $0.rowsOut) }.max() ?? 0, 1))
        let plotW = width - left - right
        var s = "<svg class=\"chart funnel\" viewBox=\"0 0 \(n(width)) \(n(height))\" width=\"\(n(width))\" height=\"\(n(height))\" role=\"img\" aria-label=\"Rows per stage\">\n"
        s += "<title>Rows in and out per stage</title>\n"
        for (i, step) in steps.enumerated() {
            let y = top + rowH * Double(i)
            let wIn = Double(step.rowsIn) / most * plotW, wOut = Double(step.rowsOut) / most * plotW
            s += "<text class=\"label\" x=\"\(n(left - 8))\" y=\"\(n(y + rowH / 2 + 4))\" text-anchor=\"end\">\(HTML.escape(step.name))</text>"
            s += "<rect class=\"rows-in\" x=\"\(n(left))\" y=\"\(n(y + 4))\" width=\"\(n(wIn))\" height=\"\(n(rowH - 8))\" data-value=\"\(step.rowsIn)\"/>"
            s += "<rect class=\"rows-out\" x=\"\(n(left))\" y=\"\(n(y + 9))\" width=\"\(n(wOut))\" height=\"\(n(rowH - 18))\" data-value=\"\(step.rowsOut)\"/>"
            var note = "\(Format.grouped(step.rowsIn)) in → \(Format.grouped(step.rowsOut)) out"
            if step.rowsQuarantined > 0 { note += ", \(Format.grouped(step.rowsQuarantined)) quarantined" }
            s += "<text class=\"value\" x=\"\(n(left + max(wIn, wOut) + 8))\" y=\"\(n(y + rowH / 2 + 4))\">\(HTML.escape(note))</text>\n"
        }
        s += "</svg>"
        return s
    }

    /// 1, 2 or 5 × a power of ten, at least `raw`.
    static func niceStep(_ raw: Double) -> Double {
        guard raw > 0, raw.isFinite else { return 1 }
        let p = pow(10, (log10(raw)).rounded(.down))
        for m in [1.0, 2, 5, 10] where m * p >= raw { return m * p }
        return 10 * p
    }

    /// 1234567 → 1.23M; small numbers as they are (up to 3 decimals).
    static func compact(_ v: Double) -> String {
        let a = abs(v)
        for (limit, suffix) in [(1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")] where a >= limit {
            return trim(String(format: "%.2f", v / limit)) + suffix
        }
        return trim(String(format: "%.3f", v))
    }

    private static func trim(_ s: String) -> String {
        guard s.contains(".") else { return s }
        var t = s
        while t.hasSuffix("0") { t.removeLast() }
        if t.hasSuffix(".") { t.removeLast() }
        return t == "-0" ? "0" : t
    }

    static func truncate(_ s: String, _ limit: Int) -> String {
        s.count <= limit ? s : String(s.prefix(limit - 1)) + "…"
    }

    /// A coordinate with at most two decimals.
    static func n(_ v: Double) -> String { trim(String(format: "%.2f", v)) }
}
