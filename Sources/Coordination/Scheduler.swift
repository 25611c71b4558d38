import FleetCore
import Foundation
import GRDB
import Logging
import ServiceLifecycle

// The scheduler (docs/schedules.md): a service of the coordinator's
// ServiceGroup that starts registered pipelines' runs at their schedule's
// slots. Its state is in the lineage store: each pipeline's last slot
// considered (`pipelines.last_slot`) and the slots it claimed
// (`schedule_slots`). A pass
// 1. claims every slot due since the last one considered, as the catch-up
//    policy says (`ScheduleSpec.due`), as `queued` rows, and moves
//    `last_slot` on, in one transaction;
// 2. starts queued slots, oldest first, while fewer than max_active_runs of
//    the pipeline's runs are active. The run, its tag and the slot's move
//    to `started` commit in one transaction, and a unique index allows one
//    scheduled run per (pipeline, slot): a coordinator killed anywhere in
//    a catch-up and restarted starts every slot exactly once.

/// What the scheduler keeps in memory between passes.
struct SchedulerMemory {
    /// `pipelines.last_slot` as this engine's last pass over the pipeline
    /// set it, and when that was on a clock that stops while the machine
    /// sleeps. When the stored value is still this and the wall clock has
    /// not moved on much more than that clock, the coordinator and the
    /// pipeline were up since: with `catchup: none` every slot after it is
    /// on time, however long the passes took. Dropped when the pipeline is
    /// paused.
    var lastPass: [String: (slot: Double, at: SuspendingClock.Instant)] = [:]
    /// Pipeline name → the spec SHA-256 whose read error was logged (once per version).
    var specErrorLogged: [String: String] = [:]
}

/// Runs `schedulerPass()` every `interval`.
struct SchedulerLoop: Service {
    let engine: CoordinatorEngine
    let interval: Duration

    func run() async throws {
        try await cancelWhenGracefulShutdown { [engine, interval] in
            while !Task.isCancelled {
                await engine.schedulerPass()
                try? await Task.sleep(for: interval)
            }
        }
    }
}

extension CoordinatorEngine {
    /// Who the audit log and the runs name for scheduled runs.
    static let schedulerName = "scheduler"

    /// One pass of the scheduler at the clock's time; the runs it started.
    @discardableResult
    public func schedulerPass() async -> [String] {
        let records: [PipelineRecord]
        do { records = try await store.read { db in try PipelineRecord.all(db) } } catch {
            logger.error("the scheduler cannot read the registered pipelines", metadata: ["error": "\(error)"])
            return []
        }
        var started: [String] = await backfillPass(records)
        publishSchedulePeriods(records)
        schedulerMemory.withLock { memory in
            for r in records where r.paused { memory.lastPass.removeValue(forKey: r.name) }
        }
        for r in records where !r.paused {
            let header: SpecHeader
            do { header = try self.header(r) } catch {
                // Say so once per version, not every pass: the pipeline does not run until a readable version is added.
                let first = schedulerMemory.withLock { memory in
                    defer { memory.specErrorLogged[r.name] = r.specSHA256 }
                    return memory.specErrorLogged[r.name] != r.specSHA256
                }
                if first {
                    logger.error("a registered pipeline's spec cannot be read; the scheduler skips it until a new version is added", metadata: [
                        "pipeline": "\(r.name)", "version": "\(r.version)", "error": "\(error)"])
                }
                continue
            }
            guard let schedule = header.schedule else { continue }
            do {
                try await claimDueSlots(r, schedule)
                started += try await startQueuedSlots(r, header: header, schedule: schedule)
            } catch is CancellationError {
                return started
            } catch {
                logger.error("the scheduler's pass over a pipeline failed; it tries again at the next", metadata: [
                    "pipeline": "\(r.name)", "error": "\(error)"])
            }
        }
        return started
    }

    /// `bis_pipeline_schedule_period_seconds` for each scheduled pipeline
    /// that is not paused, which the rule BisPipelineNoRecentSuccess reads
    /// (ops/prometheus/bis-rules.yml): the longest wait between two slots
    /// over the coming year (a MON-FRI schedule's is its weekend, a `1,15`
    /// of the month's its 17 days), so the rule does not fire where the
    /// schedule itself pauses. Computed again each hour and for each new
    /// version; the series goes when a pipeline is paused, removed,
    /// unscheduled or past its `end`, so the rule stops watching it.
    func publishSchedulePeriods(_ records: [PipelineRecord]) {
        let now = clock.now()
        var current: [String: (sha: String, seconds: Double, at: Double)] = [:]
        let known = schedulePeriods.withLock { $0 }
        for r in records where !r.paused {
            if let cached = known[r.name], cached.sha == r.specSHA256, now.timeIntervalSince1970 - cached.at < 3600 {
                current[r.name] = cached
                continue
            }
            guard let header = try? header(r), let schedule = header.schedule,
                  let seconds = Self.longestWait(schedule, after: now) else { continue }
            current[r.name] = (r.specSHA256, seconds, now.timeIntervalSince1970)
        }
        schedulePeriods.withLock { $0 = current }
        for name in Set(known.keys).subtracting(current.keys) { metrics.setSchedulePeriod(pipeline: name, seconds: nil) }
        for (name, p) in current { metrics.setSchedulePeriod(pipeline: name, seconds: p.seconds) }
        publishNextRuns(records, now: now)
    }

    /// `bis_pipeline_next_run_timestamp_seconds`: each scheduled, unpaused
    /// pipeline's next slot after now; the series goes when there is none.
    func publishNextRuns(_ records: [PipelineRecord], now: Date) {
        var next: [String: Date] = [:]
        for r in records where !r.paused {
            if let header = try? header(r), let schedule = header.schedule, let slot = schedule.next(after: now) {
                next[r.name] = slot.instant
            }
        }
        let known = nextRuns.withLock { known in
            defer { known = Set(next.keys) }
            return known
        }
        for name in known.subtracting(next.keys) { metrics.setNextRun(pipeline: name, at: nil) }
        for (name, at) in next { metrics.setNextRun(pipeline: name, at: at.timeIntervalSince1970) }
    }

    /// The longest gap between consecutive slots from the first after `now`
    /// through a year later (at most 20,000 slots: a dense schedule's gaps
    /// are short anyway), and the one after those; nil when the schedule
    /// has fewer than two slots left (past or near its `end`).
    static func longestWait(_ schedule: ScheduleSpec, after now: Date) -> Double? {
        guard let first = schedule.next(after: now) else { return nil }
        var slots = schedule.slots(from: first.instant, through: first.instant.addingTimeInterval(366 * 86400), limit: 20_000)
        if let last = slots.last, let after = schedule.next(after: last.instant) { slots.append(after) }
        guard slots.count >= 2 else { return nil }
        return zip(slots, slots.dropFirst()).map { $1.instant.timeIntervalSince($0.instant) }.max()
    }

    /// Step 1: the due slots as `queued` rows, `last_slot` moved on.
    func claimDueSlots(_ r: PipelineRecord, _ schedule: ScheduleSpec) async throws {
        let now = clock.now()
        let limit = 1000
        let due = schedule.due(after: r.lastSlot.map { Date(timeIntervalSince1970: $0) },
                               registeredAt: Date(timeIntervalSince1970: r.registeredAt), now: now, limit: limit,
                               onTimeGrace: onTimeGrace(r, now: now))
        // `all` with more than `limit` slots: the rest at the next pass.
        let considered = schedule.catchup == .all && due.run.count >= limit ? due.run.last!.instant.timeIntervalSince1970 : now.timeIntervalSince1970
        let name = r.name, version = r.version
        let slots = due.run.map { SlotText.utc($0.instant) }
        try await store.write { db in
            for slot in slots {
                try db.run("""
                    INSERT INTO schedule_slots(pipeline, slot, version, state, created_at) VALUES (?, ?, ?, 'queued', ?)
                    ON CONFLICT(pipeline, slot) DO NOTHING
                    """, [name, slot, version, now.timeIntervalSince1970])
            }
            try db.run("UPDATE pipelines SET last_slot = ? WHERE name = ? AND (last_slot IS NULL OR last_slot < ?)",
                       [considered, name, considered])
        }
        let passedAt = SuspendingClock.now
        schedulerMemory.withLock { $0.lastPass[name] = (considered, passedAt) }
        if !slots.isEmpty {
            logger.info("schedule slots due", metadata: ["pipeline": "\(name)", "slots": "\(slots.count)",
                                                        "catchup": "\(schedule.catchup.rawValue)", "first": "\(slots[0])"])
        }
    }

    /// With `catchup: none`, how far back a slot still counts as on time:
    /// a minute, or three scheduler intervals when passes are further apart;
    /// and every slot since this engine's own last pass over the pipeline
    /// (a slow pass, over many pipelines or a loaded machine, is not the
    /// coordinator being down). Slots missed while the coordinator was down
    /// or the pipeline paused are still skipped.
    func onTimeGrace(_ r: PipelineRecord, now: Date) -> Double {
        var grace = ScheduleSpec.onTimeGrace
        if let every = options.schedulerInterval {
            let c = every.components
            grace = max(grace, 3 * (Double(c.seconds) + Double(c.attoseconds) / 1e18))
        }
        if let last = r.lastSlot, let mine = schedulerMemory.withLock({ $0.lastPass[r.name] }), mine.slot == last {
            let c = (SuspendingClock.now - mine.at).components
            let upFor = Double(c.seconds) + Double(c.attoseconds) / 1e18
            let wall = now.timeIntervalSince1970 - last
            // Up all along (not asleep, the clock not set forward): late, not missed.
            if wall <= upFor + grace { grace = max(grace, wall) }
        }
        return grace
    }

    /// Step 2: queued slots started, oldest first, within max_active_runs
    /// (a slot waiting for its input files counts as active). With
    /// `wait_for: {files: true}`, a slot whose globs match nothing waits
    /// (`waiting_for_input`, tried again every minute) until `timeout`.
    func startQueuedSlots(_ r: PipelineRecord, header: SpecHeader, schedule: ScheduleSpec) async throws -> [String] {
        var started: [String] = []
        let name = r.name
        while !Task.isCancelled {
            let now = clock.seconds
            let (active, next) = try await store.read { db -> (Int, [String]?) in
                let runs: Int = try db.value("""
                    SELECT COUNT(*) FROM runs WHERE pipeline = ? AND trigger IS NOT NULL
                    AND state IN ('pending', 'running', 'awaiting_approval')
                    """, [name]) ?? 0
                let waiting: Int = try db.value("SELECT COUNT(*) FROM schedule_slots WHERE pipeline = ? AND state = 'waiting_for_input'",
                                                [name]) ?? 0
                let row = try db.row("""
                    SELECT slot, state FROM schedule_slots WHERE pipeline = ?
                    AND (state = 'queued' OR (state = 'waiting_for_input' AND checked_at <= ?)) ORDER BY slot LIMIT 1
                    """, [name, now - Self.inputCheckInterval])
                return (runs + waiting, row.map { [$0["slot"], $0["state"]] })
            }
            guard let next, let instant = SlotText.parseUTC(next[0]) else { break }
            let (slot, waiting) = (next[0], next[1] == "waiting_for_input")
            // A waiting slot holds its own place.
            guard active - (waiting ? 1 : 0) < schedule.maxActiveRuns else { break }
            let caller = Caller(principal: nil, claimedName: Self.schedulerName)
            do {
                let view = try await start(r, header: header, slot: instant, date: SlotText.localDate(instant, in: schedule.timezone),
                                           trigger: "schedule", params: [:], as: caller)
                started.append(view.id)
                metrics.setSchedulerLag(seconds: clock.now().timeIntervalSince(instant))
                logger.info("scheduled run started", metadata: ["pipeline": "\(name)", "slot": "\(slot)", "run.id": "\(view.id)"])
            } catch is SlotTaken {
                continue
            } catch let error as DatabaseError where Self.isSlotTakenByIndex(error) {
                // Another run has the slot (the unique index): it is not open any more.
                try await store.write { db in
                    try db.run("UPDATE schedule_slots SET state = 'started' WHERE pipeline = ? AND slot = ? AND state IN ('queued', 'waiting_for_input')",
                               [name, slot])
                }
            } catch let error as ServiceError {
                let message = error.description
                if header.waitForFiles, Self.isMissingInput(error) {
                    let timeout = header.waitTimeoutSeconds
                    let gaveUp = try await store.write { db -> Bool in
                        let since: Double = try db.value("SELECT waiting_since FROM schedule_slots WHERE pipeline = ? AND slot = ?",
                                                         [name, slot]) ?? now
                        if now - since >= timeout {
                            let why = "waited \(Int(timeout)) s for input files, in vain: \(message)"
                            try db.run("""
                                UPDATE schedule_slots SET state = 'refused', message = ?, checked_at = ?
                                WHERE pipeline = ? AND slot = ? AND state IN ('queued', 'waiting_for_input')
                                """, [why, now, name, slot])
                            // Another coordinator's pass may have settled the slot first.
                            guard db.changesCount > 0 else { return true }
                            try db.audit(actor: Self.schedulerName, action: "schedule.refused", run: nil,
                                         detail: "\(name) slot \(slot): \(why)", at: now)
                            try Self.raiseSlotRefused(db, pipeline: name, slot: slot, why: why, at: now)
                            return true
                        }
                        try db.run("""
                            UPDATE schedule_slots SET state = 'waiting_for_input', waiting_since = ?, checked_at = ?, message = ?
                            WHERE pipeline = ? AND slot = ? AND state IN ('queued', 'waiting_for_input')
                            """, [since, now, message, name, slot])
                        return false
                    }
                    if !waiting || gaveUp {
                        logger.notice(gaveUp ? "a scheduled run gave up waiting for its input" : "a scheduled run waits for its input",
                                      metadata: ["pipeline": "\(name)", "slot": "\(slot)", "error": "\(message)"])
                    }
                    continue
                }
                // The spec cannot run for this slot (no input files, a refused path): recorded, not retried.
                try await store.write { [clock] db in
                    let now = clock.seconds
                    try db.run("""
                        UPDATE schedule_slots SET state = 'refused', message = ? WHERE pipeline = ? AND slot = ?
                        AND state IN ('queued', 'waiting_for_input')
                        """, [message, name, slot])
                    guard db.changesCount > 0 else { return }
                    try db.audit(actor: Self.schedulerName, action: "schedule.refused", run: nil,
                                 detail: "\(name) slot \(slot): \(message)", at: now)
                    try Self.raiseSlotRefused(db, pipeline: name, slot: slot, why: message, at: now)
                }
                logger.warning("a scheduled run could not start", metadata: ["pipeline": "\(name)", "slot": "\(slot)",
                                                                             "error": "\(message)"])
            }
        }
        return started
    }

    /// A scheduled slot that could not start has no run, so no run can fail
    /// and raise `run_failed`: the scheduler raises it for the slot instead
    /// (no run; state `refused`; once per pipeline and slot), in the
    /// transaction that refuses the slot. It reaches the operators' routes
    /// (`--alerts`, by pipeline); a spec's `notify:` belongs to a run.
    static func raiseSlotRefused(_ db: Database, pipeline: String, slot: String, why: String, at now: Double) throws {
        _ = try db.raiseAlert(.runFailed, run: nil, pipeline: pipeline, state: "refused",
                              message: "the scheduled slot \(slot) could not start: \(why)",
                              key: "\(pipeline)/\(slot)/run_failed", at: now)
    }

    /// Whether a failed insert is the unique index `runs_one_per_slot`
    /// refusing a second scheduled run of a slot; any other constraint
    /// (CHECK, NOT NULL, another index) is a bug to report, not a taken slot.
    static func isSlotTakenByIndex(_ error: DatabaseError) -> Bool {
        guard error.extendedResultCode == .SQLITE_CONSTRAINT_UNIQUE else { return false }
        // SQLite names the index's columns, not the index: "UNIQUE constraint failed: runs.pipeline, runs.slot".
        let m = error.message ?? ""
        return m.contains("runs_one_per_slot") || m.contains("runs.pipeline, runs.slot")
    }

    /// How often a slot waiting for its input files is tried again.
    static let inputCheckInterval: Double = 60

    /// The submit failed because a glob matched nothing (as `resolveInputs` and `submit` word it).
    static func isMissingInput(_ error: ServiceError) -> Bool {
        guard case .badRequest(let m) = error else { return false }
        return m.contains("no file matches") || m.contains("match no input files")
    }
}
