import Foundation
import GRDB

extension CoordinatorEngine {
    /// The audit log, oldest first: the newest `limit` rows of one run, or of all.
    public func audit(run: String?, limit: Int) async throws -> [AuditEntry] {
        let n = max(1, limit)
        return try await store.read { db in
            let rows: [Row]
            if let run {
                rows = try Row.fetchAll(db, sql: "SELECT * FROM audit WHERE run = ? ORDER BY id DESC LIMIT ?", arguments: [run, n])
            } else {
                rows = try Row.fetchAll(db, sql: "SELECT * FROM audit ORDER BY id DESC LIMIT ?", arguments: [n])
            }
            return rows.reversed().map { row in
                AuditEntry(id: row["id"], at: Date(timeIntervalSince1970: row["at"]), actor: row["actor"],
                           principal: row["principal"], role: row["role"], action: row["action"], run: row["run"],
                           outcome: row["outcome"], detail: row["detail"])
            }
        }
    }

    /// A refused request (401, 403) as a row of the audit log: action
    /// `request.refused`, the outcome its status, the detail what was asked
    /// and why it was refused.
    public func recordRefusal(_ refusal: Refusal) async throws {
        try await store.write { [clock] db in
            let who = refusal.principal?.name ?? "unauthenticated"
            try db.execute(sql: """
                INSERT INTO audit(at, actor, action, run, detail, principal, role, outcome) VALUES (?, ?, 'request.refused', ?, ?, ?, ?, ?)
                """, arguments: [clock.seconds, who, refusal.run, "\(refusal.action): \(refusal.reason)",
                                 refusal.principal?.name, refusal.principal?.role.rawValue, "\(refusal.status)"])
        }
    }
}
