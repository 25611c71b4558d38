import CoordinatorAPI
import FleetWire
import Foundation

/// The text `bis status` and `bis runs` print: pure functions of the views
/// and the time now, so that `--watch` can redraw them.
enum RunText {
    /// One run: its state and message on top, then one line per stage, with
    /// the stage's last error under it.
    static func detail(_ run: RunView, now: Date = Date()) -> String {
        var lines = ["run \(run.id)  pipeline \(run.pipeline)  \(run.state.rawValue)"]
        var when = "submitted by \(run.submittedBy) \(humanDuration(now.timeIntervalSince(run.submittedAt))) ago"
        if let finished = run.finishedAt {
            when += ", finished after \(humanDuration(finished.timeIntervalSince(run.submittedAt)))"
        }
        lines.append("  " + when)
        if let trigger = run.trigger {   // a registered pipeline's run (docs/schedules.md)
            var line = "  \(trigger) run of version \(run.version.map(String.init) ?? "?"), slot \(run.slot ?? "-")"
            if let params = run.params, !params.isEmpty {
                line += "; " + params.keys.sorted().map { "\($0)=\(params[$0]!)" }.joined(separator: " ")
            }
            lines.append(line)
        }
        if let message = run.message, !message.isEmpty {
            lines.append(contentsOf: message.split(separator: "\n", omittingEmptySubsequences: false).map { "  " + $0 })
        }
        if let late = run.lateAt {
            lines.append("  LATE: missed its deadline\(run.deadline.map { " (due \(ISO8601DateFormatter().string(from: $0)))" } ?? "") "
                         + "\(humanDuration(now.timeIntervalSince(late))) ago")
        } else if let due = run.deadline {
            lines.append("  deadline \(ISO8601DateFormatter().string(from: due))")
        }
        if run.state == .awaitingApproval {
            lines.append("  awaits approval: bis approve \(run.id)")
        } else if let approver = run.approvedBy {
            lines.append("  approved by \(approver)")
        }
        if !run.stages.isEmpty {
            lines.append("")
            let header = ["stage", "tasks", "running", "retried", "failed", "rows in", "rows out", "quarantined"]
            var rows: [[String]] = []
            var errors: [Int: String] = [:]
            for stage in run.stages {
                rows.append([stage.stage.rawValue, "\(stage.succeeded)/\(stage.total)", "\(stage.running)", "\(stage.retried)",
                             "\(stage.failed)", "\(stage.rowsIn)", "\(stage.rowsOut)", "\(stage.rowsQuarantined)"])
                if let error = stage.lastError, !error.isEmpty { errors[rows.count - 1] = error }
            }
            let rendered = table(header, rows, rightAligned: Set(1...7))
            lines.append(rendered[0])
            for (i, line) in rendered.dropFirst().enumerated() {
                lines.append(line)
                if let error = errors[i] { lines.append("    last error: " + oneLine(error)) }
            }
        }
        for (dataset, version) in run.published.sorted(by: { $0.key < $1.key }) {
            lines.append("published \(dataset): \(version)")
            if let hash = run.publishedSchemas?[dataset] { lines.append("  schema sha256 \(hash)") }
        }
        if let report = run.reportDirectory { lines.append("report: \(report)") }
        if let receipt = run.receipt { lines.append("delivered: \(receipt)") }
        return lines.joined(separator: "\n")
    }

    /// Recent runs, one a line: id, state, age, duration (so far, for one
    /// still going).
    static func list(_ runs: [RunView], now: Date = Date()) -> String {
        guard !runs.isEmpty else { return "no runs yet: start one with `bis submit SPEC.yml`" }
        let rows = runs.map { run in
            [run.id, run.state.rawValue, humanDuration(now.timeIntervalSince(run.submittedAt)), duration(run, now: now)]
        }
        return table(["run", "state", "age", "duration"], rows, rightAligned: [2, 3]).joined(separator: "\n")
    }

    /// The fleet's workers: host, pid, version, state, current tasks, last
    /// seen, marked quiet when their heartbeats stopped without a goodbye.
    static func workers(_ workers: [WorkerView], now: Date = Date()) -> String {
        guard !workers.isEmpty else {
            return "no workers have reported: start some with `bis-worker --amqp URL` on hosts that reach the broker"
        }
        // The broker columns appear once some worker reports them (newer workers do).
        let broker = workers.contains { $0.node != nil || $0.brokerReconnects != nil }
        let rows = workers.map { w in
            [w.host, "\(w.pid)", w.version, w.state.rawValue, w.running.isEmpty ? "-" : w.running.joined(separator: ","),
             // A worker that said it stopped is not missing, however long ago it spoke.
             "\(humanDuration(now.timeIntervalSince(w.lastSeen))) ago" + (w.quiet && w.state != .stopped ? " (quiet)" : "")]
                + (broker ? [w.node ?? "-", w.brokerReconnects.map { "\($0)" } ?? "-"] : [])
        }
        let header = ["host", "pid", "version", "state", "tasks", "last seen"] + (broker ? ["broker node", "reconnects"] : [])
        return table(header, rows, rightAligned: broker ? [1, 7] : [1]).joined(separator: "\n")
    }

    /// Submit to finish; so far, marked "…", for a run still going; "-" for a
    /// settled run that does not say when it finished.
    static func duration(_ run: RunView, now: Date) -> String {
        if let finished = run.finishedAt { return humanDuration(finished.timeIntervalSince(run.submittedAt)) }
        switch run.state {
        case .succeeded, .failed, .cancelled: return "-"
        case .pending, .running, .awaitingApproval: return humanDuration(now.timeIntervalSince(run.submittedAt)) + "…"
        }
    }

    static func oneLine(_ text: String) -> String {
        text.split(whereSeparator: \.isNewline).joined(separator: " / ")
    }
}
