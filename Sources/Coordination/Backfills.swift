import FleetCore
import Foundation
import GRDB

// Backfills (`bis backfill NAME --from D --to D`, docs/schedules.md): one
// run per schedule slot of a registered pipeline in a range of local dates,
// as one object. Slots with a succeeded run already are skipped unless
// `rerun`. The scheduler's pass starts a backfill's queued slots, oldest
// first, while fewer than `max_active` of its runs are active; the run and
// its slot's move to `started` commit in one transaction, as for schedules.

extension CoordinatorEngine {
    public func backfill(_ name: String, _ request: BackfillRequest, as caller: Caller) async throws -> BackfillView {
        guard let r = try await store.read({ db in try PipelineRecord.fetch(db, name) }) else {
            throw ServiceError.notFound("no registered pipeline \(name) (bis pipelines lists them)")
        }
        guard var schedule = try header(r).schedule else {
            throw ServiceError.badRequest("pipeline \(name) has no schedule: a backfill runs its schedule's slots (bis trigger --date runs one day)")
        }
        guard let from = LocalDay.parse(request.from), let to = LocalDay.parse(request.to) else {
            throw ServiceError.badRequest("--from and --to must be YYYY-MM-DD dates, not '\(request.from)' and '\(request.to)'")
        }
        guard from <= to, to - from <= 3660 else { throw ServiceError.badRequest("--to must be on or after --from, at most ten years later") }
        if let n = request.maxActive, !(1...1000).contains(n) { throw ServiceError.badRequest("--max-active must be from 1 to 1000") }
        // The range given, whatever the schedule's start and end.
        schedule.startDay = nil
        schedule.endDay = nil
        // Counted while they are built: ten years of an every-minute line
        // would be millions of slots before the check.
        var slots: [ScheduleSpec.Slot] = []
        for day in from...to {
            slots += schedule.slots(onDay: day)
            guard slots.count <= Self.maxBackfillSlots else {
                throw ServiceError.badRequest("more than \(Self.maxBackfillSlots) slots (\(slots.count) by \(LocalDay.text(day))): "
                                              + "a backfill takes at most \(Self.maxBackfillSlots); split the range")
            }
        }
        guard !slots.isEmpty else { throw ServiceError.badRequest("the schedule of \(name) has no slot from \(request.from) to \(request.to)") }
        let id = BackfillView.idPrefix + name + "." + String(FleetIDs.newRunID(pipeline: "", now: clock.now()).dropFirst())
        let maxActive = request.maxActive ?? schedule.maxActiveRuns
        let list = slots.map { (SlotText.utc($0.instant), $0.localDate) }
        try await store.write { [clock] db in
            let now = clock.seconds
            try db.run("""
                INSERT INTO backfills(id, pipeline, from_day, to_day, max_active, rerun, state, created_at, created_by)
                VALUES (?, ?, ?, ?, ?, ?, 'running', ?, ?)
                """, [id, name, request.from, request.to, maxActive, request.rerun, now, caller.name])
            var skipped = 0
            for (slot, date) in list {
                let succeeded: Int = try db.value(
                    "SELECT COUNT(*) FROM runs WHERE pipeline = ? AND slot = ? AND state = 'succeeded'", [name, slot]) ?? 0
                let done = !request.rerun && succeeded > 0
                if done { skipped += 1 }
                try db.run("INSERT INTO backfill_slots(backfill, slot, local_date, state) VALUES (?, ?, ?, ?)",
                           [id, slot, date, done ? "skipped" : "queued"])
            }
            try db.audit(actor: caller.name, action: "backfill.started", run: nil,
                         detail: "\(id): \(name) \(request.from) to \(request.to), \(list.count) slots, \(skipped) skipped"
                            + (request.rerun ? ", rerun" : ""), at: now, caller: caller)
        }
        logger.info("backfill started", metadata: ["backfill.id": "\(id)", "pipeline": "\(name)", "slots": "\(list.count)"])
        wake.yield()
        return try await backfillView(id)
    }

    /// The most slots one backfill takes.
    static let maxBackfillSlots = 10_000

    public func backfillView(_ id: String) async throws -> BackfillView {
        try await store.read { db in
            guard let b = try db.row("SELECT * FROM backfills WHERE id = ?", [id]) else { throw ServiceError.notFound("no backfill \(id)") }
            var v = BackfillView(id: id, pipeline: b["pipeline"], from: b["from_day"], to: b["to_day"], state: b["state"],
                                 maxActive: b["max_active"], rerun: b["rerun"], createdBy: b["created_by"],
                                 createdAt: Date(timeIntervalSince1970: b["created_at"]))
            for row in try Row.fetchAll(db, sql: """
                SELECT s.state AS slot_state, s.run, r.state AS run_state FROM backfill_slots s LEFT JOIN runs r ON r.id = s.run
                WHERE s.backfill = ? ORDER BY s.slot
                """, arguments: [id]) {
                v.slots += 1
                switch (row["slot_state"] as String, row["run_state"] as String?) {
                case ("queued", _): v.waiting += 1
                case ("skipped", _): v.skipped += 1
                case ("refused", _), ("cancelled", _): v.failed += 1
                case (_, "succeeded"): v.succeeded += 1
                case (_, "failed"), (_, "cancelled"): v.failed += 1
                default: v.running += 1
                }
                if let run = row["run"] as String? { v.runs.append(run) }
            }
            return v
        }
    }

    public func cancelBackfill(_ id: String, as caller: Caller) async throws -> BackfillView {
        let active: [String] = try await store.write { [clock] db in
            guard let state: String = try db.value("SELECT state FROM backfills WHERE id = ?", [id]) else {
                throw ServiceError.notFound("no backfill \(id)")
            }
            guard state == "running" else { throw ServiceError.conflict("backfill \(id) is \(state) already") }
            let now = clock.seconds
            try db.run("UPDATE backfill_slots SET state = 'cancelled' WHERE backfill = ? AND state = 'queued'", [id])
            try db.run("UPDATE backfills SET state = 'cancelled' WHERE id = ?", [id])
            try db.audit(actor: caller.name, action: "backfill.cancelled", run: nil, detail: id, at: now, caller: caller)
            return try String.fetchAll(db, sql: """
                SELECT r.id FROM backfill_slots s JOIN runs r ON r.id = s.run
                WHERE s.backfill = ? AND r.state IN ('pending', 'running', 'awaiting_approval', 'failed')
                """, arguments: [id])
        }
        for run in active { _ = try? await cancel(run, as: caller) }
        return try await backfillView(id)
    }

    /// The scheduler's part for backfills: starts queued slots within each
    /// running backfill's max_active, and marks finished ones done.
    func backfillPass(_ records: [PipelineRecord]) async -> [String] {
        var started: [String] = []
        let running: [[String]]
        do {
            running = try await store.read { db in
                try Row.fetchAll(db, sql: "SELECT id, pipeline FROM backfills WHERE state = 'running' ORDER BY created_at")
                    .map { [$0["id"], $0["pipeline"]] }
            }
        } catch {
            logger.error("the scheduler cannot read the backfills", metadata: ["error": "\(error)"])
            return []
        }
        for b in running {
            let (id, name) = (b[0], b[1])
            do {
                started += try await startBackfillSlots(id, record: records.first { $0.name == name })
            } catch {
                logger.error("a backfill's pass failed; it tries again at the next", metadata: ["backfill.id": "\(id)", "error": "\(error)"])
            }
        }
        return started
    }

    private func startBackfillSlots(_ id: String, record: PipelineRecord?) async throws -> [String] {
        var started: [String] = []
        while !Task.isCancelled {
            let (maxActive, active, next) = try await store.read { db -> (Int, Int, [String]?) in
                let max: Int = try db.value("SELECT max_active FROM backfills WHERE id = ?", [id]) ?? 1
                let active: Int = try db.value("""
                    SELECT COUNT(*) FROM backfill_slots s JOIN runs r ON r.id = s.run
                    WHERE s.backfill = ? AND r.state IN ('pending', 'running', 'awaiting_approval')
                    """, [id]) ?? 0
                let row = try db.row("SELECT slot, local_date FROM backfill_slots WHERE backfill = ? AND state = 'queued' ORDER BY slot LIMIT 1", [id])
                return (max, active, row.map { [$0["slot"], $0["local_date"]] })
            }
            guard let next else {
                if active == 0 {
                    try await store.write { [clock] db in
                        try db.run("UPDATE backfills SET state = 'done' WHERE id = ? AND state = 'running'", [id])
                        try db.audit(actor: Self.schedulerName, action: "backfill.done", run: nil, detail: id, at: clock.seconds)
                    }
                }
                break
            }
            guard active < maxActive, let instant = SlotText.parseUTC(next[0]) else { break }
            guard let record, let header = try? header(record) else {
                try await refuseBackfillSlot(id, next[0], "the pipeline is no longer registered (or its spec cannot be read)")
                continue
            }
            do {
                let view = try await start(record, header: header, slot: instant, date: next[1], trigger: "backfill", params: [:],
                                           backfill: id, as: Caller(principal: nil, claimedName: Self.schedulerName))
                started.append(view.id)
            } catch is SlotTaken {
                continue
            } catch is SlotBusy {
                // Another run of the slot is active: the backfill waits (slots start oldest first).
                logger.info("a backfill's slot waits for the slot's active run", metadata: ["backfill.id": "\(id)", "slot": "\(next[0])"])
                break
            } catch let error as ServiceError {
                try await refuseBackfillSlot(id, next[0], error.description)
            }
        }
        return started
    }

    private func refuseBackfillSlot(_ id: String, _ slot: String, _ message: String) async throws {
        try await store.write { db in
            try db.run("UPDATE backfill_slots SET state = 'refused', message = ? WHERE backfill = ? AND slot = ? AND state = 'queued'",
                       [message, id, slot])
        }
        logger.warning("a backfill's run could not start", metadata: ["backfill.id": "\(id)", "slot": "\(slot)", "error": "\(message)"])
    }
}
