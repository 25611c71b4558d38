import FleetCore
import Foundation
import GRDB

extension CoordinatorEngine {
    public func run(_ id: String) async throws -> RunView? {
        try await store.read { [self] db in
            guard var view = try Self.view(of: id, db) else { return nil }
            if let run = try RunRecord.fetch(db, id) { view.deadline = deadline(of: run).map(Date.init(timeIntervalSince1970:)) }
            return view
        }
    }

    public func runs(limit: Int) async throws -> [RunView] {
        try await store.read { db in
            try String.fetchAll(db, sql: "SELECT id FROM runs ORDER BY submitted_at DESC, id DESC LIMIT ?", arguments: [max(1, limit)])
                .compactMap { try Self.view(of: $0, db) }
        }
    }

    static func view(of id: String, _ db: Database) throws -> RunView? {
        guard let run = try RunRecord.fetch(db, id) else { return nil }
        var view = RunView(id: run.id, pipeline: run.pipeline, state: run.state, specSHA256: run.specSHA256,
                           submittedBy: run.submittedBy, submittedAt: Date(timeIntervalSince1970: run.submittedAt))
        view.finishedAt = run.finishedAt.map(Date.init(timeIntervalSince1970:))
        view.message = run.message
        view.approvalRequired = run.approvalRequired
        view.approvedBy = run.approvedBy
        view.submitterPrincipal = run.submitterPrincipal
        view.version = run.pipelineVersion
        view.slot = run.slot
        view.trigger = run.trigger
        view.params = run.params
        view.lateAt = run.lateAt.map(Date.init(timeIntervalSince1970:))

        var stages: [Stage: StageView] = [:]
        for row in try Row.fetchAll(db, sql: """
            SELECT stage, state, COUNT(*) AS n, SUM(retries) AS retries FROM tasks WHERE run = ? GROUP BY stage, state
            """, arguments: [id]) {
            let stage = try row.decode(Stage.self, "stage", table: "tasks", row: "of run \(id)")
            let state = try row.decode(TaskState.self, "state", table: "tasks", row: "of run \(id)")
            var s = stages[stage] ?? StageView(stage: stage)
            let n: Int = row["n"]
            s.total += n
            s.retried += row["retries"] ?? 0
            switch state {
            case .planned, .queued: s.queued += n
            case .running: s.running += n
            case .succeeded: s.succeeded += n
            case .failed: s.failed += n
            case .cancelled: s.cancelled += n
            }
            stages[stage] = s
        }
        for row in try Row.fetchAll(db, sql: """
            SELECT t.stage, SUM(x.rows_in) AS rin, SUM(x.rows_out) AS rout, SUM(x.rows_quarantined) AS rq
            FROM tasks t JOIN executions x ON x.id = t.winner WHERE t.run = ? GROUP BY t.stage
            """, arguments: [id]) {
            let stage = try row.decode(Stage.self, "stage", table: "tasks", row: "of run \(id)")
            stages[stage]?.rowsIn = row["rin"] ?? 0
            stages[stage]?.rowsOut = row["rout"] ?? 0
            stages[stage]?.rowsQuarantined = row["rq"] ?? 0
        }
        for row in try Row.fetchAll(db, sql: """
            SELECT t.stage, MIN(x.started_at) AS s, MAX(x.finished_at) AS f,
                   SUM(CASE WHEN x.state = 'duplicate' THEN 1 ELSE 0 END) AS dups
            FROM tasks t JOIN executions x ON x.task = t.id WHERE t.run = ? GROUP BY t.stage
            """, arguments: [id]) {
            let stage = try row.decode(Stage.self, "stage", table: "tasks", row: "of run \(id)")
            stages[stage]?.startedAt = (row["s"] as Double?).map(Date.init(timeIntervalSince1970:))
            stages[stage]?.duplicates = row["dups"] ?? 0
            if let s = stages[stage], s.succeeded + s.failed + s.cancelled == s.total {
                stages[stage]?.finishedAt = (row["f"] as Double?).map(Date.init(timeIntervalSince1970:))
            }
        }
        for row in try Row.fetchAll(db, sql: """
            SELECT stage, label, last_error FROM tasks WHERE run = ? AND last_error IS NOT NULL ORDER BY (state = 'failed') DESC, id DESC
            """, arguments: [id]) {
            let stage = try row.decode(Stage.self, "stage", table: "tasks", row: "of run \(id)")
            guard stages[stage]?.lastError == nil else { continue }
            stages[stage]?.lastError = "\(row["label"] as String): \(row["last_error"] as String)"
        }
        view.stages = stages.values.sorted { $0.stage < $1.stage }

        for row in try Row.fetchAll(db, sql: """
            SELECT t.stage, c.path, c.name, c.kind FROM tasks t JOIN edges e ON e.execution = t.winner AND e.direction = 'out'
            JOIN chunks c ON c.id = e.chunk WHERE t.run = ? AND t.stage IN ('publish', 'report', 'deliver')
            """, arguments: [id]) {
            let path: String = row["path"]
            switch row["stage"] as String {
            case "publish": if let name: String = row["name"] { view.published[name] = (path as NSString).deletingLastPathComponent }
            case "report": view.reportDirectory = (path as NSString).deletingLastPathComponent
            default: if path.hasSuffix("receipt.json") { view.receipt = path }
            }
        }
        view.publishedSchemas = try publishedSchemas(run: id, db)
        return view
    }

    /// Dataset → schema hash of the versions the run's publish task wrote
    /// (its result lists them, `schemaSHA256` each); nil when there are none.
    static func publishedSchemas(run id: String, _ db: Database) throws -> [String: String]? {
        struct Entry: Decodable {
            var dataset: String
            var schemaSHA256: String?
        }
        guard let result = try String.fetchOne(db, sql: """
            SELECT result FROM tasks WHERE run = ? AND stage = 'publish' AND state = 'succeeded' AND result IS NOT NULL LIMIT 1
            """, arguments: [id]),
            let entries = try? JSONDecoder().decode([Entry].self, from: Data(result.utf8))
        else { return nil }
        var hashes: [String: String] = [:]
        for e in entries { if let h = e.schemaSHA256 { hashes[e.dataset] = h } }
        return hashes.isEmpty ? nil : hashes
    }

    public func workers() async throws -> [WorkerView] {
        let quietAfter = options.workerQuietAfterSeconds
        let now = clock.seconds
        let broker = metricsState.withLock { $0.workerBroker }
        return try await store.read { db in
            // Workers that stopped or went quiet more than an hour ago are history.
            return try Row.fetchAll(db, sql: "SELECT * FROM workers WHERE last_seen > ? ORDER BY host, pid", arguments: [now - 3600])
                .map { row in
                    let last: Double = row["last_seen"]
                    let state = try row.decode(WorkerHeartbeat.State.self, "state", table: "workers", row: row["id"])
                    let running = (row["running"] as String).split(separator: "\n").map(String.init)
                    return WorkerView(id: row["id"], host: row["host"], pid: row["pid"], version: row["version"],
                                      state: state,
                                      lastSeen: Date(timeIntervalSince1970: last), running: running,
                                      quiet: now - last > quietAfter,
                                      node: broker[row["id"] as String]?.node, brokerReconnects: broker[row["id"] as String]?.reconnects)
                }
        }
    }
}
