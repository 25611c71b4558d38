import CoordinatorAPI
import FleetWire
import Foundation

/// What `bis status RUN --watch` draws: pure functions of the run and the
/// time now, so that a test can check them line by line.
enum WatchText {
    /// ANSI colors, only when drawing on a terminal.
    struct Colors {
        let on: Bool
        func red(_ s: String) -> String { on ? "\u{1b}[31m" + s + "\u{1b}[0m" : s }
        func green(_ s: String) -> String { on ? "\u{1b}[32m" + s + "\u{1b}[0m" : s }
        func yellow(_ s: String) -> String { on ? "\u{1b}[33m" + s + "\u{1b}[0m" : s }
        func bold(_ s: String) -> String { on ? "\u{1b}[1m" + s + "\u{1b}[0m" : s }
    }

    /// The run's state line, then one line per stage (progress bar of done
    /// tasks, running, retried, failed, rows, throughput, ETA), the failing
    /// rule or error under a stage that has one, and what was published.
    /// `width` cuts every line to the terminal's width so that a redraw
    /// counts lines right (nil: no cut).
    static func lines(_ run: RunView, now: Date, colors: Colors, width: Int? = nil) -> [String] {
        var out: [String] = []
        let elapsed = (run.finishedAt ?? now).timeIntervalSince(run.submittedAt)
        let state: String
        switch run.state {
        case .failed: state = colors.red(run.state.rawValue)
        case .succeeded: state = colors.green(run.state.rawValue)
        case .awaitingApproval: state = colors.yellow(run.state.rawValue)
        default: state = run.state.rawValue
        }
        out.append("run \(colors.bold(run.id))  pipeline \(run.pipeline)  \(state)  \(humanDuration(elapsed))")
        if let message = run.message, !message.isEmpty {
            out += message.split(whereSeparator: \.isNewline).map { "  " + (run.state == .failed ? colors.red(String($0)) : String($0)) }
        }
        if run.state == .awaitingApproval { out.append("  awaits approval: bis approve \(run.id)") }
        if !run.stages.isEmpty {
            let header = ["stage", "progress", "tasks", "running", "retried", "failed", "rows in", "rows out", "quarantined",
                          "rows/s", "eta"]
            let rows = run.stages.map { stageCells($0, now: now) }
            let rendered = table(header, rows, rightAligned: Set(2...10))
            out.append(rendered[0])
            for (stage, line) in zip(run.stages, rendered.dropFirst()) {
                out.append(stage.failed > 0 ? colors.red(line) : line)
                if let error = stage.lastError, !error.isEmpty {
                    let text = RunText.oneLine(error)
                    out.append(stage.failed > 0 ? colors.red("    failed: " + text) : "    last error: " + text)
                }
            }
        }
        for (dataset, version) in run.published.sorted(by: { $0.key < $1.key }) { out.append("published \(dataset): \(version)") }
        if let report = run.reportDirectory { out.append("report: \(report)") }
        if let receipt = run.receipt { out.append("delivered: \(receipt)") }
        guard let width, width > 8 else { return out }
        return out.map { cut($0, to: width) }
    }

    static func stageCells(_ s: StageView, now: Date) -> [String] {
        [s.stage.rawValue, bar(done: s.succeeded, total: s.total), "\(s.succeeded)/\(s.total)", "\(s.running)", "\(s.retried)",
         "\(s.failed)", "\(s.rowsIn)", "\(s.rowsOut)", "\(s.rowsQuarantined)", throughput(s, now: now), eta(s, now: now)]
    }

    /// `[#######-------------]`: done tasks out of those planned.
    static func bar(done: Int, total: Int, width: Int = 20) -> String {
        let filled = total == 0 ? 0 : min(width, Int((Double(done) / Double(total) * Double(width)).rounded(.down)))
        return "[" + String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled) + "]"
    }

    /// The stage's time so far: from its first execution's start to its end, or to now.
    static func elapsed(_ s: StageView, now: Date) -> TimeInterval? {
        guard let started = s.startedAt else { return nil }
        return max(0, (s.finishedAt ?? now).timeIntervalSince(started))
    }

    /// Rows out per second of the stage's elapsed time; "-" before it started.
    static func throughput(_ s: StageView, now: Date) -> String {
        guard let t = elapsed(s, now: now), t > 0 else { return "-" }
        return count(Double(s.rowsOut) / t)
    }

    /// Time left at the stage's task completion rate so far: "done" when
    /// every planned task ended, "-" while no task has finished yet.
    static func eta(_ s: StageView, now: Date) -> String {
        let left = s.total - s.succeeded - s.failed - s.cancelled
        if s.total > 0 && left <= 0 { return "done" }
        guard let t = elapsed(s, now: now), t > 0, s.succeeded > 0 else { return "-" }
        let rate = Double(s.succeeded) / t
        return humanDuration(Double(left) / rate)
    }

    /// 950, 12.3k, 4.5M.
    static func count(_ v: Double) -> String {
        if v == 0 { return "0" }
        if v < 1000 { return v < 10 ? String(format: "%.1f", v) : String(Int(v.rounded())) }
        if v < 1_000_000 { return String(format: "%.1fk", v / 1000) }
        return String(format: "%.1fM", v / 1_000_000)
    }

    /// A line cut to `width` visible characters; escape sequences do not count.
    static func cut(_ line: String, to width: Int) -> String {
        var visible = 0, out = "", inEscape = false, cutAt: String.Index?
        for (i, c) in zip(line.indices, line) {
            if inEscape {
                if c.isLetter { inEscape = false }
                continue
            }
            if c == "\u{1b}" { inEscape = true; continue }
            visible += 1
            if visible > width { cutAt = i; break }
        }
        guard let cutAt else { return line }
        out = String(line[..<cutAt])
        // Close a color cut in the middle.
        return out.contains("\u{1b}[") ? out + "\u{1b}[0m" : out
    }
}

/// Draws successive frames of the watch: in place on a terminal, else a
/// plain block each time the run changed.
struct WatchScreen {
    let terminal: Bool
    private var drawnLines = 0
    private var lastView: RunView?

    init(terminal: Bool) { self.terminal = terminal }

    /// The terminal's width in columns, nil when unknown.
    static func terminalWidth() -> Int? {
        var size = winsize()
        guard ioctl(1, UInt(TIOCGWINSZ), &size) == 0, size.ws_col > 0 else { return nil }
        return Int(size.ws_col)
    }

    /// The bytes to write for `view` now; empty when nothing needs drawing
    /// (not a terminal, and the run has not changed).
    mutating func frame(_ view: RunView, now: Date) -> String {
        if !terminal {
            guard view != lastView else { return "" }
            let separator = lastView == nil ? "" : "\n"
            lastView = view
            return separator + WatchText.lines(view, now: now, colors: .init(on: false)).joined(separator: "\n") + "\n"
        }
        lastView = view
        let lines = WatchText.lines(view, now: now, colors: .init(on: true), width: Self.terminalWidth().map { $0 - 1 })
        // Back to the first line drawn, then each line cleared and drawn again, and whatever was below cleared.
        var out = drawnLines > 0 ? "\u{1b}[\(drawnLines)F" : ""
        for line in lines { out += "\u{1b}[2K" + line + "\n" }
        out += "\u{1b}[J"
        drawnLines = lines.count
        return out
    }
}
