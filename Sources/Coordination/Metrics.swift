import FleetCore
import FleetMetrics
import Foundation
import GRDB

typealias Histogram = MetricsSnapshot.Histogram

/// What the engine counts in memory since it started (the store holds the rest).
struct EngineMetrics: Sendable {
    var sent = 0
    var commits = 0
    var commitSeconds = 0.0
    /// Messages refused by reason (see `MessageRejection`).
    var rejected: [MessageRejection.Reason: Int] = [:]
    var taskDuration = Histogram(bounds: [0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900])
    var handoffLatency = Histogram(bounds: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 60])
    var gcBytes: Int64 = 0
    var gcFiles = 0
    var gcPasses = 0
    /// Per worker id: the broker node and reconnect count of its last
    /// heartbeat (memory only: the next beats refill it after a restart).
    /// Each worker's broker node and reconnect count from its last
    /// heartbeat (`at`: when), for workers heard from in the last hour.
    var workerBroker: [String: (node: String?, reconnects: Int?, at: Double)] = [:]
    /// Each worker's resources from its last heartbeat (`at`: when), for
    /// workers heard from in the last hour (`bis_worker_*`).
    var workerResources: [String: (resources: WorkerResources, at: Double)] = [:]
    /// Runs that finished at or after `at` count in the per-pipeline families
    /// at the next scrape; `seen`: the ones finished exactly at `at`, counted.
    var finished: (at: Double, seen: Set<String>) = (0, [])

    mutating func heard(_ b: WorkerHeartbeat, at now: Double) {
        workerResources[b.worker.id] = (WorkerResources(worker: b.worker.id, cpuSeconds: b.cpuSeconds, residentBytes: b.residentBytes,
                                                        runningTasks: b.state == .stopped ? 0 : b.running.count), now)
        workerResources = workerResources.filter { now - $0.value.at <= BisMetrics.workerWindowSeconds }
    }

    /// The runs of `rows` not counted yet; moves the mark past them.
    mutating func take(_ rows: [(id: String, run: FinishedRun, at: Double)]) -> [FinishedRun] {
        let fresh = rows.filter { $0.at > finished.at || ($0.at == finished.at && !finished.seen.contains($0.id)) }
        guard let last = fresh.map(\.at).max() else { return [] }
        let atLast = Set(fresh.filter { $0.at == last }.map(\.id))
        finished = (last, last == finished.at ? finished.seen.union(atLast) : atLast)
        return fresh.map(\.run)
    }
}

extension CoordinatorEngine: PrometheusExposition {
    /// `/metrics`: `metricsSnapshot()`'s counts, the pipelines' series (runs
    /// that finished since the last scrape are counted now, from the store),
    /// and the workers heard from in the last hour, in this engine's registry.
    public func prometheusText() async throws -> String {
        let snapshot = try await metricsSnapshot()
        let since = metricsState.withLock { $0.finished.at }
        let (pipelines, lastSuccess, rows) = try await store.read { db in
            let pipelines = try String.fetchAll(db, sql: "SELECT DISTINCT pipeline FROM runs WHERE kind = 'pipeline'")
            var last: [String: Double] = [:]
            for row in try Row.fetchAll(db, sql: """
                SELECT pipeline, MAX(finished_at) AS at FROM runs
                WHERE kind = 'pipeline' AND state = 'succeeded' AND finished_at IS NOT NULL GROUP BY pipeline
                """) {
                last[row["pipeline"]] = row["at"]
            }
            // Rows in: what ingest read; out: what publish wrote; quarantined: every stage's.
            let finished = try Row.fetchAll(db, sql: """
                SELECT r.id, r.pipeline, r.state, r.submitted_at, r.finished_at,
                       COALESCE(SUM(CASE WHEN t.stage = 'ingest' THEN x.rows_in END), 0) AS rin,
                       COALESCE(SUM(CASE WHEN t.stage = 'publish' THEN x.rows_out END), 0) AS rout,
                       COALESCE(SUM(x.rows_quarantined), 0) AS rq
                FROM runs r
                LEFT JOIN tasks t ON t.run = r.id AND t.state = 'succeeded'
                LEFT JOIN executions x ON x.id = t.winner
                WHERE r.kind = 'pipeline' AND r.finished_at >= ? AND r.state IN ('succeeded', 'failed', 'cancelled')
                GROUP BY r.id
                """, arguments: [since]).compactMap { row -> (id: String, run: FinishedRun, at: Double)? in
                guard let state = RunState(rawValue: row["state"]) else { return nil }
                let at: Double = row["finished_at"], submitted: Double = row["submitted_at"]
                return (row["id"], FinishedRun(pipeline: row["pipeline"], state: state, durationSeconds: at - submitted,
                                               rowsIn: row["rin"], rowsOut: row["rout"], rowsQuarantined: row["rq"]), at)
            }
            return (pipelines, last, finished)
        }
        for p in pipelines { metrics.registerPipeline(p) }
        let now = clock.seconds
        let (fresh, workers) = metricsState.withLock { m in
            (m.take(rows), m.workerResources.values.filter { now - $0.at <= BisMetrics.workerWindowSeconds }.map(\.resources))
        }
        for run in fresh { metrics.recordRunFinished(run) }
        return metrics.render(snapshot, lastSuccess: lastSuccess, workers: workers.sorted { $0.worker < $1.worker })
    }

    /// A run of `pipeline` passed its deadline unfinished: `bis_pipeline_deadline_misses_total`.
    public func recordDeadlineMiss(pipeline: String) { metrics.recordDeadlineMiss(pipeline: pipeline) }

    /// An alert about `pipeline` was marked sent, or given up on: `bis_pipeline_alerts_{sent,failed}_total`.
    public func recordAlert(sent: Bool, pipeline: String) { metrics.recordAlert(sent: sent, pipeline: pipeline) }
}

extension CoordinatorEngine {
    /// The counts `/metrics` shows: the store's by state and stage, the
    /// queues' depths, and what this engine counted since it started.
    /// (`CoordinatorHTTP` renders them as Prometheus text.)
    public func metricsSnapshot() async throws -> MetricsSnapshot {
        let depths = await transport.queueDepths()
        let quietAfter = options.workerQuietAfterSeconds
        let now = clock.seconds
        var snapshot = try await store.read { db in
            var s = MetricsSnapshot()
            for row in try Row.fetchAll(db, sql: "SELECT state, COUNT(*) AS n FROM runs GROUP BY state") {
                let state: String = row["state"]
                guard let decoded = RunState(rawValue: state) else {
                    throw MetricsError("runs has rows in state '\(state)', which this coordinator does not know")
                }
                s.runs[decoded, default: 0] += row["n"] as Int
            }
            for row in try Row.fetchAll(db, sql: "SELECT stage, state, COUNT(*) AS n FROM tasks GROUP BY stage, state") {
                let stage: String = row["stage"], state: String = row["state"]
                guard let s1 = Stage(rawValue: stage), let s2 = TaskState(rawValue: state) else {
                    throw MetricsError("tasks has rows of stage '\(stage)' in state '\(state)', which this coordinator does not know")
                }
                s.tasks.append(.init(stage: s1, state: s2, count: row["n"]))
            }
            for row in try Row.fetchAll(db, sql: "SELECT state, COUNT(*) AS n FROM executions GROUP BY state") {
                let state: String = row["state"]
                guard let decoded = ExecutionState(rawValue: state) else {
                    throw MetricsError("executions has rows in state '\(state)', which this coordinator does not know")
                }
                s.executions[decoded, default: 0] += row["n"] as Int
            }
            s.taskRetries = try Int.fetchOne(db, sql: "SELECT COALESCE(SUM(retries), 0) FROM tasks") ?? 0
            s.liveWorkers = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM workers WHERE state != 'stopped' AND last_seen > ?",
                                             arguments: [now - quietAfter]) ?? 0
            return s
        }
        let m = metricsState.withLock { $0 }
        snapshot.queueDepths = depths
        snapshot.messagesSent = m.sent
        snapshot.intakeCommits = m.commits
        snapshot.messagesRejected = Dictionary(uniqueKeysWithValues: m.rejected.map { ($0.key.rawValue, $0.value) })
        snapshot.handoffLatency = m.handoffLatency
        snapshot.taskDuration = m.taskDuration
        snapshot.gcReclaimedBytes = m.gcBytes
        snapshot.gcReclaimedFiles = m.gcFiles
        snapshot.gcPasses = m.gcPasses
        snapshot.brokerReconnects = transport.brokerReconnects
        // Workers heard from in the last hour (the workers view's window), also
        // when none beats any more; a saturating sum, for a count sent by a worker.
        snapshot.workerBrokerReconnects = m.workerBroker.values
            .filter { now - $0.at <= 3600 }
            .reduce(0) { $0.addingReportingOverflow(max(0, $1.reconnects ?? 0)).overflow ? Int.max : $0 + max(0, $1.reconnects ?? 0) }
        return snapshot
    }
}

/// A stored row the metrics cannot count: a state or stage this build does not know.
struct MetricsError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
