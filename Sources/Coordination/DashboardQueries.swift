import FleetCore
import Foundation
import GRDB

extension CoordinatorEngine {
    /// The workers that executed the run's tasks, from its executions (every
    /// attempt, duplicates and lost ones too), busiest first: the run page's
    /// Workers once no worker reports the run as running.
    public func runWorkers(_ run: String) async throws -> [RunWorkerView] {
        try await store.read { db in
            let rows = try Row.fetchAll(db, sql: """
                SELECT e.worker, MAX(e.host) AS host, MAX(e.pid) AS pid, COUNT(*) AS n,
                       SUM(e.state = 'succeeded') AS ok, GROUP_CONCAT(DISTINCT t.stage) AS stages,
                       MAX(e.finished_at) AS last
                FROM executions e JOIN tasks t ON t.id = e.task
                WHERE t.run = ? AND e.worker IS NOT NULL
                GROUP BY e.worker ORDER BY n DESC, e.worker
                """, arguments: [run])
            return rows.map { row in
                let stages = ((row["stages"] as String?) ?? "").split(separator: ",").compactMap { Stage(rawValue: String($0)) }.sorted()
                return RunWorkerView(worker: row["worker"], host: row["host"], pid: row["pid"], executions: row["n"],
                                     succeeded: row["ok"] ?? 0, stages: stages,
                                     lastFinished: (row["last"] as Double?).map { Date(timeIntervalSince1970: $0) })
            }
        }
    }
}
