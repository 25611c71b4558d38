import Coordination
import Foundation
import Hummingbird

/// The coordinator's HTTP API over a `CoordinatorService`. Bodies and answers
/// are JSON in `APICoding`'s form; errors are `{"error": "..."}`.
///
/// | route | body | answer |
/// |---|---|---|
/// | `POST /api/runs` | `SubmitRequest` | 201 `RunView` |
/// | `GET /api/runs?limit=N` | | `[RunView]`, most recent first (N defaults to 20) |
/// | `GET /api/runs/{id}` | | `RunView`, 404 when there is none |
/// | `POST /api/runs/{id}/approve`, `/retry`, `/cancel` | `ActionRequest` | `RunView`; 409 when the run's state does not allow it |
/// | `GET /api/workers` | | `[WorkerView]` |
/// | `GET /metrics` | | Prometheus text, version 0.0.4 |
/// | `GET /healthz` | | 200 `ok` |
struct Routes: Sendable {
    let service: any CoordinatorService

    static let defaultLimit = 20
    static let maxLimit = 1000
    /// A spec is a few kilobytes; four megabytes leaves room without letting a
    /// stray upload fill memory.
    static let maxBody = 4 << 20

    func register<Context: RequestContext>(on router: Router<Context>) {
        router.post("/api/runs") { request, _ -> Response in
            let submit = try await Self.decode(SubmitRequest.self, named: "SubmitRequest", from: request)
            return try JSONResponse.encode(try await service.submit(submit), status: .created)
        }
        router.get("/api/runs") { request, _ -> Response in
            let limit = try Self.limit(request.uri.queryParameters["limit"].map(String.init))
            return try JSONResponse.encode(try await service.runs(limit: limit))
        }
        router.get("/api/runs/:id") { _, context -> Response in
            let id = try context.parameters.require("id")
            guard let run = try await service.run(id) else { throw ServiceError.notFound("no run \(id)") }
            return try JSONResponse.encode(run)
        }
        action("approve", on: router) { try await $0.approve($1, by: $2) }
        action("retry", on: router) { try await $0.retry($1, by: $2) }
        action("cancel", on: router) { try await $0.cancel($1, by: $2) }
        router.get("/api/workers") { _, _ -> Response in
            try JSONResponse.encode(try await service.workers())
        }
        router.get("/metrics") { _, _ -> Response in
            JSONResponse.text(try await service.metrics(), contentType: "text/plain; version=0.0.4; charset=utf-8")
        }
        router.get("/healthz") { _, _ -> Response in
            JSONResponse.text("ok")
        }
    }

    private func action<Context: RequestContext>(
        _ name: String, on router: Router<Context>,
        _ perform: @escaping @Sendable (any CoordinatorService, String, String) async throws -> RunView
    ) {
        router.post("/api/runs/:id/\(name)") { [service] request, context -> Response in
            let id = try context.parameters.require("id")
            let body = try await Self.decode(ActionRequest.self, named: "ActionRequest", from: request)
            guard !body.by.trimmingCharacters(in: .whitespaces).isEmpty else {
                throw APIError.badRequest("the ActionRequest body's 'by' is empty; it names who acts, as user@host")
            }
            return try JSONResponse.encode(try await perform(service, id, body.by))
        }
    }

    /// `limit` from the query: a whole number from 1, capped at `maxLimit`.
    static func limit(_ text: String?) throws -> Int {
        guard let text else { return defaultLimit }
        guard let n = Int(text), n >= 1 else {
            throw APIError.badRequest("limit must be a whole number from 1 up, not '\(text)'")
        }
        return min(n, maxLimit)
    }

    static func decode<T: Decodable>(_ type: T.Type, named name: String, from request: Request) async throws -> T {
        let buffer = try await request.body.collect(upTo: maxBody)
        guard buffer.readableBytes > 0 else {
            throw APIError.badRequest("the request needs a JSON \(name) body")
        }
        do {
            return try APICoding.decoder().decode(T.self, from: Data(buffer.readableBytesView))
        } catch {
            throw APIError.badRequest(APICoding.explain(error, decoding: name))
        }
    }
}
