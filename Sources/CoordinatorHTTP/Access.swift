import CoordinatorAPI
import Crypto
import Foundation
import Hummingbird
import Logging

/// Who may call the API: the principals of `bis coordinator --auth FILE`
/// (or `BIS_TOKEN` as one admin) and the two flags that loosen the rules.
/// A coordinator without an `Access` has no auth: every caller is
/// `anonymous` and may do anything (loopback development only; see
/// `CoordinatorCommand`).
///
/// The file, one principal per line; `#` starts a comment, blank lines are skipped:
/// ```
/// # NAME      ROLE      SHA-256 OF THE TOKEN (hex): printf %s "$TOKEN" | sha256sum
/// ann         operator  5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8
/// bob         approver  …
/// ```
/// Names are 1 to 64 of `A-Z a-z 0-9 . _ @ + -` and unique; roles are
/// `viewer`, `operator`, `approver`, `admin`; each principal has its own token.
/// Only hashes are stored: the file reveals no token.
public struct Access: Sendable {
    struct Entry: Sendable {
        let principal: Principal
        let hash: [UInt8]
    }
    let entries: [Entry]
    /// `/metrics` answers without a token (`--metrics-anonymous`), for scrapers.
    public var metricsAnonymous: Bool
    /// The submitter of a run may approve it too (`--allow-self-approval`).
    public var allowSelfApproval: Bool

    init(entries: [Entry], metricsAnonymous: Bool = false, allowSelfApproval: Bool = false) {
        self.entries = entries
        self.metricsAnonymous = metricsAnonymous
        self.allowSelfApproval = allowSelfApproval
    }

    /// `BIS_TOKEN`: one principal, `admin`, with the role admin.
    public static func singleAdmin(token: String, metricsAnonymous: Bool = false, allowSelfApproval: Bool = false) -> Access {
        Access(entries: [Entry(principal: Principal(name: "admin", role: .admin), hash: Array(SHA256.hash(data: Data(token.utf8))))],
               metricsAnonymous: metricsAnonymous, allowSelfApproval: allowSelfApproval)
    }

    /// The principals of an `--auth` file.
    public static func load(path: String) throws(AccessFileError) -> Access {
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw AccessFileError(file: path, line: nil, message: "cannot read it: \(error.localizedDescription)")
        }
        return try parse(text, file: path)
    }

    public static func parse(_ text: String, file: String) throws(AccessFileError) -> Access {
        var entries: [Entry] = []
        var lineOf: [String: Int] = [:]
        var hashLine: [[UInt8]: (String, Int)] = [:]
        for (i, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let n = i + 1
            let line = raw.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\r" }).map(String.init)
            if fields.isEmpty { continue }
            func fail(_ message: String) -> AccessFileError { AccessFileError(file: file, line: n, message: message) }
            guard fields.count == 3 else {
                throw fail("expected NAME ROLE SHA256 (three fields), found \(fields.count)")
            }
            let (name, roleText, hex) = (fields[0], fields[1], fields[2])
            guard (1...64).contains(name.count), name.allSatisfy(Self.nameCharacter) else {
                throw fail("'\(name)' is not a principal name (1 to 64 of A-Z a-z 0-9 . _ @ + -)")
            }
            guard let role = Role(rawValue: roleText) else {
                throw fail("unknown role '\(roleText)' (viewer, operator, approver or admin)")
            }
            guard let hash = Self.hexBytes(hex), hash.count == 32 else {
                throw fail("'\(hex)' is not a SHA-256 in hex (64 digits 0-9 a-f; printf %s \"$TOKEN\" | sha256sum)")
            }
            if let first = lineOf[name] { throw fail("the name '\(name)' is already on line \(first)") }
            if let (other, first) = hashLine[hash] {
                throw fail("'\(name)' has the same token as '\(other)' on line \(first); each principal needs its own token")
            }
            lineOf[name] = n
            hashLine[hash] = (name, n)
            entries.append(Entry(principal: Principal(name: name, role: role), hash: hash))
        }
        guard !entries.isEmpty else {
            throw AccessFileError(file: file, line: nil, message: "no principals: give one per line as NAME ROLE SHA256")
        }
        return Access(entries: entries)
    }

    public var principals: [Principal] { entries.map(\.principal) }

    /// The principal an `Authorization` header proves: `Bearer TOKEN`, or
    /// `Basic base64(NAME:TOKEN)` (a browser's prompt; the name must be the
    /// token's). The presented token's SHA-256 is compared with every
    /// principal's in constant time; nil when none matches.
    func identify(_ authorization: String?) -> Principal? {
        guard let authorization else { return nil }
        let parts = authorization.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
        guard parts.count == 2 else { return nil }
        let scheme = parts[0].lowercased()
        let credentials = parts[1].trimmingCharacters(in: .whitespaces)
        let token: String, name: String?
        switch scheme {
        case "bearer":
            token = credentials
            name = nil
        case "basic":
            guard let data = Data(base64Encoded: credentials), let text = String(data: data, encoding: .utf8),
                  let colon = text.firstIndex(of: ":")
            else { return nil }
            name = String(text[..<colon])
            token = String(text[text.index(after: colon)...])
        default:
            return nil
        }
        guard !token.isEmpty else { return nil }
        let presented = Array(SHA256.hash(data: Data(token.utf8)))
        var found: Principal?
        for entry in entries where Self.constantTimeEqual(entry.hash, presented) {
            found = entry.principal
        }
        if let name, let found, found.name != name { return nil }
        return found
    }

    static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var diff: UInt8 = 0
        for i in a.indices { diff |= a[i] ^ b[i] }
        return diff == 0
    }

    static func nameCharacter(_ c: Character) -> Bool {
        c.isASCII && (c.isLetter || c.isNumber || ".-_@+".contains(c))
    }

    static func hexBytes(_ hex: String) -> [UInt8]? {
        let chars = Array(hex.lowercased().utf8)
        guard chars.count % 2 == 0 else { return nil }
        var bytes: [UInt8] = []
        var i = 0
        while i < chars.count {
            guard let hi = Self.nibble(chars[i]), let lo = Self.nibble(chars[i + 1]) else { return nil }
            bytes.append(hi << 4 | lo)
            i += 2
        }
        return bytes
    }

    private static func nibble(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
        default: return nil
        }
    }
}

/// A bad `--auth` file: `FILE:LINE: message`.
public struct AccessFileError: Error, Sendable, CustomStringConvertible {
    public let file: String
    public let line: Int?
    public let message: String
    public var description: String { line.map { "\(file):\($0): \(message)" } ?? "\(file): \(message)" }
}

/// The request context of the coordinator's routes: Hummingbird's core,
/// and the principal `AuthMiddleware` found (nil without auth).
struct CoordinatorContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    var principal: Principal?
    /// The dashboard's session of the request's cookie, on the dashboard's
    /// pages and form routes only (never on /api/*).
    var session: DashboardSession?

    init(source: Source) {
        coreContext = .init(source: source)
        principal = nil
        session = nil
    }

    /// Who acts: the principal, or (without auth) the name the client claims.
    func caller(claiming name: String) -> Caller { Caller(principal: principal, claimedName: name) }
}

/// With auth on, every route but `/healthz` needs a principal (and
/// `/metrics` none with `--metrics-anonymous`): 401 without one or with a
/// token no principal has (and, to a browser, `WWW-Authenticate: Basic
/// realm="bis"`, so that it asks), 403 when the principal's role does not allow the route.
/// Refusals of a POST go to the audit log.
struct AuthMiddleware: RouterMiddleware {
    typealias Context = CoordinatorContext
    let access: Access?
    let service: any CoordinatorService
    let logger: Logger
    var sessions = DashboardSessions()

    static let unauthorized = "this coordinator requires a token: set BIS_TOKEN"

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let path = request.uri.path
        let method = request.method.rawValue
        var context = context
        let form = DashboardForms.isFormRoute(method, path), page = DashboardForms.isPage(method, path)
        if form || page { context.session = sessions.find(DashboardSessions.cookieValue(request.headers[.cookie])) }
        guard let access, path != "/healthz" else { return try await next(request, context) }
        // The dashboard's forms: the route checks the session, its CSRF token
        // and the role (DashboardRoutes.swift); the sign-in page is for anyone.
        if form || path.split(separator: "/") == ["signin"] { return try await next(request, context) }
        if page, let principal = context.session?.principal {
            context.principal = principal
            return try await next(request, context)
        }
        let needed = Self.permission(method: request.method, path: path)
        if needed == .read, path == "/metrics", access.metricsAnonymous { return try await next(request, context) }
        guard let principal = access.identify(request.headers[.authorization]) else {
            await refuse(request, principal: nil, status: 401, reason: "no token, or one no principal has")
            throw APIError(status: .unauthorized, message: Self.unauthorized,
                           headers: Self.asksForHTML(request) ? [.wwwAuthenticate: #"Basic realm="bis", charset="UTF-8""#] : [:])
        }
        guard principal.role.allows(needed) else {
            let message = "\(principal.name) is \(principal.role == .operator || principal.role == .admin ? "an" : "a") "
                + "\(principal.role.rawValue): \(Self.describe(request.method, path)) needs \(needed.explanation)"
            await refuse(request, principal: principal, status: 403, reason: message)
            throw APIError(status: .forbidden, message: message)
        }
        context.principal = principal
        return try await next(request, context)
    }

    /// A browser's navigation (`Accept: text/html`): only it gets the
    /// `WWW-Authenticate: Basic` challenge that makes a browser ask for a
    /// name and token. API clients do not: swift-corelibs-foundation's
    /// URLSession (the CLI's, on Linux) never returns from a 401 that
    /// carries a challenge it has no credentials for.
    static func asksForHTML(_ request: Request) -> Bool {
        request.headers[.accept]?.lowercased().contains("text/html") == true
    }

    /// GET and HEAD read; `POST …/approve` approves; every other call operates.
    /// By path segment, not suffix: the router ignores a trailing slash and
    /// empty segments, so `/api/runs/R/approve/` reaches the approve route
    /// and must need the approve permission too (an operator could approve
    /// through it when this compared the path's text).
    static func permission(method: HTTPRequest.Method, path: String) -> Permission {
        if method == .get || method == .head { return .read }
        return path.split(separator: "/").last?.lowercased() == "approve" ? .approve : .operate
    }

    /// "submitting a run", "approving run R", … for messages.
    static func describe(_ method: HTTPRequest.Method, _ path: String) -> String {
        let (action, run) = action(method, path)
        switch action {
        case "submit": return "submitting a run"
        case let a where a.hasPrefix("rollback dataset "): return "rolling back dataset " + a.dropFirst("rollback dataset ".count)
        case "gc": return "a gc pass (bis gc; --dry-run needs any role)"
        case "pipeline add": return "registering a pipeline"
        case "backfill cancel": return "cancelling backfill \(run ?? "?")"
        case let a where a.hasPrefix("pipeline "):
            let parts = a.split(separator: " ", maxSplits: 2).map(String.init)
            let verb = ["pause": "pausing", "resume": "resuming", "remove": "removing", "trigger": "triggering",
                        "backfill": "backfilling"][parts[1]] ?? parts[1]
            return "\(verb) pipeline \(parts.count > 2 ? parts[2] : "?")"
        case "approve", "retry", "cancel":
            let verb = ["approve": "approving", "retry": "retrying", "cancel": "cancelling"][action]!
            return "\(verb) run \(run ?? "?")"
        default: return "\(method.rawValue) \(path)"
        }
    }

    /// The audit log's action and run of a request.
    static func action(_ method: HTTPRequest.Method, _ path: String) -> (String, String?) {
        if method == .post, path == "/api/runs" { return ("submit", nil) }
        if method == .post, path.split(separator: "/") == ["api", "gc"] { return ("gc", nil) }
        let parts = path.split(separator: "/").map(String.init)
        if method == .post, parts.count == 4, parts[0] == "api", parts[1] == "runs",
           ["approve", "retry", "cancel"].contains(parts[3]) {
            return (parts[3], parts[2].removingPercentEncoding ?? parts[2])
        }
        if method == .post, parts.count == 4, parts[0] == "api", parts[1] == "backfills", parts[3] == "cancel" {
            return ("backfill cancel", parts[2].removingPercentEncoding ?? parts[2])
        }
        if method == .post, parts.count >= 2, parts[0] == "api", parts[1] == "pipelines" {
            // `pipeline add`, `pipeline pause NAME`, `trigger NAME`, …
            return (parts.count == 2 ? "pipeline add" : "pipeline \(parts.count > 3 ? parts[3] : "?") \(parts[2].removingPercentEncoding ?? parts[2])", nil)
        }
        if method == .post, parts.count == 4, parts[0] == "api", parts[1] == "datasets", parts[3] == "rollback" {
            return ("rollback dataset \(parts[2].removingPercentEncoding ?? parts[2])", nil)
        }
        return ("\(method.rawValue) \(path)", nil)
    }

    /// Writes a principal's refused POST to the audit log (reads are not
    /// recorded: a refused read changes nothing; nor are 401s, only logged). A store that fails is logged, and the
    /// refusal stands.
    private func refuse(_ request: Request, principal: Principal?, status: Int, reason: String) async {
        logger.notice("request refused", metadata: [
            "http.method": "\(request.method.rawValue)", "http.path": "\(request.uri.path)",
            "http.status": "\(status)", "principal": "\(principal?.name ?? "-")",
        ])
        guard request.method != .get, request.method != .head else { return }
        // Only a principal's refusals are stored: an unauthenticated caller
        // could otherwise grow the store (and load its one writer) at will.
        guard principal != nil else { return }
        let (action, run) = Self.action(request.method, request.uri.path)
        do {
            try await service.recordRefusal(Refusal(principal: principal, action: action, run: run, status: status, reason: reason))
        } catch {
            logger.error("cannot write a refusal to the audit log", metadata: ["error": "\(error)"])
        }
    }
}
