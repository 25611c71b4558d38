import Foundation
import Hummingbird

/// Two checks against a web page that talks to the coordinator through the
/// browser of someone who can reach it:
/// - **DNS rebinding**: a page on `evil.example`, whose name is made to
///   resolve to 127.0.0.1, would reach a coordinator on loopback with
///   `Host: evil.example`. The Host header must name this coordinator: the
///   address it listens on, a loopback name when it listens on loopback, or
///   the host of `--public-url`. A coordinator listening on every address
///   (`0.0.0.0`) without `--public-url` cannot tell, and accepts any.
/// - **CSRF**: a plain HTML form can POST `text/plain` or form data without
///   the page's script; it cannot send `application/json` to another origin
///   without a CORS preflight, which this server never grants. So a POST
///   with a body must say `Content-Type: application/json` (415 otherwise).
struct RequestOriginMiddleware<Context: RequestContext>: RouterMiddleware {
    let hosts: AllowedHosts

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if let host = request.head.authority, !hosts.allows(host) {
            throw APIError(status: .forbidden,
                           message: "the Host '\(host)' is not this coordinator's address; use \(hosts.example) "
                               + "(or start it with --public-url)")
        }
        if request.method == .post, DashboardForms.isFormRoute(request.method.rawValue, request.uri.path) {
            // The dashboard's forms (CSRF token and SameSite=Strict cookie);
            // a browser names the page's origin, which must be this address.
            if let origin = request.headers[.origin], !RequestOrigin.sameOrigin(origin, authority: request.head.authority) {
                throw APIError(status: .forbidden, message: "a dashboard form must come from the dashboard's own pages, not '\(origin)'")
            }
            if let problem = RequestOrigin.formContentTypeProblem(request.headers[.contentType], hasBody: Self.mayHaveBody(request)) {
                throw APIError(status: .unsupportedMediaType, message: problem)
            }
        } else if request.method == .post, let problem = RequestOrigin.contentTypeProblem(request.headers[.contentType],
                                                                                   hasBody: Self.mayHaveBody(request)) {
            throw APIError(status: .unsupportedMediaType, message: problem)
        }
        return try await next(request, context)
    }

    /// Whether the request announces a body (a length above 0, or chunks).
    static func mayHaveBody(_ request: Request) -> Bool {
        if let length = request.headers[.contentLength], let n = Int(length) { return n > 0 }
        return request.headers[.transferEncoding] != nil
    }
}

enum RequestOrigin {
    /// Whether an `Origin` header names the host and port the request was sent to.
    static func sameOrigin(_ origin: String, authority: String?) -> Bool {
        guard let authority, let url = URL(string: origin), let host = url.host else { return false }
        let port = url.port.map { ":\($0)" } ?? ""
        return (host + port).lowercased() == authority.lowercased()
            || ("[" + host + "]" + port).lowercased() == authority.lowercased()
    }

    /// Nil when a dashboard form's Content-Type is acceptable: form data, or none on an empty body.
    static func formContentTypeProblem(_ contentType: String?, hasBody: Bool) -> String? {
        guard let contentType else {
            return hasBody ? "a form POST must say Content-Type: application/x-www-form-urlencoded" : nil
        }
        let media = contentType.split(separator: ";", maxSplits: 1).first.map {
            $0.trimmingCharacters(in: .whitespaces).lowercased()
        } ?? ""
        return media == "application/x-www-form-urlencoded" ? nil : "a dashboard form must send application/x-www-form-urlencoded, not '\(contentType)'"
    }

    /// Nil when a POST's Content-Type is acceptable: `application/json`
    /// (parameters allowed), or none at all on an empty body.
    static func contentTypeProblem(_ contentType: String?, hasBody: Bool) -> String? {
        guard let contentType else {
            return hasBody ? "a POST with a body must say Content-Type: application/json" : nil
        }
        let media = contentType.split(separator: ";", maxSplits: 1).first.map {
            $0.trimmingCharacters(in: .whitespaces).lowercased()
        } ?? ""
        return media == "application/json" ? nil : "a POST must send application/json, not '\(contentType)'"
    }
}

/// The host names a request's Host header may carry (the port is not
/// compared: the listener already decided it).
public struct AllowedHosts: Sendable, Equatable {
    /// Lower-cased host names; empty means any (a wildcard listener).
    let names: Set<String>

    /// - Parameters:
    ///   - listenHost: the address the server listens on.
    ///   - publicHost: the host of `--public-url`, if any.
    public init(listenHost: String, publicHost: String? = nil) {
        let host = Self.bare(listenHost)
        var names: Set<String> = []
        let wildcard = host == "0.0.0.0" || host == "::" || host.isEmpty
        if !wildcard { names.insert(host) }
        if Self.loopback.contains(host) { names.formUnion(Self.loopback) }
        if let publicHost { names.insert(Self.bare(publicHost)) }
        // A wildcard listener with no public URL: any name (cannot tell).
        self.names = wildcard && publicHost == nil ? [] : names
    }

    static let loopback: Set<String> = ["127.0.0.1", "localhost", "::1"]

    public func allows(_ authority: String) -> Bool {
        names.isEmpty || names.contains(Self.bare(Self.hostPart(authority)))
    }

    var example: String { names.sorted().first ?? "this coordinator's address" }

    /// `host` of `host:port`, `[v6]:port`, `v6`, `host`.
    static func hostPart(_ authority: String) -> String {
        if authority.hasPrefix("["), let close = authority.firstIndex(of: "]") {
            return String(authority[authority.index(after: authority.startIndex)..<close])
        }
        if authority.filter({ $0 == ":" }).count == 1, let colon = authority.firstIndex(of: ":") {
            return String(authority[..<colon])
        }
        return authority
    }

    /// Lower-cased, without brackets or a trailing dot.
    static func bare(_ host: String) -> String {
        var h = host.lowercased()
        if h.hasPrefix("["), h.hasSuffix("]") { h = String(h.dropFirst().dropLast()) }
        if h.hasSuffix(".") { h.removeLast() }
        return h
    }
}
