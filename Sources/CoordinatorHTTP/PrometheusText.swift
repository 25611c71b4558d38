import CoordinatorAPI
import FleetWire

/// `/metrics`: a `MetricsSnapshot` in Prometheus' text exposition format
/// (version 0.0.4). Labels name states and stages only, never runs or tasks
/// (their number is unbounded).
enum PrometheusText {
    static let contentType = "text/plain; version=0.0.4; charset=utf-8"

    static func render(_ m: MetricsSnapshot) -> String {
        var out: [String] = []
        func family(_ name: String, _ type: String, _ help: String) {
            out.append("# HELP \(name) \(help)")
            out.append("# TYPE \(name) \(type)")
        }
        family("bis_runs", "gauge", "Runs in the lineage store by state.")
        for s in RunState.allCases { out.append("bis_runs{state=\"\(s.rawValue)\"} \(m.runs[s] ?? 0)") }
        family("bis_tasks", "gauge", "Tasks by stage and state.")
        for t in m.tasks { out.append("bis_tasks{stage=\"\(t.stage.rawValue)\",state=\"\(t.state.rawValue)\"} \(t.count)") }
        family("bis_executions", "gauge", "Executions by state (duplicate: a redelivered task's later result; lost: dead-lettered; abandoned: never reported, its task settled without it).")
        for s in ExecutionState.allCases { out.append("bis_executions{state=\"\(s.rawValue)\"} \(m.executions[s] ?? 0)") }
        family("bis_task_retries_total", "counter", "Task attempts after a failure or a lost execution.")
        out.append("bis_task_retries_total \(m.taskRetries)")
        family("bis_queue_depth", "gauge", "Ready messages per stage queue.")
        for (stage, n) in m.queueDepths.sorted(by: { $0.key < $1.key }) { out.append("bis_queue_depth{stage=\"\(stage.rawValue)\"} \(n)") }
        family("bis_workers_live", "gauge", "Workers with a recent heartbeat.")
        out.append("bis_workers_live \(m.liveWorkers)")
        family("bis_messages_sent_total", "counter", "Task messages the outbox sent and the broker confirmed, since start.")
        out.append("bis_messages_sent_total \(m.messagesSent)")
        family("bis_messages_rejected_total", "counter",
               "Messages refused since start (a missing or wrong MAC, a malformed id or path): never executed or committed.")
        for reason in MessageRejection.Reason.allCases {
            out.append("bis_messages_rejected_total{reason=\"\(reason.rawValue)\"} \(m.messagesRejected[reason.rawValue] ?? 0)")
        }
        family("bis_intake_commits_total", "counter", "Event batches committed (group commits), since start.")
        out.append("bis_intake_commits_total \(m.intakeCommits)")
        family("bis_broker_reconnects_total", "counter",
               "The coordinator's broker connections re-established after a loss, since start.")
        out.append("bis_broker_reconnects_total{client=\"coordinator\"} \(m.brokerReconnects)")
        // Not a counter: the sum of lifetime counts of the workers heard from
        // in the last hour drops when a worker goes.
        family("bis_worker_broker_reconnects", "gauge",
               "Broker reconnects the workers heard from in the last hour report in their last heartbeats, summed.")
        out.append("bis_worker_broker_reconnects \(m.workerBrokerReconnects)")
        family("bis_handoff_latency_seconds", "histogram", "From a task's planning to its result's commit.")
        out += lines(m.handoffLatency, "bis_handoff_latency_seconds")
        family("bis_task_duration_seconds", "histogram", "Winning executions' run time.")
        out += lines(m.taskDuration, "bis_task_duration_seconds")
        family("bis_gc_reclaimed_bytes_total", "counter", "Bytes of the files retention (bis gc) removed, since start.")
        out.append("bis_gc_reclaimed_bytes_total \(m.gcReclaimedBytes)")
        family("bis_gc_reclaimed_files_total", "counter", "Files retention (bis gc) removed, since start.")
        out.append("bis_gc_reclaimed_files_total \(m.gcReclaimedFiles)")
        family("bis_gc_passes_total", "counter", "Retention passes made (bis gc and the periodic pass), since start.")
        out.append("bis_gc_passes_total \(m.gcPasses)")
        family("bis_runs_late", "gauge", "Runs past their deadline that have not finished.")
        out.append("bis_runs_late \(m.runsLate)")
        family("bis_deadline_misses_total", "counter", "Runs that missed their deadline, since start.")
        out.append("bis_deadline_misses_total \(m.deadlineMisses)")
        family("bis_alert_deliveries_total", "counter", "Alert delivery attempts by outcome, since start.")
        out.append("bis_alert_deliveries_total{outcome=\"sent\"} \(m.alertsSent)")
        out.append("bis_alert_deliveries_total{outcome=\"failed\"} \(m.alertsFailed)")
        return out.joined(separator: "\n") + "\n"
    }

    /// Cumulative buckets, then `+Inf`, sum and count.
    static func lines(_ h: MetricsSnapshot.Histogram, _ name: String) -> [String] {
        var out: [String] = []
        for (i, b) in h.bounds.enumerated() { out.append("\(name)_bucket{le=\"\(b)\"} \(h.counts[i])") }
        out.append("\(name)_bucket{le=\"+Inf\"} \(h.count)")
        out.append("\(name)_sum \(h.sum)")
        out.append("\(name)_count \(h.count)")
        return out
    }
}
