import CoordinatorAPI
import Foundation
import Hummingbird
import Logging

/// A request the API refuses before it reaches the service: bad JSON, a
/// missing token, a body too large. Its message goes to the client as
/// `{"error": "..."}`.
struct APIError: Error, Sendable {
    var status: HTTPResponse.Status
    var message: String
    /// Extra response headers (`WWW-Authenticate` on a 401).
    var headers: HTTPFields = [:]

    static func badRequest(_ message: String) -> APIError { APIError(status: .badRequest, message: message) }
}

/// Turns every error a route throws into a JSON error response with the status
/// a client can act on: `ServiceError` → 404, 409, 400, 403; `APIError` as it says;
/// Hummingbird's own (no such route: 404, a body too large: 413) keep their status; anything else is
/// a 500 and is logged. Logs each request's method, path and status at debug,
/// never its headers (they carry the token).
struct APIErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    let logger: Logger

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let response: Response
        do {
            response = try await next(request, context)
        } catch {
            response = self.response(for: error, request: request)
        }
        logger.debug("request", metadata: [
            "http.method": "\(request.method.rawValue)",
            "http.path": "\(request.uri.path)",
            "http.status": "\(response.status.code)",
        ])
        return response
    }

    func response(for error: any Error, request: Request) -> Response {
        switch error {
        case let error as ServiceError:
            switch error {
            case .notFound(let m): return JSONResponse.error(.notFound, m)
            case .conflict(let m): return JSONResponse.error(.conflict, m)
            case .badRequest(let m): return JSONResponse.error(.badRequest, m)
            case .forbidden(let m): return JSONResponse.error(.forbidden, m)
            }
        case let error as DashboardRefusal:
            return JSONResponse.html(Dashboard.refusal(status: error.status, message: error.message), status: error.status)
        case let error as APIError:
            var response = JSONResponse.error(error.status, error.message)
            for field in error.headers { response.headers.append(field) }
            return response
        case let error as any HTTPResponseError:
            // Hummingbird's own: no such route, a body over the limit (NIO's too-many-bytes).
            let message: String
            switch error.status {
            case .notFound: message = "no route \(request.method.rawValue) \(request.uri.path): see `bis --help` for the API's clients"
            case .contentTooLarge: message = "the request body is too large"
            default: message = (error as? HTTPError)?.body ?? error.status.reasonPhrase
            }
            return JSONResponse.error(error.status, message)
        default:
            logger.info("request failed", metadata: [
                "http.method": "\(request.method.rawValue)",
                "http.path": "\(request.uri.path)",
                "error": "\(String(reflecting: error))",
            ])
            return JSONResponse.error(.internalServerError, "the coordinator failed: \(error)")
        }
    }
}

enum JSONResponse {
    static func encode<T: Encodable>(_ value: T, status: HTTPResponse.Status = .ok) throws -> Response {
        let data = try APICoding.encoder().encode(value)
        return Response(status: status, headers: [.contentType: "application/json; charset=utf-8"],
                        body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    static func error(_ status: HTTPResponse.Status, _ message: String) -> Response {
        // Encoding a struct of one string cannot fail.
        (try? encode(APICoding.ErrorBody(error: message), status: status))
            ?? Response(status: status)
    }

    static func html(_ html: String, status: HTTPResponse.Status = .ok) -> Response {
        Response(status: status, headers: [
            .contentType: "text/html; charset=utf-8",
            // The dashboard has buttons: no script, no framing (clickjacking),
            // forms only to itself, nothing fetched from elsewhere.
            .contentSecurityPolicy: contentSecurityPolicy,
            .init("X-Frame-Options")!: "DENY",
            .xContentTypeOptions: "nosniff",
            .init("Referrer-Policy")!: "same-origin",
            .cacheControl: "no-store",
        ], body: .init(byteBuffer: ByteBuffer(string: html)))
    }

    static let contentSecurityPolicy = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
        + "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

    static func text(_ text: String, contentType: String = "text/plain; charset=utf-8") -> Response {
        Response(status: .ok, headers: [.contentType: contentType], body: .init(byteBuffer: ByteBuffer(string: text)))
    }
}
