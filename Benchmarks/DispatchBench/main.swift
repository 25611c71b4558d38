// bis-bench-dispatch: handoffs per second through the real broker. Embeds the
// coordinator engine (lineage store in a temp folder, AMQP transport), starts
// `bis-worker` processes consuming only the `noop` stage, submits a run of N
// no-op tasks and waits until every one is committed. Prints one JSON line
// for ops/bench/dispatch.
import Coordination
import FleetAMQP
import FleetCore
import Foundation
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
let view = try await engine.waitUntilSettled(run, poll: .milliseconds(20))
let elapsed = ContinuousClock.now - started
let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
let coordinatorCPU = cpuSeconds(RUSAGE_SELF) - cpuBefore

for p in processes { p.terminate() }
for p in processes { p.waitUntilExit() }
let workerCPU = cpuSeconds(RUSAGE_CHILDREN)
await engine.stop()
await transport.deleteQueues()
await transport.close()
try? FileManager.default.removeItem(atPath: dir)

guard view.state == .succeeded else {
    FileHandle.standardError.write(Data("the run did not succeed: \(view.state.rawValue) \(view.message ?? "")\n".utf8))
    exit(1)
}
// Share of one core the coordinator used while the run went on (1.0 = a whole core).
let share = coordinatorCPU / seconds
print(String(format: "{\"tasks\": %d, \"seconds\": %.3f, \"handoffs_per_second\": %.1f, \"coordinator_cpu_seconds\": %.3f, \"coordinator_cpu_share\": %.3f, \"worker_cpu_seconds\": %.3f}",
             tasks, seconds, Double(tasks) / seconds, coordinatorCPU, share, workerCPU))
