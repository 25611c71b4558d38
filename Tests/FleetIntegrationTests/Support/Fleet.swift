import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import TestSupport
import Testing

/// One `bis-worker` of a fleet.
struct WorkerSpec: Sendable {
    /// `BIS_TEST_FAULT` for this worker.
    var fault: String?
    /// `--stages`; nil for all.
    var stages: String?
    var concurrency = 2
    /// When the supervisor restarts this worker: without the fault (a
    /// repaired host) instead of with the same environment (what systemd does).
    var restartClean = false

    init(fault: String? = nil, stages: String? = nil, concurrency: Int = 2, restartClean: Bool = false) {
        self.fault = fault
        self.stages = stages
        self.concurrency = concurrency
        self.restartClean = restartClean
    }
}

struct FleetOptions: Sendable {
    var workers: [WorkerSpec] = [WorkerSpec(), WorkerSpec()]
    /// Restart a worker that died, as systemd's `Restart=always` would.
    var supervise = false
    /// More `bis coordinator` arguments (`--max-attempts 2` …).
    var coordinatorArguments: [String] = []
    /// The coordinator's `--input-root`s; nil for the fleet's folder (where
    /// its specs and generated inputs are).
    var inputRoots: [String]? = nil
    /// More `bis-worker` arguments (`--delivery-limit 1`: it must equal the coordinator's).
    var workerArguments: [String] = []
    /// A token the harness's own HTTP calls and `bis` commands carry (a
    /// coordinator with `--auth`); a command's own environment overrides it.
    var harnessToken: String? = nil
}

/// What a `bis` command did.
struct CommandResult: Sendable, CustomStringConvertible {
    let arguments: [String]
    let termination: Termination
    let stdout: String
    let stderr: String
    var exitCode: Int32? { termination.exitCode }
    var description: String {
        "`bis \(arguments.joined(separator: " "))`: \(termination)\n--- stdout\n\(tail(stdout, lines: 40))\n--- stderr\n\(tail(stderr, lines: 40))"
    }
}

struct FleetError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// A fleet of real processes in a temp folder: `bis coordinator` on a free
/// port with its lineage store and data root, K `bis-worker`s (optionally
/// supervised: restarted when they die), all on the shared broker under a
/// namespace of their own. Generated CSV input is in `dir/data`.
///
/// Every process's stdout and stderr go to files under `dir/logs`; a failed
/// check records an issue with the tails of the coordinator's and workers'
/// stderr, and keeps the folder. `stop()` ends every process (SIGTERM, then
/// SIGKILL), whatever happened.
final class Fleet: @unchecked Sendable {
    let label: String
    let dir: String
    let dataRoot: String
    let db: String
    let logs: String
    let namespace: String
    let amqpURL: String
    let bisPath: String
    let workerPath: String
    let port: Int
    let options: FleetOptions
    /// The generated CSV files and how many of their rows ingest must quarantine.
    let inputs: [String]
    let dirty: Int

    var address: String { "http://127.0.0.1:\(port)" }

    private struct Slot {
        var spec: WorkerSpec
        var process: ChildProcess?
        var starts = 0
    }

    private let lock = NSLock()
    private var coordinator: ChildProcess?
    private var coordinatorStarts = 0
    private var slots: [Slot] = []
    private var supervising = false
    private var supervisor: Task<Void, Never>?
    private var commands = 0
    private var failed = false
    /// For the coordinator's next start: arguments after `options.coordinatorArguments`
    /// (a later flag wins) and environment (`BIS_TEST_GC_FAULT`).
    private var nextCoordinator: (arguments: [String], environment: [String: String]) = ([], [:])

    /// What the coordinator's next (re)start adds to its arguments and environment.
    func setNextCoordinator(arguments: [String] = [], environment: [String: String] = [:]) {
        lock.withLock { nextCoordinator = (arguments, environment) }
    }

    init(label: String, options: FleetOptions = FleetOptions()) throws {
        self.label = label
        self.options = options
        amqpURL = try FleetEnvironment.brokerURL()
        bisPath = try FleetEnvironment.executable("bis")
        workerPath = try FleetEnvironment.executable("bis-worker")
        _ = try FleetEnvironment.python.python()
        namespace = "t" + randomHex()
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("bis-fleet-\(label)-\(randomHex(6))").path
        dataRoot = dir + "/root"
        db = dir + "/store/bis.db"
        logs = dir + "/logs"
        for d in [dir, dataRoot, dir + "/store", logs] {
            try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        }
        let generated = try FleetData.writeInputs(to: dir)
        inputs = generated.files
        dirty = generated.dirty
        port = try freePort()
        slots = options.workers.map { Slot(spec: $0) }
    }

    // MARK: - Specs

    /// Writes `dir/<pipeline>.yml` and returns its path.
    func writeSpec(pipeline: String, dataset: String, summary: String, approval: String = "none") throws -> String {
        let path = dir + "/\(pipeline).yml"
        try FleetData.spec(pipeline: pipeline, dataset: dataset, summary: summary, approval: approval)
            .write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    // MARK: - Processes

    /// The environment without what could point a process elsewhere.
    private func baseEnvironment() -> [String: String] {
        var env = ProcessInfo.processInfo.environment
        for key in ["BIS_TOKEN", "BIS_AMQP_URL", "BIS_AMQP_PASSWORD", "BIS_FLEET_KEY_FILE", "BIS_DATA_ROOT", "BIS_DB", "BIS_COORDINATOR", "BIS_TEST_FAULT",
                    "BIS_TEST_GC_FAULT"] {
            env[key] = nil
        }
        return env
    }

    /// Starts (or restarts, on the same store, data root and port) the
    /// coordinator and waits until `/healthz` answers.
    func startCoordinator(timeout: Double = 90) async throws {
        try await TestSupport.waitForBroker(amqpURL)
        let n = lock.withLock { () -> Int in coordinatorStarts += 1; return coordinatorStarts }
        let roots = (options.inputRoots ?? [dir]).flatMap { ["--input-root", $0] }
        let args = ["coordinator", "--data-root", dataRoot, "--db", db,
                    "--http", "127.0.0.1:\(port)", "--namespace", namespace] + roots + options.coordinatorArguments
            + lock.withLock { nextCoordinator.arguments }
        var env = baseEnvironment()
        env.merge(lock.withLock { nextCoordinator.environment }) { $1 }
        env["BIS_AMQP_URL"] = amqpURL   // the broker password stays out of the command line (ps)
        let p = try ChildProcess(name: "coordinator", executable: bisPath, arguments: args, environment: env,
                                 stdout: logs + "/coordinator.out", stderr: logs + "/coordinator.log", append: n > 1)
        lock.withLock { coordinator = p }
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if let t = p.termination {
                throw FleetError("the coordinator (start \(n)) ended before answering /healthz: \(t)")
            }
            if await httpGet("/healthz")?.status == 200 { return }
            try await Task.sleep(for: .milliseconds(200))
        }
        throw FleetError("the coordinator did not answer \(address)/healthz within \(Int(timeout)) s")
    }

    /// kill -9 the coordinator.
    func killCoordinator() async {
        let p = lock.withLock { coordinator }
        await p?.kill9()
    }

    /// Stops the coordinator gracefully (SIGTERM), as systemd would.
    func stopCoordinator() async {
        let p = lock.withLock { coordinator }
        await p?.stop(grace: 20)
    }

    var coordinatorProcess: ChildProcess? { lock.withLock { coordinator } }

    /// Starts every worker slot, then waits until the coordinator has heard
    /// a heartbeat from each; starts the supervisor when asked for.
    func startWorkers(timeout: Double = 90) async throws {
        try await TestSupport.waitForBroker(amqpURL)
        let count = lock.withLock { slots.count }
        for i in 0..<count { try spawnWorker(i) }
        try await waitForWorkers(timeout: timeout)
        if options.supervise {
            lock.withLock { supervising = true }
            supervisor = Task { [weak self] in
                while !Task.isCancelled {
                    self?.reviveDeadWorkers()
                    try? await Task.sleep(for: .milliseconds(250))
                }
            }
        }
    }

    private func spawnWorker(_ i: Int) throws {
        let (spec, n) = lock.withLock { () -> (WorkerSpec, Int) in
            slots[i].starts += 1
            return (slots[i].spec, slots[i].starts)
        }
        var env = baseEnvironment()
        env["BIS_AMQP_URL"] = amqpURL
        if let fault = spec.fault, n == 1 || !spec.restartClean { env["BIS_TEST_FAULT"] = fault }
        var args = ["--data-root", dataRoot, "--namespace", namespace, "--concurrency", String(spec.concurrency)]
        if let stages = spec.stages { args += ["--stages", stages] }
        args += options.workerArguments
        let p = try ChildProcess(name: "worker\(i)", executable: workerPath, arguments: args, environment: env,
                                 stdout: logs + "/worker\(i).out", stderr: logs + "/worker\(i).log", append: true)
        if n > 1 {
            appendNote("worker\(i).log", "--- test harness: worker\(i) restarted (start \(n))\(env["BIS_TEST_FAULT"].map { " with BIS_TEST_FAULT=\($0)" } ?? "")")
        }
        lock.withLock { slots[i].process = p }
    }

    private func reviveDeadWorkers() {
        let dead: [Int] = lock.withLock {
            guard supervising else { return [] }
            return slots.indices.filter { slots[$0].process?.termination != nil }
        }
        for i in dead {
            let ended = lock.withLock { slots[i].process?.termination }
            appendNote("worker\(i).log", "--- test harness: worker\(i) ended (\(ended.map { "\($0)" } ?? "?")); the supervisor restarts it")
            try? spawnWorker(i)
        }
    }

    /// Times each worker slot was started (1 = never restarted).
    func workerStarts(_ i: Int) -> Int { lock.withLock { slots[i].starts } }

    func worker(_ i: Int) -> ChildProcess? { lock.withLock { slots[i].process } }

    /// Worker slots so far (replaced workers keep theirs).
    var workerCount: Int { lock.withLock { slots.count } }

    /// Restarts by the supervisor, over every slot.
    var workerRestarts: Int { lock.withLock { slots.reduce(0) { $0 + max(0, $1.starts - 1) } } }

    /// kill -9 worker `i` (the supervisor, if on, restarts it).
    func killWorker(_ i: Int) async {
        await worker(i)?.kill9()
    }

    /// Stops every worker (SIGTERM: they drain) and starts `specs` in their place.
    func replaceWorkers(with specs: [WorkerSpec], timeout: Double = 90) async throws {
        let old: [ChildProcess] = lock.withLock {
            let ps = slots.compactMap(\.process)
            for i in slots.indices { slots[i].process = nil }
            return ps
        }
        for p in old { await p.stop(grace: 40) }
        let first = lock.withLock { () -> Int in
            let n = slots.count
            slots += specs.map { Slot(spec: $0) }
            return n
        }
        for i in first..<(first + specs.count) { try spawnWorker(i) }
        try await waitForWorkers(timeout: timeout)
    }

    /// Until the coordinator lists every live worker process as running.
    func waitForWorkers(timeout: Double = 90) async throws {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            let live = lock.withLock { slots.compactMap(\.process) }
            for p in live {
                if let t = p.termination {
                    throw FleetError("\(p.name) ended while starting: \(t)")
                }
            }
            let pids = Set(live.map(\.pid))
            if let answer = await httpGet("/api/workers"), answer.status == 200,
               let list = try? JSONSerialization.jsonObject(with: answer.body) as? [[String: Any]] {
                let seen = Set(list.compactMap { w -> Int32? in
                    guard (w["state"] as? String) == "running", let pid = w["pid"] as? Int else { return nil }
                    return Int32(pid)
                })
                if pids.isSubset(of: seen) { return }
            }
            if Date() >= deadline {
                throw FleetError("the coordinator did not list workers \(pids.sorted()) as running within \(Int(timeout)) s")
            }
            try await Task.sleep(for: .milliseconds(300))
        }
    }

    /// Ends everything: the supervisor first, then workers and coordinator
    /// (SIGTERM, SIGKILL after a grace).
    func stop() async {
        lock.withLock { supervising = false }
        supervisor?.cancel()
        await supervisor?.value
        let (workers, coord) = lock.withLock { (slots.compactMap(\.process), coordinator) }
        for p in workers { p.signal(SIGTERM) }
        coord?.signal(SIGTERM)
        for p in workers { await p.stop(grace: 10) }
        await coord?.stop(grace: 10)
    }

    /// Removes the folder unless a check failed or BIS_TEST_KEEP_FLEET=1 (then it stays for a look).
    func cleanUp() {
        if lock.withLock({ failed }) || ProcessInfo.processInfo.environment["BIS_TEST_KEEP_FLEET"] == "1" {
            print("fleet test \(label): kept \(dir) for inspection")
        } else {
            try? FileManager.default.removeItem(atPath: dir)
        }
    }

    private func appendNote(_ file: String, _ note: String) {
        guard let h = FileHandle(forWritingAtPath: logs + "/" + file) else { return }
        h.seekToEndOfFile()
        h.write(Data((note + "\n").utf8))
        try? h.close()
    }

    // MARK: - The CLI

    /// Starts `bis ARGS` against this fleet's coordinator.
    func startBis(_ args: [String], environment extra: [String: String] = [:]) throws -> (ChildProcess, [String]) {
        let n = lock.withLock { () -> Int in commands += 1; return commands }
        var env = baseEnvironment()
        env["BIS_COORDINATOR"] = address
        if let token = options.harnessToken { env["BIS_TOKEN"] = token }
        env.merge(extra) { $1 }
        let p = try ChildProcess(name: "bis \(args.first ?? "")", executable: bisPath, arguments: args, environment: env,
                                 stdout: logs + "/cli-\(n).out", stderr: logs + "/cli-\(n).err")
        return (p, args)
    }

    /// Waits for a `bis` command started with `startBis`.
    func finish(_ started: (ChildProcess, [String]), timeout: Double = 180) async throws -> CommandResult {
        let (p, args) = started
        guard let t = await p.wait(seconds: timeout) else {
            await p.kill9()
            throw FleetError("`bis \(args.joined(separator: " "))` did not end within \(Int(timeout)) s\n\(tail(p.stderr, lines: 20))")
        }
        return CommandResult(arguments: args, termination: t, stdout: p.stdout, stderr: p.stderr)
    }

    /// Runs `bis ARGS` to its end.
    func bis(_ args: [String], timeout: Double = 180) async throws -> CommandResult {
        try await finish(try startBis(args), timeout: timeout)
    }

    /// Runs `bis ARGS` to its end with more environment (`BIS_TOKEN`, `BIS_CA_FILE`).
    func bis(_ args: [String], environment: [String: String], timeout: Double = 180) async throws -> CommandResult {
        try await finish(try startBis(args, environment: environment), timeout: timeout)
    }

    /// `bis submit SPEC`: the run id.
    func submit(_ spec: String) async throws -> String {
        let r = try await bis(["submit", spec], timeout: 60)
        guard r.exitCode == 0 else { throw FleetError("submit failed: \(r)") }
        let id = r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !id.isEmpty, !id.contains("\n") else { throw FleetError("submit printed no single run id: \(r)") }
        return id
    }

    /// `bis status RUN --json` (exit 0, or 1 for a failed run).
    func status(_ run: String) async throws -> RunStatus {
        let r = try await bis(["status", run, "--json"], timeout: 60)
        guard r.exitCode == 0 || r.exitCode == 1 else { throw FleetError("status failed: \(r)") }
        do {
            return try JSONDecoder().decode(RunStatus.self, from: Data(r.stdout.utf8))
        } catch {
            throw FleetError("cannot read `bis status --json`'s output (\(error)): \(r)")
        }
    }

    /// Polls `bis status` until `done` holds (default: the run settled).
    /// While the coordinator is down (exit 3) it keeps trying.
    func waitForRun(_ run: String, timeout: Double = 120, poll: Double = 0.5,
                    until done: (RunStatus) -> Bool = { $0.isSettled }) async throws -> RunStatus {
        let deadline = Date().addingTimeInterval(timeout)
        var last: String = "no answer yet"
        while true {
            let r = try await bis(["status", run, "--json"], timeout: 60)
            if r.exitCode == 0 || r.exitCode == 1, let s = try? JSONDecoder().decode(RunStatus.self, from: Data(r.stdout.utf8)) {
                if done(s) { return s }
                last = s.description
            } else {
                last = r.description
            }
            if Date() >= deadline {
                throw FleetError("run \(run): the awaited state did not come within \(Int(timeout)) s; last status:\n\(last)")
            }
            try await Task.sleep(for: .milliseconds(Int(poll * 1000)))
        }
    }

    // MARK: - Checks

    /// DuckDB's view of what `dataset` and `summary` published under the
    /// data root (or `root`), compared with the same pipeline in DuckDB.
    func checkPublished(dataset: String, summary: String, root: String? = nil) throws -> PublishedCheck {
        let r = try FleetEnvironment.python.script(FleetEnvironment.checker,
                                                   ["published", inputs.joined(separator: ","), root ?? dataRoot, dataset, summary])
        guard r.status == 0, let line = r.output.split(separator: "\n").last,
              let check = try? JSONDecoder().decode(PublishedCheck.self, from: Data(line.utf8)) else {
            throw FleetError("check_fleet.py published failed (status \(r.status)):\n\(r.output)")
        }
        return check
    }

    /// Every complete version of `dataset` read back with DuckDB, and its view.sql (check_fleet.py versions).
    func checkVersions(dataset: String) throws -> VersionsCheck {
        let r = try FleetEnvironment.python.script(FleetEnvironment.checker, ["versions", dataRoot, dataset])
        guard r.status == 0, let line = r.output.split(separator: "\n").last,
              let check = try? JSONDecoder().decode(VersionsCheck.self, from: Data(line.utf8)) else {
            throw FleetError("check_fleet.py versions failed (status \(r.status)):\n\(r.output)")
        }
        return check
    }

    /// The lineage store's executions of `run`, per task (read with Python's sqlite3).
    func lineage(_ run: String, db path: String? = nil) throws -> LineageCheck {
        let r = try FleetEnvironment.python.script(FleetEnvironment.checker, ["executions", path ?? db, run])
        guard r.status == 0, let line = r.output.split(separator: "\n").last,
              let check = try? JSONDecoder().decode(LineageCheck.self, from: Data(line.utf8)) else {
            throw FleetError("check_fleet.py executions failed (status \(r.status)):\n\(r.output)")
        }
        return check
    }

    /// The tails of the coordinator's and every worker's stderr.
    func logTails(lines: Int = 40) -> String {
        var out = ["fleet \(label) in \(dir) (namespace \(namespace), coordinator \(address))"]
        let names = ["coordinator.log"] + (lock.withLock { slots.indices.map { "worker\($0).log" } })
        for name in names {
            let text = (try? String(contentsOfFile: logs + "/" + name, encoding: .utf8)) ?? "(nothing)"
            out.append("--- \(name) (last \(lines) lines)\n\(tail(text, lines: lines))")
        }
        return out.joined(separator: "\n")
    }

    /// Records a failure with the fleet's logs.
    func record(_ message: String, sourceLocation: SourceLocation = #_sourceLocation) {
        lock.withLock { failed = true }
        Issue.record(Comment(rawValue: message + "\n" + logTails()), sourceLocation: sourceLocation)
    }

    /// Like `#expect`, with the fleet's logs in the failure.
    @discardableResult
    func check(_ condition: Bool, _ message: @autoclosure () -> String, sourceLocation: SourceLocation = #_sourceLocation) -> Bool {
        if !condition { record(message(), sourceLocation: sourceLocation) }
        return condition
    }

    // MARK: - HTTP

    /// The coordinator's `/metrics` text, nil when it does not answer.
    func metricsText() async -> String? {
        guard let (status, body) = await httpGet("/metrics"), status == 200 else { return nil }
        return String(decoding: body, as: UTF8.self)
    }

    private func httpGet(_ path: String) async -> (status: Int, body: Data)? {
        guard let url = URL(string: address + path) else { return nil }
        var request = URLRequest(url: url)
        request.timeoutInterval = 5
        if let token = options.harnessToken { request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization") }
        guard let (data, response) = try? await URLSession.shared.data(for: request),
              let http = response as? HTTPURLResponse else { return nil }
        return (http.statusCode, data)
    }
}

/// Runs `body` on a fleet started with `options`, records any error it
/// throws with the fleet's logs, and always stops the fleet.
func withFleet(_ label: String, _ options: FleetOptions = FleetOptions(), sourceLocation: SourceLocation = #_sourceLocation,
               _ body: (Fleet) async throws -> Void) async throws {
    let fleet = try Fleet(label: label, options: options)
    do {
        try await fleet.startCoordinator()
        try await fleet.startWorkers()
        try await body(fleet)
    } catch {
        fleet.record("\(error)", sourceLocation: sourceLocation)
    }
    await fleet.stop()
    await FleetEnvironment.deleteQueues(namespace: fleet.namespace)
    fleet.cleanUp()
}
