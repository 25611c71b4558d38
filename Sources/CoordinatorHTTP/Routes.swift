import CoordinatorAPI
import FleetMetrics
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
/// | `GET /api/runs/{id}/quarantine?rule=R&limit=N` | | `[QuarantinedRow]` (N defaults to 100, at most 10000) |
/// | `GET /api/runs/{id}/openlineage` | | `[OpenLineageEvent]` |
/// | `GET /api/lineage/trace?target=T` | | `LineageNode` |
/// | `GET /api/lineage/impact?file=F` | | `ImpactReport` |
/// | `GET /api/datasets` | | `[DatasetView]`, by name: every published dataset and summary |
/// | `GET /api/datasets/{name}` | | `DatasetDetail`: its versions, newest first; 404 when there is none |
/// | `POST /api/datasets/{name}/rollback` | `RollbackRequest` | `RollbackResult`; 404 for an unknown dataset or a run without a version of it, 409 for a damaged version (operator) |
/// | `GET /api/whoami` | | `WhoAmI`: the caller's principal and role |
/// | `GET /api/audit?run=R&limit=N` | | `[AuditEntry]`, oldest first (the newest N, default 100, at most 10000) |
/// | `GET /api/gc` | | `GCReport`: what a retention pass would remove (dry run; any role) |
/// | `POST /api/gc` | `ActionRequest` | `GCReport`: a retention pass, audited (operator or admin) |
/// | `GET /api/alerts?run=R&limit=N` | | `[AlertView]`, newest first, with their deliveries (N defaults to 100, at most 10000; any role) |
/// | `/api/pipelines…` | | registered pipelines: see PipelineRoutes.swift |
/// | `GET /metrics` | | Prometheus text, version 0.0.4 |
/// | `GET /healthz` | | 200 `ok` |
/// | `GET /`, `GET /runs/{id}`, `GET /pipelines` | | the dashboard, `text/html`; an HTML 404 page when there is none |
/// | `/signin`, `/signout`, dashboard buttons | form | see DashboardRoutes.swift (session cookie and CSRF token) |
///
/// With auth on (`Access`), `AuthMiddleware` has found the principal before
/// a route runs: 401 without one, 403 when the role does not allow the route.
/// The submitter and approver recorded are the principal's name, never a
/// name in the body; a principal cannot approve a run they submitted (403)
/// unless `Access.allowSelfApproval`.
struct Routes: Sendable {
    let service: any CoordinatorService
    var access: Access? = nil
    /// The dashboard's sessions (shared with `AuthMiddleware`).
    var sessions = DashboardSessions()
    /// Session cookies say `Secure` (the server speaks TLS).
    var secureCookies = false

    static let defaultAuditLimit = 100
    static let maxAuditLimit = 10_000

    static let defaultLimit = 20
    static let maxLimit = 1000
    /// Quarantined rows: a page an operator reads, capped so one call stays small.
    static let defaultQuarantineLimit = 100
    static let maxQuarantineLimit = 10_000
    /// A spec is a few kilobytes; four megabytes leaves room without letting a
    /// stray upload fill memory.
    static let maxBody = 4 << 20

    func register(on router: Router<CoordinatorContext>) {
        router.post("/api/runs") { request, context -> Response in
            let submit = try await Self.decode(SubmitRequest.self, named: "SubmitRequest", from: request)
            let caller = context.caller(claiming: submit.submittedBy)
            return try JSONResponse.encode(try await service.submit(submit, as: caller), status: .created)
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
        action("approve", on: router) { [access] service, id, caller in
            try await Self.refuseSelfApproval(of: id, by: caller, service: service, access: access)
            return try await service.approve(id, as: caller)
        }
        action("retry", on: router) { try await $0.retry($1, as: $2) }
        action("cancel", on: router) { try await $0.cancel($1, as: $2) }
        router.get("/api/datasets") { _, _ -> Response in
            try JSONResponse.encode(try await service.datasets())
        }
        router.get("/api/datasets/:name") { _, context -> Response in
            try JSONResponse.encode(try await service.dataset(try context.parameters.require("name")))
        }
        router.post("/api/datasets/:name/rollback") { [service] request, context -> Response in
            let name = try context.parameters.require("name")
            // Moving CURRENT changes what every reader sees: the operator's permission, checked here too.
            if let principal = context.principal, !principal.role.allows(.operate) {
                throw ServiceError.forbidden("\(principal.name) is a \(principal.role.rawValue): this needs \(Permission.operate.explanation)")
            }
            let body = try await Self.decode(RollbackRequest.self, named: "RollbackRequest", from: request)
            guard !body.to.trimmingCharacters(in: .whitespaces).isEmpty else {
                throw APIError.badRequest("the RollbackRequest body's 'to' is empty; it names the run whose version becomes CURRENT")
            }
            guard !body.by.trimmingCharacters(in: .whitespaces).isEmpty else {
                throw APIError.badRequest("the RollbackRequest body's 'by' is empty; it names who acts, as user@host")
            }
            return try JSONResponse.encode(try await service.rollbackDataset(name, to: body.to, as: context.caller(claiming: body.by)))
        }
        router.get("/api/whoami") { _, context -> Response in
            // Without auth there is no principal: anyone may do anything.
            let who = context.principal.map { WhoAmI(name: $0.name, role: $0.role, authenticated: true) }
                ?? WhoAmI(name: Caller.anonymous, role: .admin, authenticated: false)
            return try JSONResponse.encode(who)
        }
        router.get("/api/audit") { request, _ -> Response in
            let query = request.uri.queryParameters
            let limit = try Self.limit(query["limit"].map(String.init), default: Self.defaultAuditLimit, max: Self.maxAuditLimit)
            let run = query["run"].map(String.init).flatMap { $0.isEmpty ? nil : $0 }
            return try JSONResponse.encode(try await service.audit(run: run, limit: limit))
        }
        router.get("/api/gc") { _, context -> Response in
            try JSONResponse.encode(try await service.gc(dryRun: true, as: context.caller(claiming: Caller.anonymous)))
        }
        router.post("/api/gc") { [service] request, context -> Response in
            if let principal = context.principal, !principal.role.allows(.operate) {
                throw ServiceError.forbidden("\(principal.name) is a \(principal.role.rawValue): a gc pass needs "
                                             + "\(Permission.operate.explanation) (bis gc --dry-run needs any role)")
            }
            let body = try await Self.decode(ActionRequest.self, named: "ActionRequest", from: request)
            guard !body.by.trimmingCharacters(in: .whitespaces).isEmpty else {
                throw APIError.badRequest("the ActionRequest body's 'by' is empty; it names who acts, as user@host")
            }
            return try JSONResponse.encode(try await service.gc(dryRun: false, as: context.caller(claiming: body.by)))
        }
        router.get("/api/alerts") { request, _ -> Response in
            let query = request.uri.queryParameters
            let limit = try Self.limit(query["limit"].map(String.init), default: Self.defaultAuditLimit, max: Self.maxAuditLimit)
            let run = query["run"].map(String.init).flatMap { $0.isEmpty ? nil : $0 }
            return try JSONResponse.encode(try await service.alerts(run: run, limit: limit))
        }
        router.get("/api/workers") { _, _ -> Response in
            try JSONResponse.encode(try await service.workers())
        }
        router.get("/api/runs/:id/quarantine") { request, context -> Response in
            let id = try context.parameters.require("id")
            let query = request.uri.queryParameters
            let limit = try Self.limit(query["limit"].map(String.init), default: Self.defaultQuarantineLimit,
                                       max: Self.maxQuarantineLimit)
            let rule = query["rule"].map(String.init).flatMap { $0.isEmpty ? nil : $0 }
            return try JSONResponse.encode(try await service.quarantine(id, rule: rule, limit: limit))
        }
        router.get("/api/runs/:id/openlineage") { _, context -> Response in
            let id = try context.parameters.require("id")
            return try JSONResponse.encode(try await service.openLineage(id))
        }
        router.get("/api/lineage/trace") { request, _ -> Response in
            let target = try Self.required("target", in: request,
                                           example: "a run id, DATASET/RUN, a chunk path or a sha256")
            return try JSONResponse.encode(try await service.lineageTrace(target))
        }
        router.get("/api/lineage/impact") { request, _ -> Response in
            let file = try Self.required("file", in: request, example: "an input file's absolute path or its sha256")
            return try JSONResponse.encode(try await service.lineageImpact(file))
        }
        router.get("/") { _, context -> Response in
            try await dashboard("/", viewer: viewer(context))
        }
        router.get("/runs/:id") { _, context -> Response in
            try await dashboard("/runs/" + (try context.parameters.require("id")), viewer: viewer(context))
        }
        // The engine renders its own registry; another service (a fake) its
        // snapshot through this server's (histograms stay empty there).
        let ownMetrics = BisMetrics()
        router.get("/metrics") { _, _ -> Response in
            let text = if let exposing = service as? any PrometheusExposition {
                try await exposing.prometheusText()
            } else {
                ownMetrics.render(try await service.metricsSnapshot())
            }
            return JSONResponse.text(text, contentType: BisMetrics.contentType)
        }
        router.get("/healthz") { _, _ -> Response in
            JSONResponse.text("ok")
        }
        registerPipelines(on: router)
        registerDashboardForms(on: router)
    }

    /// The dashboard's page for `path`, or an HTML 404 page a browser shows as such.
    private func dashboard(_ path: String, viewer: DashboardViewer?) async throws -> Response {
        let html = try await Dashboard.page(path: path, from: service, viewer: viewer)
        return JSONResponse.html(html ?? Self.notFoundPage(path), status: html == nil ? .notFound : .ok)
    }

    static func notFoundPage(_ path: String) -> String {
        let shown = HTMLText.escape(path)
        return """
            <!doctype html><html lang="en"><head><meta charset="utf-8"><title>Not found</title></head>
            <body style="font:14px system-ui,sans-serif;margin:24px"><h1>Nothing at \(shown)</h1>
            <p>No such run on this coordinator. <a href="/">All runs</a></p></body></html>
            """
    }

    /// A query parameter that must be there and not be empty.
    static func required(_ name: String, in request: Request, example: String) throws -> String {
        guard let value = request.uri.queryParameters[Substring(name)].map(String.init), !value.isEmpty else {
            throw APIError.badRequest("the query parameter '\(name)' is required: \(example)")
        }
        return value
    }

    /// The submitter of a run may not approve it (four eyes), unless the
    /// coordinator allows it. Only with auth: without it names are claims.
    static func refuseSelfApproval(of id: String, by caller: Caller, service: any CoordinatorService, access: Access?) async throws {
        guard let access, !access.allowSelfApproval, let principal = caller.principal else { return }
        guard let run = try await service.run(id) else { throw ServiceError.notFound("no run \(id)") }
        guard run.submitterPrincipal == principal.name else { return }
        let reason = "\(principal.name) submitted run \(id) and cannot approve it too: another principal with "
            + "\(Permission.approve.explanation) must (or start the coordinator with --allow-self-approval)"
        do {
            try await service.recordRefusal(Refusal(principal: principal, action: "approve", run: id, status: 403, reason: reason))
        } catch {}
        throw ServiceError.forbidden(reason)
    }

    private func action(
        _ name: String, on router: Router<CoordinatorContext>,
        _ perform: @escaping @Sendable (any CoordinatorService, String, Caller) async throws -> RunView
    ) {
        router.post("/api/runs/:id/\(name)") { [service] request, context -> Response in
            let id = try context.parameters.require("id")
            // The middleware decided the permission from the path; the route
            // checks it again from what it is, whatever the path looked like.
            let needed: Permission = name == "approve" ? .approve : .operate
            if let principal = context.principal, !principal.role.allows(needed) {
                throw ServiceError.forbidden("\(principal.name) is a \(principal.role.rawValue): this needs \(needed.explanation)")
            }
            let body = try await Self.decode(ActionRequest.self, named: "ActionRequest", from: request)
            guard !body.by.trimmingCharacters(in: .whitespaces).isEmpty else {
                throw APIError.badRequest("the ActionRequest body's 'by' is empty; it names who acts, as user@host")
            }
            return try JSONResponse.encode(try await perform(service, id, context.caller(claiming: body.by)))
        }
    }

    /// `limit` from the query: a whole number from 1, capped at `max`.
    static func limit(_ text: String?, default value: Int = defaultLimit, max: Int = maxLimit) throws -> Int {
        guard let text else { return value }
        guard let n = Int(text), n >= 1 else {
            throw APIError.badRequest("limit must be a whole number from 1 up, not '\(text)'")
        }
        return min(n, max)
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
