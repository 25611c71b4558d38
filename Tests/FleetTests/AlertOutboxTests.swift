@testable import Coordination
import FleetCore
import Foundation
import GRDB
import Synchronization
import Testing

/// The alert outbox without HTTP (docs/alerts.md): routing, sending once,
/// the doubling backoff, giving up, a receiver that is gone, and a
/// resolution never sent before the alert it resolves. The engine is not
/// started; the tests call `routeAlerts`, `dueDeliveries` and `deliver`
/// with an injected poster and a manual clock.
@Suite struct AlertOutboxTests {
    struct Setup {
        let store: LineageStore
        let engine: CoordinatorEngine
        let clock: ManualClock
        let dir: String
    }

    static func setup(maxAttempts: Int = 3) throws -> Setup {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("bis-alerts-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let clock = ManualClock()
        var options = CoordinatorOptions(clock: clock)
        options.schedulerInterval = nil
        options.retention.interval = nil
        options.alerts.config = try AlertsConfig.parse("""
            receivers:
              ops: {webhook: "http://127.0.0.1:1/ops"}
              chat: {slack: "https://hooks.example.com/T0KEN"}
            routes:
              - {pipeline: "*", on: [run_failed, deadline_missed], to: [ops]}
              - {pipeline: "orders*", on: [run_failed], to: [chat]}
            """, file: "alerts.yml", environment: [:])
        options.alerts.maxAttempts = maxAttempts
        options.alerts.retryBase = 10
        options.alerts.retryMax = 15
        let store = try LineageStore(path: dir + "/bis.db")
        let engine = CoordinatorEngine(store: store, transport: InMemoryTransport(), chunkStore: ChunkStore(root: dir + "/data"),
                                       options: options)
        return Setup(store: store, engine: engine, clock: clock, dir: dir)
    }

    /// Counts posts; fails while `failing` is set.
    final class Poster: Sendable {
        private let state = Mutex<(posts: [String], failing: Bool)>(([], false))
        var posts: [String] { state.withLock { $0.posts } }
        func fail(_ on: Bool) { state.withLock { $0.failing = on } }
        func post(_ alert: StoredAlert, _ receiver: AlertReceiver) async throws {
            let failing = state.withLock { s in
                s.posts.append("\(receiver.name) \(alert.key)")
                return s.failing
            }
            if failing { throw AlertSendError("\(receiver.redactedURL) answered 503") }
        }
    }

    static func raise(_ s: Setup, _ event: AlertEvent, pipeline: String, key: String, resolves: String? = nil) async throws {
        let now = s.clock.seconds
        try await s.store.pool.write { db in
            let original: Int64? = try resolves.flatMap { try Int64.fetchOne(db, sql: "SELECT id FROM alerts WHERE key = ?", arguments: [$0]) }
            _ = try db.raiseAlert(event, run: nil, pipeline: pipeline, message: "m", key: key, resolves: original, at: now)
        }
    }

    static func delivery(_ s: Setup, _ key: String, _ receiver: String) async throws -> Row? {
        try await s.store.pool.read { db in
            try Row.fetchOne(db, sql: """
                SELECT d.* FROM alert_deliveries d JOIN alerts a ON a.id = d.alert WHERE a.key = ? AND d.receiver = ?
                """, arguments: [key, receiver])
        }
    }

    @Test func routesEachAlertOnceToItsReceivers() async throws {
        let s = try Self.setup()
        defer { try? FileManager.default.removeItem(atPath: s.dir) }
        try await Self.raise(s, .runFailed, pipeline: "orders", key: "a")
        try await Self.raise(s, .runFailed, pipeline: "billing", key: "b")
        try await Self.raise(s, .awaitingApproval, pipeline: "orders", key: "c")
        try await s.engine.routeAlerts()
        try await s.engine.routeAlerts()   // routed once
        let rows = try await s.store.pool.read { db in
            try Row.fetchAll(db, sql: "SELECT a.key, d.receiver FROM alert_deliveries d JOIN alerts a ON a.id = d.alert ORDER BY a.key, d.receiver")
                .map { "\($0["key"] as String) \($0["receiver"] as String)" }
        }
        #expect(rows == ["a chat", "a ops", "b ops"])
    }

    @Test func aDeliveryIsSentOnceAndNotAgain() async throws {
        let s = try Self.setup()
        defer { try? FileManager.default.removeItem(atPath: s.dir) }
        try await Self.raise(s, .runFailed, pipeline: "billing", key: "k")
        try await s.engine.routeAlerts()
        let poster = Poster()
        let due = try await s.engine.dueDeliveries(excluding: [])
        #expect(due.count == 1)
        for d in due { await s.engine.deliver(d, post: poster.post) }
        #expect(poster.posts == ["ops k"])
        let sent = try #require(try await Self.delivery(s, "k", "ops"))
        #expect(sent["sent_at"] as Double? == s.clock.seconds && sent["attempts"] as Int == 1)
        // Nothing due any more, and recording a stale outcome again changes nothing.
        #expect(try await s.engine.dueDeliveries(excluding: []).isEmpty)
        s.clock.advance(by: 5)
        for d in due { await s.engine.deliver(d, post: poster.post) }
        let again = try #require(try await Self.delivery(s, "k", "ops"))
        #expect(again["sent_at"] as Double? == sent["sent_at"] as Double? && again["attempts"] as Int == 1)
        // In flight: skipped.
        try await Self.raise(s, .runFailed, pipeline: "billing", key: "k2")
        try await s.engine.routeAlerts()
        let next = try await s.engine.dueDeliveries(excluding: [])
        #expect(next.count == 1)
        #expect(try await s.engine.dueDeliveries(excluding: Set(next.map(\.id))).isEmpty)
    }

    @Test func failuresBackOffDoublingThenAreGivenUp() async throws {
        let s = try Self.setup(maxAttempts: 3)
        defer { try? FileManager.default.removeItem(atPath: s.dir) }
        #expect([1, 2, 3, 4].map { AlertBackoff.delay(attempts: $0, base: 10, max: 15) } == [10, 15, 15, 15])
        #expect([1, 2, 3].map { AlertBackoff.delay(attempts: $0, base: 1, max: 300) } == [1, 2, 4])
        try await Self.raise(s, .runFailed, pipeline: "billing", key: "k")
        try await s.engine.routeAlerts()
        let poster = Poster()
        poster.fail(true)
        let t0 = s.clock.seconds
        for d in try await s.engine.dueDeliveries(excluding: []) { await s.engine.deliver(d, post: poster.post) }
        var row = try #require(try await Self.delivery(s, "k", "ops"))
        #expect(row["attempts"] as Int == 1 && row["next_at"] as Double == t0 + 10 && row["failed_at"] as Double? == nil)
        #expect((row["last_error"] as String?)?.contains("answered 503") == true)
        // Not due during the backoff.
        s.clock.advance(by: 9)
        #expect(try await s.engine.dueDeliveries(excluding: []).isEmpty)
        s.clock.advance(by: 1)
        for d in try await s.engine.dueDeliveries(excluding: []) { await s.engine.deliver(d, post: poster.post) }
        row = try #require(try await Self.delivery(s, "k", "ops"))
        #expect(row["attempts"] as Int == 2 && row["next_at"] as Double == t0 + 10 + 15)
        s.clock.advance(by: 15)
        for d in try await s.engine.dueDeliveries(excluding: []) { await s.engine.deliver(d, post: poster.post) }
        row = try #require(try await Self.delivery(s, "k", "ops"))
        #expect(row["attempts"] as Int == 3 && row["failed_at"] as Double? == s.clock.seconds && row["sent_at"] as Double? == nil)
        s.clock.advance(by: 3600)
        #expect(try await s.engine.dueDeliveries(excluding: []).isEmpty, "given up: never sent again")
        #expect(poster.posts.count == 3)
    }

    @Test func aReceiverNoLongerConfiguredFailsAtOnce() async throws {
        let s = try Self.setup()
        defer { try? FileManager.default.removeItem(atPath: s.dir) }
        try await Self.raise(s, .runFailed, pipeline: "billing", key: "k")
        try await s.engine.routeAlerts()
        try await s.store.pool.write { db in try db.execute(sql: "UPDATE alert_deliveries SET receiver = 'removed'") }
        let poster = Poster()
        for d in try await s.engine.dueDeliveries(excluding: []) { await s.engine.deliver(d, post: poster.post) }
        let row = try #require(try await Self.delivery(s, "k", "removed"))
        #expect(row["failed_at"] as Double? != nil && row["last_error"] as String? == "the receiver is no longer configured")
        #expect(poster.posts.isEmpty)
    }

    @Test func aResolutionWaitsForItsAlertToTheSameReceiver() async throws {
        let s = try Self.setup()
        defer { try? FileManager.default.removeItem(atPath: s.dir) }
        try await Self.raise(s, .deadlineMissed, pipeline: "billing", key: "late")
        try await s.engine.routeAlerts()
        let poster = Poster()
        poster.fail(true)
        for d in try await s.engine.dueDeliveries(excluding: []) { await s.engine.deliver(d, post: poster.post) }
        // The alert is in its backoff; its resolution is raised now.
        try await Self.raise(s, .deadlineMissed, pipeline: "billing", key: "late/resolved", resolves: "late")
        try await s.engine.routeAlerts()
        #expect(try await s.engine.dueDeliveries(excluding: []).isEmpty, "the resolution waits for its alert")
        s.clock.advance(by: 10)
        poster.fail(false)
        let due = try await s.engine.dueDeliveries(excluding: [])
        #expect(due.map(\.alert.key) == ["late"])
        for d in due { await s.engine.deliver(d, post: poster.post) }
        for d in try await s.engine.dueDeliveries(excluding: []) { await s.engine.deliver(d, post: poster.post) }
        #expect(poster.posts == ["ops late", "ops late", "ops late/resolved"])
    }
}

/// The sender's HTTP against a raw local socket: a receiver that sends its
/// head and trickles its body is cut off at the request's overall deadline,
/// and a redirect is a failure, never followed.
@Suite struct AlertHTTPTests {
    /// Answers each connection with `answer(port)`, then, when `trickle`,
    /// one byte every 300 ms for 20 s; counts connections.
    final class RawServer: @unchecked Sendable {
        let fd: Int32
        let port: Int
        private let accepted = Mutex(0)
        var connections: Int { accepted.withLock { $0 } }

        init(trickle: Bool, answer: @escaping @Sendable (Int) -> String) throws {
            let sock = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var addr = sockaddr_in()
            addr.sin_family = sa_family_t(AF_INET)
            addr.sin_addr.s_addr = inet_addr("127.0.0.1")
            addr.sin_port = 0
            var len = socklen_t(MemoryLayout<sockaddr_in>.size)
            let bound = withUnsafeMutablePointer(to: &addr) { p in
                p.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(sock, $0, len) == 0 && listen(sock, 8) == 0 && getsockname(sock, $0, &len) == 0 }
            }
            guard bound else { close(sock); throw AlertSendError("cannot listen") }
            fd = sock
            port = Int(UInt16(bigEndian: addr.sin_port))
            let (listener, boundPort) = (fd, port)
            Thread.detachNewThread { [self] in
                while true {
                    let c = accept(listener, nil, nil)
                    if c < 0 { return }
                    accepted.withLock { $0 += 1 }
                    Thread.detachNewThread {
                        var buffer = [UInt8](repeating: 0, count: 65536)
                        _ = read(c, &buffer, buffer.count)
                        let head = Array(answer(boundPort).utf8)
                        _ = write(c, head, head.count)
                        if trickle {
                            for _ in 0..<66 {
                                if write(c, "x", 1) < 0 { break }
                                usleep(300_000)
                            }
                        }
                        close(c)
                    }
                }
            }
        }

        func stop() { shutdown(fd, Int32(SHUT_RDWR)); close(fd) }
    }

    static func engine(requestTimeout: Double) throws -> (CoordinatorEngine, String) {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("bis-alerthttp-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        var options = CoordinatorOptions(clock: ManualClock())
        options.schedulerInterval = nil
        options.retention.interval = nil
        options.alerts.requestTimeout = requestTimeout
        let engine = CoordinatorEngine(store: try LineageStore(path: dir + "/bis.db"), transport: InMemoryTransport(),
                                       chunkStore: ChunkStore(root: dir + "/data"), options: options)
        return (engine, dir)
    }

    static func alert() async throws -> StoredAlert {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("bis-alertrow-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try LineageStore(path: dir + "/bis.db")
        return try await store.pool.write { db in
            _ = try db.raiseAlert(.runFailed, run: nil, pipeline: "p", message: "m", key: "k", at: 1)
            return StoredAlert(try Row.fetchOne(db, sql: "SELECT * FROM alerts")!)
        }
    }

    @Test func aTricklingReceiverIsCutOffAtTheOverallDeadline() async throws {
        let server = try RawServer(trickle: true) { _ in "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" }
        defer { server.stop() }
        let (engine, dir) = try Self.engine(requestTimeout: 1.5)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let started = ContinuousClock.now
        let receiver = AlertReceiver(name: "slow", kind: .webhook, url: "http://127.0.0.1:\(server.port)/hook")
        await #expect(throws: (any Error).self) { try await engine.post(try await Self.alert(), to: receiver) }
        // 1.5 s, not the 20 s the body takes (nor the read timeout per byte).
        #expect(ContinuousClock.now - started < .seconds(10))
    }

    @Test func aRedirectIsAFailureAndNotFollowed() async throws {
        let server = try RawServer(trickle: false) { port in
            "HTTP/1.1 307 Temporary Redirect\r\nLocation: http://127.0.0.1:\(port)/elsewhere\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        }
        defer { server.stop() }
        let (engine, dir) = try Self.engine(requestTimeout: 5)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let receiver = AlertReceiver(name: "r", kind: .webhook, url: "http://127.0.0.1:\(server.port)/hook")
        do {
            try await engine.post(try await Self.alert(), to: receiver)
            Issue.record("a 307 was taken for success")
        } catch {
            #expect("\(error)".contains("answered 307") && "\(error)".contains("redirects are not followed"), "\(error)")
        }
        try await Task.sleep(for: .milliseconds(300))
        #expect(server.connections == 1, "the redirect was not followed")
    }
}

/// What the submit and the alerts file refuse, and deadline generations of
/// a retried late run.
@Suite struct AlertSubmitAndDeadlineTests {
    struct Setup {
        let dir: String
        let engine: CoordinatorEngine
        let store: LineageStore
        let clock: ManualClock

        init(environment: [String: String] = [:]) throws {
            dir = FileManager.default.temporaryDirectory.appendingPathComponent("bis-alertsub-\(UUID().uuidString)").path
            try FileManager.default.createDirectory(atPath: dir + "/data", withIntermediateDirectories: true)
            try "id\n1\n".write(toFile: dir + "/data/a.csv", atomically: true, encoding: .utf8)
            clock = ManualClock()
            var options = CoordinatorOptions(clock: clock)
            options.schedulerInterval = nil
            options.retention.interval = nil
            options.alerts.environment = environment
            store = try LineageStore(path: dir + "/bis.db")
            engine = CoordinatorEngine(store: store, transport: InMemoryTransport(), chunkStore: ChunkStore(root: dir + "/store"),
                                       options: options)
        }

        func spec(_ extra: String) throws -> String {
            let path = dir + "/p.yml"
            try """
                pipeline: orders
                sources:
                  orders:
                    format: csv
                    files: data/*.csv
                    columns: {id: int64}
                \(extra)
                """.write(toFile: path, atomically: true, encoding: .utf8)
            return path
        }
    }

    @Test func aSpecSecretTheCoordinatorLacksIsRefusedAtSubmitNamingItsPlace() async throws {
        let s = try Setup(environment: ["BIS_ALERT_SECRET_SET": "k"])
        defer { try? FileManager.default.removeItem(atPath: s.dir) }
        let path = try s.spec("""
            notify:
              - {webhook: "http://127.0.0.1:1/a", secret_env: BIS_ALERT_SECRET_SET}
              - {webhook: "http://127.0.0.1:1/b", secret_env: BIS_ALERT_SECRET_MISSING}
            """)
        do {
            _ = try await s.engine.submit(SubmitRequest(specPath: path, submittedBy: "ann@host"))
            Issue.record("a spec naming an unset secret was accepted")
        } catch ServiceError.badRequest(let message) {
            #expect(message == "\(path):9:51: 'secret_env' names BIS_ALERT_SECRET_MISSING, which is not set in the coordinator's "
                        + "environment; set it there or remove secret_env (alerts are never sent unsigned)", "\(message)")
        }
        // Set: accepted.
        let ok = try s.spec("notify:\n  - {webhook: \"http://127.0.0.1:1/a\", secret_env: BIS_ALERT_SECRET_SET}\n")
        _ = try await s.engine.submit(SubmitRequest(specPath: ok, submittedBy: "ann@host"))
    }

    @Test func secretFilesResolveAgainstTheAlertsFileAndReceiverNamesHaveNoColon() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("bis-alertcfg-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir + "/keys", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try "s3cret\n".write(toFile: dir + "/keys/hook.key", atomically: true, encoding: .utf8)
        let config = try AlertsConfig.parse("receivers: {ops: {webhook: \"http://h/x\", secret_file: keys/hook.key}}",
                                            file: dir + "/alerts.yml", environment: [:])
        #expect(config.receivers["ops"]?.secret == Array("s3cret".utf8))
        #expect(config.secretFiles == [dir + "/keys/hook.key"])
        #expect(throws: AlertsConfig.LoadError.self) {
            try AlertsConfig.parse("receivers: {\"spec:notify[1]\": {webhook: \"http://h/x\"}}", file: "a.yml", environment: [:])
        }
    }

    @Test func aRetriedLateRunIsLateAgainUnderANewKeyAndResolvedAgain() async throws {
        let s = try Setup()
        defer { try? FileManager.default.removeItem(atPath: s.dir) }
        let path = try s.spec("deadline: {within: 1h}\n")
        let run = try await s.engine.submit(SubmitRequest(specPath: path, submittedBy: "ann@host")).id
        func keys() async throws -> [String] {
            try await s.store.pool.read { db in
                try Row.fetchAll(db, sql: "SELECT key, resolves FROM alerts WHERE event = 'deadline_missed' ORDER BY id").map {
                    ($0["key"] as String) + (($0["resolves"] as Int64?).map { " -> \($0)" } ?? "")
                }
            }
        }
        func fail() async throws {
            try await s.store.pool.write { db in
                try db.execute(sql: "UPDATE tasks SET state = 'failed' WHERE run = ? AND state IN ('planned', 'queued', 'running')", arguments: [run])
                try db.execute(sql: "UPDATE runs SET state = 'failed', finished_at = ? WHERE id = ?", arguments: [s.clock.seconds, run])
            }
        }
        s.clock.advance(by: 3601)
        try await s.engine.watchDeadlines()
        #expect(try await keys() == ["\(run)/deadline_missed"])
        try await fail()
        try await s.engine.watchDeadlines()
        let first = try await s.store.pool.read { db in try Int64.fetchOne(db, sql: "SELECT id FROM alerts WHERE key = ?", arguments: ["\(run)/deadline_missed"]) }
        #expect(try await keys() == ["\(run)/deadline_missed", "\(run)/deadline_missed/resolved -> \(first!)"])
        // Retried while still past its deadline: late again, at once, under the next generation.
        _ = try await s.engine.retry(run, by: "ann@host")
        try await s.engine.watchDeadlines()
        try await s.engine.watchDeadlines()
        var all = try await keys()
        #expect(all.count == 3 && all[2] == "\(run)/deadline_missed/2", "\(all)")
        try await fail()
        try await s.engine.watchDeadlines()
        let second = try await s.store.pool.read { db in try Int64.fetchOne(db, sql: "SELECT id FROM alerts WHERE key = ?", arguments: ["\(run)/deadline_missed/2"]) }
        all = try await keys()
        #expect(all.count == 4 && all[3] == "\(run)/deadline_missed/2/resolved -> \(second!)", "\(all)")
    }
}
