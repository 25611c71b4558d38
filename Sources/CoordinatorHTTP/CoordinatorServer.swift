import CoordinatorAPI
import FleetMetrics
import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import NIOSSL
import Logging
import ServiceLifecycle

/// The coordinator's HTTP API (see `Routes` for the table of routes) over
/// Hummingbird: the address `bis` talks to (`BIS_COORDINATOR`).
///
/// ```swift
/// let server = CoordinatorServer(service: engine, port: 0, access: try Access.load(path: "auth.txt"), logger: logger)
/// async let serving: Void = server.run()
/// let port = try await server.boundPort()
/// ```
///
/// A `Service`: `bis coordinator` runs it in its one `ServiceGroup` after the
/// engine's services, so a graceful shutdown (SIGTERM) stops the API first.
/// It also stops when the task running it is cancelled (tests do that).
public struct CoordinatorServer: Service {
    public let host: String
    /// The port asked for; 0 lets the system choose one (see `boundPort()`).
    public let port: Int
    private let service: any CoordinatorService
    private let access: Access?
    private let tls: TLSConfiguration?
    private let hosts: AllowedHosts
    private let logger: Logger
    private let listening = ListeningPort()
    private let publicHTTPS: Bool

    /// - Parameters:
    ///   - host: the address to listen on; the loopback interface unless the
    ///     fleet's hosts must reach it (then set a `token`).
    ///   - token: `BIS_TOKEN`: one principal, `admin` (see `Access.singleAdmin`).
    ///     Ignored when `access` is given.
    ///   - access: the principals (`--auth FILE`); with it or a token, every
    ///     route but `/healthz` needs a principal (see `AuthMiddleware`).
    ///   - tls: serve HTTPS only (`--tls-cert`, `--tls-key`; see `tlsConfiguration`).
    ///   - publicHost: the host name clients use when it is not the listen
    ///     address (`--public-url`); requests naming another Host are refused
    ///     (DNS rebinding), see `RequestOriginMiddleware`.
    ///   - publicHTTPS: clients reach it over HTTPS (`--public-url https://…`,
    ///     a TLS proxy in front): the dashboard's session cookie is `Secure`
    ///     then too, as it is when the coordinator serves TLS itself.
    public init(service: any CoordinatorService, host: String = "127.0.0.1", port: Int = 8470,
                token: String? = nil, access: Access? = nil, tls: TLSConfiguration? = nil,
                publicHost: String? = nil, publicHTTPS: Bool = false, logger: Logger) {
        self.publicHTTPS = publicHTTPS
        self.service = service
        self.host = host
        self.port = port
        self.access = access ?? token.flatMap { $0.isEmpty ? nil : Access.singleAdmin(token: $0) }
        self.tls = tls
        self.hosts = AllowedHosts(listenHost: host, publicHost: publicHost)
        self.logger = logger
    }

    /// Serves until the task running it is cancelled or a surrounding
    /// `ServiceGroup` shuts down gracefully. Throws when it cannot listen (the
    /// port is taken, the host is not an address of this machine).
    public func run() async throws {
        let router = Router(context: CoordinatorContext.self)
        // Request counts and durations by route template, method and status
        // (outermost: it sees the status of refused and failed requests too).
        // Recorded through swift-metrics' global factory: the application
        // bootstraps it (`bis coordinator` calls `RequestMetrics.bootstrap()`),
        // never this library; without one they go nowhere.
        router.add(middleware: MetricsMiddleware())
        router.add(middleware: APIErrorMiddleware(logger: logger))
        router.add(middleware: RequestOriginMiddleware(hosts: hosts))
        let sessions = DashboardSessions()
        router.add(middleware: AuthMiddleware(access: access, service: service, logger: logger, sessions: sessions))
        Routes(service: service, access: access, sessions: sessions, secureCookies: tls != nil || publicHTTPS).register(on: router)
        let listening = self.listening
        let asked = port
        let server: HTTPServerBuilder = try tls.map { try .tls(.http1(), tlsConfiguration: $0) } ?? .http1()
        let app = Application(
            router: router,
            server: server,
            configuration: .init(address: .hostname(host, port: port)),
            onServerRunning: { channel in await listening.bound(channel.localAddress?.port ?? asked) },
            logger: logger
        )
        logger.info("coordinator HTTP API starting", metadata: [
            "http.host": "\(host)", "http.port": "\(port)", "http.tls": "\(tls == nil ? "off" : "on")",
            "http.auth": "\(access.map { "\($0.principals.count) principal(s)" } ?? "off")",
        ])
        // Hummingbird's Application runs its own ServiceGroup, which follows
        // the graceful shutdown of the group around us (task-locals reach the
        // unstructured task below). Cancelling the task running this method
        // stops the server as a graceful shutdown would: it stops accepting,
        // answers the requests it has, then returns; hence the task of its
        // own, which cancellation does not reach, and the group around the
        // app, whose graceful shutdown the cancellation handler triggers.
        let group = ServiceGroup(configuration: .init(services: [app], logger: logger))
        let serving = Task { try await group.run() }
        do {
            try await withTaskCancellationHandler {
                try await serving.value
            } onCancel: {
                Task { await group.triggerGracefulShutdown() }
            }
        } catch {
            await listening.failed(error)
            throw error
        }
        await listening.failed(CancellationError())
    }

    /// The port the server listens on, once it does: the one asked for, or the
    /// system's choice when 0 was asked. Waits until `run()` has bound it;
    /// throws `run()`'s error if it could not.
    public func boundPort() async throws -> Int {
        try await listening.port()
    }

    /// The server side of `--tls-cert FILE --tls-key FILE`: the certificate
    /// chain (PEM, the server's first) and its private key (PEM). TLS 1.2 and up.
    public static func tlsConfiguration(certificateFile: String, keyFile: String) throws -> TLSConfiguration {
        let chain = try NIOSSLCertificate.fromPEMFile(certificateFile)
        guard !chain.isEmpty else { throw TLSFileError(message: "\(certificateFile) has no PEM certificate") }
        let key = try NIOSSLPrivateKey(file: keyFile, format: .pem)
        var config = TLSConfiguration.makeServerConfiguration(certificateChain: chain.map { .certificate($0) },
                                                              privateKey: .privateKey(key))
        config.minimumTLSVersion = .tlsv12
        return config
    }
}

struct TLSFileError: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}

/// Where `run()` tells `boundPort()` callers the port, once.
actor ListeningPort {
    private enum State {
        case waiting([CheckedContinuation<Int, any Error>])
        case bound(Int)
        case failed(any Error)
    }
    private var state = State.waiting([])

    func bound(_ port: Int) {
        if case .waiting(let waiters) = state {
            state = .bound(port)
            for w in waiters { w.resume(returning: port) }
        }
    }

    func failed(_ error: any Error) {
        if case .waiting(let waiters) = state {
            state = .failed(error)
            for w in waiters { w.resume(throwing: error) }
        }
    }

    func port() async throws -> Int {
        switch state {
        case .bound(let port): return port
        case .failed(let error): throw error
        case .waiting(let waiters):
            return try await withCheckedThrowingContinuation { c in
                state = .waiting(waiters + [c])
            }
        }
    }
}
