import Foundation
import Testing
@testable import FleetCore

/// `notify:`, `timeouts:`, `deadline:` (docs/alerts.md).
@Suite struct SpecAlertTests {
    /// The first line after `baseSpec`.
    static let line = baseSpec.split(separator: "\n", omittingEmptySubsequences: false).count

    @Test func notifyTimeoutsAndDeadlineParse() throws {
        let spec = try parseSpec(baseSpec + """
            notify:
              - {webhook: "https://hooks.example.com/a", on: [run_failed, deadline_missed], format: slack, secret_env: BIS_ALERT_SECRET_A}
              - webhook: http://127.0.0.1:9093
                format: alertmanager
            timeouts: {default: 1h, ingest: 10m, consolidate: 90s}
            deadline: {within: 2h, by: "06:30"}

            """)
        #expect(spec.notify == [
            NotifySpec(webhook: "https://hooks.example.com/a", on: [.runFailed, .deadlineMissed], format: .slack, secretEnv: "BIS_ALERT_SECRET_A"),
            NotifySpec(webhook: "http://127.0.0.1:9093", on: AlertEvent.defaults, format: .alertmanager),
        ])
        #expect(!AlertEvent.defaults.contains(.runSucceeded), "run_succeeded is opt-in")
        #expect(spec.timeouts?.seconds(for: .ingest) == 600)
        #expect(spec.timeouts?.seconds(for: .consolidate) == 90)
        #expect(spec.timeouts?.seconds(for: .validate) == 3600)
        #expect(spec.deadline == DeadlineSpec(withinSeconds: 7200, byMinuteOfDay: 390))
        #expect(try parseSpec(baseSpec).notify.isEmpty && parseSpec(baseSpec).timeouts == nil && parseSpec(baseSpec).deadline == nil)
    }

    @Test func theDeadlineIsTheEarlierOfWithinAndByOnTheBaseDate() {
        let base = 86400.0 * 100 + 5 * 3600   // 05:00 UTC
        #expect(DeadlineSpec(withinSeconds: 7200).due(base: base) == base + 7200)
        #expect(DeadlineSpec(byMinuteOfDay: 390).due(base: base) == 86400.0 * 100 + 6.5 * 3600)
        #expect(DeadlineSpec(withinSeconds: 600, byMinuteOfDay: 390).due(base: base) == base + 600)
        // A wall time already past on the base date: late at once.
        #expect(DeadlineSpec(byMinuteOfDay: 240).due(base: base)! < base)
    }

    @Test func mistakesAreErrorsAtTheirLineAndColumn() {
        let l = Self.line
        #expect(specErrors(baseSpec + "timeouts: {ingest: 10 minutes}\n")
            == ["spec.yml:\(l):20: timeout 'ingest' must be a duration: a whole number and s, m, h or d (90s, 10m, 2h), not '10 minutes'"])
        #expect(specErrors(baseSpec + "timeouts: {ingest: 0s}\n")
            == ["spec.yml:\(l):20: timeout 'ingest' must be a duration: a whole number and s, m, h or d (90s, 10m, 2h), not '0s'"])
        #expect(specErrors(baseSpec + "timeouts: {ingets: 1m}\n")
            == ["spec.yml:\(l):12: unknown key 'ingets' in 'timeouts'; did you mean 'ingest'?"])
        #expect(specErrors(baseSpec + "deadline: {by: \"6:30\"}\n")
            == ["spec.yml:\(l):16: 'by' in 'deadline' must be a wall time HH:MM (quote it: \"06:30\"), not '6:30'"])
        #expect(specErrors(baseSpec + "deadline: {}\n") == ["spec.yml:\(l):11: 'deadline' needs 'within: DURATION' (2h) or 'by: \"HH:MM\"'"])
        #expect(specErrors(baseSpec + "notify:\n  - {webhook: ftp://x/y}\n")
            == ["spec.yml:\(l + 1):15: 'webhook' in notify entry 1 must be an http:// or https:// URL with a host"])
        let unknown = specErrors(baseSpec + "notify:\n  - {webhook: \"http://h/x\", on: [run_exploded]}\n")
        #expect(unknown.count == 1 && unknown[0].hasPrefix("spec.yml:\(l + 1):34: unknown event 'run_exploded' in 'on' of notify entry 1"),
                "\(unknown)")
        #expect(specErrors(baseSpec + "notify:\n  - {webhook: \"http://h/x\", secret_env: BIS_AMQP_PASSWORD}\n")
            == ["spec.yml:\(l + 1):41: 'secret_env' in notify entry 1 must name an environment variable BIS_ALERT_SECRET_NAME (A-Z, 0-9, _), not 'BIS_AMQP_PASSWORD'"])
        #expect(specErrors(baseSpec + "notify:\n  - {on: [run_failed]}\n") == ["spec.yml:\(l + 1):5: notify entry 1 needs 'webhook: URL'"])
    }
}
