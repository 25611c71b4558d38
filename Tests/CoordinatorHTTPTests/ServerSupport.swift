import Coordination
import CoordinatorHTTP
import FleetMetrics
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Logging

/// A `CoordinatorServer` on a port the system chose, over a fake service,
/// for the length of `body`.
func withServer<T: Sendable>(
    token: String? = nil,
    access: Access? = nil,
    _ body: @Sendable (FakeCoordinatorService, HTTPClient) async throws -> T
) async throws -> T {
    RequestMetrics.bootstrap()   // as `bis coordinator` does (the server library never does)
    let fake = FakeCoordinatorService()
    var logger = Logger(label: "test.http")
    logger.logLevel = .critical
    let server = CoordinatorServer(service: fake, port: 0, token: token, access: access, logger: logger)
    let serving = Task { try await server.run() }
    defer { serving.cancel() }
    let port = try await server.boundPort()
    return try await body(fake, HTTPClient(base: "http://127.0.0.1:\(port)"))
}

/// Plain URLSession calls, as any client would make them.
struct HTTPClient: Sendable {
    let base: String

    struct Answer {
        let status: Int
        let data: Data
        let contentType: String?
        var wwwAuthenticate: String? = nil
        var text: String { String(decoding: data, as: UTF8.self) }
        func json() throws -> Any { try JSONSerialization.jsonObject(with: data) }
        var object: [String: Any]? { try? json() as? [String: Any] }
        var error: String? { object?["error"] as? String }
        func decode<T: Decodable>(_ type: T.Type) throws -> T { try APICoding.decoder().decode(type, from: data) }
    }

    func get(_ path: String) async throws -> Answer { try await send("GET", path, body: nil) }

    func post(_ path: String, json: some Encodable, token: String? = nil) async throws -> Answer {
        try await send("POST", path, body: try APICoding.encoder().encode(json), token: token)
    }

    func post(_ path: String, raw: String, token: String? = nil) async throws -> Answer {
        try await send("POST", path, body: Data(raw.utf8), token: token)
    }

    func send(_ method: String, _ path: String, body: Data?, token: String? = nil, authorization: String? = nil) async throws -> Answer {
        var request = URLRequest(url: URL(string: base + path)!)
        request.httpMethod = method
        request.httpBody = body
        if body != nil { request.setValue("application/json", forHTTPHeaderField: "Content-Type") }
        if let token { request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization") }
        if let authorization { request.setValue(authorization, forHTTPHeaderField: "Authorization") }
        let (data, response) = try await URLSession.shared.data(for: request)
        let http = response as! HTTPURLResponse
        return Answer(status: http.statusCode, data: data, contentType: http.value(forHTTPHeaderField: "Content-Type"),
                      wwwAuthenticate: http.value(forHTTPHeaderField: "WWW-Authenticate"))
    }
}

func sampleRun(_ id: String, _ state: RunState) -> RunView {
    var run = RunView(id: id, pipeline: "orders", state: state, specSHA256: String(repeating: "b", count: 64),
                      submittedBy: "ann@host", submittedAt: FakeCoordinatorService.epoch)
    var ingest = StageView(stage: .ingest)
    ingest.total = 4; ingest.succeeded = 4; ingest.rowsIn = 1000; ingest.rowsOut = 990; ingest.rowsQuarantined = 10
    var validate = StageView(stage: .validate)
    validate.total = 2; validate.succeeded = 1; validate.failed = 1; validate.retried = 2
    validate.lastError = "task validate/1: not_null(id) failed for 3 rows"
    run.stages = [ingest, validate]
    if state == .failed { run.message = "validate partition 1 failed" }
    return run
}
