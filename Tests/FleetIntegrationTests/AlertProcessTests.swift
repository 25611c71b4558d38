import Crypto
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import TestSupport
import Testing

/// Alerts on the real fleet (docs/alerts.md): `bis coordinator` with
/// `--alerts`, two `bis-worker`s, the broker, and webhook receivers in a
/// Python http.server (and a real Alertmanager when Debian's
/// prometheus-alertmanager is installed).
@Suite(.serialized, .usesBroker, .enabled(if: FleetEnvironment.enabled,
                             "no broker (BIS_TEST_AMQP_URL; run ops/test) or no Python with duckdb (BIS_PYTHON)"))
struct AlertProcessTests {
    /// A gate failure sends exactly one run_failed to each receiver, naming
    /// the rule, even though the coordinator is killed (SIGKILL) after the
    /// alert committed and before it was sent: it goes out after the
    /// restart, once. A receiver answering 500 three times gets it on the
    /// fourth try, marked sent once; the spec's receiver is signed (HMAC).
    @Test func aGateFailureAlertsEachReceiverOnceAcrossAKillBeforeSending() async throws {
        let receiver = try await WebhookReceiver.start(fail: ["/flaky": 3])
        defer { receiver.stop() }
        let alertsFile = receiver.dir + "/alerts.yml"
        try """
            receivers:
              flaky: {webhook: "\(receiver.url)/flaky"}
              chat: {slack: "\(receiver.url)/slack"}
            routes:
              - {pipeline: "alerts-*", on: [run_failed], to: [flaky, chat]}
            """.write(toFile: alertsFile, atomically: true, encoding: .utf8)
        let secret = "hook-secret-\(randomHex())"
        let fleet = try Fleet(label: "alerts-kill", options: FleetOptions(coordinatorArguments: ["--alerts", alertsFile]))
        fleet.setNextCoordinator(environment: ["BIS_TEST_ALERT_FAULT": "before-send", "BIS_ALERT_SECRET_HOOK": secret])
        do {
            try await fleet.startCoordinator()
            try await fleet.startWorkers()
            let pipeline = "alerts-\(randomHex(6))"
            let spec = fleet.dir + "/\(pipeline).yml"
            try (FleetData.spec(pipeline: pipeline, dataset: "orders_a", summary: "by_region_a")
                .replacingOccurrences(of: "max_failure_rate: 90%", with: "max_failure_rate: 0%")
                + """
                notify:
                  - {webhook: "\(receiver.url)/hook", on: [run_failed], secret_env: BIS_ALERT_SECRET_HOOK}

                """).write(toFile: spec, atomically: true, encoding: .utf8)
            let run = try await fleet.submit(spec)

            // The fault kills the coordinator when the alert is about to go out.
            let deadline = Date().addingTimeInterval(180)
            while fleet.coordinatorProcess?.termination == nil, Date() < deadline { try await Task.sleep(for: .milliseconds(200)) }
            let ended = fleet.coordinatorProcess?.termination
            fleet.check(ended == .signaled(SIGKILL), "the coordinator should kill itself before sending: \(String(describing: ended))")
            fleet.check(receiver.requests().isEmpty, "nothing was sent before the kill: \(receiver.requests())")

            fleet.setNextCoordinator(environment: ["BIS_ALERT_SECRET_HOOK": secret])
            try await fleet.startCoordinator()
            let status = try await fleet.waitForRun(run, timeout: 120)
            fleet.check(status.state == "failed", "the gate fails the run: \(status)")

            try await receiver.waitFor(timeout: 90) { r in
                r.filter { $0.path == "/flaky" && $0.status == 200 }.count == 1
                    && r.filter { $0.path == "/hook" }.count == 1 && r.filter { $0.path == "/slack" }.count == 1
            }
            try await Task.sleep(for: .seconds(3))   // nothing more comes
            let all = receiver.requests()
            let hook = all.filter { $0.path == "/hook" }, slack = all.filter { $0.path == "/slack" }
            let flaky = all.filter { $0.path == "/flaky" }
            fleet.check(hook.count == 1 && hook[0].status == 200, "one run_failed to the spec's webhook: \(hook)")
            fleet.check(slack.count == 1, "one message to the Slack receiver: \(slack)")
            fleet.check(flaky.map(\.status) == [500, 500, 500, 200], "the flaky receiver: three 500s, then one 200: \(flaky.map(\.status))")

            if let h = hook.first {
                let body = (try? JSONSerialization.jsonObject(with: Data(h.body.utf8))) as? [String: Any] ?? [:]
                fleet.check(body["event"] as? String == "run_failed" && body["run"] as? String == run
                            && body["pipeline"] as? String == pipeline, "the payload names event, run and pipeline: \(h.body)")
                fleet.check((body["message"] as? String ?? "").contains("max_failure_rate"), "the message names the failing rule: \(h.body)")
                fleet.check(body["slot"] is NSNull, "no slot until schedules exist: \(h.body)")
                fleet.check((body["link"] as? String ?? "").hasSuffix("/runs/\(run)"), "a link to the run's page: \(h.body)")
                fleet.check(h.headers["idempotency-key"] == "\(run)/run_failed/1", "the idempotency key: \(h.headers)")
                let mac = HMAC<SHA256>.authenticationCode(for: Data(h.body.utf8), using: SymmetricKey(data: Data(secret.utf8)))
                let expected = "sha256=" + mac.map { String(format: "%02x", $0) }.joined()
                fleet.check(h.headers["x-bis-signature"] == expected, "the HMAC-SHA256 signature: \(h.headers)")
            }
            if let s = slack.first {
                let body = (try? JSONSerialization.jsonObject(with: Data(s.body.utf8))) as? [String: Any] ?? [:]
                let text = body["text"] as? String ?? ""
                fleet.check(text.contains("run_failed") && text.contains(run) && text.contains("max_failure_rate"),
                            "Slack's {\"text\": …} names the event, the run and the rule: \(s.body)")
            }
            fleet.check(flaky.allSatisfy { $0.headers["x-bis-signature"] == nil }, "no signature without a secret")

            let listed = try await fleet.bis(["alerts", "--run", run, "--json"])
            let alerts = (try? JSONSerialization.jsonObject(with: Data(listed.stdout.utf8))) as? [[String: Any]] ?? []
            let failedAlerts = alerts.filter { $0["event"] as? String == "run_failed" }
            fleet.check(listed.exitCode == 0 && failedAlerts.count == 1, "bis alerts lists one run_failed: \(listed)")
            let deliveries = failedAlerts.first?["deliveries"] as? [[String: Any]] ?? []
            fleet.check(deliveries.count == 3 && deliveries.allSatisfy { $0["state"] as? String == "sent" },
                        "three deliveries, each sent: \(deliveries)")
            let flakyDelivery = deliveries.first { $0["receiver"] as? String == "flaky" }
            fleet.check(flakyDelivery?["attempts"] as? Int == 4, "the flaky receiver took four attempts: \(deliveries)")
            fleet.check(deliveries.allSatisfy { !($0["target"] as? String ?? "").contains("/flaky") && !($0["target"] as? String ?? "").contains("/hook") },
                        "targets show no URL path: \(deliveries)")
            let metrics = await fleet.metricsText() ?? ""
            let sentLines = metrics.split(separator: "\n").filter { $0.hasPrefix("bis_pipeline_alerts_sent_total{") && $0.contains("\"\(pipeline)\"") }
            fleet.check(sentLines.count == 1 && sentLines[0].hasSuffix(" 3"), "three deliveries sent since the restart: \(sentLines)")
            let text = try await fleet.bis(["status", run])
            fleet.check(text.stdout.contains("alerts of this run") && text.stdout.contains("run_failed") && text.stdout.contains("sent"),
                        "bis status shows the run's alerts: \(text)")
            let log = (try? String(contentsOfFile: fleet.logs + "/coordinator.log", encoding: .utf8)) ?? ""
            fleet.check(!log.contains(secret), "the secret is never logged")
        } catch {
            fleet.record("\(error)")
        }
        await fleet.stop()
        await FleetEnvironment.deleteQueues(namespace: fleet.namespace)
        fleet.cleanUp()
    }

    /// A run that asks for approval sends awaiting_approval; with a 5 s
    /// deadline it is still waiting when the deadline passes: deadline_missed
    /// (to the webhook and to a real Alertmanager), the run marked late;
    /// once approved it finishes and the alert is resolved (`endsAt`).
    @Test func approvalAndAMissedDeadlineAreAlertedAndResolved() async throws {
        let receiver = try await WebhookReceiver.start(fail: [:])
        defer { receiver.stop() }
        let alertmanager = try await Alertmanager.start(dir: receiver.dir)
        defer { alertmanager?.stop() }
        var alertsArgs: [String] = []
        if let alertmanager {
            let file = receiver.dir + "/alerts.yml"
            try """
                receivers:
                  am: {alertmanager: "\(alertmanager.url)"}
                routes:
                  - {pipeline: "late-*", on: [deadline_missed], to: [am]}
                """.write(toFile: file, atomically: true, encoding: .utf8)
            alertsArgs = ["--alerts", file]
        }
        try await withFleet("alerts-late", FleetOptions(coordinatorArguments: alertsArgs)) { fleet in
            let pipeline = "late-\(randomHex(6))"
            let spec = fleet.dir + "/\(pipeline).yml"
            try (FleetData.spec(pipeline: pipeline, dataset: "orders_l", summary: "by_region_l", approval: "required")
                + """
                deadline: {within: 5s}
                notify:
                  - webhook: "\(receiver.url)/hook"
                    on: [awaiting_approval, deadline_missed]

                """).write(toFile: spec, atomically: true, encoding: .utf8)
            let run = try await fleet.submit(spec)
            let waiting = try await fleet.waitForRun(run, timeout: 180)
            fleet.check(waiting.state == "awaiting_approval", "the run waits for approval: \(waiting)")

            func events(_ r: [WebhookReceiver.Request]) -> [(String, Bool)] {
                r.compactMap { req in
                    guard let o = (try? JSONSerialization.jsonObject(with: Data(req.body.utf8))) as? [String: Any] else { return nil }
                    return (o["event"] as? String ?? "", o["resolved"] as? Bool ?? false)
                }
            }
            try await receiver.waitFor(timeout: 60) { r in
                let e = events(r)
                return e.contains { $0 == ("awaiting_approval", false) } && e.contains { $0 == ("deadline_missed", false) }
            }
            let statusJSON = try await fleet.bis(["status", run, "--json"])
            let view = (try? JSONSerialization.jsonObject(with: Data(statusJSON.stdout.utf8))) as? [String: Any] ?? [:]
            fleet.check(view["lateAt"] != nil && view["deadline"] != nil, "status marks the run late: \(statusJSON.stdout)")
            let metrics = await fleet.metricsText() ?? ""
            let misses = metrics.split(separator: "\n").filter { $0.hasPrefix("bis_pipeline_deadline_misses_total{") && $0.contains("\"\(pipeline)\"") }
            fleet.check(misses.count == 1 && misses[0].hasSuffix(" 1"), "the metrics count the deadline miss: \(misses)")
            if let alertmanager {
                try await alertmanager.waitFor(timeout: 60, "the deadline alert in Alertmanager") { alerts in
                    alerts.contains { ($0["labels"] as? [String: String])?["run"] == run
                        && ($0["labels"] as? [String: String])?["alertname"] == "bis_deadline_missed" }
                }
            }

            let approved = try await fleet.bis(["approve", run])
            fleet.check(approved.exitCode == 0, "approve: \(approved)")
            let done = try await fleet.waitForRun(run, timeout: 180) { $0.state == "succeeded" || $0.state == "failed" }
            fleet.check(done.state == "succeeded", "the approved run succeeds: \(done)")
            try await receiver.waitFor(timeout: 60) { r in events(r).contains { $0 == ("deadline_missed", true) } }
            let e = events(receiver.requests())
            fleet.check(e.filter { $0 == ("deadline_missed", false) }.count == 1, "deadline_missed once: \(e)")
            fleet.check(e.filter { $0 == ("awaiting_approval", false) }.count == 1, "awaiting_approval once: \(e)")
            fleet.check(!e.contains { $0.0 == "run_succeeded" }, "run_succeeded is opt-in: \(e)")
            if let alertmanager {
                // Resolved: endsAt reached, so Alertmanager no longer lists it as active.
                try await alertmanager.waitFor(timeout: 60, "the deadline alert resolved in Alertmanager") { alerts in
                    !alerts.contains { a in
                        (a["labels"] as? [String: String])?["run"] == run
                            && ((a["status"] as? [String: Any])?["state"] as? String) == "active"
                    }
                }
            }
        }
    }

    /// An ingest task made to hang (`BIS_TEST_FAULT=sleep=…`) past a 3 s
    /// stage timeout: each execution is stopped and recorded `timed_out`
    /// (task_timed_out alerted), the task retried as after any transient
    /// failure, and after the last attempt the run fails naming the timeout.
    @Test func aTaskPastItsStageTimeoutIsTimedOutRetriedThenFailsTheRun() async throws {
        let receiver = try await WebhookReceiver.start(fail: [:])
        defer { receiver.stop() }
        let options = FleetOptions(workers: [WorkerSpec(fault: "sleep=60000:ingest/0", concurrency: 2)],
                                   coordinatorArguments: ["--max-attempts", "2"])
        try await withFleet("alerts-timeout", options) { fleet in
            let pipeline = "slow-\(randomHex(6))"
            let spec = fleet.dir + "/\(pipeline).yml"
            try (FleetData.spec(pipeline: pipeline, dataset: "orders_t", summary: "by_region_t")
                + """
                timeouts: {default: 1h, ingest: 3s}
                notify:
                  - {webhook: "\(receiver.url)/hook", on: [task_timed_out, run_failed]}

                """).write(toFile: spec, atomically: true, encoding: .utf8)
            let started = Date()
            let run = try await fleet.submit(spec)
            let status = try await fleet.waitForRun(run, timeout: 120)
            fleet.check(status.state == "failed" && (status.message ?? "").contains("timed out after 3s"),
                        "the run fails naming the timeout: \(status)")
            fleet.check(Date().timeIntervalSince(started) < 50, "the hung task was stopped, not waited for (60 s)")
            let lineage = try fleet.lineage(run)
            let ingest0 = lineage.tasks(of: "ingest").first { $0.index == 0 }
            fleet.check(ingest0?.executions["timed_out"] == 2, "both attempts recorded timed_out: \(String(describing: ingest0))")
            try await receiver.waitFor(timeout: 30) { r in
                r.filter { $0.body.contains("\"task_timed_out\"") }.count == 2 && r.contains { $0.body.contains("\"run_failed\"") }
            }
            let timedOut = receiver.requests().filter { $0.body.contains("\"task_timed_out\"") }
            fleet.check(timedOut.allSatisfy { $0.body.contains("timed out after 3s") }, "the alerts say why: \(timedOut)")
        }
    }

    /// The same timeout, but the fault is gone for the retry (the faulty
    /// worker replaced by a clean one, as after a repair): the execution that
    /// hung is `timed_out` and the run succeeds.
    @Test func aTimedOutTaskSucceedsOnRetryOnceTheFaultIsGone() async throws {
        let options = FleetOptions(workers: [WorkerSpec(fault: "sleep=60000:ingest/0", concurrency: 2, restartClean: true)],
                                   supervise: true)
        try await withFleet("alerts-timeout-retry", options) { fleet in
            let pipeline = "retry-\(randomHex(6))"
            let spec = fleet.dir + "/\(pipeline).yml"
            try (FleetData.spec(pipeline: pipeline, dataset: "orders_r", summary: "by_region_r")
                + "timeouts: {ingest: 3s}\n").write(toFile: spec, atomically: true, encoding: .utf8)
            let run = try await fleet.submit(spec)
            let deadline = Date().addingTimeInterval(60)
            while (try fleet.lineage(run).tasks(of: "ingest").first { $0.index == 0 }?.executions["timed_out"] ?? 0) == 0 {
                if Date() >= deadline { throw FleetError("ingest/0 was not timed out within 60 s") }
                try await Task.sleep(for: .milliseconds(300))
            }
            await fleet.killWorker(0)   // the supervisor starts it again without the fault
            let status = try await fleet.waitForRun(run, timeout: 180) { $0.state == "succeeded" || $0.state == "failed" }
            fleet.check(status.state == "succeeded", "the retry succeeds: \(status)")
            let ingest0 = try fleet.lineage(run).tasks(of: "ingest").first { $0.index == 0 }
            fleet.check((ingest0?.executions["timed_out"] ?? 0) >= 1 && ingest0?.executions["succeeded"] == 1,
                        "a timed_out execution, then the winner: \(String(describing: ingest0))")
        }
    }

    /// An operator that does not stop at the timeout (`hang=`): after
    /// --timeout-grace the worker reports the execution timed out (recorded
    /// `timed_out`, task_timed_out alerted), acks it, hands back its other
    /// tasks and exits; its supervisor (systemd) starts it again, the task is
    /// retried as after any transient failure, and the run succeeds.
    @Test func aWorkerWhoseTaskIgnoresTheTimeoutExitsAndTheTaskIsRedelivered() async throws {
        let receiver = try await WebhookReceiver.start(fail: [:])
        defer { receiver.stop() }
        let options = FleetOptions(workers: [WorkerSpec(fault: "hang=60000:ingest/0", concurrency: 2, restartClean: true)],
                                   supervise: true, workerArguments: ["--timeout-grace", "2"])
        try await withFleet("alerts-hang", options) { fleet in
            let pipeline = "hang-\(randomHex(6))"
            let spec = fleet.dir + "/\(pipeline).yml"
            try (FleetData.spec(pipeline: pipeline, dataset: "orders_h", summary: "by_region_h")
                + """
                timeouts: {ingest: 3s}
                notify:
                  - {webhook: "\(receiver.url)/hook", on: [task_timed_out]}

                """).write(toFile: spec, atomically: true, encoding: .utf8)
            let started = Date()
            let run = try await fleet.submit(spec)
            let status = try await fleet.waitForRun(run, timeout: 180) { $0.state == "succeeded" || $0.state == "failed" }
            fleet.check(status.state == "succeeded", "the redelivered task succeeds: \(status)")
            fleet.check(fleet.workerStarts(0) == 2, "the worker exited once and was started again: \(fleet.workerStarts(0))")
            fleet.check(Date().timeIntervalSince(started) < 50, "the hang (60 s) was cut short by the exit")
            let log = (try? String(contentsOfFile: fleet.logs + "/worker0.log", encoding: .utf8)) ?? ""
            fleet.check(log.contains("did not stop within the grace period"), "the worker says why it exits")
            let ingest0 = try fleet.lineage(run).tasks(of: "ingest").first { $0.index == 0 }
            fleet.check(ingest0?.executions["timed_out"] == 1 && ingest0?.executions["succeeded"] == 1,
                        "the hung execution recorded timed_out, then the retry won: \(String(describing: ingest0))")
            try await receiver.waitFor(timeout: 30) { r in r.contains { $0.body.contains("\"task_timed_out\"") } }
            let timedOut = receiver.requests().filter { $0.body.contains("\"task_timed_out\"") }
            fleet.check(timedOut.count == 1 && timedOut.allSatisfy { $0.body.contains("timed out after 3s") },
                        "one task_timed_out alert, saying why: \(timedOut)")
        }
    }

    /// Every worker runs with --stages that exclude validate: its tasks wait
    /// in the queue past --queue-stall, which raises queue_stalled.
    @Test func aStageNoWorkerTakesRaisesQueueStalled() async throws {
        let receiver = try await WebhookReceiver.start(fail: [:])
        defer { receiver.stop() }
        let stages = "ingest,normalize,consolidate,publish,report,deliver"
        let options = FleetOptions(workers: [WorkerSpec(stages: stages), WorkerSpec(stages: stages)],
                                   coordinatorArguments: ["--queue-stall", "10s"])
        try await withFleet("alerts-stall", options) { fleet in
            let pipeline = "stall-\(randomHex(6))"
            let spec = fleet.dir + "/\(pipeline).yml"
            try (FleetData.spec(pipeline: pipeline, dataset: "orders_s", summary: "by_region_s")
                + """
                notify:
                  - {webhook: "\(receiver.url)/hook", on: [queue_stalled]}

                """).write(toFile: spec, atomically: true, encoding: .utf8)
            let run = try await fleet.submit(spec)
            // Until the validate stall is raised (generous: a loaded machine); the
            // stages workers take do not stall, however slowly they drain.
            try await receiver.waitFor(timeout: 120) { r in
                r.contains { $0.body.contains("\"queue_stalled\"") && $0.body.contains("validate") }
            }
            let stalled = receiver.requests().filter { $0.body.contains("\"queue_stalled\"") }
            fleet.check(stalled.count == 1 && stalled[0].body.contains("validate") && stalled[0].body.contains(run),
                        "one queue_stalled naming the stage and the run: \(stalled)")
            _ = try await fleet.bis(["cancel", run])
        }
    }

    /// A worker killed (SIGKILL) while it holds a task stops heartbeating:
    /// past --worker-lost-after the operators' route for every pipeline
    /// gets one worker_lost naming the worker and the task it held.
    @Test func aWorkerKilledWhileHoldingATaskRaisesWorkerLost() async throws {
        let receiver = try await WebhookReceiver.start(fail: [:])
        defer { receiver.stop() }
        let alertsFile = receiver.dir + "/alerts.yml"
        try """
            receivers:
              ops: {webhook: "\(receiver.url)/ops"}
            routes:
              - {pipeline: "*", on: [worker_lost], to: [ops]}
            """.write(toFile: alertsFile, atomically: true, encoding: .utf8)
        let options = FleetOptions(workers: [WorkerSpec(fault: "sleep=60000:ingest/0"), WorkerSpec(stages: "noop")],
                                   coordinatorArguments: ["--alerts", alertsFile, "--worker-lost-after", "10s"])
        try await withFleet("alerts-lost", options) { fleet in
            let pipeline = "lost-\(randomHex(6))"
            let spec = fleet.dir + "/\(pipeline).yml"
            try FleetData.spec(pipeline: pipeline, dataset: "orders_w", summary: "by_region_w")
                .write(toFile: spec, atomically: true, encoding: .utf8)
            let run = try await fleet.submit(spec)
            // Until the coordinator has heard that worker 0 holds ingest/0.
            let deadline = Date().addingTimeInterval(60)
            while true {
                let workers = try await fleet.bis(["workers", "--json"])
                let list = (try? JSONSerialization.jsonObject(with: Data(workers.stdout.utf8))) as? [[String: Any]] ?? []
                if list.contains(where: { ($0["running"] as? [String] ?? []).contains { $0.contains("ingest/0") || $0.hasSuffix("ingest-0") } }) { break }
                if Date() >= deadline { throw FleetError("no worker reported holding ingest/0: \(workers.stdout)") }
                try await Task.sleep(for: .milliseconds(300))
            }
            let pid = fleet.worker(0)?.pid ?? 0
            await fleet.killWorker(0)
            try await receiver.waitFor(timeout: 60) { r in r.contains { $0.path == "/ops" } }
            try await Task.sleep(for: .seconds(6))   // a second pass raises nothing more
            let lost = receiver.requests().filter { $0.path == "/ops" }
            fleet.check(lost.count == 1 && lost[0].body.contains("worker_lost") && lost[0].body.contains("pid \(pid)"),
                        "one worker_lost naming the worker: \(lost)")
            _ = try await fleet.bis(["cancel", run])
        }
    }
}

/// alert_receiver.py in a child process.
final class WebhookReceiver: @unchecked Sendable {
    struct Request: Sendable, CustomStringConvertible {
        var path: String
        var status: Int
        var headers: [String: String]
        var body: String
        var description: String { "\(path) \(status) \(body)" }
    }
    let dir: String
    let process: ChildProcess
    let port: Int
    var url: String { "http://127.0.0.1:\(port)" }

    private init(dir: String, process: ChildProcess, port: Int) {
        self.dir = dir
        self.process = process
        self.port = port
    }

    static func start(fail: [String: Int]) async throws -> WebhookReceiver {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("bis-alerts-\(randomHex(8))").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let script = PythonTool.packageRoot + "/Tests/FleetIntegrationTests/python/alert_receiver.py"
        var args = [script, dir + "/port", dir + "/requests.jsonl"]
        for (path, n) in fail { args += ["--fail", "\(path)=\(n)"] }
        let p = try ChildProcess(name: "receiver", executable: try FleetEnvironment.python.python(), arguments: args,
                                 environment: ProcessInfo.processInfo.environment,
                                 stdout: dir + "/receiver.out", stderr: dir + "/receiver.err")
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline {
            if let text = try? String(contentsOfFile: dir + "/port", encoding: .utf8), let port = Int(text) {
                return WebhookReceiver(dir: dir, process: p, port: port)
            }
            if let t = p.termination { throw FleetError("the webhook receiver ended: \(t)\n\(p.stderr)") }
            try await Task.sleep(for: .milliseconds(100))
        }
        p.signal(SIGKILL)
        throw FleetError("the webhook receiver did not start")
    }

    func requests() -> [Request] {
        let text = (try? String(contentsOfFile: dir + "/requests.jsonl", encoding: .utf8)) ?? ""
        return text.split(separator: "\n").compactMap { line in
            guard let o = (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any] else { return nil }
            return Request(path: o["path"] as? String ?? "", status: o["status"] as? Int ?? 0,
                           headers: o["headers"] as? [String: String] ?? [:], body: o["body"] as? String ?? "")
        }
    }

    func waitFor(timeout: Double, _ done: ([Request]) -> Bool) async throws {
        let deadline = Date().addingTimeInterval(timeout)
        while !done(requests()) {
            if Date() >= deadline { throw FleetError("the receiver did not get what was awaited within \(Int(timeout)) s: \(requests())") }
            try await Task.sleep(for: .milliseconds(250))
        }
    }

    func stop() {
        process.signal(SIGKILL)
        try? FileManager.default.removeItem(atPath: dir)
    }
}

/// Debian's prometheus-alertmanager on loopback, on a port of its own; nil
/// when it is not installed (BIS_REQUIRE_ALERTMANAGER=1 makes that a failure).
final class Alertmanager: @unchecked Sendable {
    let process: ChildProcess
    let port: Int
    var url: String { "http://127.0.0.1:\(port)" }

    private init(process: ChildProcess, port: Int) {
        self.process = process
        self.port = port
    }

    static func binary() -> String? {
        for p in ["/usr/bin/prometheus-alertmanager", "/usr/bin/alertmanager", "/usr/local/bin/alertmanager"]
        where FileManager.default.isExecutableFile(atPath: p) { return p }
        return nil
    }

    static func start(dir: String) async throws -> Alertmanager? {
        guard let binary = binary() else {
            if ProcessInfo.processInfo.environment["BIS_REQUIRE_ALERTMANAGER"] == "1" {
                throw FleetError("prometheus-alertmanager is not installed (ops/setup installs it)")
            }
            print("AlertProcessTests: prometheus-alertmanager not installed; the Alertmanager checks are skipped")
            return nil
        }
        let config = dir + "/alertmanager.yml"
        try """
            route:
              receiver: blackhole
            receivers:
              - name: blackhole
            """.write(toFile: config, atomically: true, encoding: .utf8)
        let port = try freePort()
        let p = try ChildProcess(name: "alertmanager", executable: binary,
                                 arguments: ["--config.file=\(config)", "--storage.path=\(dir)/am-data",
                                             "--web.listen-address=127.0.0.1:\(port)", "--cluster.listen-address="],
                                 environment: ProcessInfo.processInfo.environment,
                                 stdout: dir + "/alertmanager.out", stderr: dir + "/alertmanager.err")
        let am = Alertmanager(process: p, port: port)
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline {
            if await am.alerts() != nil { return am }
            if let t = p.termination { throw FleetError("alertmanager ended: \(t)\n\(tail(p.stderr, lines: 20))") }
            try await Task.sleep(for: .milliseconds(200))
        }
        p.signal(SIGKILL)
        throw FleetError("alertmanager did not answer on \(am.url)\n\(tail(p.stderr, lines: 20))")
    }

    /// GET /api/v2/alerts, Alertmanager's own view.
    func alerts() async -> [[String: Any]]? {
        guard let u = URL(string: url + "/api/v2/alerts") else { return nil }
        var request = URLRequest(url: u)
        request.timeoutInterval = 5
        guard let (data, response) = try? await URLSession.shared.data(for: request),
              (response as? HTTPURLResponse)?.statusCode == 200 else { return nil }
        return (try? JSONSerialization.jsonObject(with: data)) as? [[String: Any]]
    }

    func waitFor(timeout: Double, _ what: String, _ done: ([[String: Any]]) -> Bool) async throws {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            if let a = await alerts(), done(a) { return }
            if Date() >= deadline { throw FleetError("\(what): not within \(Int(timeout)) s; Alertmanager lists \(await alerts() ?? [])") }
            try await Task.sleep(for: .milliseconds(500))
        }
    }

    func stop() {
        process.signal(SIGKILL)
    }
}
