import CoordinatorAPI
import Crypto
import Foundation
import Synchronization

/// A browser signed in to the dashboard (docs/dashboard.md): who it is and
/// the CSRF token every form of its pages carries.
struct DashboardSession: Sendable {
    /// The cookie's value: 32 bytes from the system's CSPRNG, base64url.
    let id: String
    /// Bound to this session; compared in constant time.
    let csrf: String
    /// Nil on a coordinator without auth (anonymous, may do anything).
    let principal: Principal?
    let expires: Date

    var name: String { principal?.name ?? Caller.anonymous }
    func allows(_ permission: Permission) -> Bool { principal.map { $0.role.allows(permission) } ?? true }

    /// Whether `presented` is this session's CSRF token (constant time in its length).
    func csrfMatches(_ presented: String?) -> Bool {
        guard let presented else { return false }
        return Access.constantTimeEqual(Array(csrf.utf8), Array(presented.utf8))
    }
}

/// The dashboard's sessions, in memory (a restart signs everyone out). Keyed
/// by the SHA-256 of the id, so a lookup's timing says nothing about the ids
/// held. At most `capacity` live sessions: the oldest goes first.
public final class DashboardSessions: Sendable {
    static let cookieName = "bis_session"
    let lifetime: TimeInterval
    let capacity: Int
    private let sessions = Mutex([[UInt8]: DashboardSession]())

    public init(lifetime: TimeInterval = 8 * 3600, capacity: Int = 10_000) {
        self.lifetime = lifetime
        self.capacity = capacity
    }

    static func randomToken() -> String {
        var rng = SystemRandomNumberGenerator()
        let bytes = (0..<32).map { _ in UInt8.random(in: .min ... .max, using: &rng) }
        return Data(bytes).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    private static func key(_ id: String) -> [UInt8] { Array(SHA256.hash(data: Data(id.utf8))) }

    func create(principal: Principal?, now: Date = Date()) -> DashboardSession {
        let session = DashboardSession(id: Self.randomToken(), csrf: Self.randomToken(), principal: principal,
                                       expires: now.addingTimeInterval(lifetime))
        sessions.withLock { all in
            all = all.filter { $0.value.expires > now }
            while all.count >= capacity, let oldest = all.min(by: { $0.value.expires < $1.value.expires }) {
                all.removeValue(forKey: oldest.key)
            }
            all[Self.key(session.id)] = session
        }
        return session
    }

    /// The live session of a cookie value; nil when unknown or expired.
    func find(_ id: String?, now: Date = Date()) -> DashboardSession? {
        guard let id, !id.isEmpty else { return nil }
        let key = Self.key(id)
        return sessions.withLock { all in
            guard let s = all[key] else { return nil }
            if s.expires <= now { all.removeValue(forKey: key); return nil }
            return s
        }
    }

    func remove(_ id: String) {
        _ = sessions.withLock { $0.removeValue(forKey: Self.key(id)) }
    }

    var count: Int { sessions.withLock { $0.count } }

    /// The session id in a `Cookie` header, if any.
    static func cookieValue(_ header: String?) -> String? {
        guard let header else { return nil }
        for part in header.split(separator: ";") {
            let kv = part.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            if kv.count == 2, kv[0] == cookieName { return kv[1] }
        }
        return nil
    }

    /// `Set-Cookie` for a session (`maxAge` 0 clears it): HttpOnly,
    /// SameSite=Strict, Path=/, and Secure when served over TLS.
    static func setCookie(_ value: String, maxAge: Int, secure: Bool) -> String {
        "\(cookieName)=\(value); Path=/; Max-Age=\(maxAge); HttpOnly; SameSite=Strict" + (secure ? "; Secure" : "")
    }
}

/// The dashboard's own form routes, which accept the session cookie (and
/// only it): the API's routes never do, so a cross-site form cannot reach them.
enum DashboardForms {
    static let pipelineActions = ["run", "pause", "resume"]
    static let runActions = ["approve", "retry", "cancel"]

    /// POST /signin, /signout, /pipelines/{name}/{run,pause,resume}, /runs/{id}/{approve,retry,cancel}.
    static func isFormRoute(_ method: HTTPRequestMethodText, _ path: String) -> Bool {
        guard method == "POST" else { return false }
        let parts = path.split(separator: "/").map(String.init)
        if parts == ["signin"] || parts == ["signout"] { return true }
        guard parts.count == 3 else { return false }
        return (parts[0] == "pipelines" && pipelineActions.contains(parts[2]))
            || (parts[0] == "runs" && runActions.contains(parts[2]))
    }

    /// GET pages of the dashboard, which a session may read.
    static func isPage(_ method: HTTPRequestMethodText, _ path: String) -> Bool {
        guard method == "GET" || method == "HEAD" else { return false }
        let parts = path.split(separator: "/").map(String.init)
        return parts.isEmpty || parts == ["pipelines"] || parts == ["signin"] || (parts.count == 2 && parts[0] == "runs")
    }

    /// `application/x-www-form-urlencoded` fields; the last of a repeated name wins.
    static func parse(_ body: String) -> [String: String] {
        var fields: [String: String] = [:]
        for pair in body.split(separator: "&") {
            let kv = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            func decode(_ s: Substring) -> String {
                String(s).replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? ""
            }
            fields[decode(kv[0])] = kv.count > 1 ? decode(kv[1]) : ""
        }
        return fields
    }
}

typealias HTTPRequestMethodText = String
