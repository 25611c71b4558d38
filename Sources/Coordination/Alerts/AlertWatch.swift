import FleetCore
import Foundation
import GRDB

// Alerts that no worker event raises: a run past its deadline (and its
// resolution when it finishes), a worker that stopped heartbeating while it
// held tasks, a stage whose queued tasks no worker takes. The alert sender
// checks them every `AlertOptions.watchInterval` (the slower two every 5 s);
// each writes its alert in the transaction that records what it found.

extension CoordinatorEngine {
    /// Where a run's deadline is measured from: a scheduled run's slot (its
    /// logical time: a nightly run caught up at noon is late at once); the
    /// submit time of any other run (`bis submit`, `bis trigger`, a
    /// backfill: re-running an old slot on purpose is not late).
    func deadlineBase(_ run: RunRecord) -> Double {
        guard run.trigger == "schedule" else { return run.submittedAt }
        return run.slot.flatMap { SlotText.parseUTC($0) }?.timeIntervalSince1970 ?? run.submittedAt
    }

    /// The run's deadline (seconds since 1970), nil when its spec has none;
    /// `by` in the schedule's time zone.
    func deadline(of run: RunRecord) -> Double? {
        guard let spec = try? spec(run), let d = spec.deadline else { return nil }
        return d.due(base: deadlineBase(run), timeZone: spec.header.schedule?.timezone ?? TimeZone(identifier: "UTC")!)
    }

    /// Unfinished runs past their deadline are marked late and raise
    /// `deadline_missed` once; late runs that finished since raise its resolution.
    func watchDeadlines() async throws {
        let now = clock.seconds
        // Read first: the writer is taken only when a run is due or a late one finished.
        let work = try await store.read { [self] db -> Bool in
            let open = try Row.fetchAll(db, sql: """
                SELECT * FROM runs WHERE state IN ('pending', 'running', 'awaiting_approval') AND late_at IS NULL AND kind = 'pipeline'
                """).map(RunRecord.init)
            if open.contains(where: { run in deadline(of: run).map { now >= $0 } ?? false }) { return true }
            return try Bool.fetchOne(db, sql: """
                SELECT EXISTS (SELECT 1 FROM runs WHERE late_at IS NOT NULL AND late_resolved_at IS NULL
                               AND state IN ('succeeded', 'failed', 'cancelled'))
                """) ?? false
        }
        guard work else { return }
        // Counted after the commit, only for runs this pass marked late.
        let missed = try await store.write { [self] db -> [String] in
            var missed: [String] = []
            let open = try Row.fetchAll(db, sql: """
                SELECT * FROM runs WHERE state IN ('pending', 'running', 'awaiting_approval') AND late_at IS NULL AND kind = 'pipeline'
                """).map(RunRecord.init)
            for run in open {
                guard let due = deadline(of: run), now >= due else { continue }
                try db.run("UPDATE runs SET late_at = ? WHERE id = ? AND late_at IS NULL", [now, run.id])
                guard db.changesCount > 0 else { continue }
                let spec = try? spec(run)
                let rule = [spec?.deadline?.withinSeconds.map { "within \(SpecDuration.text($0))" },
                            spec?.deadline?.byMinuteOfDay.map {
                                String(format: "by %02d:%02d ", $0 / 60, $0 % 60) + (spec?.header.schedule?.timezone.identifier ?? "UTC") }]
                    .compactMap { $0 }.joined(separator: " and ")
                // One generation per lateness: a retried run late again gets
                // RUN/deadline_missed/2 (the first keeps RUN/deadline_missed).
                let earlier: Int = try db.value("""
                    SELECT COUNT(*) FROM alerts WHERE run = ? AND event = 'deadline_missed' AND key NOT LIKE '%/resolved'
                    """, [run.id]) ?? 0
                let key = earlier == 0 ? "\(run.id)/deadline_missed" : "\(run.id)/deadline_missed/\(earlier + 1)"
                try db.raiseRunAlert(.deadlineMissed, run: run.id, key: key,
                                     message: "run \(run.id) has not finished by its deadline (\(rule), due \(AlertPayload.iso(due))); "
                                         + "it is \(run.state.rawValue)", at: now)
                missed.append(run.pipeline)
                logger.warning("run missed its deadline", metadata: ["run.id": "\(run.id)", "run.state": "\(run.state.rawValue)"])
            }
            let finished = try Row.fetchAll(db, sql: """
                SELECT id, state, late_at FROM runs WHERE late_at IS NOT NULL AND late_resolved_at IS NULL
                AND state IN ('succeeded', 'failed', 'cancelled')
                """)
            for row in finished {
                let id: String = row["id"], state: String = row["state"], lateAt: Double = row["late_at"]
                try db.run("UPDATE runs SET late_resolved_at = ? WHERE id = ?", [now, id])
                // The latest generation's alert is the one resolved.
                let original = try db.row("""
                    SELECT id, key FROM alerts WHERE run = ? AND event = 'deadline_missed' AND key NOT LIKE '%/resolved'
                    ORDER BY id DESC LIMIT 1
                    """, [id])
                let key = ((original?["key"] as String?) ?? "\(id)/deadline_missed") + "/resolved"
                try db.raiseRunAlert(.deadlineMissed, run: id, key: key,
                                     message: "run \(id) finished (\(state)) \(Int(now - lateAt)) s after it was marked late",
                                     at: now)
                if let originalID = original?["id"] as Int64? {
                    try db.run("UPDATE alerts SET resolves = ? WHERE key = ?", [originalID, key])
                }
            }
            return missed
        }
        for pipeline in missed { recordDeadlineMiss(pipeline: pipeline) }
    }

    /// `worker_lost` for a worker silent past `workerLostAfterSeconds` that
    /// held tasks; `queue_stalled` for a stage of a run whose queued tasks
    /// waited past `--queue-stall` since their attempt was queued, with no
    /// execution of their attempt, while no worker started any task of that
    /// stage within the window.
    func watchWorkersAndQueues(workersToo: Bool = true) async throws {
        let now = clock.seconds
        let lostAfter = alertOptions.workerLostAfterSeconds
        let stall = alertOptions.queueStallSeconds
        // Read first; the writer is taken only when something was found, and
        // the alerts are keyed, so a pass that finds what an earlier one
        // raised changes nothing.
        struct Lost { let id: String, host: String, pid: Int, running: String, lastSeen: Double }
        struct Stalled { let run: String, stage: String, n: Int, oldest: Double }
        let (lost, stalled) = try await store.read { db -> ([Lost], [Stalled]) in
            let lost = !workersToo ? [] : try Row.fetchAll(db, sql: """
                SELECT id, host, pid, running, last_seen FROM workers WHERE state != 'stopped' AND running != ''
                AND last_seen < ? AND last_seen > ?
                """, arguments: [now - lostAfter, now - 86400]).map {   // not workers gone for more than a day
                Lost(id: $0["id"], host: $0["host"], pid: $0["pid"], running: $0["running"], lastSeen: $0["last_seen"])
            }
            guard let stall else { return (lost, []) }
            // Measured from when the task's current attempt was queued: the
            // broker confirmed its outbox row (`sent_at`, the coordinator's
            // clock) plus the row's delay (a retry's backoff), so a retry or
            // `bis retry` starts the clock again. Cheapest filters first
            // (outbox has no index by task): `planned_at` (an attempt is
            // never queued before it) and no execution of the attempt.
            let cut = now - stall
            let queued = try Row.fetchAll(db, sql: """
                SELECT t.id, t.run, t.stage, t.attempt FROM runs r JOIN tasks t ON t.run = r.id
                WHERE r.state IN ('running', 'awaiting_approval') AND t.state = 'queued' AND t.planned_at < ?
                AND NOT EXISTS (SELECT 1 FROM executions e WHERE e.task = t.id AND e.attempt = t.attempt)
                """, arguments: [cut]).map { (id: $0["id"] as Int64, run: $0["run"] as String, stage: $0["stage"] as String,
                                              attempt: $0["attempt"] as Int) }
            guard !queued.isEmpty else { return (lost, []) }
            // The queue is per stage (shared by every run): a stage from
            // which some worker started a task within the window is being
            // drained, slowly perhaps, but not stalled.
            var idle: Set<String> = []
            for stage in Set(queued.map(\.stage)) {
                let busy = try Bool.fetchOne(db, sql: """
                    SELECT EXISTS (SELECT 1 FROM executions e JOIN tasks t ON t.id = e.task
                                   WHERE t.stage = ? AND e.started_at > ? AND e.worker IS NOT NULL)
                    """, arguments: [stage, cut]) ?? false
                if !busy { idle.insert(stage) }
            }
            let waiting = queued.filter { idle.contains($0.stage) }
            guard !waiting.isEmpty else { return (lost, []) }
            var queuedAt: [Int64: Double] = [:]
            let attempts = Dictionary(waiting.map { ($0.id, $0.attempt) }, uniquingKeysWith: { a, _ in a })
            // One pass over the outbox (integer ids, inlined).
            let ids = waiting.map { String($0.id) }.joined(separator: ",")
            for row in try Row.fetchAll(db, sql: """
                SELECT task, attempt, MAX(sent_at + delay_ms / 1000.0) AS at FROM outbox
                WHERE sent_at IS NOT NULL AND task IN (\(ids)) GROUP BY task, attempt
                """) {
                let task: Int64 = row["task"], attempt: Int = row["attempt"], at: Double = row["at"]
                if attempts[task] == attempt { queuedAt[task] = at }
            }
            var groups: [String: Stalled] = [:]
            for t in waiting {
                guard let at = queuedAt[t.id], at < cut else { continue }
                let key = t.run + "\u{0}" + t.stage
                let g = groups[key]
                groups[key] = Stalled(run: t.run, stage: t.stage, n: (g?.n ?? 0) + 1, oldest: min(g?.oldest ?? at, at))
            }
            return (lost, groups.values.sorted { ($0.run, $0.stage) < ($1.run, $1.stage) })
        }
        guard !lost.isEmpty || !stalled.isEmpty else { return }
        try await store.write { db in
            for w in lost {
                let (id, host, pid, running, lastSeen) = (w.id, w.host, w.pid, w.running, w.lastSeen)
                let tasks = running.split(separator: "\n").map(String.init)
                try db.raiseAlert(.workerLost, run: nil, pipeline: nil, task: tasks.first,
                                  message: "worker \(id) on \(host) (pid \(pid)) has not sent a heartbeat for \(Int(now - lastSeen)) s "
                                      + "while holding \(tasks.count) task(s): \(tasks.prefix(5).joined(separator: ", "))",
                                  key: "worker_lost/\(id)/\(Int(lastSeen))", at: now)
            }
            for s in stalled {
                let (run, stage, n, oldest) = (s.run, s.stage, s.n, s.oldest)
                try db.raiseRunAlert(.queueStalled, run: run, key: "\(run)/queue_stalled/\(stage)",
                                     message: "\(n) \(stage) task(s) of run \(run) have waited in the queue for \(Int(now - oldest)) s "
                                         + "with no worker taking them (--queue-stall \(SpecDuration.text(stall ?? 0)))", at: now)
            }
        }
    }
}
