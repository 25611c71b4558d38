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
