import FleetCore
import Foundation
import GRDB

// Alerts that no worker event raises: a run past its deadline (and its
// resolution when it finishes), a worker that stopped heartbeating while it
// held tasks, a stage whose queued tasks no worker takes. The alert sender
// checks them every `AlertOptions.watchInterval` (the slower two every 5 s);
// each writes its alert in the transaction that records what it found.

extension CoordinatorEngine {
    /// Where a run's deadline is measured from: its submit time. TODO(issue
    /// 13): a scheduled run's slot, once runs have one — change only this.
    func deadlineBase(_ run: RunRecord) -> Double {
        run.submittedAt
    }

    /// The run's deadline (seconds since 1970), nil when its spec has none.
    func deadline(of run: RunRecord) -> Double? {
        guard let spec = try? spec(run), let d = spec.deadline else { return nil }
        return d.due(base: deadlineBase(run))
    }

    /// Unfinished runs past their deadline are marked late and raise
    /// `deadline_missed` once; late runs that finished since raise its resolution.
    func watchDeadlines() async throws {
        let now = clock.seconds
        try await store.write { [self] db in
            let open = try Row.fetchAll(db, sql: """
                SELECT * FROM runs WHERE state IN ('pending', 'running', 'awaiting_approval') AND late_at IS NULL AND kind = 'pipeline'
                """).map(RunRecord.init)
            for run in open {
                guard let due = deadline(of: run), now >= due else { continue }
                try db.run("UPDATE runs SET late_at = ? WHERE id = ? AND late_at IS NULL", [now, run.id])
                let spec = try? spec(run)
                let rule = [spec?.deadline?.withinSeconds.map { "within \(SpecDuration.text($0))" },
                            spec?.deadline?.byMinuteOfDay.map { String(format: "by %02d:%02d UTC", $0 / 60, $0 % 60) }]
                    .compactMap { $0 }.joined(separator: " and ")
                try db.raiseRunAlert(.deadlineMissed, run: run.id, key: "\(run.id)/deadline_missed",
                                     message: "run \(run.id) has not finished by its deadline (\(rule), due \(AlertPayload.iso(due))); "
                                         + "it is \(run.state.rawValue)", at: now)
                metricsState.withLock { $0.deadlineMisses += 1 }
                logger.warning("run missed its deadline", metadata: ["run.id": "\(run.id)", "run.state": "\(run.state.rawValue)"])
            }
            let finished = try Row.fetchAll(db, sql: """
                SELECT id, state, late_at FROM runs WHERE late_at IS NOT NULL AND late_resolved_at IS NULL
                AND state IN ('succeeded', 'failed', 'cancelled')
                """)
            for row in finished {
                let id: String = row["id"], state: String = row["state"], lateAt: Double = row["late_at"]
                try db.run("UPDATE runs SET late_resolved_at = ? WHERE id = ?", [now, id])
                let original: Int64? = try db.value("SELECT id FROM alerts WHERE key = ?", ["\(id)/deadline_missed"])
                try db.raiseRunAlert(.deadlineMissed, run: id, key: "\(id)/deadline_missed/resolved",
                                     message: "run \(id) finished (\(state)) \(Int(now - lateAt)) s after it was marked late",
                                     at: now)
                if let original {
                    try db.run("UPDATE alerts SET resolves = ? WHERE key = ?", [original, "\(id)/deadline_missed/resolved"])
                }
            }
        }
    }

    /// `worker_lost` for a worker silent past `workerLostAfterSeconds` that
    /// held tasks; `queue_stalled` for a stage of a run whose queued tasks
    /// waited past `--queue-stall` with no execution of their attempt.
    func watchWorkersAndQueues() async throws {
        let now = clock.seconds
        let lostAfter = alertOptions.workerLostAfterSeconds
        let stall = alertOptions.queueStallSeconds
        try await store.write { db in
            let lost = try Row.fetchAll(db, sql: """
                SELECT id, host, pid, running, last_seen FROM workers WHERE state != 'stopped' AND running != '' AND last_seen < ?
                """, arguments: [now - lostAfter])
            for w in lost {
                let id: String = w["id"], host: String = w["host"], pid: Int = w["pid"], running: String = w["running"]
                let lastSeen: Double = w["last_seen"]
                let tasks = running.split(separator: "\n").map(String.init)
                try db.raiseAlert(.workerLost, run: nil, pipeline: nil, task: tasks.first,
                                  message: "worker \(id) on \(host) (pid \(pid)) has not sent a heartbeat for \(Int(now - lastSeen)) s "
                                      + "while holding \(tasks.count) task(s): \(tasks.prefix(5).joined(separator: ", "))",
                                  key: "worker_lost/\(id)/\(Int(lastSeen))", at: now)
            }
            guard let stall else { return }
            let stalled = try Row.fetchAll(db, sql: """
                SELECT t.run, t.stage, COUNT(*) AS n, MIN(t.planned_at) AS oldest FROM tasks t JOIN runs r ON r.id = t.run
                WHERE t.state = 'queued' AND t.planned_at < ? AND r.state IN ('running', 'awaiting_approval')
                AND NOT EXISTS (SELECT 1 FROM executions e WHERE e.task = t.id AND e.attempt = t.attempt)
                GROUP BY t.run, t.stage
                """, arguments: [now - stall])
            for s in stalled {
                let run: String = s["run"], stage: String = s["stage"], n: Int = s["n"], oldest: Double = s["oldest"]
                try db.raiseRunAlert(.queueStalled, run: run, key: "\(run)/queue_stalled/\(stage)",
                                     message: "\(n) \(stage) task(s) of run \(run) have waited in the queue for \(Int(now - oldest)) s "
                                         + "with no worker taking them (--queue-stall \(SpecDuration.text(stall)))", at: now)
            }
        }
    }
}
