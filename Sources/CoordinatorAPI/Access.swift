import Foundation

// Who may do what through the HTTP API (`bis coordinator --auth FILE`, or
// `BIS_TOKEN` as one admin), and the audit log that records it.

/// A principal's role. `viewer` reads (every GET, the dashboard);
/// `operator` also submits, retries and cancels; `approver` also approves;
/// `admin` does all of it. Operator and approver are deliberately separate:
/// the one who starts a delivery is not the one who lets it out.
public enum Role: String, Codable, Sendable, CaseIterable, Comparable {
    case viewer
    case `operator`
    case approver
    case admin

    /// Whether this role may do `action`.
    public func allows(_ action: Permission) -> Bool {
        switch action {
        case .read: return true
        case .operate: return self == .operator || self == .admin
        case .approve: return self == .approver || self == .admin
        }
    }

    public static func < (a: Role, b: Role) -> Bool {
        allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
    }
}

/// What a route needs.
public enum Permission: String, Sendable, CaseIterable {
    /// Every GET: runs, workers, quarantine, lineage, the audit log, /metrics, the dashboard.
    case read
    /// `POST /api/runs`, `…/retry`, `…/cancel`, `POST /api/datasets/{name}/rollback`.
    case operate
    /// `POST /api/runs/{id}/approve`.
    case approve

    /// The roles that have it, for messages ("needs the operator or admin role").
    public var roles: [Role] { Role.allCases.filter { $0.allows(self) } }

    public var explanation: String {
        let names = roles.map(\.rawValue)
        let list = names.count == 1 ? names[0] : names.dropLast().joined(separator: ", ") + " or " + names.last!
        return "the \(list) role"
    }
}

/// An authenticated caller of the API: a line of the `--auth` file, or the
/// `BIS_TOKEN` admin.
public struct Principal: Codable, Sendable, Hashable {
    public var name: String
    public var role: Role
    public init(name: String, role: Role) {
        self.name = name
        self.role = role
    }
}

/// Who asks the service to act. With auth on, `principal` is who the token
/// says; what the client claims (`submittedBy`, `by`) is ignored. With auth
/// off (a loopback coordinator in development), there is no principal and
/// the claimed name is recorded as it was sent, unverified.
public struct Caller: Sendable, Hashable {
    public var principal: Principal?
    /// The `user@host` the client sent.
    public var claimedName: String

    public init(principal: Principal?, claimedName: String) {
        self.principal = principal
        self.claimedName = claimedName
    }

    /// The name recorded on the run and in the audit log's `actor`.
    public var name: String { principal?.name ?? claimedName }
    /// The audit log's `principal`: the authenticated name, or `anonymous`.
    public var principalName: String { principal?.name ?? Caller.anonymous }
    public var roleName: String? { principal?.role.rawValue }

    /// What an unauthenticated caller of a coordinator without auth is called.
    public static let anonymous = "anonymous"
}

/// `GET /api/whoami`.
public struct WhoAmI: Codable, Sendable, Hashable {
    /// The principal's name; `anonymous` when the coordinator has no auth.
    public var name: String
    /// The role; `admin` when the coordinator has no auth (anyone may do anything).
    public var role: Role
    /// False when the coordinator runs without auth (no token was checked).
    public var authenticated: Bool

    public init(name: String, role: Role, authenticated: Bool) {
        self.name = name
        self.role = role
        self.authenticated = authenticated
    }
}

/// One row of the append-only audit log (`GET /api/audit`).
public struct AuditEntry: Codable, Sendable, Hashable {
    public var id: Int64
    public var at: Date
    /// Who acted as recorded: the principal's name, a claimed `user@host`
    /// without auth, a worker id for a committed task, or `coordinator`.
    public var actor: String
    /// The authenticated principal (`anonymous` without auth); nil for the
    /// coordinator's and workers' own rows and rows written before auth existed.
    public var principal: String?
    public var role: String?
    /// `run.submitted`, `run.approved`, `run.retried`, `run.cancelled`,
    /// `request.refused`, `task.committed`, `run.succeeded`, `gc` (a retention pass), …
    public var action: String
    public var run: String?
    /// `ok`, or `401`/`403` for a refused request.
    public var outcome: String?
    public var detail: String?

    public init(id: Int64, at: Date, actor: String, principal: String?, role: String?, action: String, run: String?,
                outcome: String?, detail: String?) {
        self.id = id
        self.at = at
        self.actor = actor
        self.principal = principal
        self.role = role
        self.action = action
        self.run = run
        self.outcome = outcome
        self.detail = detail
    }
}

/// A mutating request the API refused (401, 403), for the audit log.
public struct Refusal: Sendable, Hashable {
    /// The principal, when one was identified (403); nil for a 401.
    public var principal: Principal?
    /// `submit`, `approve`, `retry`, `cancel`, or the method and path.
    public var action: String
    public var run: String?
    /// 401 or 403.
    public var status: Int
    public var reason: String

    public init(principal: Principal?, action: String, run: String?, status: Int, reason: String) {
        self.principal = principal
        self.action = action
        self.run = run
        self.status = status
        self.reason = reason
    }
}
