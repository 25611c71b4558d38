import FleetCore
import Foundation
import GRDB

/// A Prometheus histogram (cumulative buckets, sum, count).
struct Histogram: Sendable {
    let bounds: [Double]
    var counts: [Int]
    var sum = 0.0
    var count = 0

    init(bounds: [Double]) {
        self.bounds = bounds
        counts = Array(repeating: 0, count: bounds.count)
    }

    mutating func observe(_ v: Double) {
        for (i, b) in bounds.enumerated() where v <= b { counts[i] += 1 }
        sum += v
        count += 1
    }

    func lines(_ name: String) -> [String] {
        var out: [String] = []
        for (i, b) in bounds.enumerated() { out.append("\(name)_bucket{le=\"\(b)\"} \(counts[i])") }
        out.append("\(name)_bucket{le=\"+Inf\"} \(count)")
        out.append("\(name)_sum \(sum)")
        out.append("\(name)_count \(count)")
        return out
    }
}

/// What the engine counts in memory since it started (the store holds the rest).
struct EngineMetrics: Sendable {
    var sent = 0
    var commits = 0
    var commitSeconds = 0.0
    var taskDuration = Histogram(bounds: [0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900])
    var handoffLatency = Histogram(bounds: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 60])
}

extension CoordinatorEngine {
    /// Prometheus text format. Labels name states and stages only, never
    /// runs or tasks (their number is unbounded).
    public func metrics() async throws -> String {
        let depths = await transport.queueDepths()
        let quietAfter = options.workerQuietAfterSeconds
        let counts = try await store.read { db in
            (runs: try Row.fetchAll(db, sql: "SELECT state, COUNT(*) AS n FROM runs GROUP BY state")
                .map { ($0["state"] as String, $0["n"] as Int) },
             tasks: try Row.fetchAll(db, sql: "SELECT stage, state, COUNT(*) AS n FROM tasks GROUP BY stage, state")
                .map { ($0["stage"] as String, $0["state"] as String, $0["n"] as Int) },
             executions: try Row.fetchAll(db, sql: "SELECT state, COUNT(*) AS n FROM executions GROUP BY state")
                .map { ($0["state"] as String, $0["n"] as Int) },
             retries: try Int.fetchOne(db, sql: "SELECT COALESCE(SUM(retries), 0) FROM tasks") ?? 0,
             workers: try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM workers WHERE state != 'stopped' AND last_seen > ?",
                                       arguments: [Date().timeIntervalSince1970 - quietAfter]) ?? 0)
        }
        let m = metricsState.withLock { $0 }
        var out: [String] = []
        func family(_ name: String, _ type: String, _ help: String) {
            out.append("# HELP \(name) \(help)")
            out.append("# TYPE \(name) \(type)")
        }
        family("bis_runs", "gauge", "Runs in the lineage store by state.")
        let runs = Dictionary(counts.runs, uniquingKeysWith: +)
        for s in RunState.allCases { out.append("bis_runs{state=\"\(s.rawValue)\"} \(runs[s.rawValue] ?? 0)") }
        family("bis_tasks", "gauge", "Tasks by stage and state.")
        for (stage, state, n) in counts.tasks { out.append("bis_tasks{stage=\"\(stage)\",state=\"\(state)\"} \(n)") }
        family("bis_executions", "gauge", "Executions by state (duplicate: a redelivered task's later result; lost: dead-lettered; abandoned: never reported, its task settled without it).")
        let ex = Dictionary(counts.executions, uniquingKeysWith: +)
        for s in ExecutionState.allCases { out.append("bis_executions{state=\"\(s.rawValue)\"} \(ex[s.rawValue] ?? 0)") }
        family("bis_task_retries_total", "counter", "Task attempts after a failure or a lost execution.")
        out.append("bis_task_retries_total \(counts.retries)")
        family("bis_queue_depth", "gauge", "Ready messages per stage queue.")
        for (stage, n) in depths.sorted(by: { $0.key < $1.key }) { out.append("bis_queue_depth{stage=\"\(stage.rawValue)\"} \(n)") }
        family("bis_workers_live", "gauge", "Workers with a recent heartbeat.")
        out.append("bis_workers_live \(counts.workers)")
        family("bis_messages_sent_total", "counter", "Task messages the outbox sent and the broker confirmed, since start.")
        out.append("bis_messages_sent_total \(m.sent)")
        family("bis_intake_commits_total", "counter", "Event batches committed (group commits), since start.")
        out.append("bis_intake_commits_total \(m.commits)")
        family("bis_handoff_latency_seconds", "histogram", "From a task's planning to its result's commit.")
        out += m.handoffLatency.lines("bis_handoff_latency_seconds")
        family("bis_task_duration_seconds", "histogram", "Winning executions' run time.")
        out += m.taskDuration.lines("bis_task_duration_seconds")
        return out.joined(separator: "\n") + "\n"
    }
}
