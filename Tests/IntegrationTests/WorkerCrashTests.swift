import FleetAMQP
import FleetCore
import Foundation
import TestSupport
import Testing

/// The real `bis-worker` process against the private broker.
@Suite(.serialized, .usesBroker, .enabled(if: TestBroker.enabled, "needs the private broker: run ops/test"))
struct WorkerCrashTests {
    static var workerExecutable: String {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().path
        let bundleDir = Bundle.main.bundleURL.deletingLastPathComponent().path
        return [bundleDir + "/bis-worker", root + "/.build/debug/bis-worker"]
            .first { FileManager.default.isExecutableFile(atPath: $0) } ?? root + "/.build/debug/bis-worker"
    }

    /// The fleet key `bis-worker --data-root NSTemporaryDirectory()` reads (and creates when missing).
    static func fleetKey() throws -> FleetKey {
        try BrokerSecrets.fleetKey(file: nil, dataRoot: ChunkStore(root: NSTemporaryDirectory()).root).key
    }

    /// Starts `bis-worker` and waits until it exits.
    func runWorker(url: String, namespace: String, fault: String) async throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Self.workerExecutable)
        p.arguments = ["--data-root", NSTemporaryDirectory(), "--namespace", namespace,
                       "--stages", "noop", "--concurrency", "1"]
        var env = ProcessInfo.processInfo.environment
        env["BIS_AMQP_URL"] = url   // the password stays out of the command line
        env["BIS_TEST_FAULT"] = fault
        p.environment = env
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try await withCheckedThrowingContinuation { (cont: CheckedContinuation<Void, Error>) in
            p.terminationHandler = { _ in cont.resume() }
            do { try p.run() } catch { cont.resume(throwing: error) }
        }
        return p
    }

    /// A worker that dies (SIGKILL) on a task every time: the broker
    /// redelivers it to the next worker until the stage queue's delivery
    /// limit, then the coordinator's inbox gets it as a dead letter.
    @Test func aTaskThatKillsEveryWorkerIsDeadLetteredPastTheDeliveryLimit() async throws {
        guard let url = TestBroker.urlString else { throw TestBroker.Missing(variable: "BIS_TEST_AMQP_URL") }
        let namespace = TestBroker.uniqueName("crash")
        let transport = try await AMQPTransport.connect(url: url, key: try Self.fleetKey(), namespace: namespace,
                                                        connectionName: "bis-tests")
        let task = TaskMessage(run: "crashy-1", stage: .noop, index: 0, attempt: 1, spec: nil)
        try await transport.publishTask(task, delayMilliseconds: 0)

        // deliveryLimit returns, then one more delivery: each kills its worker.
        for _ in 0...RetryPolicy.standard.deliveryLimit {
            let p = try await withTimeout(90, "a worker to crash") {
                try await runWorker(url: url, namespace: namespace, fault: "crash:crashy/noop")
            }
            #expect(p.terminationReason == .uncaughtSignal && p.terminationStatus == SIGKILL)
        }
        let inbox = try await transport.coordinatorInbox(prefetch: 10)
        let (dead, reason) = try await withTimeout(60, "the dead letter") { () -> (TaskMessage?, String) in
            for try await e in inbox {
                try await e.ack()
                if case .deadLetter(let t, let reason) = e.body { return (t, reason) }
            }
            return (nil, "")
        }
        #expect(dead == task)
        #expect(reason.contains("delivery_limit"), "\(reason)")
        await transport.deleteQueues()
        await transport.close()
    }

    /// SIGTERM drains the worker: a `draining` then a `stopped` heartbeat,
    /// and exit status 0.
    @Test func sigtermDrainsTheWorkerWhichExitsZero() async throws {
        guard let url = TestBroker.urlString else { throw TestBroker.Missing(variable: "BIS_TEST_AMQP_URL") }
        let namespace = TestBroker.uniqueName("drain")
        let transport = try await AMQPTransport.connect(url: url, key: try Self.fleetKey(), namespace: namespace,
                                                        connectionName: "bis-tests")
        let inbox = try await transport.coordinatorInbox(prefetch: 10)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Self.workerExecutable)
        p.arguments = ["--data-root", NSTemporaryDirectory(), "--namespace", namespace, "--stages", "noop"]
        var env = ProcessInfo.processInfo.environment
        env["BIS_AMQP_URL"] = url
        p.environment = env
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        let states = try await withTimeout(90, "the worker's heartbeats") { () -> [WorkerHeartbeat.State] in
            var states: [WorkerHeartbeat.State] = []
            for try await e in inbox {
                try await e.ack()
                guard case .heartbeat(let b) = e.body else { continue }
                states.append(b.state)
                if b.state == .running, states.count == 1 { p.terminate() }   // SIGTERM
                if b.state == .stopped { break }
            }
            return states
        }
        #expect(states.contains(.draining) && states.last == .stopped)
        for _ in 0..<3000 where p.isRunning { try await Task.sleep(for: .milliseconds(10)) }
        #expect(p.terminationReason == .exit && p.terminationStatus == 0)
        await transport.deleteQueues()
        await transport.close()
    }
}

/// `bis-worker`'s own checks, before it reaches for the broker.
@Suite struct WorkerCommandTests {
    /// A malformed BIS_TEST_FAULT is a usage error the command reports
    /// (exit 2, naming the entry), found before any broker is dialled.
    @Test func aMalformedTestFaultExitsWith2() async throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: WorkerCrashTests.workerExecutable)
        p.arguments = ["--data-root", NSTemporaryDirectory(), "--connect-timeout", "1"]
        var env = ProcessInfo.processInfo.environment
        env["BIS_AMQP_URL"] = "amqp://guest:guest@127.0.0.1:1/%2F"
        env["BIS_TEST_FAULT"] = "crash:noop,explode:ingest"
        p.environment = env
        let err = Pipe()
        p.standardOutput = FileHandle.nullDevice
        p.standardError = err
        try p.run()
        let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        #expect(p.terminationReason == .exit && p.terminationStatus == 2, "\(stderr)")
        #expect(stderr.contains("BIS_TEST_FAULT entry 'explode:ingest'"), "\(stderr)")
    }
}
