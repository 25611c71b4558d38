import AsyncHTTPClient
import Crypto
import FleetCore
import Foundation
import GRDB
import Logging
import NIOCore
import NIOHTTP1
import ServiceLifecycle

/// Sends the alerts in the lineage store (docs/alerts.md), as the outbox
/// dispatcher sends tasks: routes each new alert to its receivers (one
/// delivery row each, in one transaction), then posts due deliveries and
/// marks each sent once its receiver answered 2xx; a failure is retried with
/// a doubling backoff. Nothing here blocks or fails a run: the sender runs
/// beside the engine, and a receiver that is down only delays its own
/// deliveries. It also watches for what raises alerts without an event:
/// deadlines, lost workers, stalled queues (`AlertWatch.swift`).
struct AlertSender: Service {
    let engine: CoordinatorEngine

    func run() async throws {
        try await cancelWhenGracefulShutdown { [engine] in await engine.alertLoop() }
    }
}

/// A delivery due, with its alert.
struct DueDelivery: Sendable {
    let id: Int64
    let receiver: String
    let attempts: Int
    let alert: StoredAlert
}

/// An alert row.
struct StoredAlert: Sendable {
    let id: Int64
    let key: String
    let event: AlertEvent
    let run: String?
    let pipeline: String?
    let task: String?
    let state: String?
    let message: String
    let resolves: Int64?
    let createdAt: Double
    /// For a resolution: when the alert it resolves was raised.
    var startedAt: Double?
    /// The run's slot (a registered pipeline's run), when the query joined it.
    var slot: String?

    init(_ row: Row) {
        id = row["id"]
        key = row["key"]
        event = AlertEvent(rawValue: row["event"]) ?? .runFailed
        run = row["run"]
        pipeline = row["pipeline"]
        task = row["task"]
        state = row["state"]
        message = row["message"]
        resolves = row["resolves"]
        createdAt = row["created_at"]
        startedAt = row["started_at"]
        slot = row["run_slot"]
    }
}

extension CoordinatorEngine {
    var alertOptions: AlertOptions { options.alerts }

    func alertLoop() async {
        var lastWatch = ContinuousClock.now - .seconds(3600)
        var lastSlowWatch = lastWatch
        while !Task.isCancelled {
            do {
                if ContinuousClock.now - lastWatch >= alertOptions.watchInterval {
                    lastWatch = .now
                    try await watchDeadlines()
                    if ContinuousClock.now - lastSlowWatch >= max(alertOptions.watchInterval, .seconds(5)) {
                        lastSlowWatch = .now
                        try await watchWorkersAndQueues()
                    }
                }
                try await routeAlerts()
                try await sendDueDeliveries()
            } catch is CancellationError {
                return
            } catch {
                logger.error("the alert sender failed a round; trying again", metadata: ["error": "\(error)"])
            }
            try? await Task.sleep(for: .milliseconds(250))
        }
    }

    /// The receivers of one alert: the run's spec's `notify` entries, then
    /// `--alerts` routes. A spec receiver is named `spec:notify[N]`.
    func receivers(for alert: StoredAlert, _ db: Database) throws -> [(name: String, target: String)] {
        var result: [(String, String)] = []
        if let id = alert.run, let run = try RunRecord.fetch(db, id), let spec = try? spec(run) {
            for (i, n) in spec.notify.enumerated() where n.on.contains(alert.event) {
                result.append(("spec:notify[\(i + 1)]", AlertReceiver.redact(n.webhook)))
            }
        }
        for name in alertOptions.config.receivers(pipeline: alert.pipeline, event: alert.event) {
            if let r = alertOptions.config.receivers[name] { result.append((name, r.redactedURL)) }
        }
        return result
    }

    /// Each unrouted alert gets its deliveries and `routed_at`, in one transaction.
    func routeAlerts() async throws {
        // Read first: the writer (event intake's group commits) is taken only when there is work.
        let pending = try await store.read { db in
            try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM alerts WHERE routed_at IS NULL)") ?? false
        }
        guard pending else { return }
        let now = clock.seconds
        let routed = try await store.write { [self] db -> Int in
            let rows = try Row.fetchAll(db, sql: "SELECT * FROM alerts WHERE routed_at IS NULL ORDER BY id LIMIT 200")
            for row in rows {
                let alert = StoredAlert(row)
                for r in try receivers(for: alert, db) {
                    try db.run("""
                        INSERT INTO alert_deliveries(alert, receiver, target, next_at) VALUES (?, ?, ?, ?)
                        ON CONFLICT(alert, receiver) DO NOTHING
                        """, [alert.id, r.name, r.target, now])
                }
                try db.run("UPDATE alerts SET routed_at = ? WHERE id = ?", [now, alert.id])
            }
            return rows.count
        }
        if routed > 0 { logger.debug("alerts routed", metadata: ["alerts": "\(routed)"]) }
    }

    /// Posts every due delivery (concurrently), then records the outcomes.
    func sendDueDeliveries() async throws {
        let now = clock.seconds
        let due = try await store.read { db in
            try Row.fetchAll(db, sql: """
                SELECT d.id AS delivery, d.receiver, d.attempts, a.*, o.created_at AS started_at, r.slot AS run_slot
                FROM alert_deliveries d JOIN alerts a ON a.id = d.alert LEFT JOIN alerts o ON o.id = a.resolves
                LEFT JOIN runs r ON r.id = a.run
                WHERE d.sent_at IS NULL AND d.failed_at IS NULL AND d.next_at <= ? ORDER BY d.next_at LIMIT 50
                """, arguments: [now]).map { row in
                DueDelivery(id: row["delivery"], receiver: row["receiver"], attempts: row["attempts"], alert: StoredAlert(row))
            }
        }
        guard !due.isEmpty else { return }
        // Resolve each receiver (spec or --alerts) before sending.
        var requests: [(DueDelivery, AlertReceiver?)] = []
        for d in due { requests.append((d, try await resolveReceiver(d))) }
        alertOptions.faults.hook(.beforeSend)
        let outcomes: [(DueDelivery, String?)] = await withTaskGroup(of: (DueDelivery, String?).self) { group in
            for (d, receiver) in requests {
                group.addTask { [self] in
                    guard let receiver else { return (d, "the receiver is no longer configured") }
                    do {
                        try await post(d.alert, to: receiver)
                        return (d, nil)
                    } catch {
                        return (d, "\(error)")
                    }
                }
            }
            var all: [(DueDelivery, String?)] = []
            for await o in group { all.append(o) }
            return all
        }
        let after = clock.seconds
        let options = alertOptions
        try await store.write { db in
            for (d, error) in outcomes {
                if let error {
                    let attempts = d.attempts + 1
                    if attempts >= options.maxAttempts || error == "the receiver is no longer configured" {
                        try db.run("UPDATE alert_deliveries SET attempts = ?, failed_at = ?, last_error = ? WHERE id = ? AND sent_at IS NULL",
                                   [attempts, after, error, d.id])
                    } else {
                        let delay = min(options.retryMax, options.retryBase * pow(2, Double(attempts - 1)))
                        try db.run("UPDATE alert_deliveries SET attempts = ?, next_at = ?, last_error = ? WHERE id = ? AND sent_at IS NULL",
                                   [attempts, after + delay, error, d.id])
                    }
                } else {
                    try db.run("UPDATE alert_deliveries SET attempts = attempts + 1, sent_at = ?, last_error = NULL WHERE id = ? AND sent_at IS NULL",
                               [after, d.id])
                }
            }
        }
        for (d, error) in outcomes {
            var meta: Logger.Metadata = ["alert.key": "\(d.alert.key)", "alert.event": "\(d.alert.event.rawValue)",
                                         "alert.receiver": "\(d.receiver)", "alert.attempt": "\(d.attempts + 1)"]
            if let error {
                meta["error"] = "\(error)"
                logger.warning("sending an alert failed; it is retried after a backoff", metadata: meta)
            } else {
                logger.info("alert sent", metadata: meta)
            }
        }
        // bis_pipeline_alerts_{sent,failed}_total: sent, or given up on (not each failed attempt).
        for (d, error) in outcomes {
            guard let pipeline = d.alert.pipeline else { continue }
            if error == nil {
                recordAlert(sent: true, pipeline: pipeline)
            } else if d.attempts + 1 >= options.maxAttempts || error == "the receiver is no longer configured" {
                recordAlert(sent: false, pipeline: pipeline)
            }
        }
    }

    /// The receiver a delivery names: `spec:notify[N]` from the run's spec, else `--alerts`'.
    func resolveReceiver(_ d: DueDelivery) async throws -> AlertReceiver? {
        if d.receiver.hasPrefix("spec:notify["), let runID = d.alert.run {
            let index = Int(d.receiver.dropFirst("spec:notify[".count).dropLast()) ?? 0
            guard let run = try await store.read({ db in try RunRecord.fetch(db, runID) }),
                  let spec = try? spec(run), index >= 1, index <= spec.notify.count else { return nil }
            let n = spec.notify[index - 1]
            let kind: AlertReceiver.Kind = switch n.format {
            case .json: .webhook
            case .slack: .slack
            case .alertmanager: .alertmanager
            }
            var secret: [UInt8]?
            if let name = n.secretEnv, name.hasPrefix(NotifySpec.secretEnvPrefix),
               let value = alertOptions.environment[name], !value.isEmpty {
                secret = Array(value.utf8)
            }
            return AlertReceiver(name: d.receiver, kind: kind, url: n.webhook, secret: secret)
        }
        return alertOptions.config.receivers[d.receiver]
    }

    /// One POST; throws unless the receiver answers 2xx.
    func post(_ alert: StoredAlert, to receiver: AlertReceiver) async throws {
        let body = try AlertPayload.body(alert, for: receiver, dashboard: alertOptions.dashboardBase)
        var url = receiver.url
        if receiver.kind == .alertmanager {
            while url.hasSuffix("/") { url.removeLast() }
            url += "/api/v2/alerts"
        }
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "User-Agent", value: "bis-coordinator/\(FleetVersion.string)")
        request.headers.add(name: "Idempotency-Key", value: alert.key)
        request.headers.add(name: "X-BIS-Event", value: alert.event.rawValue)
        if let secret = receiver.secret {
            let mac = HMAC<SHA256>.authenticationCode(for: body, using: SymmetricKey(data: secret))
            request.headers.add(name: "X-BIS-Signature", value: "sha256=" + mac.map { String(format: "%02x", $0) }.joined())
        }
        request.body = .bytes(ByteBuffer(bytes: body))
        let response = try await HTTPClient.shared.execute(request, timeout: .milliseconds(Int64(alertOptions.requestTimeout * 1000)))
        _ = try? await response.body.collect(upTo: 1 << 16)
        guard (200..<300).contains(Int(response.status.code)) else {
            throw AlertSendError("\(receiver.redactedURL) answered \(response.status.code)")
        }
    }
}

struct AlertSendError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// The bodies each kind of receiver gets (docs/alerts.md).
enum AlertPayload {
    static func iso(_ seconds: Double) -> String {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return f.string(from: Date(timeIntervalSince1970: seconds))
    }

    static func link(_ alert: StoredAlert, _ base: String?) -> String? {
        guard let base, let run = alert.run else { return nil }
        var b = base
        while b.hasSuffix("/") { b.removeLast() }
        return b + "/runs/" + (run.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed) ?? run)
    }

    static func text(_ alert: StoredAlert, link: String?) -> String {
        let what = alert.resolves != nil ? "resolved: \(alert.event.rawValue)" : alert.event.rawValue
        var parts = ["[bis] \(what)"]
        if let p = alert.pipeline { parts.append("pipeline \(p)") }
        if let r = alert.run { parts.append("run \(r)") }
        var text = parts.joined(separator: " · ") + ": " + alert.message
        if let link { text += " <\(link)>" }
        return text
    }

    static func body(_ alert: StoredAlert, for receiver: AlertReceiver, dashboard: String?) throws -> [UInt8] {
        let link = link(alert, dashboard)
        let object: Any
        switch receiver.kind {
        case .webhook:
            var o: [String: Any] = [
                "id": alert.key, "event": alert.event.rawValue, "resolved": alert.resolves != nil,
                "pipeline": alert.pipeline ?? NSNull(), "run": alert.run ?? NSNull(),
                "slot": alert.slot ?? NSNull(),   // a registered pipeline's run's slot
                "state": alert.state ?? NSNull(), "task": alert.task ?? NSNull(),
                "message": alert.message, "at": iso(alert.createdAt), "link": link ?? NSNull(),
            ]
            if alert.resolves != nil { o["resolved_at"] = iso(alert.createdAt) }
            object = o
        case .slack:
            object = ["text": text(alert, link: link)]
        case .alertmanager:
            var labels: [String: String] = ["alertname": "bis_" + alert.event.rawValue, "event": alert.event.rawValue,
                                            "source": "bis"]
            if let p = alert.pipeline { labels["pipeline"] = p }
            if let r = alert.run { labels["run"] = r }
            if let t = alert.task { labels["task"] = t }
            if alert.run == nil { labels["key"] = alert.key }
            var a: [String: Any] = [
                "labels": labels,
                "annotations": ["summary": text(alert, link: nil), "description": alert.message],
                "startsAt": iso(alert.startedAt ?? alert.createdAt),
            ]
            if let link { a["generatorURL"] = link }
            if alert.resolves != nil { a["endsAt"] = iso(alert.createdAt) }
            object = [a]
        }
        return Array(try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]))
    }
}
