import CoordinatorAPI
import Foundation
import Hummingbird

/// Registered pipelines (docs/schedules.md):
///
/// | route | body | answer |
/// |---|---|---|
/// | `POST /api/pipelines` | `PipelineAddRequest` | 201 `PipelineAddResult` (operator or admin) |
/// | `GET /api/pipelines` | | `[PipelineView]`, by name |
/// | `GET /api/pipelines/{name}?version=N` | | `PipelineDetail`: the version's spec text (the current one without N) |
/// | `POST /api/pipelines/{name}/pause`, `/resume`, `/remove` | `ActionRequest` | `PipelineView` (operator or admin) |
/// | `POST /api/pipelines/{name}/trigger` | `TriggerRequest` | 201 `RunView` (operator or admin) |
/// | `POST /api/pipelines/{name}/backfill` | `BackfillRequest` | 201 `BackfillView` (operator or admin) |
/// | `GET /api/backfills/{id}` | | `BackfillView` |
/// | `POST /api/backfills/{id}/cancel` | `ActionRequest` | `BackfillView` (operator or admin) |
///
/// Every POST needs the operate permission: the middleware decides it from
/// the method (not `…/approve`), and each route checks it again.
extension Routes {
    func registerPipelines(on router: Router<CoordinatorContext>) {
        router.post("/api/pipelines") { [service] request, context -> Response in
            try Self.requireOperate(context)
            let body = try await Self.decode(PipelineAddRequest.self, named: "PipelineAddRequest", from: request)
            try Self.requireBy(body.by, "PipelineAddRequest")
            return try JSONResponse.encode(try await service.addPipeline(body, as: context.caller(claiming: body.by)), status: .created)
        }
        router.get("/api/pipelines") { [service] _, _ -> Response in
            try JSONResponse.encode(try await service.pipelines())
        }
        router.get("/api/pipelines/:name") { [service] request, context -> Response in
            let name = try context.parameters.require("name")
            var version: Int?
            if let text = request.uri.queryParameters["version"].map(String.init) {
                guard let n = Int(text), n >= 1 else { throw APIError.badRequest("version must be a whole number from 1 up, not '\(text)'") }
                version = n
            }
            return try JSONResponse.encode(try await service.pipeline(name, version: version))
        }
        for change in PipelineChange.allCases {
            router.post("/api/pipelines/:name/\(change.rawValue)") { [service] request, context -> Response in
                try Self.requireOperate(context)
                let name = try context.parameters.require("name")
                let body = try await Self.decode(ActionRequest.self, named: "ActionRequest", from: request)
                try Self.requireBy(body.by, "ActionRequest")
                return try JSONResponse.encode(try await service.changePipeline(name, change, as: context.caller(claiming: body.by)))
            }
        }
        router.post("/api/pipelines/:name/trigger") { [service] request, context -> Response in
            try Self.requireOperate(context)
            let name = try context.parameters.require("name")
            let body = try await Self.decode(TriggerRequest.self, named: "TriggerRequest", from: request)
            try Self.requireBy(body.by, "TriggerRequest")
            return try JSONResponse.encode(try await service.trigger(name, body, as: context.caller(claiming: body.by)), status: .created)
        }
        registerBackfills(on: router)
    }

    func registerBackfills(on router: Router<CoordinatorContext>) {
        router.post("/api/pipelines/:name/backfill") { [service] request, context -> Response in
            try Self.requireOperate(context)
            let name = try context.parameters.require("name")
            let body = try await Self.decode(BackfillRequest.self, named: "BackfillRequest", from: request)
            try Self.requireBy(body.by, "BackfillRequest")
            return try JSONResponse.encode(try await service.backfill(name, body, as: context.caller(claiming: body.by)), status: .created)
        }
        router.get("/api/backfills/:id") { [service] _, context -> Response in
            try JSONResponse.encode(try await service.backfillView(try context.parameters.require("id")))
        }
        router.post("/api/backfills/:id/cancel") { [service] request, context -> Response in
            try Self.requireOperate(context)
            let id = try context.parameters.require("id")
            let body = try await Self.decode(ActionRequest.self, named: "ActionRequest", from: request)
            try Self.requireBy(body.by, "ActionRequest")
            return try JSONResponse.encode(try await service.cancelBackfill(id, as: context.caller(claiming: body.by)))
        }
    }

    static func requireOperate(_ context: CoordinatorContext) throws {
        if let principal = context.principal, !principal.role.allows(.operate) {
            throw ServiceError.forbidden("\(principal.name) is a \(principal.role.rawValue): this needs \(Permission.operate.explanation)")
        }
    }

    static func requireBy(_ by: String, _ body: String) throws {
        guard !by.trimmingCharacters(in: .whitespaces).isEmpty else {
            throw APIError.badRequest("the \(body) body's 'by' is empty; it names who acts, as user@host")
        }
    }
}
