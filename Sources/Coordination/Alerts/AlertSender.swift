import AsyncHTTPClient
import Crypto
import FleetCore
import Foundation
import GRDB
import Logging
import NIOCore
import NIOHTTP1
import ServiceLifecycle
import Synchronization

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

    /// The watcher and the sender, each on its own schedule: a slow
    /// receiver never delays deadline, worker_lost or queue_stalled
    /// detection, nor the other receivers' deliveries.
    func alertLoop() async {
        let client = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup,
                                configuration: Self.alertClientConfiguration(requestTimeout: alertOptions.requestTimeout))
        await withDiscardingTaskGroup { group in
            group.addTask { await self.alertWatchLoop() }
            group.addTask { await self.alertSendLoop(client) }
        }
        try? await client.shutdown()
    }

    /// The alert sender's own HTTP client: no redirects (a receiver, or a
    /// spec's `notify:` URL, answering 307/308 must not get the signed POST
    /// re-sent to an internal address; a 3xx is a failed delivery), connect
    /// and read timeouts within the request's overall deadline.
    static func alertClientConfiguration(requestTimeout: Double) -> HTTPClient.Configuration {
        let ms = Int64(max(0.1, requestTimeout) * 1000)
        var c = HTTPClient.Configuration(redirectConfiguration: .disallow,
                                         timeout: .init(connect: .milliseconds(min(ms, 5000)), read: .milliseconds(ms)))
        c.httpVersion = .automatic
        return c
    }

    /// Deadlines every `watchInterval`; lost workers and stalled queues every
    /// 5 s (at most as often). worker_lost waits until the coordinator has
    /// been up for `workerLostAfterSeconds`: after a restart the workers'
    /// heartbeats buffered in the broker are consumed first.
    func alertWatchLoop() async {
        let started = ContinuousClock.now
        var lastSlowWatch = started - .seconds(3600)
        while !Task.isCancelled {
            do {
                try await watchDeadlines()
                if ContinuousClock.now - lastSlowWatch >= max(alertOptions.watchInterval, .seconds(5)) {
                    lastSlowWatch = .now
                    let upFor = ContinuousClock.now - started
                    try await watchWorkersAndQueues(workersToo: upFor >= .milliseconds(Int64(alertOptions.workerLostAfterSeconds * 1000)))
                }
            } catch is CancellationError {
                return
            } catch {
                logger.error("the alert watcher failed a pass; trying again", metadata: ["error": "\(error)"])
            }
            try? await Task.sleep(for: alertOptions.watchInterval)
        }
    }

    /// Routes new alerts and starts each due delivery in a task of its own
    /// (at most `perReceiverInFlight` per receiver), which records its
    /// outcome as soon as it has one; the loop never waits for a POST.
    func alertSendLoop(_ client: HTTPClient) async {
        let inFlight = InFlightDeliveries()
        await withDiscardingTaskGroup { group in
            while !Task.isCancelled {
                do {
                    try await routeAlerts()
                    let due = try await dueDeliveries(excluding: inFlight.ids)
                    if !due.isEmpty { alertOptions.faults.hook(.beforeSend) }
                    for d in due where inFlight.begin(d, limit: Self.perReceiverInFlight) {
                        group.addTask {
                            await self.deliver(d) { alert, receiver in try await self.post(alert, to: receiver, client: client) }
                            inFlight.end(d)
                        }
                    }
                } catch is CancellationError {
                    return
                } catch {
                    logger.error("the alert sender failed a round; trying again", metadata: ["error": "\(error)"])
                }
                try? await Task.sleep(for: .milliseconds(250))
            }
        }
    }

    /// Deliveries to one receiver posted at once, at most.
    static let perReceiverInFlight = 4

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

    /// Due deliveries not in flight, in alert id order per receiver (a few
    /// per receiver, so that one with a backlog does not crowd out the
    /// others). A resolution waits while the delivery of the alert it
    /// resolves to the same receiver is neither sent nor given up on, so a
    /// receiver never sees "resolved" before the alert.
    func dueDeliveries(excluding inFlight: Set<Int64>) async throws -> [DueDelivery] {
        let now = clock.seconds
        let perReceiver = 2 * Self.perReceiverInFlight
        return try await store.read { db in
            try Row.fetchAll(db, sql: """
                SELECT * FROM (
                    SELECT d.id AS delivery, d.receiver, d.attempts, a.*, o.created_at AS started_at, r.slot AS run_slot,
                        ROW_NUMBER() OVER (PARTITION BY d.receiver ORDER BY d.alert) AS nth
                    FROM alert_deliveries d JOIN alerts a ON a.id = d.alert LEFT JOIN alerts o ON o.id = a.resolves
                    LEFT JOIN runs r ON r.id = a.run
                    WHERE d.sent_at IS NULL AND d.failed_at IS NULL AND d.next_at <= ?
                    AND NOT EXISTS (SELECT 1 FROM alert_deliveries od WHERE a.resolves IS NOT NULL AND od.alert = a.resolves
                                    AND od.receiver = d.receiver AND od.sent_at IS NULL AND od.failed_at IS NULL))
                WHERE nth <= ? ORDER BY id
                """, arguments: [now, perReceiver]).map { row in
                DueDelivery(id: row["delivery"], receiver: row["receiver"], attempts: row["attempts"], alert: StoredAlert(row))
            }.filter { !inFlight.contains($0.id) }
        }
    }

    /// Posts one delivery and records its outcome at once: sent, retried
    /// after a doubling backoff, or given up on (after `maxAttempts`, or at
    /// once when its receiver cannot be used any more).
    func deliver(_ d: DueDelivery, post: @Sendable (StoredAlert, AlertReceiver) async throws -> Void) async {
        var error: String?
        var final = false
        do {
            switch try await resolveReceiver(d) {
            case .receiver(let receiver):
                do { try await post(d.alert, receiver) } catch let e { error = "\(e)" }
            case .unusable(let why):
                (error, final) = (why, true)
            }
        } catch let e {
            error = "the receiver could not be read: \(e)"
        }
        // Stopped by the coordinator's shutdown mid-POST: not an attempt of
        // the receiver's; the delivery stays due for the next start.
        if error != nil, !final, Task.isCancelled { return }
        let attempts = d.attempts + 1
        let gaveUp = error != nil && (final || attempts >= alertOptions.maxAttempts)
        let after = clock.seconds
        let options = alertOptions
        let changed: Bool
        do {
            changed = try await store.write { [error] db -> Bool in
                if let error {
                    if gaveUp {
                        try db.run("UPDATE alert_deliveries SET attempts = ?, failed_at = ?, last_error = ? WHERE id = ? AND sent_at IS NULL",
                                   [attempts, after, error, d.id])
                    } else {
                        let delay = AlertBackoff.delay(attempts: attempts, base: options.retryBase, max: options.retryMax)
                        try db.run("UPDATE alert_deliveries SET attempts = ?, next_at = ?, last_error = ? WHERE id = ? AND sent_at IS NULL",
                                   [attempts, after + delay, error, d.id])
                    }
                } else {
                    try db.run("UPDATE alert_deliveries SET attempts = attempts + 1, sent_at = ?, last_error = NULL WHERE id = ? AND sent_at IS NULL",
                               [after, d.id])
                }
                return db.changesCount > 0
            }
        } catch let e {
            logger.error("could not record an alert delivery's outcome; it is sent again", metadata: ["error": "\(e)"])
            return
        }
        var meta: Logger.Metadata = ["alert.key": "\(d.alert.key)", "alert.event": "\(d.alert.event.rawValue)",
                                     "alert.receiver": "\(d.receiver)", "alert.attempt": "\(attempts)"]
        if let error {
            meta["error"] = "\(error)"
            if gaveUp {
                logger.warning("sending an alert failed; given up", metadata: meta)
            } else {
                logger.warning("sending an alert failed; it is retried after a backoff", metadata: meta)
            }
        } else {
            logger.info("alert sent", metadata: meta)
        }
        // bis_pipeline_alerts_{sent,failed}_total: sent, or given up on (not each failed attempt).
        if changed, let pipeline = d.alert.pipeline {
            if error == nil { recordAlert(sent: true, pipeline: pipeline) } else if gaveUp { recordAlert(sent: false, pipeline: pipeline) }
        }
    }

    /// A delivery's receiver, or why it cannot be sent at all.
    enum ResolvedReceiver: Sendable {
        case receiver(AlertReceiver)
        case unusable(String)
    }

    static let receiverGone = "the receiver is no longer configured"

    /// The receiver a delivery names: `spec:notify[N]` from the run's spec, else `--alerts`'.
    /// A spec receiver whose `secret_env` is not set in the coordinator's
    /// environment is unusable: its alerts are never sent unsigned.
    func resolveReceiver(_ d: DueDelivery) async throws -> ResolvedReceiver {
        if d.receiver.hasPrefix("spec:notify["), let runID = d.alert.run {
            let index = Int(d.receiver.dropFirst("spec:notify[".count).dropLast()) ?? 0
            guard let run = try await store.read({ db in try RunRecord.fetch(db, runID) }),
                  let spec = try? spec(run), index >= 1, index <= spec.notify.count else { return .unusable(Self.receiverGone) }
            let n = spec.notify[index - 1]
            let kind: AlertReceiver.Kind = switch n.format {
            case .json: .webhook
            case .slack: .slack
            case .alertmanager: .alertmanager
            }
            var secret: [UInt8]?
            if let name = n.secretEnv {
                guard name.hasPrefix(NotifySpec.secretEnvPrefix), let value = alertOptions.environment[name], !value.isEmpty else {
                    return .unusable("\(name) (the spec's secret_env) is not set in the coordinator's environment; "
                                     + "the alert is not sent unsigned")
                }
                secret = Array(value.utf8)
            }
            return .receiver(AlertReceiver(name: d.receiver, kind: kind, url: n.webhook, secret: secret))
        }
        return alertOptions.config.receivers[d.receiver].map { .receiver($0) } ?? .unusable(Self.receiverGone)
    }

    /// One POST with an overall deadline of `requestTimeout` (connect,
    /// head and body: a receiver that trickles its answer is cut off);
    /// throws unless the receiver answers 2xx.
    func post(_ alert: StoredAlert, to receiver: AlertReceiver, client: HTTPClient) async throws {
        let limit = alertOptions.requestTimeout
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await self.postOnce(alert, to: receiver, client: client) }
            group.addTask {
                try await Task.sleep(for: .milliseconds(Int64(limit * 1000)))
                throw AlertSendError("\(receiver.redactedURL) gave no complete answer within \(SpecDuration.text(limit))")
            }
            defer { group.cancelAll() }
            try await group.next()
        }
    }

    /// The same with a client of its own, shut down after (tests).
    func post(_ alert: StoredAlert, to receiver: AlertReceiver) async throws {
        let client = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup,
                                configuration: Self.alertClientConfiguration(requestTimeout: alertOptions.requestTimeout))
        let result: Result<Void, any Error>
        do { try await post(alert, to: receiver, client: client); result = .success(()) } catch { result = .failure(error) }
        try? await client.shutdown()
        try result.get()
    }

    func postOnce(_ alert: StoredAlert, to receiver: AlertReceiver, client: HTTPClient) async throws {
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
        let response = try await client.execute(request, timeout: .milliseconds(Int64(alertOptions.requestTimeout * 1000)))
        _ = try? await response.body.collect(upTo: 1 << 16)
        let code = Int(response.status.code)
        if (300..<400).contains(code) {
            throw AlertSendError("\(receiver.redactedURL) answered \(code), a redirect; redirects are not followed")
        }
        guard (200..<300).contains(code) else {
            throw AlertSendError("\(receiver.redactedURL) answered \(code)")
        }
    }
}

/// The delay before a delivery's next attempt after `attempts` failed
/// ones: `base`, doubling, at most `max`.
enum AlertBackoff {
    static func delay(attempts: Int, base: Double, max limit: Double) -> Double {
        min(limit, base * pow(2, Double(max(0, attempts - 1))))
    }
}

/// The deliveries being posted now, to skip in the next round and to cap per receiver.
final class InFlightDeliveries: Sendable {
    private let state = Mutex<[Int64: String]>([:])

    var ids: Set<Int64> { state.withLock { Set($0.keys) } }

    /// Takes a place for `d`, unless its receiver has `limit` in flight already.
    func begin(_ d: DueDelivery, limit: Int) -> Bool {
        state.withLock { s in
            guard s[d.id] == nil, s.values.filter({ $0 == d.receiver }).count < limit else { return false }
            s[d.id] = d.receiver
            return true
        }
    }

    func end(_ d: DueDelivery) { state.withLock { _ = $0.removeValue(forKey: d.id) } }
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
