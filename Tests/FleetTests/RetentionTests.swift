import Columnar
import Coordination
import FleetCore
import Foundation
import GRDB
import Logging
import Stages
import Synchronization
import Testing
import WorkerRuntime

/// Retention (`bis gc`) over the embedded fleet, with a hand-driven clock:
/// which intermediate folders, published versions and lineage rows go when,
/// and what stays (CURRENT, recent deliveries, runs, inputs' hashes, the audit log).
@Suite struct RetentionTests {
    static let day = 86400.0

    /// examples/orders without the approval step, publishing `keep` versions.
    static func workspace(keep: Int?, failGate: Bool = false) throws -> (spec: String, root: String) {
        let (spec, _, root) = try LocalRunTests.workspace()
        var text = try String(contentsOfFile: spec, encoding: .utf8)
        text = text.replacingOccurrences(of: "deliver: {to: outbox/finance, approval: required}", with: "deliver: {to: outbox/finance}")
        if let keep { text = text.replacingOccurrences(of: "  dataset: orders\n", with: "  dataset: orders\n  keep: \(keep)\n") }
        if failGate { text = text.replacingOccurrences(of: "max_failure_rate: 20%", with: "max_failure_rate: 0%") }
        try text.write(toFile: spec, atomically: true, encoding: .utf8)
        return (spec, root)
    }

    /// An engine on `clock` with the periodic pass off, and one worker.
    struct Fleet {
        let root: ChunkStore
        let transport = InMemoryTransport()
        let engine: CoordinatorEngine
        let store: LineageStore
        let working: Task<Void, Error>
        let worker: FleetWorker

        init(root path: String, clock: ManualClock, faults: GCFaults = .none) async throws {
            root = ChunkStore(root: path)
            try FileManager.default.createDirectory(atPath: root.root, withIntermediateDirectories: true)
            var options = CoordinatorOptions(clock: clock)
            options.retention = RetentionOptions(interval: nil, faults: faults)
            store = try LineageStore(path: root.root + "/bis.db")
            engine = CoordinatorEngine(store: store, transport: transport, chunkStore: root, options: options)
            try await engine.start()
            let worker = FleetWorker(transport: transport, chunkStore: root, concurrency: 2, logger: Logger(label: "test.worker"))
            self.worker = worker
            working = Task { try await worker.run() }
        }

        func run(_ spec: String) async throws -> RunView {
            let v = try await engine.submit(SubmitRequest(specPath: spec, specText: try String(contentsOfFile: spec, encoding: .utf8),
                                                          submittedBy: "test@host"))
            return try await engine.waitUntilSettled(v.id)
        }

        func stop() async {
            worker.drain()
            working.cancel()
            await engine.stop()
            await transport.close()
        }

        func exists(_ rel: String) -> Bool { FileManager.default.fileExists(atPath: root.root + "/" + rel) }
    }

    static let caller = Caller(principal: Principal(name: "ops", role: .operator), claimedName: "ops@host")

    @Test func durationsParseAndPrint() {
        #expect(RetentionDuration.seconds("90s") == 90)
        #expect(RetentionDuration.seconds("15m") == 900)
        #expect(RetentionDuration.seconds("2h") == 7200)
        #expect(RetentionDuration.seconds("7d") == 604_800)
        #expect(RetentionDuration.seconds("0s") == 0)
        for bad in ["7", "d", "-1d", "1w", "1.5h", "", "h2"] { #expect(RetentionDuration.seconds(bad) == nil, "\(bad)") }
        #expect(RetentionDuration.text(7 * 86400) == "7d")
        #expect(RetentionDuration.text(7200) == "2h")
        #expect(RetentionDuration.text(90) == "90s")
    }

    @Test func aFinishedRunsIntermediateChunksGoAfterTheWindowAndLineageMarksThemRemoved() async throws {
        let (spec, root) = try Self.workspace(keep: nil)
        let clock = ManualClock(Date())
        let fleet = try await Fleet(root: root, clock: clock)
        let run = try await fleet.run(spec)
        #expect(run.state == .succeeded, "\(run.message ?? "")")
        #expect(fleet.exists("runs/\(run.id)"))

        // Inside the window: nothing to do.
        clock.advance(by: 6 * Self.day)
        #expect(try await fleet.engine.gc(dryRun: true, as: Self.caller).items.isEmpty)

        clock.advance(by: 2 * Self.day)
        let dry = try await fleet.engine.gc(dryRun: true, as: Self.caller)
        #expect(dry.items.map(\.path) == ["runs/\(run.id)"])
        #expect(dry.items.first?.kind == "intermediate")
        #expect(dry.bytes > 0 && dry.files > 0)
        #expect(fleet.exists("runs/\(run.id)"), "a dry run removes nothing")

        let real = try await fleet.engine.gc(dryRun: false, as: Self.caller)
        #expect(real.items.map(\.outcome) == ["removed"])
        #expect(real.bytes == dry.bytes)
        #expect(!fleet.exists("runs/\(run.id)"))
        // The published version is hard links, not the run's folder: it still reads.
        let version = try #require(run.published["orders"])
        let manifest = try PublishManifest(json: Array(try Data(contentsOf: URL(fileURLWithPath: root + "/" + version + "/_manifest.json"))))
        for f in manifest.files { _ = try ParquetReader(path: root + "/" + version + "/" + f.name).read() }

        // The lineage keeps its rows, marked removed.
        let tree = try await fleet.engine.lineageTrace(run.id)
        var nodes: [LineageNode] = []
        func collect(_ n: LineageNode) { nodes.append(n); n.inputs.forEach(collect) }
        collect(tree)
        #expect(nodes.contains { $0.path.hasPrefix("runs/") && $0.removedAt != nil })
        #expect(nodes.filter { $0.path.hasPrefix("runs/") }.allSatisfy { $0.removedAt != nil })
        #expect(nodes.filter { $0.kind == .source || $0.path.hasPrefix("published/") }.allSatisfy { $0.removedAt == nil })

        // Audited, counted; the next pass has nothing left.
        let audit = try await fleet.engine.audit(run: nil, limit: 100)
        #expect(audit.contains { $0.action == "gc" && $0.principal == "ops" && ($0.detail ?? "").contains("removed 1 folders") })
        let metrics = try await fleet.engine.metricsSnapshot()
        #expect(metrics.gcReclaimedBytes == real.bytes && metrics.gcReclaimedFiles == real.files && metrics.gcPasses == 1)
        #expect(try await fleet.engine.gc(dryRun: false, as: Self.caller).items.isEmpty)
        await fleet.stop()
    }

    @Test func aFailedRunIsKeptForItsRetryWindowThenItsRetryIsRefused() async throws {
        let (spec, root) = try Self.workspace(keep: nil, failGate: true)
        let clock = ManualClock(Date())
        let fleet = try await Fleet(root: root, clock: clock)
        let run = try await fleet.run(spec)
        #expect(run.state == .failed)
        clock.advance(by: 6 * Self.day)
        #expect(try await fleet.engine.gc(dryRun: false, as: Self.caller).items.isEmpty)
        #expect(fleet.exists("runs/\(run.id)"))

        clock.advance(by: 2 * Self.day)
        let pass = try await fleet.engine.gc(dryRun: false, as: Self.caller)
        #expect(pass.items.map(\.path) == ["runs/\(run.id)"])
        #expect(pass.items.first?.reason.contains("failed more than 7d ago") == true)
        do {
            _ = try await fleet.engine.retry(run.id, as: Self.caller)
            Issue.record("retry after removal was accepted")
        } catch let error as ServiceError {
            guard case .conflict(let message) = error else { Issue.record("not a conflict: \(error)"); return }
            #expect(message.contains("cannot be retried"))
            #expect(message.contains("removed by retention"))
            #expect(message.contains("runs/\(run.id)/"))
        }
        #expect(try await fleet.engine.run(run.id)?.state == .failed)
        await fleet.stop()
    }

    @Test func publishedVersionsBeyondKeepGoButNeverCurrentNorARecentDelivery() async throws {
        let (spec, root) = try Self.workspace(keep: 2)
        let clock = ManualClock(Date())
        let fleet = try await Fleet(root: root, clock: clock)
        let first = try await fleet.run(spec)
        #expect(first.state == .succeeded, "\(first.message ?? "")")
        clock.advance(by: 31 * Self.day)   // the first delivery is now older than --keep-delivered
        var runs = [first.id]
        for _ in 0..<3 {
            clock.advance(by: 1)
            let r = try await fleet.run(spec)
            #expect(r.state == .succeeded, "\(r.message ?? "")")
            runs.append(r.id)
        }
        // Newest first: runs[3] (CURRENT), runs[2] kept by keep: 2; runs[1]
        // delivered just now; runs[0] delivered 31 days ago: it alone goes.
        let folder = root + "/published/orders"
        #expect(try String(contentsOfFile: folder + "/CURRENT", encoding: .utf8) == runs[3] + "\n")
        let dry = try await fleet.engine.gc(dryRun: true, as: Self.caller)
        let versions = dry.items.filter { $0.kind == "version" }
        #expect(Set(versions.map(\.path)) == ["published/orders/\(runs[0])", "published/revenue_by_country/\(runs[0])"])

        // CURRENT moved back to the oldest (a rollback): it is kept.
        try (runs[0] + "\n").write(toFile: folder + "/CURRENT", atomically: true, encoding: .utf8)
        let pointed = try await fleet.engine.gc(dryRun: true, as: Self.caller)
        #expect(!pointed.items.contains { $0.path == "published/orders/\(runs[0])" })
        try (runs[3] + "\n").write(toFile: folder + "/CURRENT", atomically: true, encoding: .utf8)

        let pass = try await fleet.engine.gc(dryRun: false, as: Self.caller)
        #expect(pass.items.filter { $0.kind == "version" }.allSatisfy { $0.outcome == "removed" })
        #expect(!fleet.exists("published/orders/\(runs[0])"))
        for r in runs.dropFirst() {
            #expect(fleet.exists("published/orders/\(r)/_manifest.json"))
            #expect(fleet.exists("published/revenue_by_country/\(r)/_manifest.json"))
        }
        #expect(try await fleet.engine.lineageTrace("orders/\(runs[0])").removedAt != nil)
        #expect(try await fleet.engine.lineageTrace("orders/\(runs[1])").removedAt == nil)

        // Once runs[1]'s delivery is old too, it goes; keep: 2 stays.
        clock.advance(by: 31 * Self.day)
        let later = try await fleet.engine.gc(dryRun: false, as: Self.caller)
        #expect(later.items.contains { $0.path == "published/orders/\(runs[1])" && $0.outcome == "removed" })
        #expect(fleet.exists("published/orders/\(runs[2])") && fleet.exists("published/orders/\(runs[3])"))
        await fleet.stop()
    }

    @Test func aPassStoppedAfterAVersionWasUnlinkedLeavesEveryOtherReadableAndTheNextFinishes() async throws {
        let (spec, root) = try Self.workspace(keep: 1)
        let clock = ManualClock(Date())
        let armed = Mutex(true)
        struct Crash: Error {}
        let faults = GCFaults { step, _ in
            if step == .versionUnlinked, armed.withLock({ $0 }) { throw Crash() }
        }
        let fleet = try await Fleet(root: root, clock: clock, faults: faults)
        let a = try await fleet.run(spec)
        clock.advance(by: 1)
        let b = try await fleet.run(spec)
        #expect(a.state == .succeeded && b.state == .succeeded)
        clock.advance(by: 31 * Self.day)
        await #expect(throws: Crash.self) { _ = try await fleet.engine.gc(dryRun: false, as: Self.caller) }

        // Stopped midway: the version is out of reach, CURRENT's reads whole.
        let folder = root + "/published/orders"
        #expect(!FileManager.default.fileExists(atPath: folder + "/" + a.id))
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder).contains { $0.hasPrefix(".tmp-removing-" + a.id) })
        for dataset in ["orders", "revenue_by_country"] {
            let current = try String(contentsOfFile: root + "/published/\(dataset)/CURRENT", encoding: .utf8)
                .trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(current == b.id)
            let m = try PublishManifest(json: Array(try Data(contentsOf: URL(fileURLWithPath: root + "/published/\(dataset)/\(current)/_manifest.json"))))
            for f in m.files { _ = try ParquetReader(path: root + "/published/\(dataset)/\(current)/" + f.name).read() }
        }
        // Recorded, not done: a dry run lists it as unfinished.
        let dry = try await fleet.engine.gc(dryRun: true, as: Self.caller)
        #expect(dry.items.contains { $0.path == "published/orders/\(a.id)" && $0.reason.contains("finishing an earlier pass") })

        armed.withLock { $0 = false }
        let next = try await fleet.engine.gc(dryRun: false, as: Self.caller)
        #expect(next.items.contains { $0.path == "published/orders/\(a.id)" && $0.outcome == "removed" })
        #expect(try !FileManager.default.contentsOfDirectory(atPath: folder).contains { $0.hasPrefix(".tmp-removing-") })
        #expect(try await fleet.engine.gc(dryRun: true, as: Self.caller).items.filter { $0.kind == "version" }.isEmpty)
        await fleet.stop()
    }

    @Test func lineageOlderThanKeepLineageIsPrunedRunsInputsVersionsAndAuditStay() async throws {
        let (spec, root) = try Self.workspace(keep: nil)
        let clock = ManualClock(Date())
        let fleet = try await Fleet(root: root, clock: clock)
        let run = try await fleet.run(spec)
        #expect(run.state == .succeeded)
        let inputs = try await fleet.engine.runInputs(run.id)
        let auditBefore = try await fleet.engine.audit(run: run.id, limit: 1000).count
        let versionChunks = try await fleet.store.countChunks(prefix: "published/")
        clock.advance(by: 399 * Self.day)
        #expect(try await fleet.engine.gc(dryRun: true, as: Self.caller).lineageExecutionsPruned == 0)
        clock.advance(by: 2 * Self.day)
        let dry = try await fleet.engine.gc(dryRun: true, as: Self.caller)
        #expect(dry.lineageExecutionsPruned > 0 && dry.lineageEdgesPruned > 0)
        let pass = try await fleet.engine.gc(dryRun: false, as: Self.caller)
        #expect(pass.lineageExecutionsPruned == dry.lineageExecutionsPruned)
        #expect(try await fleet.store.countExecutions() == 0)
        #expect(try await fleet.engine.run(run.id)?.state == .succeeded)
        #expect(try await fleet.engine.runInputs(run.id) == inputs)
        #expect(try await fleet.engine.lineageImpact(inputs[0]).runs.map(\.run) == [run.id])
        #expect(try await fleet.store.countChunks(prefix: "published/") == versionChunks)
        #expect(try await fleet.engine.audit(run: run.id, limit: 1000).count == auditBefore)
        await fleet.stop()
    }

    @Test func aRunsTraceAndImpactAfterLineagePruningFallBackOnItsVersionsAndReceipts() async throws {
        let (spec, root) = try Self.workspace(keep: nil)
        let clock = ManualClock(Date())
        let fleet = try await Fleet(root: root, clock: clock)
        let run = try await fleet.run(spec)
        #expect(run.state == .succeeded, "\(run.message ?? "")")
        let inputs = try await fleet.engine.runInputs(run.id)
        let impactBefore = try await fleet.engine.lineageImpact(inputs[0])
        #expect(impactBefore.runs.first?.datasets.isEmpty == false && impactBefore.runs.first?.deliveries.isEmpty == false)
        clock.advance(by: 401 * Self.day)
        let pass = try await fleet.engine.gc(dryRun: false, as: Self.caller)
        #expect(pass.lineageExecutionsPruned > 0)
        #expect(try await fleet.store.countExecutions() == 0)

        // The run still traces, to its published versions' manifests.
        let tree = try await fleet.engine.lineageTrace(run.id)
        let roots = tree.inputs.isEmpty ? [tree] : tree.inputs
        let expected = Set(run.published.values.map { $0 + "/_manifest.json" })
        #expect(!expected.isEmpty)
        #expect(Set(roots.map(\.path)) == expected)
        // Impact still names the versions it published and its deliveries.
        #expect(try await fleet.engine.lineageImpact(inputs[0]) == impactBefore)
        await fleet.stop()
    }

    /// The original examples/orders spec: its deliver waits for approval,
    /// so a run stops `awaiting_approval` with its versions published.
    static func approvalWorkspace(keep: Int) throws -> (spec: String, root: String) {
        let (spec, _, root) = try LocalRunTests.workspace()
        var text = try String(contentsOfFile: spec, encoding: .utf8)
        text = text.replacingOccurrences(of: "  dataset: orders\n", with: "  dataset: orders\n  keep: \(keep)\n")
        let second = (spec as NSString).deletingLastPathComponent + "/auto.yml"
        try text.replacingOccurrences(of: "deliver: {to: outbox/finance, approval: required}", with: "deliver: {to: outbox/finance}")
            .write(toFile: second, atomically: true, encoding: .utf8)
        try text.write(toFile: spec, atomically: true, encoding: .utf8)
        return (spec, root)
    }

    /// Writes straight to the store, as another coordinator operation would.
    static func sql(_ store: LineageStore, _ statement: String, _ arguments: StatementArguments = []) throws {
        var config = Configuration()
        config.busyMode = .timeout(10)
        try DatabaseQueue(path: store.path, configuration: config).write { db in try db.execute(sql: statement, arguments: arguments) }
    }

    @Test func aVersionPointedAtWhenItsTurnComesIsKeptAndViewSQLAloneProtectsIt() async throws {
        let (spec, root) = try Self.workspace(keep: 1)
        let clock = ManualClock(Date())
        let pointAt = Mutex<String?>(nil)   // the file to write at intent-recorded, and its text
        let folder = root + "/published/orders"
        let faults = GCFaults { step, path in
            guard step == .intentRecorded, path.hasPrefix("published/orders/"), let text = pointAt.withLock({ $0 }) else { return }
            let parts = text.split(separator: "|", maxSplits: 1).map(String.init)
            try parts[1].write(toFile: folder + "/" + parts[0], atomically: true, encoding: .utf8)
        }
        let fleet = try await Fleet(root: root, clock: clock, faults: faults)
        let a = try await fleet.run(spec)
        clock.advance(by: 1)
        let b = try await fleet.run(spec)
        #expect(a.state == .succeeded && b.state == .succeeded)
        clock.advance(by: 31 * Self.day)
        let view = try String(contentsOfFile: folder + "/view.sql", encoding: .utf8)
        #expect(view.contains("/\(b.id)/"))

        // view.sql alone naming A (CURRENT still B): not even listed.
        try view.replacingOccurrences(of: b.id, with: a.id).write(toFile: folder + "/view.sql", atomically: true, encoding: .utf8)
        #expect(try await !fleet.engine.gc(dryRun: true, as: Self.caller).items.contains { $0.path == "published/orders/\(a.id)" })
        try view.write(toFile: folder + "/view.sql", atomically: true, encoding: .utf8)

        // CURRENT moves to A between the listing and the removal: kept, untouched.
        pointAt.withLock { $0 = "CURRENT|\(a.id)\n" }
        let moved = try await fleet.engine.gc(dryRun: false, as: Self.caller)
        #expect(moved.items.first { $0.path == "published/orders/\(a.id)" }?.outcome == "kept")
        #expect(fleet.exists("published/orders/\(a.id)/_manifest.json"))
        try (b.id + "\n").write(toFile: folder + "/CURRENT", atomically: true, encoding: .utf8)

        // view.sql moves to A between the listing and the removal: kept too.
        pointAt.withLock { $0 = "view.sql|" + view.replacingOccurrences(of: b.id, with: a.id) }
        let viewed = try await fleet.engine.gc(dryRun: false, as: Self.caller)
        #expect(viewed.items.first { $0.path == "published/orders/\(a.id)" }?.outcome == "kept")
        #expect(fleet.exists("published/orders/\(a.id)/_manifest.json"))
        try view.write(toFile: folder + "/view.sql", atomically: true, encoding: .utf8)

        // Pointed at by neither any more: it goes.
        pointAt.withLock { $0 = nil }
        let pass = try await fleet.engine.gc(dryRun: false, as: Self.caller)
        #expect(pass.items.first { $0.path == "published/orders/\(a.id)" }?.outcome == "removed")
        #expect(!fleet.exists("published/orders/\(a.id)"))
        await fleet.stop()
    }

    @Test func versionsOfRunningAwaitingOrRetryableFailedRunsStayEvenWhenARetryComesMidPass() async throws {
        let (spec, root) = try Self.approvalWorkspace(keep: 1)
        let auto = (spec as NSString).deletingLastPathComponent + "/auto.yml"
        let clock = ManualClock(Date())
        let retryMidPass = Mutex<String?>(nil)
        let store = Mutex<LineageStore?>(nil)
        let faults = GCFaults { step, _ in
            guard step == .candidatesListed, let run = retryMidPass.withLock({ $0 }), let s = store.withLock({ $0 }) else { return }
            // What a bis retry does first: the run is running again.
            try RetentionTests.sql(s, "UPDATE runs SET state = 'running', finished_at = NULL WHERE id = ?", [run])
        }
        let fleet = try await Fleet(root: root, clock: clock, faults: faults)
        store.withLock { $0 = fleet.store }
        let a = try await fleet.run(spec)
        #expect(a.state == .awaitingApproval, "\(a.state) \(a.message ?? "")")
        #expect(fleet.exists("published/orders/\(a.id)/_manifest.json"))
        clock.advance(by: 31 * Self.day)
        let b = try await fleet.run(auto)
        #expect(b.state == .succeeded, "\(b.message ?? "")")
        let aVersion = "published/orders/\(a.id)"
        func listed() async throws -> Bool { try await fleet.engine.gc(dryRun: true, as: Self.caller).items.contains { $0.path == aVersion } }

        #expect(try await !listed(), "awaiting approval")
        try Self.sql(fleet.store, "UPDATE runs SET state = 'running' WHERE id = ?", [a.id])
        #expect(try await !listed(), "running")
        try Self.sql(fleet.store, "UPDATE runs SET state = 'failed', finished_at = ? WHERE id = ?", [clock.seconds, a.id])
        #expect(try await !listed(), "failed and retryable")
        clock.advance(by: 8 * Self.day)
        #expect(try await listed(), "failed beyond its retry window")

        // A retry between the listing and the recording: checked again, kept.
        retryMidPass.withLock { $0 = a.id }
        let pass = try await fleet.engine.gc(dryRun: false, as: Self.caller)
        #expect(!pass.items.contains { $0.path == aVersion }, "\(pass.items.map { "\($0.path) \($0.outcome)" })")
        #expect(fleet.exists(aVersion + "/_manifest.json"))
        await fleet.stop()
    }

    @Test func aRemovalThatFailsIsReportedThePassGoesOnAndALaterPassTriesAgain() async throws {
        let (spec, root) = try Self.workspace(keep: nil, failGate: true)
        let clock = ManualClock(Date())
        let fleet = try await Fleet(root: root, clock: clock)
        let failed = try await fleet.run(spec)
        #expect(failed.state == .failed)
        let other = try await fleet.run(try Self.workspace(keep: nil).spec)
        #expect(other.state == .succeeded, "\(other.message ?? "")")
        clock.advance(by: 401 * Self.day)

        // runs/<failed> is a symlink out of the data root: its removal fails.
        let outside = root + "-outside-\(failed.id)"
        try FileManager.default.moveItem(atPath: root + "/runs/\(failed.id)", toPath: outside)
        try FileManager.default.createSymbolicLink(atPath: root + "/runs/\(failed.id)", withDestinationPath: outside)
        let pass = try await fleet.engine.gc(dryRun: false, as: Self.caller)
        #expect(pass.items.first { $0.path == "runs/\(failed.id)" }?.outcome.hasPrefix("failed: ") == true,
                "\(pass.items.map { "\($0.path) \($0.outcome)" })")
        #expect(pass.items.first { $0.path == "runs/\(other.id)" }?.outcome == "removed")
        #expect(pass.lineageExecutionsPruned > 0, "the lineage is pruned all the same")
        #expect(FileManager.default.fileExists(atPath: outside), "nothing outside the root is touched")

        // The retry is refused, saying the removal failed.
        do {
            _ = try await fleet.engine.retry(failed.id, as: Self.caller)
            Issue.record("retry after a failed removal was accepted")
        } catch let error as ServiceError {
            guard case .conflict(let message) = error else { Issue.record("not a conflict: \(error)"); return }
            #expect(message.contains("partly removed") && message.contains("failed"), "\(message)")
        }

        // A later pass tries again: still failing, then, the link gone and
        // the folder back, removed.
        let again = try await fleet.engine.gc(dryRun: false, as: Self.caller)
        #expect(again.items.first { $0.path == "runs/\(failed.id)" }?.outcome.hasPrefix("failed: ") == true)
        try FileManager.default.removeItem(atPath: root + "/runs/\(failed.id)")
        try FileManager.default.moveItem(atPath: outside, toPath: root + "/runs/\(failed.id)")
        let last = try await fleet.engine.gc(dryRun: false, as: Self.caller)
        #expect(last.items.first { $0.path == "runs/\(failed.id)" }?.outcome == "removed")
        #expect(!fleet.exists("runs/\(failed.id)"))
        await fleet.stop()
    }

    @Test func aPassKilledAtIntentRecordedOrFilesRemovedDuringAFolderRemovalIsFinishedByTheNext() async throws {
        let (spec, root) = try Self.workspace(keep: nil)
        let clock = ManualClock(Date())
        struct Crash: Error {}
        let armed = Mutex<GCFaults.Step?>(nil)
        let faults = GCFaults { step, path in
            if path.hasPrefix("runs/"), armed.withLock({ $0 }) == step { throw Crash() }
        }
        let fleet = try await Fleet(root: root, clock: clock, faults: faults)
        func removedMarks(_ run: String) async throws -> [Bool] {
            var nodes: [LineageNode] = []
            func collect(_ n: LineageNode) { nodes.append(n); n.inputs.forEach(collect) }
            collect(try await fleet.engine.lineageTrace(run))
            return nodes.filter { $0.path.hasPrefix("runs/") }.map { $0.removedAt != nil }
        }
        for step in [GCFaults.Step.intentRecorded, .filesRemoved] {
            let run = try await fleet.run(spec)
            #expect(run.state == .succeeded, "\(run.message ?? "")")
            clock.advance(by: 8 * Self.day)
            armed.withLock { $0 = step }
            await #expect(throws: Crash.self) { _ = try await fleet.engine.gc(dryRun: false, as: Self.caller) }
            // Recorded, unfinished: listed as such, and no retry could take it back.
            #expect(fleet.exists("runs/\(run.id)") == (step == .intentRecorded), "\(step)")
            let dry = try await fleet.engine.gc(dryRun: true, as: Self.caller)
            #expect(dry.items.contains { $0.path == "runs/\(run.id)" && $0.reason.contains("finishing an earlier pass") }, "\(step)")
            #expect(try await removedMarks(run.id).allSatisfy { !$0 }, "not yet marked removed at \(step)")

            armed.withLock { $0 = nil }
            let next = try await fleet.engine.gc(dryRun: false, as: Self.caller)
            #expect(next.items.first { $0.path == "runs/\(run.id)" }?.outcome == "removed", "\(step)")
            #expect(!fleet.exists("runs/\(run.id)"))
            let marks = try await removedMarks(run.id)
            #expect(!marks.isEmpty && marks.allSatisfy { $0 }, "marked removed after \(step)")
            #expect(try await fleet.engine.gc(dryRun: true, as: Self.caller).items.isEmpty)
        }
        await fleet.stop()
    }

    @Test func aRunsFolderWaitsForItsTasksInFlightKeepsTheCancelMarkerAndIsTakenAgainWhenWrittenTo() async throws {
        let (spec, root) = try Self.approvalWorkspace(keep: 5)
        let auto = (spec as NSString).deletingLastPathComponent + "/auto.yml"
        let clock = ManualClock(Date())
        let fleet = try await Fleet(root: root, clock: clock)
        let done = try await fleet.run(auto)
        #expect(done.state == .succeeded, "\(done.message ?? "")")
        let waiting = try await fleet.run(spec)
        #expect(waiting.state == .awaitingApproval)
        _ = try await fleet.engine.cancel(waiting.id, as: Self.caller)
        #expect(fleet.exists("runs/\(waiting.id)/CANCELLED"))
        clock.advance(by: 8 * Self.day)

        // A task of the finished run still running (a failed run's may be): its folder waits.
        try Self.sql(fleet.store, "UPDATE tasks SET state = 'running' WHERE id = (SELECT MIN(id) FROM tasks WHERE run = ?)", [done.id])
        #expect(try await !fleet.engine.gc(dryRun: true, as: Self.caller).items.contains { $0.path == "runs/\(done.id)" })
        try Self.sql(fleet.store, "UPDATE tasks SET state = 'succeeded' WHERE id = (SELECT MIN(id) FROM tasks WHERE run = ?)", [done.id])

        let pass = try await fleet.engine.gc(dryRun: false, as: Self.caller)
        #expect(Set(pass.items.filter { $0.kind == "intermediate" }.map(\.path)) == ["runs/\(done.id)", "runs/\(waiting.id)"])
        #expect(!fleet.exists("runs/\(done.id)"))
        // The cancelled run's marker stays (its messages still in a broker
        // are skipped by it), and a folder holding only it is left alone.
        #expect(fleet.root.isCancelled(run: waiting.id))
        #expect(try FileManager.default.contentsOfDirectory(atPath: root + "/runs/\(waiting.id)") == ["CANCELLED"])
        #expect(try await fleet.engine.gc(dryRun: true, as: Self.caller).items.isEmpty)

        // A late write recreates a removed folder: the next pass takes it again.
        try FileManager.default.createDirectory(atPath: root + "/runs/\(done.id)/late", withIntermediateDirectories: true)
        try Data("x".utf8).write(to: URL(fileURLWithPath: root + "/runs/\(done.id)/late/part"))
        let again = try await fleet.engine.gc(dryRun: false, as: Self.caller)
        #expect(again.items.first { $0.path == "runs/\(done.id)" }?.outcome == "removed")
        #expect(!fleet.exists("runs/\(done.id)"))
        await fleet.stop()
    }

    @Test func aFailedRunWhoseLineageWasPrunedCannotBeRetried() async throws {
        let (spec, root) = try Self.workspace(keep: nil, failGate: true)
        let clock = ManualClock(Date())
        let fleet = try await Fleet(root: root, clock: clock)
        let run = try await fleet.run(spec)
        #expect(run.state == .failed)
        // Its folder gone by other means: retention records no removal.
        try FileManager.default.removeItem(atPath: root + "/runs/\(run.id)")
        clock.advance(by: 401 * Self.day)
        let pass = try await fleet.engine.gc(dryRun: false, as: Self.caller)
        #expect(pass.lineageExecutionsPruned > 0)
        do {
            _ = try await fleet.engine.retry(run.id, as: Self.caller)
            Issue.record("a retry without its lineage was accepted")
        } catch let error as ServiceError {
            guard case .conflict(let message) = error else { Issue.record("not a conflict: \(error)"); return }
            #expect(message.contains("cannot be retried") && message.contains("pruned the lineage"), "\(message)")
        }
        #expect(try await fleet.engine.run(run.id)?.state == .failed)
        await fleet.stop()
    }
}

extension LineageStore {
    func countExecutions() async throws -> Int {
        try await DatabaseQueue(path: path).read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM executions") ?? 0 }
    }

    func countChunks(prefix: String) async throws -> Int {
        try await DatabaseQueue(path: path).read { db in
            try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM chunks WHERE substr(path, 1, ?) = ?", arguments: [prefix.count, prefix]) ?? 0
        }
    }
}
