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
        var started: [String] = []
        for r in records where !r.paused {
            guard let header = try? header(r), let schedule = header.schedule else { continue }
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

    /// Step 1: the due slots as `queued` rows, `last_slot` moved on.
    func claimDueSlots(_ r: PipelineRecord, _ schedule: ScheduleSpec) async throws {
        let now = clock.now()
        let limit = 1000
        let due = schedule.due(after: r.lastSlot.map { Date(timeIntervalSince1970: $0) },
                               registeredAt: Date(timeIntervalSince1970: r.registeredAt), now: now, limit: limit)
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
        if !slots.isEmpty {
            logger.info("schedule slots due", metadata: ["pipeline": "\(name)", "slots": "\(slots.count)",
                                                        "catchup": "\(schedule.catchup.rawValue)", "first": "\(slots[0])"])
        }
    }

    /// Step 2: queued slots started, oldest first, within max_active_runs.
    func startQueuedSlots(_ r: PipelineRecord, header: SpecHeader, schedule: ScheduleSpec) async throws -> [String] {
        var started: [String] = []
        let name = r.name
        while !Task.isCancelled {
            let (active, next) = try await store.read { db -> (Int, String?) in
                (try db.value("""
                    SELECT COUNT(*) FROM runs WHERE pipeline = ? AND trigger IS NOT NULL
                    AND state IN ('pending', 'running', 'awaiting_approval')
                    """, [name]) ?? 0,
                 try db.value("SELECT slot FROM schedule_slots WHERE pipeline = ? AND state = 'queued' ORDER BY slot LIMIT 1", [name]))
            }
            guard let slot = next, active < schedule.maxActiveRuns, let instant = SlotText.parseUTC(slot) else { break }
            let caller = Caller(principal: nil, claimedName: Self.schedulerName)
            do {
                let view = try await start(r, header: header, slot: instant, date: SlotText.localDate(instant, in: schedule.timezone),
                                           trigger: "schedule", params: [:], as: caller)
                started.append(view.id)
                logger.info("scheduled run started", metadata: ["pipeline": "\(name)", "slot": "\(slot)", "run.id": "\(view.id)"])
            } catch is SlotTaken {
                continue
            } catch let error as DatabaseError where error.resultCode == .SQLITE_CONSTRAINT {
                // Another run has the slot (the unique index): it is not queued any more.
                try await store.write { db in
                    try db.run("UPDATE schedule_slots SET state = 'started' WHERE pipeline = ? AND slot = ? AND state = 'queued'", [name, slot])
                }
            } catch let error as ServiceError {
                // The spec cannot run for this slot (no input files, a refused path): recorded, not retried.
                let message = error.description
                try await store.write { [clock] db in
                    let now = clock.seconds
                    try db.run("UPDATE schedule_slots SET state = 'refused', message = ? WHERE pipeline = ? AND slot = ? AND state = 'queued'",
                               [message, name, slot])
                    try db.audit(actor: Self.schedulerName, action: "schedule.refused", run: nil,
                                 detail: "\(name) slot \(slot): \(message)", at: now)
                }
                logger.warning("a scheduled run could not start", metadata: ["pipeline": "\(name)", "slot": "\(slot)",
                                                                             "error": "\(message)"])
            }
        }
        return started
    }
}
