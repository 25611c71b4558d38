import AMQP
import ArgumentParser
import Coordination
import CoordinatorHTTP
import FleetAMQP
import FleetCore
import FleetMetrics
import Foundation
import Logging
import NIOSSL
import ServiceLifecycle

/// `bis coordinator`: the fleet's one coordinator — lineage store, planner,
/// outbox, event intake and the HTTP API the CLI talks to.
struct CoordinatorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "coordinator",
        abstract: "Run the coordinator: plans runs, sends tasks to the workers over RabbitMQ, keeps the lineage store, serves the HTTP API.",
        discussion: """
            Exactly one coordinator per fleet. It can be killed at any moment (kill -9 included) and started \
            again: it resumes every run from its store (--db) and the broker.
            The store must be on local disk (SQLite over NFS is not safe); the data root is the chunk store every \
            worker mounts at the same path.
            Specs and input files are read only under the input roots (--input-root, default the working \
            directory); a submit naming a path outside them is refused with 403.
            Environment: BIS_AMQP_URL (may carry the broker password), BIS_AMQP_PASSWORD, BIS_FLEET_KEY_FILE, \
            BIS_DATA_ROOT, BIS_DB, BIS_LOG_FORMAT, BIS_TOKEN (without --auth: one principal, admin, whose token it is).
            Secrets never go on the command line: a password in --amqp is refused (exit 2).
            The fleet key (every queue message carries an HMAC-SHA256 under it) is --fleet-key-file, or \
            <data root>/fleet.key, created (mode 0600) when missing; every worker must use the same key.
            Auth: with --auth FILE or BIS_TOKEN every route but /healthz needs `Authorization: Bearer TOKEN` \
            (or HTTP Basic NAME:TOKEN): 401 without a principal, 403 when its role does not allow the route. \
            Beyond loopback the coordinator needs both TLS (--tls-cert, --tls-key) and auth, unless --insecure-listen.
            Exit codes: 0 stopped by SIGTERM/SIGINT, 1 a service failed (the HTTP port taken, for one), 2 usage error, \
            3 cannot reach the broker.
            """
    )

    @Option(help: "The broker (amqp:// or amqps://) without a password, or its nodes' URLs comma-separated; default $BIS_AMQP_URL.")
    var amqp: String?

    @Option(help: "A file whose first line is the broker password (else $BIS_AMQP_PASSWORD, else the one in $BIS_AMQP_URL).")
    var amqpPasswordFile: String?

    @Option(help: "The fleet key file, the same on every host (default: $BIS_FLEET_KEY_FILE, else <data root>/fleet.key, created when missing).")
    var fleetKeyFile: String?

    @Option(help: "The chunk store's root, shared with every worker; default $BIS_DATA_ROOT or .bis/data.")
    var dataRoot: String?

    @Option(help: "The lineage store (SQLite, on local disk); default $BIS_DB or <data root>/bis.db.")
    var db: String?

    @Option(help: "Where the HTTP API listens (HOST:PORT).")
    var http: String = "127.0.0.1:8470"

    @Option(help: ArgumentHelp(
        "The URL clients reach the API at, when it is not --http's address (e.g. https://bis.example.com:8470).",
        discussion: "Requests whose Host header names neither --http's address (nor a loopback name, on loopback) "
            + "nor this URL's host are refused with 403: a web page cannot reach the API through DNS rebinding."))
    var publicURL: String?

    @Option(help: ArgumentHelp(
        "A folder submitted specs and their input files must lie under (repeatable; default: the working directory).",
        discussion: "A submit whose spec folder, allowed roots, globs or (without inline text) spec file lie outside "
            + "every input root is refused with 403 before anything there is read; a client's --allow-root may only "
            + "narrow the roots. Symlinks are resolved; each root must exist.",
        valueName: "dir"))
    var inputRoot: [String] = []

    @Option(help: "Most folder entries one submit's globs may look at before the submit is refused.")
    var maxGlobEntries: Int = PipelineSpec.defaultGlobEntryLimit

    @Option(help: ArgumentHelp(
        "The API's principals: one per line, NAME ROLE SHA256-OF-TOKEN (roles viewer, operator, approver, admin).",
        discussion: "Hash a token with: printf %s \"$TOKEN\" | sha256sum. A bad file stops the coordinator (exit 2) "
            + "naming FILE:LINE. With --auth, BIS_TOKEN is not a principal.",
        valueName: "file"))
    var auth: String?

    @Flag(help: "Let /metrics answer without a token (for Prometheus scrapers) when auth is on.")
    var metricsAnonymous = false

    @Flag(help: "Let the principal who submitted a run approve it too (refused by default when auth is on).")
    var allowSelfApproval = false

    @Option(help: ArgumentHelp("Serve the API over HTTPS with this certificate chain (PEM); needs --tls-key.", valueName: "file"))
    var tlsCert: String?

    @Option(help: ArgumentHelp("The private key (PEM) of --tls-cert.", valueName: "file"))
    var tlsKey: String?

    @Flag(help: "Listen beyond loopback without TLS and auth (logged as a warning at start): anyone on the network can act.")
    var insecureListen = false

    @Option(help: "Prefix of the broker's exchanges and queues (several fleets can share a broker).")
    var namespace: String = "bis"

    @Option(help: "CA certificate file for amqps:// (default: the system's trust store).")
    var tlsCA: String?

    @Option(help: "Seconds to keep trying when the broker does not answer at start (then exit 3).")
    var connectTimeout: Double = 30

    @Option(help: "Attempts per task before it fails (the first included).")
    var maxAttempts: Int = RetryPolicy.standard.defaultMaxAttempts

    @Option(help: "Deliveries of one task message before the broker dead-letters it (a worker crashing on it each time).")
    var deliveryLimit: Int = RetryPolicy.standard.deliveryLimit

    @Option(help: ArgumentHelp("Keep a finished run's intermediate chunks (runs/<run>/) this long; a failed run can be "
                               + "retried until then (90s, 15m, 2h, 7d).", valueName: "duration"))
    var keepIntermediate: String = "7d"

    @Option(help: ArgumentHelp("Keep a published version a delivery named for this long, beyond publish.keep.",
                               valueName: "duration"))
    var keepDelivered: String = "30d"

    @Option(help: ArgumentHelp("Keep executions' lineage rows this long (runs, input hashes, versions and the audit "
                               + "log stay).", valueName: "duration"))
    var keepLineage: String = "400d"

    @Option(help: ArgumentHelp("How often the coordinator runs a retention pass by itself (0s: never; bis gc still works).",
                               valueName: "duration"))
    var gcInterval: String = "1h"

    @Option(help: ArgumentHelp("Alert receivers and routes (YAML: receivers by name, routes of pipeline globs and events "
                               + "to receivers); see docs/alerts.md.", valueName: "file"))
    var alerts: String?

    @Option(help: ArgumentHelp("Raise queue_stalled when a stage's tasks wait in the queue this long with no worker taking "
                               + "them (0s: never).", valueName: "duration"))
    var queueStall: String = "15m"

    @Option(help: ArgumentHelp("Raise worker_lost when a worker holding tasks sends no heartbeat for this long.",
                               valueName: "duration"))
    var workerLostAfter: String = "60s"

    @Option(help: ArgumentHelp("How stderr logs are written: text, or json (one object per line, for log shippers; "
                               + "default $BIS_LOG_FORMAT, else text).", valueName: "text|json"))
    var logFormat: String?

    /// The --keep-* and --gc-interval flags, checked.
    func retentionOptions() throws -> Coordination.RetentionOptions {
        func seconds(_ text: String, _ flag: String) throws -> Double {
            guard let s = RetentionDuration.seconds(text) else {
                throw ValidationError("\(flag) '\(text)' is not a duration: a whole number and s, m, h or d (90s, 15m, 2h, 7d)")
            }
            return s
        }
        let interval = try seconds(gcInterval, "--gc-interval")
        return Coordination.RetentionOptions(
            keepIntermediate: try seconds(keepIntermediate, "--keep-intermediate"),
            keepDelivered: try seconds(keepDelivered, "--keep-delivered"),
            keepLineage: try seconds(keepLineage, "--keep-lineage"),
            interval: interval > 0 ? .seconds(interval) : nil)
    }

    /// --alerts, --queue-stall, --worker-lost-after, and the dashboard's address for links.
    func alertOptions(env: [String: String], logger: Logger) throws -> AlertOptions {
        var o = AlertOptions()
        o.environment = env
        guard let stall = RetentionDuration.seconds(queueStall) else {
            throw ValidationError("--queue-stall '\(queueStall)' is not a duration: a whole number and s, m, h or d (90s, 15m)")
        }
        o.queueStallSeconds = stall > 0 ? stall : nil
        guard let lost = RetentionDuration.seconds(workerLostAfter), lost > 0 else {
            throw ValidationError("--worker-lost-after '\(workerLostAfter)' is not a positive duration (60s, 5m)")
        }
        o.workerLostAfterSeconds = lost
        if let alerts {
            do { o.config = try AlertsConfig.load(path: alerts, environment: env) } catch {
                throw ValidationError("bad --alerts file: \(error)")
            }
        }
        o.dashboardBase = publicURL ?? "\(tlsCert == nil ? "http" : "https")://\(http)"
        if let text = env["BIS_TEST_ALERT_FAULT"], !text.isEmpty {
            if let step = AlertFaults.Step(rawValue: text) {
                logger.warning("TEST-ONLY fault injection on: the coordinator kills itself at alert step \(step.rawValue)")
                o.faults = AlertFaults { reached in if reached == step { kill(getpid(), SIGKILL) } }
            } else {
                logger.warning("BIS_TEST_ALERT_FAULT '\(text)' names no step; ignored")
            }
        }
        return o
    }

    func validate() throws {
        _ = try retentionOptions()
        var env = ProcessInfo.processInfo.environment
        env["BIS_TEST_ALERT_FAULT"] = nil   // checked, and logged, once at start
        _ = try alertOptions(env: env, logger: Logger(label: "bis.coordinator"))
        _ = try resolvedLogFormat()
        guard maxAttempts >= 1 else { throw ValidationError("--max-attempts must be at least 1") }
        guard deliveryLimit >= 1 else { throw ValidationError("--delivery-limit must be at least 1") }
        guard maxGlobEntries >= 1 else { throw ValidationError("--max-glob-entries must be at least 1") }
        guard HostPort(http) != nil else { throw ValidationError("--http '\(http)' is not HOST:PORT (e.g. 127.0.0.1:8470)") }
        if let publicURL, URL(string: publicURL)?.host == nil {
            throw ValidationError("--public-url '\(publicURL)' is not a URL with a host (e.g. https://bis.example.com:8470)")
        }
    }

    func run() async throws {
        try resolvedLogFormat().bootstrap()
        let env = ProcessInfo.processInfo.environment
        let logger = Logger(label: "bis.coordinator")
        let hp = HostPort(http)!
        let (access, tls) = try apiSecurity(env: env, host: hp.host, logger: logger)
        let broker: BrokerSecrets.Broker
        do {
            guard let b = try BrokerSecrets.broker(flag: amqp, passwordFile: amqpPasswordFile, environment: env) else {
                printError("no broker: set BIS_AMQP_URL (e.g. amqp://bis:bis@127.0.0.1:5682/%2F, see `ops/broker url`), "
                           + "or pass --amqp URL without a password and the password in BIS_AMQP_PASSWORD or --amqp-password-file")
                throw ExitCode(2)
            }
            broker = b
        } catch let refusal as BrokerSecrets.Refusal {
            printError(refusal.description)
            throw ExitCode(2)
        }
        let cwd = FileManager.default.currentDirectoryPath
        let inputRoots: InputRoots
        do {
            inputRoots = try InputRoots(resolving: inputRoot.isEmpty ? [cwd] : inputRoot, relativeTo: cwd)
        } catch {
            printError("\(error.message) (--input-root)")
            throw ExitCode(2)
        }
        // Like a web server's document root: the working directory unless
        // told otherwise, but never the whole file system by accident (a
        // systemd service starts in /). `--input-root /` says it on purpose.
        if inputRoot.isEmpty, inputRoots.paths == ["/"] {
            printError("no input root: the working directory is /, which would let a submit read any file; "
                       + "pass --input-root DIR (the folders specs and their inputs live in)")
            throw ExitCode(2)
        }
        let url = broker.url
        let root = ChunkStore(root: dataRoot ?? env["BIS_DATA_ROOT"] ?? ".bis/data")
        let fleetKey: FleetKey
        var keyPath = ""
        do {
            try FileManager.default.createDirectory(atPath: root.root, withIntermediateDirectories: true)
            let (key, path, created) = try BrokerSecrets.fleetKey(file: fleetKeyFile, dataRoot: root.root, environment: env)
            fleetKey = key
            keyPath = path
            if created {
                logger.notice("created the fleet key; every worker must read the same file", metadata: ["fleet.key": "\(path)"])
            } else if FleetKey.isShared(file: path) {
                logger.warning("the fleet key file can be read by its group or others; chmod 600 it", metadata: ["fleet.key": "\(path)"])
            }
        } catch {
            printError("fleet key: \(error)")
            throw ExitCode(2)
        }
        let dbPath = db ?? env["BIS_DB"] ?? root.root + "/bis.db"
        let policy = RetryPolicy(defaultMaxAttempts: maxAttempts, deliveryLimit: deliveryLimit)
        let transport: AMQPTransport
        do {
            transport = try await AMQPTransport.connecting(for: connectTimeout, logger: logger) {
                try await AMQPTransport.connect(url: url, key: fleetKey, namespace: namespace, policy: policy,
                                                tls: TLSOptions(caFile: tlsCA), connectionName: "bis-coordinator",
                                                // A task message in flight when the connection drops (a
                                                // broker node lost) goes out again on the next node;
                                                // workers and the commit protocol absorb a duplicate.
                                                resendUnconfirmed: true,
                                                password: broker.password, logger: logger)
            }
        } catch {
            printError("cannot reach the broker at \(redacted(url)): \(error)")
            throw ExitCode(3)
        }
        let store: LineageStore
        do {
            try FileManager.default.createDirectory(atPath: root.root, withIntermediateDirectories: true)
            store = try LineageStore(path: dbPath)
        } catch {
            printError("cannot open the lineage store \(dbPath): \(error)")
            throw ExitCode(2)
        }
        var engineOptions = Coordination.CoordinatorOptions(
            policy: policy, inputRoots: inputRoots, globEntryLimit: maxGlobEntries,
            protectedFiles: [keyPath, dbPath, dbPath + "-wal", dbPath + "-shm", dbPath + "-journal"]
                + [auth, tlsKey, amqpPasswordFile].compactMap { $0 })
        engineOptions.retention = try retentionOptions()
        engineOptions.retention.faults = Self.gcFaults(env: env, logger: logger)
        engineOptions.alerts = try alertOptions(env: env, logger: logger)
        // The alerts file (Slack webhook paths are secrets) and its receivers'
        // HMAC keys: no spec may read them as input.
        engineOptions.protectedFiles += [alerts].compactMap { $0 } + engineOptions.alerts.config.secretFiles
        for file in engineOptions.alerts.config.secretFiles where FleetKey.isShared(file: file) {
            logger.warning("an alert receiver's secret_file can be read by its group or others; chmod 600 it",
                           metadata: ["alerts.secret_file": .string(file)])
        }
        logger.info("alerts", metadata: [
            "alerts.receivers": "\(engineOptions.alerts.config.receivers.values.map { "\($0.name)=\($0.kind.rawValue) \($0.redactedURL)" }.sorted().joined(separator: ", "))",
            "alerts.routes": "\(engineOptions.alerts.config.routes.count)",
        ])
        let engine = CoordinatorEngine(store: store, transport: transport, chunkStore: root, options: engineOptions,
                                       logger: logger)
        // The process' swift-metrics factory, for Hummingbird's request
        // metrics on /metrics: the application's to set, once, before the server.
        RequestMetrics.bootstrap()
        let server = CoordinatorServer(service: engine, host: hp.host, port: hp.port, access: access, tls: tls,
                                       publicHost: publicURL.flatMap { URL(string: $0)?.host },
                                       publicHTTPS: publicURL.flatMap { URL(string: $0)?.scheme?.lowercased() } == "https", logger: logger)
        // One ServiceGroup: event intake, the outbox dispatcher, the ticker,
        // then the HTTP API. SIGTERM or SIGINT shuts them down gracefully in
        // reverse order (the API first); the store is consistent at every
        // commit, and unsent messages go out at the next start.
        let group = ServiceGroup(configuration: .init(
            services: try await engine.services() + [server],
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger))
        logger.info("coordinator up", metadata: [
            "amqp.url": "\(redacted(url))", "data.root": "\(root.root)", "store": "\(dbPath)",
            "http": "\(tls == nil ? "http" : "https")://\(hp.host):\(hp.port)",
            "http.auth": "\(access.map { "\($0.principals.count) principal(s)" } ?? "off: anyone who reaches the port may act")",
            "input.roots": "\(inputRoots.paths.joined(separator: ", "))",
        ])
        do {
            try await group.run()
        } catch {
            logger.error("the coordinator stopped on an error", metadata: ["error": "\(error)"])
            await transport.close()
            throw ExitCode(1)
        }
        logger.info("stopped: the store is consistent at every commit; unsent messages go out at the next start")
        await transport.close()
    }
}

extension CoordinatorCommand {
    /// TEST-ONLY: `BIS_TEST_GC_FAULT=STEP` (`candidates-listed`, `intent-recorded`,
    /// `version-unlinked`, `files-removed`) kills the coordinator with
    /// SIGKILL whenever a retention pass reaches that step, as a crash there
    /// would: every time, so a coordinator restarted with it set dies again
    /// at the next pass (tests restart it without). Never set it in production.
    static func gcFaults(env: [String: String], logger: Logger) -> GCFaults {
        guard let text = env["BIS_TEST_GC_FAULT"], !text.isEmpty else { return .none }
        guard let step = GCFaults.Step(rawValue: text) else {
            logger.warning("BIS_TEST_GC_FAULT '\(text)' names no step; ignored")
            return .none
        }
        logger.warning("TEST-ONLY fault injection on: the coordinator kills itself at gc step \(step.rawValue)")
        return GCFaults { reached, _ in
            if reached == step { kill(getpid(), SIGKILL) }
        }
    }

    /// The API's principals and TLS, from the flags and BIS_TOKEN; refuses
    /// (exit 2) a bad --auth file, a half-given TLS pair, and a listener
    /// beyond loopback without both TLS and auth unless --insecure-listen.
    func apiSecurity(env: [String: String], host: String, logger: Logger) throws -> (Access?, TLSConfiguration?) {
        var access: Access?
        if let auth {
            do { access = try Access.load(path: auth) } catch {
                printError("bad --auth file: \(error)")
                throw ExitCode(2)
            }
            if env["BIS_TOKEN"].map({ !$0.isEmpty }) == true {
                logger.notice("BIS_TOKEN is set but --auth is given: BIS_TOKEN is not a principal of this coordinator")
            }
        } else if let token = env["BIS_TOKEN"], !token.isEmpty {
            access = Access.singleAdmin(token: token)
        }
        access?.metricsAnonymous = metricsAnonymous
        access?.allowSelfApproval = allowSelfApproval
        if access == nil, metricsAnonymous || allowSelfApproval {
            logger.notice("--metrics-anonymous and --allow-self-approval change nothing without auth (--auth or BIS_TOKEN)")
        }

        var tls: TLSConfiguration?
        switch (tlsCert, tlsKey) {
        case (nil, nil): break
        case (let cert?, let key?):
            do { tls = try CoordinatorServer.tlsConfiguration(certificateFile: cert, keyFile: key) } catch {
                printError("cannot use --tls-cert \(cert) with --tls-key \(key): \(error)")
                throw ExitCode(2)
            }
        default:
            printError("--tls-cert and --tls-key go together: give both files (PEM)")
            throw ExitCode(2)
        }

        if !Self.isLoopback(host) {
            var missing: [String] = []
            if tls == nil { missing.append("TLS (--tls-cert FILE --tls-key FILE)") }
            if access == nil { missing.append("auth (--auth FILE or BIS_TOKEN)") }
            if !missing.isEmpty {
                if insecureListen {
                    let what = missing.joined(separator: " and ")
                    logger.warning("""
                        INSECURE: the HTTP API listens on \(host), beyond loopback, without \(what) (--insecure-listen): \
                        anyone who reaches the port can read and act, tokens and data cross the network in the clear
                        """)
                } else {
                    printError("--http \(http) listens beyond loopback without " + missing.joined(separator: " and ")
                               + ": give them, listen on 127.0.0.1, or pass --insecure-listen to accept the risk")
                    throw ExitCode(2)
                }
            }
        }
        return (access, tls)
    }

    /// 127.0.0.0/8, ::1, localhost.
    static func isLoopback(_ host: String) -> Bool {
        let h = host.lowercased().trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
        let octets = h.split(separator: ".", omittingEmptySubsequences: false)
        let v4Loopback = octets.count == 4 && octets[0] == "127" && octets.allSatisfy { UInt8($0) != nil }
        return h == "localhost" || h == "::1" || v4Loopback
    }
}

/// `host:port`.
struct HostPort {
    let host: String
    let port: Int
    init?(_ text: String) {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (0...65535).contains(port) else {
            return nil
        }
        host = String(text[..<colon])
        self.port = port
        if host.isEmpty { return nil }
    }
}

/// An AMQP URL without its password, for messages.
func redacted(_ url: String) -> String {
    (try? AMQPURL.list(url).map(\.description).joined(separator: ",")) ?? "<the broker URL>"
}

extension CoordinatorCommand {
    /// --log-format, else $BIS_LOG_FORMAT, else text; a bad name is a usage error (exit 2).
    func resolvedLogFormat() throws -> LogFormat {
        do {
            return try LogFormat.resolve(flag: logFormat, environment: ProcessInfo.processInfo.environment)
        } catch {
            throw ValidationError(error.description)
        }
    }
}
