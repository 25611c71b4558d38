import FleetAMQP
import Foundation
import TestSupport

/// The fleet of one HostCutTests run: a scratch folder, the simulated hosts,
/// the relay to the broker, the coordinator and the workers, and the `bis`
/// CLI pointed at that coordinator. `shutdown` ends every process it started
/// and removes the namespaces; call it on every path (it is idempotent).
final class NetnsFleet: @unchecked Sendable {
    static let packageRoot = PythonTool.packageRoot

    /// `bis` or `bis-worker` as built beside the tests.
    static func executable(_ name: String) -> String {
        let bundleDir = Bundle.main.bundleURL.deletingLastPathComponent().path
        return [bundleDir + "/" + name, packageRoot + "/.build/debug/" + name]
            .first { FileManager.default.isExecutableFile(atPath: $0) } ?? packageRoot + "/.build/debug/" + name
    }

    let work: String
    let logs: String
    /// The chunk store every host sees (as an NFS mount would be).
    let dataRoot: String
    let brokerURL: URLComponents
    /// The topology's name prefix on the broker, unique to this run.
    let amqpNamespace: String
    let network: NetnsNetwork
    private(set) var processes: [NetnsProcess] = []
    private(set) var coordinatorAddress: String?
    /// The last `bis status --json` output, for failure messages.
    var lastStatus = ""

    init(brokerURL: String, ip: String) throws {
        guard let url = URLComponents(string: brokerURL), url.scheme == "amqp", url.host != nil else {
            throw NetnsFailure("BIS_TEST_AMQP_URL '\(brokerURL)' is not an amqp://user:pass@host:port/vhost URL")
        }
        self.brokerURL = url
        work = FileManager.default.temporaryDirectory.appendingPathComponent("bis-netns-\(UUID().uuidString.prefix(8))").path
        logs = work + "/logs"
        dataRoot = work + "/data"
        amqpNamespace = "netns\(UInt32.random(in: 0...UInt32.max))"
        network = NetnsNetwork(ip: ip)
        for dir in [logs, dataRoot] { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) }
    }

    var brokerPort: Int { brokerURL.port ?? 5672 }

    /// The broker's URL with `host` in place of its host (same user, password, vhost, port).
    func brokerURL(host: String) -> String {
        var u = brokerURL
        u.host = host
        return u.string!
    }

    // MARK: - Processes

    @discardableResult
    func start(_ name: String, _ executable: String, _ arguments: [String], environment: [String: String] = [:]) throws -> NetnsProcess {
        let p = try NetnsProcess.start(name, executable, arguments, environment: environment, logDirectory: logs)
        processes.append(p)
        return p
    }

    /// The relay in the root namespace: each host's root-side address, at the
    /// broker's port, forwarded to the broker on loopback.
    func startRelay(python: String) async throws -> NetnsProcess {
        let script = Self.packageRoot + "/Tests/NetworkFleetTests/python/relay.py"
        let brokerHost = brokerURL.host!
        var args = [script, "--target", "\(brokerHost):\(brokerPort)"]
        for h in network.hosts { args += ["--listen", "\(h.rootAddress):\(brokerPort)"] }
        let relay = try start("relay", python, ["-u"] + args)
        _ = try await netnsPoll("the relay to listen", timeout: 30, diagnostics: diagnostics) { () throws -> Bool? in
            if relay.log.contains("ready") { return true }
            if !relay.isRunning { throw NetnsFailure("the relay exited") }
            return nil
        }
        return relay
    }

    func startCoordinator() async throws -> NetnsProcess {
        try await TestSupport.waitForBroker(brokerURL.string!)
        let port = try NetnsCommand.freePort()
        let address = "127.0.0.1:\(port)"
        let p = try start("coordinator", Self.executable("bis"),
                          ["coordinator", "--data-root", dataRoot, "--db", work + "/bis.db",
                           "--http", address, "--namespace", amqpNamespace, "--input-root", work],
                          environment: ["BIS_AMQP_URL": brokerURL.string!])   // the password stays out of ps
        coordinatorAddress = "http://" + address
        _ = try await netnsPoll("the coordinator's HTTP API", timeout: 60, diagnostics: diagnostics) { () throws -> Bool? in
            if !p.isRunning { throw NetnsFailure("the coordinator exited") }
            return try bis(["runs", "--json"]).status == 0 ? true : nil
        }
        return p
    }

    /// `bis-worker` inside `host`'s namespace, reaching the broker through the relay.
    func startWorker(_ name: String, on host: NetnsHost, heartbeat: Int, fault: String? = nil) throws -> NetnsProcess {
        let command = [Self.executable("bis-worker"), "--data-root", dataRoot,
                       "--namespace", amqpNamespace, "--concurrency", "1", "--heartbeat", String(heartbeat)]
        let (exe, args) = network.exec(in: host, command)
        var env: [String: String] = ["BIS_AMQP_URL": brokerURL(host: host.rootAddress)]
        if let fault { env["BIS_TEST_FAULT"] = fault }
        return try start(name, exe, args, environment: env)
    }

    // MARK: - The CLI

    func bis(_ arguments: [String]) throws -> NetnsOutput {
        guard let coordinatorAddress else { throw NetnsFailure("no coordinator started") }
        return try NetnsCommand.run(Self.executable("bis"), arguments, environment: ["BIS_COORDINATOR": coordinatorAddress])
    }

    /// `bis ARGS --json`, parsed; throws when bis fails.
    func bisJSON(_ arguments: [String]) throws -> Any {
        let r = try bis(arguments + ["--json"])
        guard r.status == 0 else { throw NetnsFailure("\(r)") }
        return try JSONSerialization.jsonObject(with: Data(r.stdout.utf8))
    }

    /// `bis status RUN --json` as a dictionary (RunView).
    func status(_ run: String) throws -> [String: Any] {
        let r = try bis(["status", run, "--json"])
        guard r.status == 0 else { throw NetnsFailure("\(r)") }
        lastStatus = r.stdout
        guard let view = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any] else {
            throw NetnsFailure("bis status \(run) --json printed no object: \(r.stdout)")
        }
        return view
    }

    /// `bis workers --json`: each worker's id, pid and running task ids.
    func workers() throws -> [(id: String, pid: Int32, running: [String])] {
        guard let list = try bisJSON(["workers"]) as? [[String: Any]] else { throw NetnsFailure("bis workers --json printed no list") }
        return list.map { w in
            (w["id"] as? String ?? "?", (w["pid"] as? NSNumber)?.int32Value ?? -1, w["running"] as? [String] ?? [])
        }
    }

    /// A task's executions as the lineage tells them (`bis lineage export
    /// RUN --openlineage`: each execution's BIS facet names its state and
    /// worker), with the worker's pid from `bis workers`.
    func executions(_ run: String, task: String) throws -> [NetnsExecution] {
        let r = try bis(["lineage", "export", run, "--openlineage"])
        guard r.status == 0 else { throw NetnsFailure("\(r)") }
        let pids = Dictionary(try workers().map { ($0.id, $0.pid) }, uniquingKeysWith: { a, _ in a })
        var byID: [String: NetnsExecution] = [:]
        for line in r.stdout.split(separator: "\n") where !line.trimmingCharacters(in: .whitespaces).isEmpty {
            guard let event = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                  let facets = (event["run"] as? [String: Any])?["facets"] as? [String: Any],
                  let facet = facets["bis_execution"] as? [String: Any],
                  facet["task"] as? String == task, let id = facet["execution"] as? String else { continue }
            // START, then COMPLETE/FAIL: the last event of an execution has its final state.
            byID[id] = NetnsExecution(id: id, pid: pids[facet["worker"] as? String ?? ""] ?? -1,
                                      state: facet["state"] as? String ?? "?")
        }
        return byID.values.sorted { $0.id < $1.id }
    }

    // MARK: - Ending

    /// Tails of every log, and the last status seen.
    func diagnostics() -> String {
        var parts = processes.map { $0.tail() }
        if !lastStatus.isEmpty { parts.append("--- last bis status --json:\n" + lastStatus) }
        parts.append("(all logs and data kept in \(work))")
        return parts.joined(separator: "\n")
    }

    /// Stops the workers first, then the coordinator, then the relay; removes
    /// the namespaces and links.
    func shutdown() {
        for p in processes.reversed() { p.stop() }
        network.teardown()
    }

    /// Deletes this run's queues from the broker (best effort).
    func deleteQueues() async {
        guard let transport = try? await AMQPTransport.connect(url: brokerURL.string!, key: .random(), namespace: amqpNamespace,
                                                               connectionName: "bis-netns-tests") else { return }
        await transport.deleteQueues()
        await transport.close()
    }

    func removeScratch() { try? FileManager.default.removeItem(atPath: work) }
}

/// Stage counts from a RunView dictionary.
struct NetnsStage {
    let total: Int
    let succeeded: Int
    let duplicates: Int

    init?(_ view: [String: Any], _ stage: String) {
        guard let stages = view["stages"] as? [[String: Any]],
              let s = stages.first(where: { $0["stage"] as? String == stage }) else { return nil }
        total = (s["total"] as? NSNumber)?.intValue ?? 0
        succeeded = (s["succeeded"] as? NSNumber)?.intValue ?? 0
        duplicates = (s["duplicates"] as? NSNumber)?.intValue ?? 0
    }
}

/// One execution of a task, from the lineage: `succeeded` is the task's
/// winner (its outputs handed on), `duplicate` a later result recorded and reclaimed.
struct NetnsExecution: CustomStringConvertible {
    let id: String
    let pid: Int32
    let state: String
    var description: String { "\(id) pid \(pid) \(state)" }
}
