import CoordinatorAPI
import Foundation
import Hummingbird

/// The dashboard's sign-in and buttons (docs/dashboard.md): plain HTML forms
/// that POST and are answered with a 303 back to a page; no script.
///
/// | route | form fields | answer |
/// |---|---|---|
/// | `GET /signin` | | the sign-in page |
/// | `POST /signin` | `token` | 303 to `/` with a session cookie; 401 page for a token no principal has |
/// | `POST /signout` | `csrf` | 303 to `/signin`, the session ended |
/// | `POST /pipelines/{name}/run` | `csrf` | 303 to the new run's page (operator or admin) |
/// | `POST /pipelines/{name}/pause`, `/resume` | `csrf` | 303 to `/pipelines` (operator or admin) |
/// | `POST /runs/{id}/approve` | `csrf` | 303 to the run's page (approver or admin) |
/// | `POST /runs/{id}/retry`, `/cancel` | `csrf` | 303 to the run's page (operator or admin) |
///
/// Every POST but `/signin` needs the session cookie (401 without one) and
/// the session's CSRF token in the form (403 without it or with another,
/// before anything is done). Only these routes read the cookie: the API's
/// take a bearer token as before.
extension Routes {
    static let maxFormBody = 16 << 10

    func registerDashboardForms(on router: Router<CoordinatorContext>) {
        router.get("/signin") { [access] _, context -> Response in
            JSONResponse.html(Dashboard.signIn(signedInAs: context.session?.name, auth: access != nil))
        }
        router.get("/pipelines") { [service] _, context -> Response in
            JSONResponse.html(try await Dashboard.pipelinesPage(from: service, viewer: viewer(context)))
        }
        router.post("/signin") { [access, sessions, secureCookies] request, context -> Response in
            let fields = try await Self.form(request)
            let token = fields["token"] ?? ""
            var principal: Principal?
            if let access {
                guard !token.isEmpty, let found = access.identify("Bearer " + token) else {
                    // As the API's 401s: guessing shows in the log (never the token).
                    context.logger.notice("dashboard sign-in refused: no principal has that token")
                    return JSONResponse.html(Dashboard.signIn(signedInAs: nil, auth: true, problem: "No principal has that token."),
                                             status: .unauthorized)
                }
                principal = found
            }
            // A new id at every sign-in (no fixation); the browser's old session ends.
            if let old = context.session { sessions.remove(old.id) }
            let session = sessions.create(principal: principal)
            return Self.redirect("/", cookie: DashboardSessions.setCookie(session.id, maxAge: Int(sessions.lifetime), secure: secureCookies))
        }
        router.post("/signout") { [sessions, secureCookies] request, context -> Response in
            let session = try await Self.checked(request, context)
            sessions.remove(session.id)
            return Self.redirect("/signin", cookie: DashboardSessions.setCookie("", maxAge: 0, secure: secureCookies))
        }
        for action in DashboardForms.pipelineActions {
            router.post("/pipelines/:name/\(action)") { [service] request, context -> Response in
                let session = try await Self.checked(request, context)
                let name = try context.parameters.require("name")
                let verb = action == "run" ? "trigger" : action
                try await Self.require(.operate, session, action: "pipeline \(verb) \(name)", run: nil, service: service)
                let caller = Caller(principal: session.principal, claimedName: session.name)
                return try await Self.performing {
                    switch action {
                    case "run":
                        let run = try await service.trigger(name, TriggerRequest(by: session.name), as: caller)
                        return Self.redirect("/runs/" + Self.pathSegment(run.id))
                    case "pause":
                        _ = try await service.changePipeline(name, .pause, as: caller)
                    default:
                        _ = try await service.changePipeline(name, .resume, as: caller)
                    }
                    return Self.redirect("/pipelines")
                }
            }
        }
        for action in DashboardForms.runActions {
            router.post("/runs/:id/\(action)") { [service, access] request, context -> Response in
                let session = try await Self.checked(request, context)
                let id = try context.parameters.require("id")
                try await Self.require(action == "approve" ? .approve : .operate, session, action: action, run: id, service: service)
                let caller = Caller(principal: session.principal, claimedName: session.name)
                return try await Self.performing {
                    switch action {
                    case "approve":
                        try await Self.refuseSelfApproval(of: id, by: caller, service: service, access: access)
                        _ = try await service.approve(id, as: caller)
                    case "retry": _ = try await service.retry(id, as: caller)
                    default: _ = try await service.cancel(id, as: caller)
                    }
                    return Self.redirect("/runs/" + Self.pathSegment(id))
                }
            }
        }
    }

    /// What the pages show a request: its session's name, CSRF token and roles.
    func viewer(_ context: CoordinatorContext) -> DashboardViewer? {
        context.session.map {
            DashboardViewer(name: $0.name, csrf: $0.csrf, canOperate: $0.allows(.operate), canApprove: $0.allows(.approve),
                            selfApprovalAllowed: access?.allowSelfApproval ?? true)
        }
    }

    /// The session of a form POST whose CSRF token is the session's: 401
    /// without a session, 403 without the token or with another.
    static func checked(_ request: Request, _ context: CoordinatorContext) async throws -> DashboardSession {
        guard let session = context.session else {
            throw DashboardRefusal(status: .unauthorized, message: "Sign in first: this form needs a dashboard session.")
        }
        let fields = try await form(request)
        guard session.csrfMatches(fields["csrf"]) else {
            throw DashboardRefusal(status: .forbidden, message: "This form's CSRF token is missing or is not this session's: reload the page and try again.")
        }
        return session
    }

    /// Refuses (403, with an audit row) a session whose role lacks `permission`.
    static func require(_ permission: Permission, _ session: DashboardSession, action: String, run: String?,
                        service: any CoordinatorService) async throws {
        guard !session.allows(permission), let principal = session.principal else { return }
        let message = "\(principal.name) is a \(principal.role.rawValue): this needs \(permission.explanation)"
        try? await service.recordRefusal(Refusal(principal: principal, action: action, run: run, status: 403, reason: message))
        throw DashboardRefusal(status: .forbidden, message: message)
    }

    /// The engine's refusals (not found, conflict, forbidden) as an HTML page.
    static func performing(_ body: () async throws -> Response) async throws -> Response {
        do { return try await body() } catch let error as ServiceError {
            let status: HTTPResponse.Status = switch error {
            case .notFound: .notFound
            case .conflict: .conflict
            case .badRequest: .badRequest
            case .forbidden: .forbidden
            }
            throw DashboardRefusal(status: status, message: error.description)
        }
    }

    static func form(_ request: Request) async throws -> [String: String] {
        let buffer = try await request.body.collect(upTo: maxFormBody)
        return DashboardForms.parse(String(decoding: buffer.readableBytesView, as: UTF8.self))
    }

    static func redirect(_ location: String, cookie: String? = nil) -> Response {
        var headers: HTTPFields = [.location: location, .cacheControl: "no-store"]
        if let cookie { headers[.setCookie] = cookie }
        return Response(status: .seeOther, headers: headers)
    }

    static func pathSegment(_ s: String) -> String {
        s.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(CharacterSet(charactersIn: "/"))) ?? s
    }
}

/// A refused dashboard form: an HTML page with the status and a way back.
struct DashboardRefusal: Error, Sendable {
    let status: HTTPResponse.Status
    let message: String
}
