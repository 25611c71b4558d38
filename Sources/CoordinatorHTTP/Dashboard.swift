import CoordinatorAPI
import FleetWire
import Foundation

/// The coordinator's read-only web dashboard: plain HTML and inline SVG, no
/// scripts, no CDN; pages refresh themselves every few seconds. Built from
/// what a `CoordinatorService` answers (runs, a run, workers, quarantine,
/// the run's input files), so any service gets the same pages.
public enum Dashboard {
    static let style = """
    body{font:14px/1.4 system-ui,-apple-system,'Segoe UI',sans-serif;margin:24px;color:#1d2430;background:#fafbfc}
    h1{font-size:20px;margin:0 0 4px}h2{font-size:16px;margin:24px 0 8px}a{color:#1f5fbf;text-decoration:none}
    table{border-collapse:collapse;background:#fff;border:1px solid #dde2e8}th,td{padding:6px 10px;text-align:left;border-bottom:1px solid #eef1f4;vertical-align:top}
    th{background:#f2f4f7;font-weight:600}.num{text-align:right;font-variant-numeric:tabular-nums}
    .state{padding:1px 8px;border-radius:10px;font-size:12px;color:#fff;white-space:nowrap}
    .succeeded{background:#2f8f4e}.failed{background:#c4352b}.running{background:#1f6fd1}.pending{background:#8a94a3}
    .awaiting_approval{background:#c98a12}.cancelled{background:#6b7280}.quiet{background:#c4352b}.draining{background:#c98a12}.stopped{background:#6b7280}
    .bar{width:180px;height:12px;background:#e6e9ee;border-radius:6px;overflow:hidden;display:inline-block;vertical-align:middle}
    .bar>span{display:block;height:100%;background:#2f8f4e}.bar.failed>span{background:#c4352b}
    .err{color:#b42318;font-family:ui-monospace,monospace;font-size:12px;white-space:pre-wrap}.muted{color:#6b7280}
    code{font-family:ui-monospace,monospace;font-size:12px}
    .nav{margin:0 0 12px;padding-bottom:8px;border-bottom:1px solid #dde2e8}.nav .who{float:right}
    form.inline{display:inline;margin:0 4px 0 0}button{font:inherit;padding:2px 10px;border:1px solid #b8c0cc;border-radius:4px;background:#fff;cursor:pointer}
    button.link{border:none;background:none;color:#1f5fbf;padding:0}
    .slots{display:flex;gap:2px}.slot{display:inline-block;width:12px;height:12px;border-radius:2px;background:#e6e9ee}
    .slot.waiting_for_input{background:#c98a12}
    """

    static func page(title: String, body: String, refresh: Bool, viewer: DashboardViewer? = nil) -> String {
        """
        <!doctype html><html lang="en"><head><meta charset="utf-8">
        \(refresh ? "<meta http-equiv=\"refresh\" content=\"3\">" : "")
        <title>\(esc(title))</title><style>\(style)</style></head><body>
        \(nav(viewer))
        \(body)
        <p class="muted">BIS Fleet \(FleetVersion.string) · \(viewer.map { "signed in as " + esc($0.name) } ?? "read-only") · \(refresh ? "refreshes every 3 s" : "final")</p>
        </body></html>
        """
    }

    /// The header: the pages, and who is signed in (with a sign-out form) or a sign-in link.
    static func nav(_ viewer: DashboardViewer?) -> String {
        var b = "<nav class=\"nav\"><a href=\"/\">Runs</a> · <a href=\"/pipelines\">Pipelines</a><span class=\"who\">"
        if let viewer {
            b += "\(esc(viewer.name)) " + form("/signout", viewer, "Sign out", cls: "link")
        } else {
            b += "<a href=\"/signin\">Sign in</a>"
        }
        return b + "</span></nav>"
    }

    /// A button that POSTs a form carrying the session's CSRF token.
    static func form(_ action: String, _ viewer: DashboardViewer, _ label: String, cls: String = "") -> String {
        "<form method=\"post\" action=\"\(esc(action))\" class=\"inline\"><input type=\"hidden\" name=\"csrf\" value=\"\(esc(viewer.csrf))\">"
            + "<button type=\"submit\"\(cls.isEmpty ? "" : " class=\"\(cls)\"")>\(esc(label))</button></form>"
    }

    static func esc(_ s: String) -> String { HTMLText.escape(s) }

    static func duration(_ seconds: Double) -> String {
        let s = Int(seconds.rounded())
        if s < 60 { return "\(s)s" }
        if s < 3600 { return "\(s / 60)m\(String(format: "%02d", s % 60))s" }
        return "\(s / 3600)h\(String(format: "%02d", (s % 3600) / 60))m"
    }

    static func bar(done: Int, total: Int, failed: Bool) -> String {
        let pct = total == 0 ? 0 : Int((Double(done) / Double(total) * 100).rounded())
        return "<span class=\"bar\(failed ? " failed" : "")\" title=\"\(done)/\(total)\"><span style=\"width:\(pct)%\"></span></span> \(done)/\(total)"
    }

    static func index(runs: [RunView], workers: [WorkerView], now: Date, viewer: DashboardViewer? = nil) -> String {
        var b = "<h1>BIS Fleet</h1><p class=\"muted\">\(runs.count) recent runs · \(workers.filter { !$0.quiet && $0.state != .stopped }.count) live workers</p>"
        b += "<h2>Runs</h2><table><tr><th>run</th><th>state</th><th>tasks</th><th>age</th><th>duration</th><th>message</th></tr>"
        for r in runs {
            let done = r.stages.reduce(0) { $0 + $1.succeeded }, total = r.stages.reduce(0) { $0 + $1.total }
            let end = r.finishedAt ?? now
            b += "<tr><td><a href=\"/runs/\(esc(r.id))\">\(esc(r.id))</a></td><td><span class=\"state \(r.state.rawValue)\">\(r.state.rawValue)</span></td>"
            b += "<td>\(bar(done: done, total: total, failed: r.state == .failed))</td>"
            b += "<td class=\"num\">\(duration(now.timeIntervalSince(r.submittedAt))) ago</td><td class=\"num\">\(duration(end.timeIntervalSince(r.submittedAt)))</td>"
            b += "<td class=\"err\">\(esc(r.message ?? ""))</td></tr>"
        }
        b += "</table>" + workersTable(workers, now: now)
        return page(title: "BIS Fleet", body: b, refresh: true, viewer: viewer)
    }

    static func workersTable(_ workers: [WorkerView], now: Date) -> String {
        var b = "<h2>Workers</h2><table><tr><th>host</th><th>pid</th><th>version</th><th>state</th><th>running</th><th>last seen</th></tr>"
        for w in workers {
            // Quiet: heartbeats stopped without the worker saying it stopped.
            let state = w.quiet && w.state != .stopped ? "quiet" : w.state.rawValue
            b += "<tr><td>\(esc(w.host))</td><td class=\"num\">\(w.pid)</td><td>\(esc(w.version))</td>"
            b += "<td><span class=\"state \(state)\">\(state)</span></td><td><code>\(esc(w.running.joined(separator: "\n")))</code></td>"
            b += "<td class=\"num\">\(duration(now.timeIntervalSince(w.lastSeen))) ago</td></tr>"
        }
        if workers.isEmpty { b += "<tr><td colspan=\"6\" class=\"muted\">no worker has reported yet</td></tr>" }
        return b + "</table>"
    }

    static func run(_ r: RunView, quarantine: [QuarantinedRow], inputs: [String], workers: [WorkerView], now: Date,
                    executed: [RunWorkerView] = [], viewer: DashboardViewer? = nil) -> String {
        var b = "<p><a href=\"/\">← all runs</a></p><h1>\(esc(r.id))</h1>"
        b += "<p><span class=\"state \(r.state.rawValue)\">\(r.state.rawValue)</span> pipeline <b>\(esc(r.pipeline))</b>, submitted by \(esc(r.submittedBy))"
        b += " \(duration(now.timeIntervalSince(r.submittedAt))) ago"
        if let finished = r.finishedAt { b += ", finished after \(duration(finished.timeIntervalSince(r.submittedAt)))" }
        if r.state == .awaitingApproval { b += " · awaits approval: <code>bis approve \(esc(r.id))</code>" }
        if let late = r.lateAt {
            b += " · <span class=\"err late\">late</span>: missed its deadline \(duration(now.timeIntervalSince(late))) ago"
        } else if let due = r.deadline {
            b += " · deadline in \(duration(max(0, due.timeIntervalSince(now))))"
        }
        b += "</p>"
        if let m = r.message { b += "<p class=\"err\">\(esc(m))</p>" }
        b += runButtons(r, viewer)
        b += "<h2>Stages</h2><table><tr><th>stage</th><th>tasks</th><th class=\"num\">running</th><th class=\"num\">retried</th><th class=\"num\">failed</th>"
        b += "<th class=\"num\">rows in</th><th class=\"num\">rows out</th><th class=\"num\">quarantined</th><th class=\"num\">time</th></tr>"
        for s in r.stages {
            let time = s.startedAt.map { duration((s.finishedAt ?? now).timeIntervalSince($0)) } ?? ""
            b += "<tr><td>\(s.stage.rawValue)</td><td>\(bar(done: s.succeeded, total: s.total, failed: s.failed > 0))</td>"
            b += "<td class=\"num\">\(s.running)</td><td class=\"num\">\(s.retried)</td><td class=\"num\">\(s.failed)</td>"
            b += "<td class=\"num\">\(s.rowsIn)</td><td class=\"num\">\(s.rowsOut)</td><td class=\"num\">\(s.rowsQuarantined)</td><td class=\"num\">\(time)</td></tr>"
            if let e = s.lastError { b += "<tr><td></td><td colspan=\"8\" class=\"err\">\(esc(e))</td></tr>" }
        }
        b += "</table>"
        b += "<h2>Quarantine</h2>"
        if quarantine.isEmpty {
            b += "<p class=\"muted\">no quarantined rows</p>"
        } else {
            var byRule: [String: Int] = [:]
            for q in quarantine { byRule["\(q.stage.rawValue): \(q.rule)", default: 0] += 1 }
            b += "<table><tr><th>stage: rule</th><th class=\"num\">rows</th></tr>"
            for (rule, n) in byRule.sorted(by: { $0.key < $1.key }) { b += "<tr><td>\(esc(rule))</td><td class=\"num\">\(n)</td></tr>" }
            b += "</table><table style=\"margin-top:8px\"><tr><th>file:line</th><th>rule</th><th>reason</th><th>row</th></tr>"
            for q in quarantine.prefix(20) {
                let at = q.file.map { "\(($0 as NSString).lastPathComponent):\(q.line.map(String.init) ?? "")" } ?? ""
                b += "<tr><td><code>\(esc(at))</code></td><td>\(esc(q.rule))</td><td>\(esc(q.reason))</td><td><code>\(esc(String(q.row.prefix(120))))</code></td></tr>"
            }
            b += "</table>"
        }
        if !r.published.isEmpty {
            b += "<h2>Published</h2><table><tr><th>dataset</th><th>version</th><th>schema sha256</th></tr>"
            for (dataset, version) in r.published.sorted(by: { $0.key < $1.key }) {
                b += "<tr><td>\(esc(dataset))</td><td><code>\(esc(version))</code></td>"
                b += "<td><code>\(esc(r.publishedSchemas?[dataset] ?? "–"))</code></td></tr>"
            }
            b += "</table>"
        }
        b += "<h2>Lineage</h2>" + lineageGraph(r, inputs: inputs)
        let running = workers.filter { w in w.running.contains { $0.hasPrefix(r.id + "/") } }
        if running.isEmpty && !executed.isEmpty {
            b += executedTable(executed, now: now)
        } else {
            b += workersTable(running, now: now)
        }
        // A run awaiting approval moves on when someone approves it: keep refreshing until it ended.
        return page(title: r.id, body: b, refresh: [.pending, .running, .awaitingApproval].contains(r.state), viewer: viewer)
    }

    /// Approve, Retry, Cancel for a signed-in viewer whose role allows them,
    /// as the run's state does; nothing for a viewer.
    static func runButtons(_ r: RunView, _ viewer: DashboardViewer?) -> String {
        guard let viewer else { return "" }
        let base = "/runs/" + Routes.pathSegment(r.id) + "/"
        var b = ""
        // Not to its submitter, whom the API refuses unless --allow-self-approval.
        if viewer.canApprove, r.state == .awaitingApproval,
           viewer.selfApprovalAllowed || r.submitterPrincipal == nil || r.submitterPrincipal != viewer.name {
            b += form(base + "approve", viewer, "Approve")
        }
        if viewer.canOperate, r.state == .failed { b += form(base + "retry", viewer, "Retry") }
        if viewer.canOperate, [.pending, .running, .awaitingApproval].contains(r.state) { b += form(base + "cancel", viewer, "Cancel") }
        return b.isEmpty ? "" : "<p class=\"actions\">\(b)</p>"
    }

    /// The workers that executed a run's tasks (from the store), once none runs it.
    static func executedTable(_ workers: [RunWorkerView], now: Date) -> String {
        var b = "<h2>Workers</h2><table><tr><th>worker</th><th>host</th><th>pid</th><th>stages</th><th class=\"num\">executions</th>"
        b += "<th class=\"num\">succeeded</th><th>last finished</th></tr>"
        for w in workers {
            b += "<tr><td><code>\(esc(w.worker))</code></td><td>\(esc(w.host ?? ""))</td><td class=\"num\">\(w.pid.map(String.init) ?? "")</td>"
            b += "<td>\(esc(w.stages.map(\.rawValue).joined(separator: ", ")))</td><td class=\"num\">\(w.executions)</td>"
            b += "<td class=\"num\">\(w.succeeded)</td><td class=\"num\">\(w.lastFinished.map { duration(now.timeIntervalSince($0)) + " ago" } ?? "")</td></tr>"
        }
        return b + "</table>"
    }

    /// Inputs → stages → datasets, as inline SVG.
    static func lineageGraph(_ r: RunView, inputs: [String]) -> String {
        let files = inputs.map { ($0 as NSString).lastPathComponent }
        let datasets = r.published.keys.sorted()
        let stageNames = r.stages.map(\.stage.rawValue)
        let rowH = 26.0, top = 10.0
        let height = top * 2 + rowH * Double(max(files.count, datasets.count, 1, stageNames.count > 0 ? 2 : 1))
        let width = 260.0 + Double(stageNames.count) * 110 + 220
        var svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height))\" role=\"img\" aria-label=\"lineage\">"
        svg += "<g font-family=\"system-ui,sans-serif\" font-size=\"11\">"
        let midY = height / 2
        let firstStageX = 250.0
        for (i, f) in files.enumerated() {
            let y = top + rowH * Double(i) + 4
            svg += "<rect x=\"4\" y=\"\(y)\" width=\"210\" height=\"18\" rx=\"4\" fill=\"#eef3fb\" stroke=\"#9db4d9\"/>"
            svg += "<text x=\"10\" y=\"\(y + 13)\">\(esc(String(f.prefix(32))))</text>"
            svg += "<line x1=\"214\" y1=\"\(y + 9)\" x2=\"\(firstStageX)\" y2=\"\(midY)\" stroke=\"#9db4d9\"/>"
        }
        for (i, s) in stageNames.enumerated() {
            let x = firstStageX + Double(i) * 110
            let view = r.stages[i]
            let fill = view.failed > 0 ? "#fbe4e2" : (view.succeeded == view.total && view.total > 0 ? "#e3f3e8" : "#eef1f4")
            svg += "<rect x=\"\(x)\" y=\"\(midY - 14)\" width=\"92\" height=\"28\" rx=\"5\" fill=\"\(fill)\" stroke=\"#8a94a3\"/>"
            svg += "<text x=\"\(x + 46)\" y=\"\(midY + 4)\" text-anchor=\"middle\">\(s)</text>"
            if i > 0 { svg += "<line x1=\"\(x - 18)\" y1=\"\(midY)\" x2=\"\(x)\" y2=\"\(midY)\" stroke=\"#8a94a3\"/>" }
        }
        // Datasets are what publish wrote: their edges leave its box (the
        // stages after it, report and deliver, read them), else the last stage's.
        let source = r.stages.firstIndex { $0.stage == .publish } ?? max(stageNames.count - 1, 0)
        let lastX = firstStageX + Double(source) * 110 + 46
        let datasetX = firstStageX + Double(max(stageNames.count, 1)) * 110 + 12
        for (i, d) in datasets.enumerated() {
            let y = top + rowH * Double(i) + 4
            svg += "<path class=\"published\" data-from=\"\(stageNames.isEmpty ? "" : stageNames[source])\" d=\"M\(lastX) \(midY + 14) C\(lastX) \(height - 2) \(datasetX - 40) \(y + 9) \(datasetX) \(y + 9)\" fill=\"none\" stroke=\"#7fb48f\"/>"
            svg += "<rect x=\"\(datasetX)\" y=\"\(y)\" width=\"180\" height=\"18\" rx=\"4\" fill=\"#e3f3e8\" stroke=\"#7fb48f\"/>"
            svg += "<text x=\"\(datasetX + 6)\" y=\"\(y + 13)\">\(esc(d))</text>"
        }
        return svg + "</g></svg>"
    }
}

extension Dashboard {
    /// The dashboard's page for a path (`/`, `/runs/<id>`), built from what
    /// the service answers; nil when there is none.
    public static func page(path: String, from service: any CoordinatorService, now: Date = Date()) async throws -> String? {
        try await page(path: path, from: service, viewer: nil, now: now)
    }
}

/// Text made safe inside HTML elements and quoted attributes. The same
/// escaping as the report's `HTML.escape` in Stages, kept apart on purpose:
/// the HTTP layer must not link the stage operators (and the Parquet codec)
/// for twenty lines.
enum HTMLText {
    static func escape(_ s: String) -> String {
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
                // Control characters and noncharacters are not allowed in HTML text.
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
