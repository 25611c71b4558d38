import CoordinatorAPI
import FleetWire
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// The `bis` side of the coordinator's HTTP API (see `CoordinatorHTTP.Routes`).
struct CoordinatorClient: Sendable {
    static let defaultAddress = "http://127.0.0.1:8470"

    /// The address as the user gave it, without a trailing slash: error messages show it.
    let address: String
    let token: String?
    /// CA certificates (PEM) that verify an https:// coordinator (`BIS_CA_FILE`); nil: the system's.
    let caFile: String?
    private let base: URL

    /// `address` may omit the scheme (`127.0.0.1:8470`, as `bis coordinator --http` takes it).
    init(address: String, token: String?, caFile: String? = nil) throws(ClientError) {
        var text = address.trimmingCharacters(in: .whitespaces)
        while text.hasSuffix("/") { text.removeLast() }
        if !text.contains("://") { text = "http://" + text }
        guard let url = URL(string: text), let scheme = url.scheme, ["http", "https"].contains(scheme.lowercased()),
              url.host != nil
        else {
            throw .usage("'\(address)' is not a coordinator address; give one like \(Self.defaultAddress) "
                         + "(BIS_COORDINATOR or --coordinator)")
        }
        self.address = text
        self.base = url
        self.token = token.flatMap { $0.isEmpty ? nil : $0 }
        self.caFile = caFile
        if let caFile, !FileManager.default.isReadableFile(atPath: caFile) {
            throw .usage("BIS_CA_FILE names \(caFile), which cannot be read; give the PEM file of the CA that signed "
                         + "the coordinator's certificate")
        }
    }

    func submit(_ request: SubmitRequest) async throws(ClientError) -> RunView {
        try await send("POST", "/api/runs", body: request)
    }

    func runs(limit: Int) async throws(ClientError) -> [RunView] {
        try await send("GET", "/api/runs?limit=\(limit)")
    }

    func run(_ id: String) async throws(ClientError) -> RunView {
        try await send("GET", "/api/runs/\(Self.escape(id))")
    }

    func act(_ action: RunAction, on id: String, by: String) async throws(ClientError) -> RunView {
        try await send("POST", "/api/runs/\(Self.escape(id))/\(action.rawValue)", body: ActionRequest(by: by))
    }

    func workers() async throws(ClientError) -> [WorkerView] {
        try await send("GET", "/api/workers")
    }

    func quarantine(_ run: String, rule: String?, limit: Int) async throws(ClientError) -> [QuarantinedRow] {
        var path = "/api/runs/\(Self.escape(run))/quarantine?limit=\(limit)"
        if let rule { path += "&rule=" + Self.escapeQuery(rule) }
        return try await send("GET", path)
    }

    func lineageTrace(_ target: String) async throws(ClientError) -> LineageNode {
        try await send("GET", "/api/lineage/trace?target=" + Self.escapeQuery(target))
    }

    func lineageImpact(_ file: String) async throws(ClientError) -> ImpactReport {
        try await send("GET", "/api/lineage/impact?file=" + Self.escapeQuery(file))
    }

    func openLineage(_ run: String) async throws(ClientError) -> [OpenLineageEvent] {
        try await send("GET", "/api/runs/\(Self.escape(run))/openlineage")
    }

    func datasets() async throws(ClientError) -> [DatasetView] {
        try await send("GET", "/api/datasets")
    }

    func dataset(_ name: String) async throws(ClientError) -> DatasetDetail {
        try await send("GET", "/api/datasets/\(Self.escape(name))")
    }

    func rollback(_ name: String, to run: String, by: String) async throws(ClientError) -> RollbackResult {
        try await send("POST", "/api/datasets/\(Self.escape(name))/rollback", body: RollbackRequest(to: run, by: by))
    }

    func whoami() async throws(ClientError) -> WhoAmI {
        try await send("GET", "/api/whoami")
    }

    func audit(run: String?, limit: Int) async throws(ClientError) -> [AuditEntry] {
        var path = "/api/audit?limit=\(limit)"
        if let run { path += "&run=" + Self.escapeQuery(run) }
        return try await send("GET", path)
    }

    /// `bis alerts`, `bis status RUN`: the alerts raised and their deliveries.
    func alerts(run: String?, limit: Int) async throws(ClientError) -> [AlertView] {
        var path = "/api/alerts?limit=\(limit)"
        if let run { path += "&run=" + Self.escapeQuery(run) }
        return try await send("GET", path)
    }

    /// `bis gc`: a dry run reads (`GET`), a real pass acts (`POST`).
    func gc(dryRun: Bool, by: String) async throws(ClientError) -> GCReport {
        dryRun ? try await send("GET", "/api/gc") : try await send("POST", "/api/gc", body: ActionRequest(by: by))
    }

    // Registered pipelines (PipelineCommands.swift).

    func addPipeline(_ request: PipelineAddRequest) async throws(ClientError) -> PipelineAddResult {
        try await send("POST", "/api/pipelines", body: request)
    }

    func pipelines() async throws(ClientError) -> [PipelineView] {
        try await send("GET", "/api/pipelines")
    }

    func pipeline(_ name: String, version: Int?) async throws(ClientError) -> PipelineDetail {
        try await send("GET", "/api/pipelines/\(Self.escape(name))" + (version.map { "?version=\($0)" } ?? ""))
    }

    func changePipeline(_ name: String, _ change: PipelineChange, by: String) async throws(ClientError) -> PipelineView {
        try await send("POST", "/api/pipelines/\(Self.escape(name))/\(change.rawValue)", body: ActionRequest(by: by))
    }

    func trigger(_ name: String, _ request: TriggerRequest) async throws(ClientError) -> RunView {
        try await send("POST", "/api/pipelines/\(Self.escape(name))/trigger", body: request)
    }

    func backfill(_ name: String, _ request: BackfillRequest) async throws(ClientError) -> BackfillView {
        try await send("POST", "/api/pipelines/\(Self.escape(name))/backfill", body: request)
    }

    func backfillView(_ id: String) async throws(ClientError) -> BackfillView {
        try await send("GET", "/api/backfills/\(Self.escape(id))")
    }

    func cancelBackfill(_ id: String, by: String) async throws(ClientError) -> BackfillView {
        try await send("POST", "/api/backfills/\(Self.escape(id))/cancel", body: ActionRequest(by: by))
    }

    /// A query value: everything but unreserved characters and `/` percent-encoded
    /// (a space as %20, never `+`, which the server keeps as it is).
    private static func escapeQuery(_ value: String) -> String {
        let allowed = CharacterSet(charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~/")
        return value.addingPercentEncoding(withAllowedCharacters: allowed) ?? value
    }

    private static func escape(_ id: String) -> String {
        id.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(CharacterSet(charactersIn: "/"))) ?? id
    }

    private func send<T: Decodable>(_ method: String, _ path: String) async throws(ClientError) -> T {
        try await send(method, path, body: Optional<ActionRequest>.none)
    }

    private func send<B: Encodable, T: Decodable>(_ method: String, _ path: String, body: B?) async throws(ClientError) -> T {
        guard let url = URL(string: address + path) else { throw .usage("cannot make a URL of \(address + path)") }
        var request = URLRequest(url: url)
        request.httpMethod = method
        request.timeoutInterval = 30
        request.setValue("application/json", forHTTPHeaderField: "Accept")
        if let body {
            do { request.httpBody = try APICoding.encoder().encode(body) } catch { throw .badResponse("cannot encode the request: \(error)") }
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        }
        if let token { request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization") }

        let data: Data, statusCode: Int
        if base.scheme?.lowercased() == "https" {
            // URLSession on Linux cannot take a CA file (libcurl's CAINFO is set
            // from the environment on Android only): HTTPS goes through NIOSSL.
            do {
                (statusCode, data) = try await HTTPSClient.send(request, caFile: caFile)
            } catch let error as HTTPSClient.Failure {
                switch error {
                case .tls(let reason): throw .tls(address, reason)
                case .connect: throw .unreachable(address)
                case .badAnswer(let reason): throw .badResponse("\(address) answered what bis cannot read: \(reason)")
                }
            } catch {
                throw .unreachable(address)
            }
        } else {
            let response: URLResponse
            do {
                (data, response) = try await URLSession.shared.data(for: request)
            } catch {
                throw .unreachable(address)
            }
            guard let http = response as? HTTPURLResponse else { throw .badResponse("the answer is not HTTP") }
            statusCode = http.statusCode
        }
        guard (200..<300).contains(statusCode) else {
            let message = (try? APICoding.decoder().decode(APICoding.ErrorBody.self, from: data))?.error
                ?? String(decoding: data.prefix(500), as: UTF8.self)
            if statusCode == 401, token != nil {
                throw .status(401, "the coordinator at \(address) refused the token in BIS_TOKEN: "
                              + "set it to your principal's token (or the coordinator's BIS_TOKEN)")
            }
            throw .status(statusCode, message)
        }
        do {
            return try APICoding.decoder().decode(T.self, from: data)
        } catch {
            throw .badResponse("\(address)\(path) answered what bis cannot read (\(APICoding.explain(error, decoding: "\(T.self)"))); "
                               + "is the coordinator the same version as bis \(FleetVersion.string)?")
        }
    }
}

enum RunAction: String, CaseIterable, Sendable {
    case approve, retry, cancel
}

/// Why a call to the coordinator did not give an answer, and the exit code
/// each deserves (DESIGN.md: 1 run failed or refused, 2 usage, 3 unreachable;
/// issue 12: 4 refused by auth, 401/403).
/// Re-reads a run for `bis status --watch` and `bis submit --wait`, riding
/// out a coordinator that stops answering (restarted, say) for up to
/// `reconnectSeconds`: the run goes on without bis.
struct RunPoller {
    let client: CoordinatorClient
    let options: CoordinatorOptions
    let reconnectSeconds: Double
    let pollSeconds: Double
    private var lostSince: ContinuousClock.Instant?

    init(client: CoordinatorClient, options: CoordinatorOptions, reconnectSeconds: Double, pollSeconds: Double) {
        self.client = client
        self.options = options
        self.reconnectSeconds = reconnectSeconds
        self.pollSeconds = pollSeconds
    }

    /// Waits one poll interval, then the run's view again.
    mutating func next(_ view: RunView) async throws -> RunView {
        while true {
            try await Task.sleep(for: .milliseconds(Int(pollSeconds * 1000)))
            do {
                let fresh = try await client.run(view.id)
                if lostSince != nil { printNote("reached the coordinator at \(client.address) again") }
                lostSince = nil
                return fresh
            } catch {
                if case .unreachable = error {
                    let now = ContinuousClock.now
                    if lostSince == nil {
                        printNote("lost the coordinator at \(client.address); trying again for "
                                  + "\(humanDuration(reconnectSeconds)) (the run goes on without bis)")
                    }
                    let since = lostSince ?? now
                    lostSince = since
                    if now - since < .milliseconds(Int(reconnectSeconds * 1000)) { continue }
                }
                throw options.exit(for: error, run: view.id)
            }
        }
    }
}

enum ClientError: Error, Sendable {
    /// Nothing answered at the address (refused, timed out, no such host).
    case unreachable(String)
    /// The coordinator's certificate did not verify (address, reason).
    case tls(String, String)
    /// The coordinator answered with an error status and message.
    case status(Int, String)
    /// A bad address or option.
    case usage(String)
    /// It answered something bis cannot read.
    case badResponse(String)
}
