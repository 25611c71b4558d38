import FleetCore
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import TestSupport
import Testing

/// Queue messages as an attacker with access to the broker would send them,
/// against the real `bis coordinator`, `bis-worker` and the private broker:
/// forged or altered messages are refused unread, dead-lettered to
/// `<ns>.rejected` with the reason and counted in `/metrics`; ids and paths
/// in messages cannot reach outside the data root; a broker password on the
/// command line is refused.
@Suite(.serialized, .usesBroker, .enabled(if: FleetEnvironment.enabled,
                             "no broker (BIS_TEST_AMQP_URL; run ops/test) or no Python with duckdb (BIS_PYTHON)"))
struct AttackMessageTests {
    static let oneWorker = FleetOptions(workers: [WorkerSpec()])
    static let noWorkers = FleetOptions(workers: [])

    /// A well-formed ingest task for the fleet's first input file: what a
    /// worker would execute, writing under `runs/<run>/`, were it signed.
    func ingestTask(_ fleet: Fleet, run: String) throws -> TaskMessage {
        let specPath = try fleet.writeSpec(pipeline: "forged", dataset: "orders", summary: "by_region")
        let text = try String(contentsOfFile: specPath, encoding: .utf8)
        let input = fleet.inputs[0]
        let size = (try FileManager.default.attributesOfItem(atPath: input)[.size] as? NSNumber)?.int64Value ?? 0
        return TaskMessage(run: run, stage: .ingest, index: 0, attempt: 1,
                           spec: SpecRef(text: text, sha256: try sha256(Data(text.utf8)), file: specPath, directory: fleet.dir),
                           inputs: [ChunkRef(path: input, sha256: try sha256(file: input), bytes: size, kind: .source, name: "orders")],
                           shard: ShardRef(source: "orders", path: input))
    }

    /// The fleet key the coordinator created in the data root.
    func fleetKey(_ fleet: Fleet) throws -> FleetKey { try FleetKey.load(file: fleet.dataRoot + "/fleet.key") }

    /// Polls `/metrics` until `bis_messages_rejected_total{reason}` reaches `n`; the last value.
    func rejected(_ fleet: Fleet, _ reason: String, reaches n: Int, timeout: Double = 60) async throws -> Int {
        let deadline = Date().addingTimeInterval(timeout)
        var value = 0
        repeat {
            if let text = await fleet.metricsText() {
                let prefix = "bis_messages_rejected_total{reason=\"\(reason)\"} "
                value = text.split(separator: "\n").first { $0.hasPrefix(prefix) }.flatMap { Int($0.dropFirst(prefix.count)) } ?? 0
                if value >= n { return value }
            }
            try await Task.sleep(for: .milliseconds(250))
        } while Date() < deadline
        return value
    }

    @Test func aForgedTaskMessageWithoutAMACIsNotExecutedButDeadLetteredAndCounted() async throws {
        try await withFleet("attack-forged-task", Self.oneWorker) { fleet in
            let broker = try Management(fleet)
            let run = "forged-20261204T120000Z-\(randomHex(4))"
            let body = try WireCoding.encode(try ingestTask(fleet, run: run))
            // Straight to the stage queue's exchange, as anyone with broker access could.
            try await broker.publish(exchange: "\(fleet.namespace).tasks", routingKey: "ingest", body: body, headers: [:])
            let count = try await rejected(fleet, "missing_mac", reaches: 1)
            fleet.check(count == 1, "bis_messages_rejected_total{reason=\"missing_mac\"} should be 1, is \(count)")
            let kept = try await broker.waitForMessages(queue: "\(fleet.namespace).rejected", count: 1)
            fleet.check(kept.first?.headers["bis-rejected-reason"] as? String == "missing_mac",
                        "the rejected queue should hold the message with its reason: \(kept)")
            fleet.check(kept.first?.payload == String(decoding: body, as: UTF8.self), "the rejected message should be the forged body")
            fleet.check(!FileManager.default.fileExists(atPath: fleet.dataRoot + "/runs/\(run)"),
                        "the forged task must not run: runs/\(run) exists")
            let log = (try? String(contentsOfFile: fleet.logs + "/worker0.log", encoding: .utf8)) ?? ""
            fleet.check(log.contains("missing_mac"), "the worker should log why it refused the task")
            // The same message signed with another key: refused too.
            let other = FleetKey.random()
            try await broker.publish(exchange: "\(fleet.namespace).tasks", routingKey: "ingest", body: body,
                                     headers: ["bis-mac": other.mac(.task, body)])
            let bad = try await rejected(fleet, "bad_mac", reaches: 1)
            fleet.check(bad == 1, "bis_messages_rejected_total{reason=\"bad_mac\"} should be 1, is \(bad)")
            fleet.check(!FileManager.default.fileExists(atPath: fleet.dataRoot + "/runs/\(run)"), "runs/\(run) exists")
        }
    }

    @Test func anEventWithAWrongMACIsNotCommitted() async throws {
        try await withFleet("attack-event-mac", Self.noWorkers) { fleet in
            let broker = try Management(fleet)
            let spec = try fleet.writeSpec(pipeline: "evmac-\(randomHex(6))", dataset: "orders", summary: "by_region")
            let run = try await fleet.submit(spec)
            let task = TaskMessage(run: run, stage: .ingest, index: 0, attempt: 1, spec: nil)
            let event = TaskEvent(kind: .succeeded, task: task, execution: "0123456789abcdef",
                                  worker: WorkerIdentity(id: "mallory:1:0000", host: "mallory", pid: 1, version: "x"),
                                  deliveryCount: 0, startedAt: Date(), finishedAt: Date())
            let body = try WireCoding.encode(event)
            try await broker.publish(exchange: "\(fleet.namespace).events", routingKey: "", body: body,
                                     headers: ["bis-kind": "event", "bis-mac": FleetKey.random().mac(.event, body)])
            let count = try await rejected(fleet, "bad_mac", reaches: 1)
            fleet.check(count == 1, "bis_messages_rejected_total{reason=\"bad_mac\"} should be 1, is \(count)")
            let s = try await fleet.status(run)
            fleet.check(s.stage("ingest")?.succeeded == 0, "the forged success must not be committed: \(s)")
            let kept = try await broker.waitForMessages(queue: "\(fleet.namespace).rejected", count: 1)
            fleet.check(kept.first?.headers["bis-rejected-reason"] as? String == "bad_mac", "\(kept)")
            // The same event with the fleet's MAC is committed (the check above is the MAC, nothing else).
            try await broker.publish(exchange: "\(fleet.namespace).events", routingKey: "", body: body,
                                     headers: ["bis-kind": "event", "bis-mac": try fleetKey(fleet).mac(.event, body)])
            let after = try await fleet.waitForRun(run, timeout: 60) { ($0.stage("ingest")?.succeeded ?? 0) == 1 }
            fleet.check(after.stage("ingest")?.succeeded == 1, "\(after)")
        }
    }

    @Test func aTraversingExecutionIdInADuplicateEventDeletesNothing() async throws {
        try await withFleet("attack-traversal", Self.noWorkers) { fleet in
            let broker = try Management(fleet)
            let key = try fleetKey(fleet)
            let victim = "victim-20261204T120000Z-\(randomHex(4))"
            let victimFile = fleet.dataRoot + "/runs/\(victim)/ingest/0/0123456789abcdef/part-0.parquet"
            try FileManager.default.createDirectory(atPath: (victimFile as NSString).deletingLastPathComponent,
                                                    withIntermediateDirectories: true)
            try Data("the victim's chunk".utf8).write(to: URL(fileURLWithPath: victimFile))
            let spec = try fleet.writeSpec(pipeline: "trav-\(randomHex(6))", dataset: "orders", summary: "by_region")
            let run = try await fleet.submit(spec)
            let task = TaskMessage(run: run, stage: .ingest, index: 0, attempt: 1, spec: nil)
            let worker = WorkerIdentity(id: "w:1:0000", host: "w", pid: 1, version: "x")
            // A winner, then a "duplicate" whose execution id climbs out to the victim (signed: even a key holder cannot).
            for execution in ["0123456789abcdef", "../../../../runs/\(victim)"] {
                let body = try WireCoding.encode(TaskEvent(kind: .succeeded, task: task, execution: execution, worker: worker,
                                                           deliveryCount: 0, startedAt: Date(), finishedAt: Date()))
                try await broker.publish(exchange: "\(fleet.namespace).events", routingKey: "", body: body,
                                         headers: ["bis-kind": "event", "bis-mac": key.mac(.event, body)])
            }
            let count = try await rejected(fleet, "invalid_field", reaches: 1)
            fleet.check(count == 1, "bis_messages_rejected_total{reason=\"invalid_field\"} should be 1, is \(count)")
            let s = try await fleet.waitForRun(run, timeout: 60) { ($0.stage("ingest")?.succeeded ?? 0) == 1 }
            fleet.check(s.stage("ingest")?.duplicates == 0, "the traversing event must not be recorded: \(s)")
            try await Task.sleep(for: .seconds(1))
            fleet.check(FileManager.default.fileExists(atPath: victimFile), "the victim's folder was deleted")
            let log = (try? String(contentsOfFile: fleet.logs + "/coordinator.log", encoding: .utf8)) ?? ""
            fleet.check(log.contains("field execution '../../../../runs/\(victim)'"), "the coordinator should name the field and value")
        }
    }

    @Test func anAbsoluteChunkPathInATaskIsRefused() async throws {
        try await withFleet("attack-abs-path", Self.oneWorker) { fleet in
            let broker = try Management(fleet)
            let run = "abspath-20261204T120000Z-\(randomHex(4))"
            var task = try ingestTask(fleet, run: run)
            task.stage = .normalize
            task.shard = nil
            task.inputs = [ChunkRef(path: "/etc/passwd", sha256: String(repeating: "0", count: 64), bytes: 1, kind: .data)]
            let body = try WireCoding.encode(task)
            try await broker.publish(exchange: "\(fleet.namespace).tasks", routingKey: "normalize", body: body,
                                     headers: ["bis-mac": try fleetKey(fleet).mac(.task, body)])
            let count = try await rejected(fleet, "invalid_field", reaches: 1)
            fleet.check(count == 1, "the worker's refusal should be counted as invalid_field, is \(count)")
            let log = (try? String(contentsOfFile: fleet.logs + "/worker0.log", encoding: .utf8)) ?? ""
            fleet.check(log.contains("inputs[0].path '/etc/passwd' is absolute"), "the worker should name the field and value")
            fleet.check(!FileManager.default.fileExists(atPath: fleet.dataRoot + "/runs/\(run)"), "runs/\(run) exists")
        }
    }

    @Test func aPasswordInAmqpOnTheCommandLineExitsWith2() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("bis-attack-pw-\(randomHex())").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let url = "amqp://bis:Sup3r/s3cret@127.0.0.1:1/%2F"
        var env = ProcessInfo.processInfo.environment
        for k in ["BIS_AMQP_URL", "BIS_AMQP_PASSWORD", "BIS_FLEET_KEY_FILE", "BIS_DATA_ROOT", "BIS_TEST_FAULT"] { env[k] = nil }
        let commands: [(String, [String])] = [
            (try FleetEnvironment.executable("bis"), ["coordinator", "--amqp", url, "--data-root", dir, "--connect-timeout", "1"]),
            (try FleetEnvironment.executable("bis-worker"), ["--amqp", url, "--data-root", dir, "--connect-timeout", "1"]),
        ]
        for (exe, args) in commands {
            let p = try ChildProcess(name: "pw", executable: exe, arguments: args, environment: env,
                                     stdout: dir + "/out", stderr: dir + "/err")
            let t = await p.wait(seconds: 30)
            let stderr = p.stderr
            #expect(t == .exited(2), "\(exe) \(args): \(String(describing: t))\n\(stderr)")
            #expect(stderr.contains("BIS_AMQP_PASSWORD") && stderr.contains("--amqp-password-file"), "\(stderr)")
            #expect(!stderr.contains("Sup3r") && !stderr.contains("s3cret"), "the password is printed: \(stderr)")
        }
    }
}

// MARK: - Helpers

func sha256(_ data: Data) throws -> String {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("bis-sha-\(randomHex())").path
    try data.write(to: URL(fileURLWithPath: dir))
    defer { try? FileManager.default.removeItem(atPath: dir) }
    return try sha256(file: dir)
}

func sha256(file: String) throws -> String {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/sha256sum")
    p.arguments = [file]
    let out = Pipe()
    p.standardOutput = out
    try p.run()
    let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    p.waitUntilExit()
    guard let hex = text.split(separator: " ").first, hex.count == 64 else { throw FleetError("sha256sum \(file): \(text)") }
    return String(hex)
}

/// The broker's management API (publish raw messages, peek at a queue), as
/// `FleetEnvironment.deleteQueues` finds it.
struct Management {
    let base: String
    let auth: String

    struct Message: CustomStringConvertible {
        let payload: String
        let headers: [String: Any]
        var description: String { "headers \(headers), payload \(payload.prefix(200))" }
    }

    init(_ fleet: Fleet) throws {
        guard let amqp = URLComponents(string: fleet.amqpURL) else { throw FleetError("cannot read the broker URL") }
        let env = ProcessInfo.processInfo.environment
        base = env["BIS_TEST_BROKER_MGMT_URL"] ?? "http://\(amqp.host ?? "127.0.0.1"):\(env["BIS_BROKER_MGMT_PORT"] ?? "15682")"
        auth = "Basic " + Data("\(amqp.user ?? "guest"):\(amqp.password ?? "guest")".utf8).base64EncodedString()
    }

    func call(_ method: String, _ path: String, _ json: [String: Any]) async throws -> Any {
        var request = URLRequest(url: URL(string: base + path)!)
        request.httpMethod = method
        request.timeoutInterval = 10
        request.setValue(auth, forHTTPHeaderField: "Authorization")
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        request.httpBody = try JSONSerialization.data(withJSONObject: json)
        let (data, response) = try await URLSession.shared.data(for: request)
        guard let http = response as? HTTPURLResponse, (200..<300).contains(http.statusCode) else {
            throw FleetError("\(method) \(path): \(String(decoding: data, as: UTF8.self))")
        }
        return try JSONSerialization.jsonObject(with: data)
    }

    func publish(exchange: String, routingKey: String, body: [UInt8], headers: [String: String]) async throws {
        let answer = try await call("POST", "/api/exchanges/%2F/\(exchange)/publish", [
            "properties": ["headers": headers, "delivery_mode": 2, "content_type": "application/json"],
            "routing_key": routingKey, "payload": String(decoding: body, as: UTF8.self), "payload_encoding": "string",
        ])
        guard (answer as? [String: Any])?["routed"] as? Bool == true else { throw FleetError("\(exchange): not routed: \(answer)") }
    }

    /// Waits until `queue` holds `count` messages and returns them (left in the queue).
    func waitForMessages(queue: String, count: Int, timeout: Double = 30) async throws -> [Message] {
        let deadline = Date().addingTimeInterval(timeout)
        var got: [Message] = []
        repeat {
            let answer = try await call("POST", "/api/queues/%2F/\(queue)/get",
                                        ["count": count, "ackmode": "ack_requeue_true", "encoding": "auto"])
            got = ((answer as? [[String: Any]]) ?? []).map {
                Message(payload: $0["payload"] as? String ?? "",
                        headers: (($0["properties"] as? [String: Any])?["headers"] as? [String: Any]) ?? [:])
            }
            if got.count >= count { return got }
            try await Task.sleep(for: .milliseconds(250))
        } while Date() < deadline
        return got
    }
}
