import ArgumentParser
import CoordinatorAPI
import Foundation

/// `bis alerts [--run RUN]`: the alerts the coordinator raised and their deliveries.
struct AlertsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "alerts",
        abstract: "Show the alerts the coordinator raised (run failed, deadline missed, …) and their delivery to each receiver.",
        discussion: """
            Newest first; the newest --limit alerts. Each alert: time, event, run, message, then one line per \
            receiver: pending (with its attempts and next try), sent, or failed (given up), and the last error. \
            Receivers' URLs show only scheme, host and port. See docs/alerts.md. Needs any role (viewer up).
            Exit codes: 0 shown, 3 the coordinator cannot be reached, 4 refused (not authenticated).
            """
    )
    @Option(help: "Only this run's alerts.") var run: String?
    @Option(help: "At most this many alerts (the newest).") var limit: Int = 100
    @OptionGroup var options: CoordinatorOptions

    func validate() throws {
        guard limit >= 1 else { throw ValidationError("--limit must be at least 1") }
    }

    func run() async throws {
        let client = try options.client()
        let alerts: [AlertView]
        do { alerts = try await client.alerts(run: run, limit: limit) } catch { throw options.exit(for: error, run: nil) }
        if options.json { try options.printJSON(alerts); return }
        if alerts.isEmpty { print(run.map { "no alerts for run \($0)" } ?? "no alerts"); return }
        print(Self.render(alerts, withRun: run == nil))
    }

    static func render(_ alerts: [AlertView], withRun: Bool) -> String {
        let time = ISO8601DateFormatter()
        var lines: [String] = [withRun ? "alerts:" : "alerts of this run:"]
        for a in alerts {
            var head = "  \(time.string(from: a.raisedAt))  \(a.event.rawValue)\(a.resolved ? " (resolved)" : "")"
            if withRun, let run = a.run { head += "  run \(run)" }
            if let task = a.task { head += "  task \(task)" }
            lines.append(head)
            lines.append("    " + RunText.oneLine(a.message))
            if a.deliveries.isEmpty { lines.append("    no receiver (no notify: in the spec, no --alerts route)") }
            for d in a.deliveries {
                var line = "    → \(d.receiver) \(d.target): \(d.state.rawValue), \(d.attempts) attempt\(d.attempts == 1 ? "" : "s")"
                if d.state == .pending, let next = d.nextAttemptAt { line += ", next \(time.string(from: next))" }
                if let e = d.lastError { line += "; last error: " + RunText.oneLine(e) }
                lines.append(line)
            }
        }
        return lines.joined(separator: "\n")
    }
}
