import CoordinatorAPI
import Hummingbird
import Logging
import ServiceLifecycle

/// The coordinator's HTTP API (see `Routes` for the table of routes) over
/// Hummingbird: the address `bis` talks to (`BIS_COORDINATOR`).
///
/// ```swift
/// let server = CoordinatorServer(service: engine, port: 0, token: env["BIS_TOKEN"], logger: logger)
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
    private let token: String?
    private let hosts: AllowedHosts
    private let logger: Logger
    private let listening = ListeningPort()

    /// - Parameters:
    ///   - host: the address to listen on; the loopback interface unless the
    ///     fleet's hosts must reach it (then set a `token`).
    ///   - token: when set, every POST must carry `Authorization: Bearer <token>`
    ///     (compared in constant time, never logged); GETs stay open.
    ///   - publicHost: the host name clients use when it is not the listen
    ///     address (`--public-url`); requests naming another Host are refused
    ///     (DNS rebinding), see `RequestOriginMiddleware`.
    public init(service: any CoordinatorService, host: String = "127.0.0.1", port: Int = 8470,
                token: String? = nil, publicHost: String? = nil, logger: Logger) {
        self.service = service
        self.host = host
        self.port = port
        self.token = token.flatMap { $0.isEmpty ? nil : $0 }
        self.hosts = AllowedHosts(listenHost: host, publicHost: publicHost)
        self.logger = logger
    }

    /// Serves until the task running it is cancelled or a surrounding
    /// `ServiceGroup` shuts down gracefully. Throws when it cannot listen (the
    /// port is taken, the host is not an address of this machine).
    public func run() async throws {
        let router = Router(context: BasicRequestContext.self)
        router.add(middleware: APIErrorMiddleware(logger: logger))
        router.add(middleware: RequestOriginMiddleware(hosts: hosts))
        router.add(middleware: TokenMiddleware(token: token))
        Routes(service: service).register(on: router)
        let listening = self.listening
        let asked = port
        let app = Application(
            router: router,
            configuration: .init(address: .hostname(host, port: port)),
            onServerRunning: { channel in await listening.bound(channel.localAddress?.port ?? asked) },
            logger: logger
        )
        logger.info("coordinator HTTP API starting", metadata: [
            "http.host": "\(host)", "http.port": "\(port)", "http.token": "\(token == nil ? "none" : "required for POST")",
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
