// bis-bench-dispatch: handoffs per second through the real broker. Embeds the
// coordinator engine (lineage store in a temp folder, AMQP transport), starts
// `bis-worker` processes consuming only the `noop` stage, submits a run of N
// no-op tasks and waits until every one is committed. Prints one JSON line
// for ops/bench/dispatch.
//
// Failover (`--kill-node-command CMD`, on a cluster: BIS_AMQP_URL lists every
// node): once a share (`--kill-after`, default 0.3) of the tasks is committed,
// kills the node the coordinator is connected to (N: its position in the URL
// list, from 1) and measures the time from the kill to the first task
// committed after it, as the store records commits (a task's finished_at).
// The kill is a SIGKILL sent from here, to the node's OS pid that `CMD
// ctl-node N eval 'os:getpid().'` gave before the run (so that the clock
// starts at the signal, not at a script's start-up); `CMD kill-node N` then
// makes sure the node is gone. The JSON line then has failover fields too.
import Coordination
import FleetAMQP
import FleetCore
import Foundation
import GRDB
import Logging

func argument(_ name: String) -> String? {
    let args = CommandLine.arguments
    guard let i = args.firstIndex(of: name), i + 1 < args.count else { return nil }
    return args[i + 1]
}

func cpuSeconds(_ who: __rusage_who) -> Double {
    var usage = rusage()
    getrusage(__rusage_who_t(who.rawValue), &usage)
    return Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6
        + Double(usage.ru_stime.tv_sec) + Double(usage.ru_stime.tv_usec) / 1e6
}

// The URL (with its password) from BIS_AMQP_URL, never the command line (ps);
// --amqp only for a URL without a password.
guard let url = argument("--amqp") ?? ProcessInfo.processInfo.environment["BIS_AMQP_URL"] else {
    FileHandle.standardError.write(Data("usage: BIS_AMQP_URL=URL bis-bench-dispatch [--tasks N] [--workers N] [--concurrency N]\n".utf8))
    exit(2)
}
let tasks = Int(argument("--tasks") ?? "") ?? 20_000
let workers = Int(argument("--workers") ?? "") ?? 2
// Tasks in flight per worker: a no-op task spends its time waiting for its result's confirm, so
// like Celery's prefetch (64 per process in ops/bench/dispatch) this is what keeps the pipe full.
let concurrency = Int(argument("--concurrency") ?? "") ?? 64
let killCommand = argument("--kill-node-command")
let killAfter = Double(argument("--kill-after") ?? "") ?? 0.3
let namespace = "bisbench\(UInt16.random(in: 0...UInt16.max))"
let binDir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().path
let dir = FileManager.default.temporaryDirectory.appendingPathComponent("bis-dispatch-\(UUID().uuidString)").path
try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)

var logger = Logger(label: "bis.bench")
logger.logLevel = .warning
// The fleet key the workers find in the same data root.
let fleetKey = try BrokerSecrets.fleetKey(file: nil, dataRoot: dir + "/data").key
let transport = try await AMQPTransport.connect(url: url, key: fleetKey, namespace: namespace, policy: .standard,
                                                connectionName: "bis-bench-dispatch", logger: logger)
let engine = CoordinatorEngine(store: try LineageStore(path: dir + "/bis.db"), transport: transport,
                               chunkStore: ChunkStore(root: dir + "/data"), logger: logger)
try await engine.start()

// Every node's OS pid, asked before the clock starts (rabbitmqctl takes a second).
var nodePIDs: [Int32] = []
if let killCommand {
    for i in 1...url.split(separator: ",").count {
        let out = try runCommand(killCommand, ["ctl-node", String(i), "eval", "os:getpid()."])
        guard let pid = Int32(out.filter(\.isNumber)) else { throw BenchError("no pid for node \(i): \(out)") }
        nodePIDs.append(pid)
    }
}

var processes: [Process] = []
for _ in 0..<workers {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: binDir + "/bis-worker")
    p.arguments = ["--data-root", dir + "/data", "--stages", "noop", "--namespace", namespace,
                   "--concurrency", String(concurrency)]
    var env = ProcessInfo.processInfo.environment
    env["BIS_AMQP_URL"] = url
    p.environment = env
    p.standardOutput = FileHandle.nullDevice
    p.standardError = FileHandle.nullDevice
    try p.run()
    processes.append(p)
}
// SIGTERM (the bench script's Ctrl-C): stop the workers this process started.
signal(SIGTERM, SIG_IGN)
let termination = DispatchSource.makeSignalSource(signal: SIGTERM, queue: .global())
let workerPIDs = processes.map(\.processIdentifier)
termination.setEventHandler {
    for pid in workerPIDs { kill(pid, SIGTERM) }
    exit(143)
}
termination.resume()
// Let the workers connect before the clock starts (both sides get a warm start).
try await Task.sleep(for: .seconds(2))

let cpuBefore = cpuSeconds(RUSAGE_SELF)
let started = ContinuousClock.now
let run = try await engine.submitNoop(tasks: tasks, by: "bench")
let failover: Task<Failover?, Error>? = killCommand.map { command in
    Task {
        try await killAndWatch(command: command, pids: nodePIDs, run: run, dbPath: dir + "/bis.db", tasks: tasks,
                               killAfter: killAfter, urls: url, transport: transport, engine: engine)
    }
}
let view = try await engine.waitUntilSettled(run, poll: .milliseconds(20))
let elapsed = ContinuousClock.now - started
let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
let coordinatorCPU = cpuSeconds(RUSAGE_SELF) - cpuBefore

// The failover's figures: the first commit after the kill, from the store.
var failoverJSON = ""
var failoverError: (any Error)?
do {
    if let failover, let f = try await failover.value {
        let reader = try DatabaseQueue(path: dir + "/bis.db", configuration: readOnly())
        // After the kill and after the coordinator's new connection (a batch of
        // events it had already received may still commit just after the kill).
        let after = max(f.killed, f.reconnected ?? f.killed)
        let first = try reader.read { db in
            try Double.fetchOne(db, sql: "SELECT MIN(finished_at) FROM tasks WHERE run = ? AND finished_at > ?", arguments: [run, after])
        }
        func seconds3(_ x: Double?) -> String { x.map { String(format: "%.3f", $0) } ?? "null" }
        failoverJSON = ", \"killed_node\": \(f.node), \"killed_node_address\": \"\(f.address)\", "
            + "\"committed_at_kill\": \(f.committedAtKill), "
            + "\"coordinator_reconnect_seconds\": \(seconds3(f.reconnected.map { $0 - f.killed })), "
            + "\"failover_seconds\": \(seconds3(first.map { $0 - f.killed })), "
            + "\"worker_nodes\": [\(f.workerNodes.map { "\"\($0)\"" }.joined(separator: ", "))]"
    }
} catch {
    failoverError = error   // reported after the workers are stopped
}

for p in processes { p.terminate() }
for p in processes { p.waitUntilExit() }
let workerCPU = cpuSeconds(RUSAGE_CHILDREN)
await engine.stop()
await transport.deleteQueues()
await transport.close()
try? FileManager.default.removeItem(atPath: dir)

if let failoverError {
    FileHandle.standardError.write(Data("failover: \(failoverError)\n".utf8))
    exit(1)
}
guard view.state == .succeeded else {
    FileHandle.standardError.write(Data("the run did not succeed: \(view.state.rawValue) \(view.message ?? "")\n".utf8))
    // With a failover, the line still says which node was killed (the script starts it again).
    if !failoverJSON.isEmpty {
        let message = String(decoding: try JSONEncoder().encode(view.message ?? view.state.rawValue), as: UTF8.self)
        print("{\"tasks\": \(tasks), \"succeeded\": false, \"message\": \(message)" + failoverJSON + "}")
    }
    exit(1)
}
// Share of one core the coordinator used while the run went on (1.0 = a whole core).
let share = coordinatorCPU / seconds
print(String(format: "{\"tasks\": %d, \"seconds\": %.3f, \"handoffs_per_second\": %.1f, \"coordinator_cpu_seconds\": %.3f, \"coordinator_cpu_share\": %.3f, \"worker_cpu_seconds\": %.3f",
             tasks, seconds, Double(tasks) / seconds, coordinatorCPU, share, workerCPU) + failoverJSON + "}")

struct Failover: Sendable {
    var node: Int
    var address: String
    var committedAtKill: Int
    var workerNodes: [String]
    /// Wall-clock seconds (the store's finished_at clock): the SIGKILL, and when the coordinator
    /// was seen connected again.
    var killed: Double
    var reconnected: Double?
}

func readOnly() -> Configuration {
    var config = Configuration()
    config.readonly = true
    return config
}

func wallSeconds() -> Double { Date().timeIntervalSince1970 }

/// The position (from 1) in BIS_AMQP_URL's list of the node `host:port`.
func nodeIndex(_ node: String, urls: String) -> Int? {
    for (i, u) in urls.split(separator: ",").enumerated() {
        guard let c = URLComponents(string: u.trimmingCharacters(in: .whitespaces)), let host = c.host else { continue }
        let port = c.port ?? (c.scheme == "amqps" ? 5671 : 5672)
        if "\(host):\(port)" == node { return i + 1 }
    }
    return nil
}

/// Waits until `killAfter` of the run's tasks are committed, kills the
/// coordinator's broker node (SIGKILL to `pids[N - 1]`), waits for the
/// coordinator's next connection, then makes sure with `command kill-node N`.
/// Nil when the run ended first.
func killAndWatch(command: String, pids: [Int32], run: String, dbPath: String, tasks: Int, killAfter: Double, urls: String,
                  transport: AMQPTransport, engine: CoordinatorEngine) async throws -> Failover? {
    let reader = try DatabaseQueue(path: dbPath, configuration: readOnly())
    let threshold = Int(Double(tasks) * killAfter)
    var committed = 0
    while committed < threshold {
        try await Task.sleep(for: .milliseconds(10))
        committed = try await reader.read { db in
            try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM tasks WHERE run = ? AND finished_at IS NOT NULL", arguments: [run]) ?? 0
        }
        if committed >= tasks { return nil }
    }
    guard let address = transport.brokerNode, let node = nodeIndex(address, urls: urls) else {
        throw BenchError("the coordinator's broker node \(transport.brokerNode ?? "none") is not one of BIS_AMQP_URL's")
    }
    let workerNodes = (try? await engine.workers().compactMap(\.node)) ?? []
    let reconnects = transport.brokerReconnects
    let killed = wallSeconds()
    guard kill(pids[node - 1], SIGKILL) == 0 else { throw BenchError("kill -9 \(pids[node - 1]) (node \(node)): errno \(errno)") }
    var reconnected: Double?
    let deadline = killed + 120
    while wallSeconds() < deadline {
        if transport.brokerReconnects > reconnects { reconnected = wallSeconds(); break }
        try await Task.sleep(for: .milliseconds(5))
    }
    _ = try runCommand(command, ["kill-node", String(node)])   // makes sure the node's process is gone
    return Failover(node: node, address: address, committedAtKill: committed, workerNodes: workerNodes,
                    killed: killed, reconnected: reconnected)
}

/// Runs `command args`, returns its standard output; throws unless it exits 0.
func runCommand(_ command: String, _ args: [String]) throws -> String {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: command)
    p.arguments = args
    let pipe = Pipe()
    p.standardOutput = pipe
    try p.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    guard p.terminationStatus == 0 else {
        throw BenchError("\(command) \(args.joined(separator: " ")) exited \(p.terminationStatus)")
    }
    return String(decoding: data, as: UTF8.self)
}

struct BenchError: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}
