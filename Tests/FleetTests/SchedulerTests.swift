@testable import Coordination
import FleetCore
import Foundation
import GRDB
import Testing

/// The scheduler with an injected clock (docs/schedules.md): registered
/// pipelines, catch-up after the coordinator was down, max_active_runs,
/// one run per slot, manual triggers and run parameters.
@Suite struct SchedulerTests {
    struct Setup {
        let store: LineageStore
        let engine: CoordinatorEngine
        let clock: ManualClock
        let dir: String
        let spec: String
    }

    /// A store, an engine (not started: the tests call `schedulerPass()`),
    /// a daily 02:15 Helsinki spec and an input file for every day of November 2026.
    static func setup(catchup: String, maxActive: Int = 10, now: String, start: String? = nil) throws -> Setup {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("bis-sched-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir + "/in", withIntermediateDirectories: true)
        for day in 1...30 {
            try "id,region\n1,\(day)\n".write(toFile: dir + String(format: "/in/2026-11-%02d-emea.csv", day), atomically: true, encoding: .utf8)
        }
        let spec = dir + "/nightly.yml"
        try """
            pipeline: nightly
            schedule:
              cron: "15 2 * * *"
              timezone: Europe/Helsinki
            \(start.map { "  start: \($0)\n" } ?? "")  catchup: \(catchup)
              max_active_runs: \(maxActive)
            params:
              region: {type: string, default: emea}
            sources:
              orders:
                format: csv
                files: "in/${date}-${region}.csv"
                columns: {id: int64, region: string}
            """.write(toFile: spec, atomically: true, encoding: .utf8)
        let clock = ManualClock(try #require(SlotText.parseUTC(now)))
        var options = CoordinatorOptions(clock: clock)
        options.schedulerInterval = nil
        options.retention.interval = nil
        let store = try LineageStore(path: dir + "/bis.db")
        let engine = CoordinatorEngine(store: store, transport: InMemoryTransport(), chunkStore: ChunkStore(root: dir + "/data"),
                                       options: options)
        return Setup(store: store, engine: engine, clock: clock, dir: dir, spec: spec)
    }

    static let caller = Caller(principal: Principal(name: "ann", role: .operator), claimedName: "ann@host")

    static func scheduledRuns(_ s: Setup) async throws -> [RunView] {
        try await s.engine.runs(limit: 100).filter { $0.trigger == "schedule" }.sorted { ($0.slot ?? "") < ($1.slot ?? "") }
    }

    @Test(arguments: [
        ("all", ["2026-11-11T00:15:00Z", "2026-11-12T00:15:00Z", "2026-11-13T00:15:00Z"]),
        ("latest", ["2026-11-13T00:15:00Z"]),
        ("none", []),
    ])
    func downForThreeDays(_ catchup: String, _ expected: [String]) async throws {
        let s = try Self.setup(catchup: catchup, now: "2026-11-09T12:00:00Z")
        defer { try? FileManager.default.removeItem(atPath: s.dir) }
        let added = try await s.engine.addPipeline(PipelineAddRequest(specPath: s.spec, by: "ann@host"), as: Self.caller)
        #expect(added.outcome == "registered")
        #expect(added.pipeline.nextSlot == "2026-11-10T00:15:00Z")
        #expect(added.pipeline.schedule == "at 02:15 every day")
        // Up at the 10th's slot: it runs whatever the policy.
        s.clock.set(try #require(SlotText.parseUTC("2026-11-10T00:15:10Z")))
        #expect(try await s.engine.schedulerPass().count == 1)
        // Down from then until the 13th, 11:00 local.
        s.clock.set(try #require(SlotText.parseUTC("2026-11-13T09:00:00Z")))
        await s.engine.schedulerPass()
        let runs = try await Self.scheduledRuns(s)
        #expect(runs.map { $0.slot! } == ["2026-11-10T00:15:00Z"] + expected)
        // Each read its own day's file: ${date} is the slot's Helsinki date.
        for r in runs {
            #expect(r.params?["date"] == String(r.slot!.prefix(10)))
            #expect(r.params?["region"] == "emea")
            #expect(r.version == 1)
            #expect(r.submittedBy == "scheduler")
        }
        // A second pass at the same time starts nothing more.
        #expect(try await s.engine.schedulerPass().isEmpty)
    }

    @Test func catchupAllFromStartAndOneRunPerSlotUnderTwoSchedulers() async throws {
        let s = try Self.setup(catchup: "all", now: "2026-11-06T12:00:00Z", start: "2026-11-01")
        defer { try? FileManager.default.removeItem(atPath: s.dir) }
        _ = try await s.engine.addPipeline(PipelineAddRequest(specPath: s.spec, by: "ann@host"), as: Self.caller)
        // A second engine on the same store (as a coordinator restarted while
        // the first still finishes its pass): both pass at once.
        var options = CoordinatorOptions(clock: s.clock)
        options.schedulerInterval = nil
        let other = CoordinatorEngine(store: try LineageStore(path: s.dir + "/bis.db"), transport: InMemoryTransport(),
                                      chunkStore: ChunkStore(root: s.dir + "/data"), options: options)
        async let a = s.engine.schedulerPass()
        async let b = other.schedulerPass()
        let started = await a + b
        #expect(started.count == 6)
        let runs = try await Self.scheduledRuns(s)
        #expect(runs.map { $0.slot! } == (1...6).map { String(format: "2026-11-%02dT00:15:00Z", $0) })
        #expect(Set(runs.compactMap { $0.params?["date"] }) == Set((1...6).map { String(format: "2026-11-%02d", $0) }))
    }

    @Test func maxActiveRunsQueuesSlots() async throws {
        let s = try Self.setup(catchup: "all", maxActive: 1, now: "2026-11-04T12:00:00Z", start: "2026-11-01")
        defer { try? FileManager.default.removeItem(atPath: s.dir) }
        _ = try await s.engine.addPipeline(PipelineAddRequest(specPath: s.spec, by: "ann@host"), as: Self.caller)
        let first = try await s.engine.schedulerPass()
        #expect(first.count == 1)
        var list = try await s.engine.pipelines()
        #expect(list.first?.queuedSlots == 3)
        // The active run holds the others back until it settles.
        #expect(try await s.engine.schedulerPass().isEmpty)
        _ = try await s.engine.cancel(first[0], as: Self.caller)
        #expect(try await s.engine.schedulerPass().count == 1)
        list = try await s.engine.pipelines()
        #expect(list.first?.queuedSlots == 2)
        #expect(list.first?.lastRunState == .running)
    }

    /// The period the rule BisPipelineNoRecentSuccess reads: the longest
    /// wait between slots over the coming year, none after the schedule's end.
    @Test func theSchedulePeriodIsTheLongestWaitAhead() throws {
        let now = try #require(SlotText.parseUTC("2026-02-03T00:00:00Z"))
        let twiceAMonth = ScheduleSpec(cron: try CronExpression("0 0 1,15 * *"))
        #expect(CoordinatorEngine.longestWait(twiceAMonth, after: now) == Double(17 * 86400))   // the 15th to the 1st, in a 31-day month
        let monthly = ScheduleSpec(cron: try CronExpression("0 0 1 * *"))
        #expect(CoordinatorEngine.longestWait(monthly, after: now) == Double(31 * 86400))
        let ended = ScheduleSpec(cron: try CronExpression("0 0 * * *"), endDay: LocalDay.parse("2026-01-31"))
        #expect(CoordinatorEngine.longestWait(ended, after: now) == nil)
    }

    @Test func versionsPauseTriggerAndRemove() async throws {
        let s = try Self.setup(catchup: "latest", now: "2026-11-09T12:00:00Z")
        defer { try? FileManager.default.removeItem(atPath: s.dir) }
        let request = PipelineAddRequest(specPath: s.spec, by: "ann@host")
        #expect(try await s.engine.addPipeline(request, as: Self.caller).outcome == "registered")
        #expect(try await s.engine.addPipeline(request, as: Self.caller).outcome == "unchanged")
        let text = try String(contentsOfFile: s.spec, encoding: .utf8)
        try text.replacingOccurrences(of: "15 2 * * *", with: "30 4 * * MON-FRI").write(toFile: s.spec, atomically: true, encoding: .utf8)
        let second = try await s.engine.addPipeline(request, as: Self.caller)
        #expect(second.outcome == "new version")
        #expect(second.pipeline.version == 2)
        #expect(try await s.engine.pipeline("nightly", version: 1).specText == text)
        #expect(try await s.engine.pipeline("nightly", version: nil).versions == [1, 2])

        // /metrics' schedule period (the rule BisPipelineNoRecentSuccess):
        // a MON-FRI schedule waits three days over the weekend, and an hour
        // more over the weekend Helsinki's clocks go back (October 2027).
        await s.engine.schedulerPass()
        #expect(try await s.engine.prometheusText().contains("bis_pipeline_schedule_period_seconds{pipeline=\"nightly\"} 262800"))
        let paused = try await s.engine.changePipeline("nightly", .pause, as: Self.caller)
        #expect(paused.paused && paused.nextSlot == nil)
        s.clock.advance(by: 2 * 86400)
        #expect(try await s.engine.schedulerPass().isEmpty)
        #expect(!(try await s.engine.prometheusText().contains("bis_pipeline_schedule_period_seconds{pipeline=\"nightly\"}")))

        // A manual run with a date and a parameter.
        try "id,region\n1,x\n".write(toFile: s.dir + "/in/2026-11-03-apac.csv", atomically: true, encoding: .utf8)
        let run = try await s.engine.trigger("nightly", TriggerRequest(date: "2026-11-03", params: ["region": "apac"], by: "ann@host"),
                                            as: Self.caller)
        #expect(run.trigger == "manual")
        #expect(run.slot == "2026-11-02T22:00:00Z")   // local midnight in Helsinki
        #expect(run.params == ["date": "2026-11-03", "region": "apac"])
        #expect(run.version == 2)
        await #expect(throws: ServiceError.self) {
            try await s.engine.trigger("nightly", TriggerRequest(params: ["regoin": "x"], by: "ann@host"), as: Self.caller)
        }
        _ = try await s.engine.changePipeline("nightly", .remove, as: Self.caller)
        #expect(try await s.engine.pipelines().isEmpty)
        let actions = try await s.engine.audit(run: nil, limit: 100).map(\.action)
        for a in ["pipeline.registered", "pipeline.version_added", "pipeline.paused", "pipeline.removed"] {
            #expect(actions.contains(a))
        }
    }

    /// `wait_for: {files: true}`: the slot waits for its file, tried again
    /// every minute; the file appears and the run starts. Another slot whose
    /// file never comes gives up after the timeout, naming the filled-in glob.
    @Test func aSlotWaitsForItsInputFile() async throws {
        let s = try Self.setup(catchup: "all", now: "2026-12-01T12:00:00Z", start: "2026-12-01")
        defer { try? FileManager.default.removeItem(atPath: s.dir) }
        var text = try String(contentsOfFile: s.spec, encoding: .utf8)
        text += "\nwait_for: {files: true, timeout: 10m}\n"
        try text.write(toFile: s.spec, atomically: true, encoding: .utf8)
        _ = try await s.engine.addPipeline(PipelineAddRequest(specPath: s.spec, by: "ann@host"), as: Self.caller)
        #expect(try await s.engine.schedulerPass().isEmpty)
        #expect(try await s.engine.pipelines().first?.queuedSlots == 1)   // waiting for in/2026-12-01-emea.csv
        // Not tried again within the minute, then the file appears.
        s.clock.advance(by: 30)
        #expect(try await s.engine.schedulerPass().isEmpty)
        try "id,region\n1,x\n".write(toFile: s.dir + "/in/2026-12-01-emea.csv", atomically: true, encoding: .utf8)
        s.clock.advance(by: 31)
        let started = try await s.engine.schedulerPass()
        #expect(started.count == 1)
        #expect(try await Self.scheduledRuns(s).map { $0.params?["date"] } == ["2026-12-01"])

        // The next day's file never comes: after ten minutes the slot is refused.
        s.clock.set(try #require(SlotText.parseUTC("2026-12-02T00:15:30Z")))
        _ = try await s.engine.cancel(started[0], as: Self.caller)
        #expect(try await s.engine.schedulerPass().isEmpty)
        s.clock.advance(by: 11 * 60)
        #expect(try await s.engine.schedulerPass().isEmpty)
        #expect(try await s.engine.pipelines().first?.queuedSlots == 0)
        let refusals = try await s.engine.audit(run: nil, limit: 100).filter { $0.action == "schedule.refused" }
        #expect(refusals.count == 1)
        #expect(refusals.first?.detail?.contains("no file matches 'in/2026-12-02-emea.csv'") == true, "\(refusals)")
        // No run exists to fail, so the slot itself raises run_failed, once.
        let alerts = try await s.engine.alerts(run: nil, limit: 100).filter { $0.event == .runFailed }
        #expect(alerts.count == 1, "\(alerts)")
        #expect(alerts.first?.pipeline == "nightly" && alerts.first?.run == nil)
        #expect(alerts.first?.message.contains("slot 2026-12-02T00:15:00Z could not start") == true, "\(alerts)")
        #expect(alerts.first?.message.contains("in/2026-12-02-emea.csv") == true, "\(alerts)")
        #expect(try await s.engine.schedulerPass().isEmpty)
        #expect(try await s.engine.alerts(run: nil, limit: 100).filter { $0.event == .runFailed }.count == 1)
    }

    /// A backfill is one object: its slots start within --max-active, and
    /// cancelling it cancels its queued slots and active runs.
    @Test func aBackfillRunsItsSlotsAndCancelsWhole() async throws {
        let s = try Self.setup(catchup: "none", now: "2026-11-20T12:00:00Z")
        defer { try? FileManager.default.removeItem(atPath: s.dir) }
        _ = try await s.engine.addPipeline(PipelineAddRequest(specPath: s.spec, by: "ann@host"), as: Self.caller)
        let b = try await s.engine.backfill("nightly", BackfillRequest(from: "2026-11-01", to: "2026-11-04", maxActive: 2, by: "ann@host"),
                                           as: Self.caller)
        #expect(b.id.hasPrefix("backfill.nightly."))
        #expect(b.slots == 4 && b.waiting == 4 && b.state == "running")
        let started = try await s.engine.schedulerPass()
        #expect(started.count == 2)
        var v = try await s.engine.backfillView(b.id)
        #expect(v.running == 2 && v.waiting == 2)
        let runs = try await s.engine.runs(limit: 10).filter { $0.trigger == "backfill" }
        #expect(Set(runs.compactMap { $0.params?["date"] }) == ["2026-11-01", "2026-11-02"])
        _ = try await s.engine.cancel(started[0], as: Self.caller)
        #expect(try await s.engine.schedulerPass().count == 1)
        v = try await s.engine.cancelBackfill(b.id, as: Self.caller)
        #expect(v.state == "cancelled")
        #expect(v.failed == 4 && v.running == 0 && v.waiting == 0, "\(v)")
        await #expect(throws: ServiceError.self) {
            try await s.engine.backfill("nightly", BackfillRequest(from: "2026-11-04", to: "2026-11-01", by: "ann@host"), as: Self.caller)
        }
        let actions = try await s.engine.audit(run: nil, limit: 100).map(\.action)
        #expect(actions.contains("backfill.started") && actions.contains("backfill.cancelled"))
    }

    /// A backfill over ten years of an every-minute line is refused at
    /// its 10 000th slot, not after building five million (review S5).
    @Test func aLongBackfillIsRefusedBeforeItsSlotsAreBuilt() async throws {
        let s = try Self.setup(catchup: "none", now: "2026-11-20T12:00:00Z")
        defer { try? FileManager.default.removeItem(atPath: s.dir) }
        let text = try String(contentsOfFile: s.spec, encoding: .utf8).replacingOccurrences(of: "15 2 * * *", with: "* * * * *")
        try text.write(toFile: s.spec, atomically: true, encoding: .utf8)
        _ = try await s.engine.addPipeline(PipelineAddRequest(specPath: s.spec, by: "ann@host"), as: Self.caller)
        do {
            _ = try await s.engine.backfill("nightly", BackfillRequest(from: "2016-11-21", to: "2026-11-19", by: "ann@host"), as: Self.caller)
            Issue.record("no error")
        } catch let error as ServiceError {
            // Seven days of 1440 slots pass the bound: the count stops there.
            #expect(error.description.contains("more than 10000 slots (10080 by 2016-11-27)"), "\(error)")
        }
        let b = try await s.engine.backfill("nightly", BackfillRequest(from: "2026-11-01", to: "2026-11-06", by: "ann@host"), as: Self.caller)
        #expect(b.slots == 6 * 1440)
    }

    /// A backfill's slot whose scheduled run is still active waits for it
    /// to settle instead of running the slot a second time at once (review S8).
    @Test func aBackfillSlotWaitsForItsActiveScheduledRun() async throws {
        let s = try Self.setup(catchup: "all", now: "2026-11-03T12:00:00Z", start: "2026-11-01")
        defer { try? FileManager.default.removeItem(atPath: s.dir) }
        _ = try await s.engine.addPipeline(PipelineAddRequest(specPath: s.spec, by: "ann@host"), as: Self.caller)
        let scheduled = try await s.engine.schedulerPass()
        #expect(scheduled.count == 3)
        let b = try await s.engine.backfill("nightly", BackfillRequest(from: "2026-11-01", to: "2026-11-03", maxActive: 3, by: "ann@host"),
                                           as: Self.caller)
        #expect(b.waiting == 3)
        #expect(try await s.engine.schedulerPass().isEmpty)
        #expect(try await s.engine.backfillView(b.id).waiting == 3)
        // The first slot's scheduled run settles: its backfill run starts, the next still waits.
        _ = try await s.engine.cancel(scheduled[0], as: Self.caller)
        let started = try await s.engine.schedulerPass()
        #expect(started.count == 1)
        let v = try await s.engine.backfillView(b.id)
        #expect(v.running == 1 && v.waiting == 2, "\(v)")
        let run = try #require(try await s.engine.runs(limit: 20).first { $0.id == started.first })
        #expect(run.trigger == "backfill" && run.params?["date"] == "2026-11-01")
    }

    /// A registered version whose spec no longer reads (here, edited in the
    /// store) is skipped by the scheduler, and `bis pipelines` says why (review S10).
    @Test func aPipelineWhoseSpecNoLongerReadsSaysSo() async throws {
        let s = try Self.setup(catchup: "all", now: "2026-11-03T12:00:00Z", start: "2026-11-01")
        defer { try? FileManager.default.removeItem(atPath: s.dir) }
        _ = try await s.engine.addPipeline(PipelineAddRequest(specPath: s.spec, by: "ann@host"), as: Self.caller)
        #expect(try await s.engine.pipelines().first?.specError == nil)
        var config = Configuration()
        config.busyMode = .timeout(10)
        try await DatabaseQueue(path: s.store.path, configuration: config).write { db in
            try db.execute(sql: "UPDATE pipeline_versions SET spec_text = replace(spec_text, '15 2 * * *', '75 2 * * *')")
        }
        #expect(try await s.engine.schedulerPass().isEmpty)
        #expect(try await s.engine.schedulerPass().isEmpty)
        let view = try #require(try await s.engine.pipelines().first)
        #expect(view.specError?.contains("75 is outside 0-59") == true, "\(String(describing: view.specError))")
    }

    /// With passes a minute apart, `catchup: none` still takes a slot seen
    /// two and a half minutes late: the grace is three scheduler intervals (review S1).
    @Test func noneGraceCoversThreeSchedulerIntervals() async throws {
        let s = try Self.setup(catchup: "none", now: "2026-11-10T00:14:50Z")
        defer { try? FileManager.default.removeItem(atPath: s.dir) }
        var options = CoordinatorOptions(clock: s.clock)
        options.schedulerInterval = .seconds(60)   // not started: the test passes by hand
        options.retention.interval = nil
        let engine = CoordinatorEngine(store: s.store, transport: InMemoryTransport(), chunkStore: ChunkStore(root: s.dir + "/data"),
                                       options: options)
        _ = try await engine.addPipeline(PipelineAddRequest(specPath: s.spec, by: "ann@host"), as: Self.caller)
        #expect(try await engine.schedulerPass().isEmpty)
        s.clock.set(try #require(SlotText.parseUTC("2026-11-10T00:17:30Z")))
        #expect(try await engine.schedulerPass().count == 1)
        // On the default engine (5 s passes) the grace stays a minute: three days down skips.
        s.clock.set(try #require(SlotText.parseUTC("2026-11-13T09:00:00Z")))
        #expect(try await s.engine.schedulerPass().isEmpty)
    }

    /// Only the unique index of one scheduled run per slot means "the slot
    /// is taken"; a CHECK or NOT NULL failure is a bug to report, not a
    /// slot to mark started without a run (review S9).
    @Test func onlyTheSlotIndexMeansTheSlotIsTaken() throws {
        let db = try DatabaseQueue()
        func failure(_ sql: String) throws -> DatabaseError? {
            do { try db.write { try $0.execute(sql: sql) }; return nil } catch let e as DatabaseError { return e }
        }
        try db.write { db in
            try db.execute(sql: """
                CREATE TABLE runs(id TEXT PRIMARY KEY, pipeline TEXT, slot TEXT, trigger TEXT, state TEXT NOT NULL CHECK (state <> 'bad'));
                CREATE UNIQUE INDEX runs_one_per_slot ON runs(pipeline, slot) WHERE trigger = 'schedule';
                CREATE UNIQUE INDEX other_unique ON runs(state, trigger);
                INSERT INTO runs VALUES ('a', 'p', 's', 'schedule', 'running'), ('b', 'p', 's', NULL, 'pending');
                """)
        }
        let taken = try #require(try failure("UPDATE runs SET trigger = 'schedule' WHERE id = 'b'"))
        #expect(CoordinatorEngine.isSlotTakenByIndex(taken), "\(taken)")
        let check = try #require(try failure("UPDATE runs SET state = 'bad' WHERE id = 'b'"))
        #expect(!CoordinatorEngine.isSlotTakenByIndex(check), "\(check)")
        let notNull = try #require(try failure("UPDATE runs SET state = NULL WHERE id = 'b'"))
        #expect(!CoordinatorEngine.isSlotTakenByIndex(notNull), "\(notNull)")
        let otherUnique = try #require(try failure("INSERT INTO runs VALUES ('c', 'q', 't', 'schedule', 'running')"))
        #expect(!CoordinatorEngine.isSlotTakenByIndex(otherUnique), "\(otherUnique)")
    }

    @Test func aSpecErrorIsRefusedWithItsPosition() async throws {
        let s = try Self.setup(catchup: "latest", now: "2026-11-09T12:00:00Z")
        defer { try? FileManager.default.removeItem(atPath: s.dir) }
        let text = try String(contentsOfFile: s.spec, encoding: .utf8).replacingOccurrences(of: "${region}", with: "${regoin}")
        do {
            _ = try await s.engine.addPipeline(PipelineAddRequest(specPath: s.spec, specText: text, by: "ann@host"), as: Self.caller)
            Issue.record("no error")
        } catch let error as ServiceError {
            #expect(error.description.contains("nightly.yml:12:24: unknown parameter '${regoin}'"), "\(error)")
        }
    }
}
