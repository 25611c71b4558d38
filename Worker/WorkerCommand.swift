#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import AMQP
import ArgumentParser
import FleetAMQP
import FleetCore
import Foundation
import Logging
import ServiceLifecycle
import WorkerRuntime

@main
struct WorkerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bis-worker",
        abstract: "A stateless BIS Fleet worker: consumes stage tasks from RabbitMQ and executes them.",
        discussion: """
            SIGTERM or SIGINT drains the worker: it takes no new task, lets running ones finish \
            (30 s at most), hands the rest back to the broker and exits 0.
            Environment: BIS_AMQP_URL (may carry the broker password), BIS_AMQP_PASSWORD, BIS_FLEET_KEY_FILE, BIS_DATA_ROOT, BIS_LOG_FORMAT. \
            A password in --amqp is refused (exit 2): it would show in ps.
            The fleet key must be the coordinator's: --fleet-key-file, or <data root>/fleet.key (created when missing).
            Exit codes: 0 stopped, 1 an execution past its stage's timeout did not stop within --timeout-grace, \
            2 usage error (a bad BIS_TEST_FAULT, a password in --amqp, a bad fleet key too), 3 cannot reach the broker.
            """,
        version: FleetVersion.string
    )

    /// Usage errors exit 2 (DESIGN.md's exit codes), not ArgumentParser's 64.
    static func main() async {
        do {
            var worker = try parse(nil)
            try await worker.run()
        } catch let error where exitCode(for: error) == .validationFailure {
            FileHandle.standardError.write(Data((fullMessage(for: error) + "\n").utf8))
            Foundation.exit(2)
        } catch {
            exit(withError: error)
        }
    }

    @Option(help: "The broker URL, amqp:// or amqps://, without a password, or its nodes' URLs comma-separated (default: $BIS_AMQP_URL).")
    var amqp: String?

    @Option(help: "A file whose first line is the broker password (else $BIS_AMQP_PASSWORD, else the one in $BIS_AMQP_URL).")
    var amqpPasswordFile: String?

    @Option(help: "The fleet key file, the coordinator's (default: $BIS_FLEET_KEY_FILE, else <data root>/fleet.key, created when missing).")
    var fleetKeyFile: String?

    @Option(help: "The chunk store root every host mounts at the same path (default: $BIS_DATA_ROOT).")
    var dataRoot: String?

    @Option(help: "Tasks executed at once (default: the active processor count).")
    var concurrency: Int?

    @Option(help: "Comma-separated stages this worker takes (default: all, noop included).")
    var stages: String?

    @Option(help: "The topology's name prefix.")
    var namespace: String = "bis"

    @Option(help: "A CA file to verify the broker's TLS certificate (amqps://).")
    var tlsCA: String?

    @Option(help: "Seconds to keep trying when the broker does not answer at start (then exit 3).")
    var connectTimeout: Double = 30

    @Option(help: ArgumentHelp(
        "The AMQP heartbeat in seconds (0 turns it off; default 30).",
        discussion: "The broker drops a worker silent for about two intervals (a dead host, a cut link) "
            + "and gives its unfinished tasks to other workers; the lower non-zero value of worker and broker wins.",
        valueName: "seconds"))
    var heartbeat: Int?

    @Option(help: ArgumentHelp(
        "Deliveries of one task message before the broker dead-letters it; give the coordinator's --delivery-limit.",
        discussion: "Coordinator and workers both declare the stage queues, and RabbitMQ refuses (406 "
            + "PRECONDITION_FAILED) a queue declared again with another x-delivery-limit."))
    var deliveryLimit: Int = RetryPolicy.standard.deliveryLimit

    @Option(help: ArgumentHelp(
        "Seconds an execution past its stage's timeout (spec timeouts:) gets to stop before the worker exits.",
        discussion: "Operators stop between batches; for one that has not returned by then the worker reports the execution "
            + "timed out (the coordinator retries it), hands back its other tasks and exits 1, so that systemd restarts it.",
        valueName: "seconds"))
    var timeoutGrace: Double = 30

    @Option(help: ArgumentHelp("How stderr logs are written: text, or json (one object per line, for log shippers; "
                               + "default $BIS_LOG_FORMAT, else text).", valueName: "text|json"))
    var logFormat: String?

    func validate() throws {
        if let concurrency, concurrency < 1 { throw ValidationError("--concurrency \(concurrency): at least 1") }
        if let heartbeat, heartbeat < 0 { throw ValidationError("--heartbeat \(heartbeat): 0 (off) or more seconds") }
        if deliveryLimit < 1 { throw ValidationError("--delivery-limit \(deliveryLimit): at least 1") }
        if !(timeoutGrace >= 0) { throw ValidationError("--timeout-grace \(timeoutGrace): 0 or more seconds") }
        if amqp == nil && (ProcessInfo.processInfo.environment["BIS_AMQP_URL"] ?? "").isEmpty {
            throw ValidationError("give the broker with BIS_AMQP_URL, or --amqp URL without a password")
        }
        if root == nil { throw ValidationError("give the data root with --data-root DIR or BIS_DATA_ROOT") }
        _ = try stageList()
        _ = try resolvedLogFormat()
    }

    /// --log-format, else $BIS_LOG_FORMAT, else text; a bad name is a usage error (exit 2).
    func resolvedLogFormat() throws -> LogFormat {
        do {
            return try LogFormat.resolve(flag: logFormat, environment: ProcessInfo.processInfo.environment)
        } catch {
            throw ValidationError(error.description)
        }
    }

    var root: String? { dataRoot ?? ProcessInfo.processInfo.environment["BIS_DATA_ROOT"] }

    func stageList() throws -> [Stage] {
        guard let stages else { return Stage.allCases }
        return try stages.split(separator: ",").map { name in
            guard let s = Stage(rawValue: String(name).trimmingCharacters(in: .whitespaces)) else {
                throw ValidationError("--stages: no stage '\(name)'; stages are \(Stage.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            return s
        }
    }

    func run() async throws {
        ProcessResources.boundHeapRetention()
        try resolvedLogFormat().bootstrap()
        var logger = Logger(label: "bis.worker")
        logger.logLevel = .info
        let broker: BrokerSecrets.Broker
        do {
            guard let b = try BrokerSecrets.broker(flag: amqp, passwordFile: amqpPasswordFile) else {
                throw BrokerSecrets.Refusal("give the broker with BIS_AMQP_URL, or --amqp URL without a password")
            }
            broker = b
        } catch {
            FileHandle.standardError.write(Data("bis-worker: \(error)\n".utf8))
            throw ExitCode(2)
        }
        let url = broker.url
        let fleetKey: FleetKey
        do {
            try? FileManager.default.createDirectory(atPath: root!, withIntermediateDirectories: true)
            let (key, path, created) = try BrokerSecrets.fleetKey(file: fleetKeyFile, dataRoot: ChunkStore(root: root!).root)
            fleetKey = key
            if created {
                logger.notice("created the fleet key; the coordinator and every worker must read the same file", metadata: ["fleet.key": .string(path)])
            } else if FleetKey.isShared(file: path) {
                logger.warning("the fleet key file can be read by its group or others; chmod 600 it", metadata: ["fleet.key": .string(path)])
            }
        } catch {
            FileHandle.standardError.write(Data("bis-worker: fleet key: \(error)\n".utf8))
            throw ExitCode(2)
        }
        // TEST-ONLY fault injection (see FaultSwitch), wired here alone: a
        // crash rule kills this process as a real crash would.
        let fault: FaultSwitch?
        do {
            fault = try FaultSwitch.fromEnvironment(crash: { kill(getpid(), SIGKILL) })
        } catch {
            FileHandle.standardError.write(Data("bis-worker: \(error.message)\n".utf8))
            throw ExitCode(2)
        }
        let transport: AMQPTransport
        do {
            // resendUnconfirmed: a result in flight when the connection drops
            // (a cut link) goes out again once it is back, rather than being
            // lost; the coordinator records it (as a duplicate if the task was
            // redone meanwhile). Events are idempotent by execution id.
            transport = try await AMQPTransport.connecting(for: connectTimeout, logger: logger) {
                try await AMQPTransport.connect(url: url, key: fleetKey, namespace: namespace,
                                                policy: RetryPolicy(deliveryLimit: deliveryLimit),
                                                tls: TLSOptions(caFile: tlsCA),
                                                connectionName: "bis-worker \(ProcessInfo.processInfo.hostName)",
                                                heartbeat: heartbeat, resendUnconfirmed: true, password: broker.password,
                                                logger: logger)
            }
        } catch {
            FileHandle.standardError.write(Data("bis-worker: cannot reach the broker at \(AMQPURL.redact(url)): \(error)\n".utf8))
            throw ExitCode(3)
        }
        let worker = FleetWorker(transport: transport, chunkStore: ChunkStore(root: root!), stages: try stageList(),
                                 concurrency: concurrency ?? ProcessInfo.processInfo.activeProcessorCount, fault: fault,
                                 logger: logger, timeoutGrace: .milliseconds(Int64(max(0, timeoutGrace) * 1000)),
                                 onHang: { Foundation.exit(1) })
        logger.info("connected", metadata: ["amqp.url": .string(AMQPURL.redact(url)), "data.root": .string(root!)])

        // SIGTERM and SIGINT shut the group down gracefully, which drains the
        // worker; the group ends when the worker's run returns.
        let group = ServiceGroup(configuration: ServiceGroupConfiguration(
            services: [.init(service: worker, successTerminationBehavior: .gracefullyShutdownGroup,
                             failureTerminationBehavior: .gracefullyShutdownGroup)],
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger))
        do {
            try await group.run()
        } catch {
            logger.error("the worker stopped on an error", metadata: ["error": "\(error)"])
            await transport.close()
            throw ExitCode(3)
        }
        await transport.close()
    }
}
