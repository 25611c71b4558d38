import ArgumentParser
import CoordinatorAPI
import Foundation

/// `bis whoami`: the principal and role the coordinator sees for $BIS_TOKEN.
struct WhoamiCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "whoami",
        abstract: "Show the principal and role the coordinator sees for $BIS_TOKEN.",
        discussion: """
            Without auth on the coordinator, everyone is 'anonymous' with every right. \
            Exit codes: 0 shown, 3 the coordinator cannot be reached, 4 refused: the token is missing or unknown.
            """
    )
    @OptionGroup var options: CoordinatorOptions

    func run() async throws {
        let client = try options.client()
        let who: WhoAmI
        do { who = try await client.whoami() } catch { throw options.exit(for: error) }
        if options.json { try options.printJSON(who); return }
        print(who.authenticated ? "\(who.name) (\(who.role.rawValue))"
              : "\(who.name): the coordinator at \(client.address) has no auth; anyone may do anything")
    }
}

/// `bis audit [--run RUN]`: the coordinator's append-only audit log.
struct AuditCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit",
        abstract: "Show the coordinator's append-only audit log: who submitted, approved, retried, cancelled, and refusals.",
        discussion: """
            Oldest first; the newest --limit rows. Each row: time, actor, the authenticated principal and role \
            ('anonymous' on a coordinator without auth), action, run, outcome (ok, or 401/403 for a refused \
            request) and detail. Needs any role (viewer up).
            Exit codes: 0 shown, 3 the coordinator cannot be reached, 4 refused (not authenticated).
            """
    )
    @Option(help: "Only this run's rows.") var run: String?
    @Option(help: "At most this many rows (the newest).") var limit: Int = 100
    @OptionGroup var options: CoordinatorOptions

    func validate() throws {
        guard limit >= 1 else { throw ValidationError("--limit must be at least 1") }
    }

    func run() async throws {
        let client = try options.client()
        let rows: [AuditEntry]
        do { rows = try await client.audit(run: run, limit: limit) } catch { throw options.exit(for: error, run: nil) }
        if options.json { try options.printJSON(rows); return }
        if rows.isEmpty { print(run.map { "no audit rows for run \($0)" } ?? "the audit log is empty"); return }
        let time = ISO8601DateFormatter()
        print(table(["TIME", "ACTOR", "PRINCIPAL", "ROLE", "ACTION", "RUN", "OUTCOME", "DETAIL"], rows.map { r in
            [time.string(from: r.at), r.actor, r.principal ?? "-", r.role ?? "-", r.action, r.run ?? "-",
             r.outcome ?? "-", r.detail ?? ""]
        }).joined(separator: "\n"))
    }
}
