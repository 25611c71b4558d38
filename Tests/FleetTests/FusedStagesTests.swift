import Columnar
import Coordination
import FleetCore
import Foundation
import GRDB
import Logging
import Testing
import WorkerRuntime

/// A partition's consolidate and validate run as one task (the planner's
/// `fused: [validate]`), and the lineage store still records them as two
/// logical stages: examples/orders on the embedded fleet `bis run --local`
/// runs, fused and not.
@Suite(.serialized) struct FusedStagesTests {
    /// The store, read beside the running engine.
    static func reader(_ root: ChunkStore) throws -> DatabaseQueue {
        var c = Configuration()
        c.readonly = true
        return try DatabaseQueue(path: root.root + "/bis.db", configuration: c)
    }

    /// Submits examples/orders, approves it, and waits until it settled.
    static func runOrders(_ fleet: EmbeddedFleet) async throws -> RunView {
        let (spec, _, _) = try LocalRunTests.workspace()
        let submitted = try await fleet.submit(spec)
        var view = try await fleet.engine.waitUntilSettled(submitted.id)
        if view.state == .awaitingApproval {
            _ = try await fleet.engine.approve(submitted.id, by: "ops@host")
            view = try await fleet.engine.waitUntilSettled(submitted.id)
        }
        return view
    }

    static func stage(_ v: RunView, _ s: Stage) -> StageView? { v.stages.first { $0.stage == s } }

    /// The published dataset's rows, in order, as values.
    static func publishedRows(_ v: RunView, root: ChunkStore) throws -> [[Scalar?]] {
        let dir = root.root + "/" + (v.published["orders"] ?? "?")
        var rows: [[Scalar?]] = []
        for name in try FileManager.default.contentsOfDirectory(atPath: dir).filter({ $0.hasSuffix(".parquet") }).sorted() {
            let b = try ParquetReader(path: dir + "/" + name).read()
            for r in 0..<b.rowCount { rows.append(b.columns.map { $0.scalar(at: r) }) }
        }
        return rows
    }

    struct Snapshot: Equatable {
        var tasks: [[String?]]
        var executions: [[String?]]
        var edges: Int
        var chunks: Int
    }

    static func snapshot(_ db: Database, run: String) throws -> Snapshot {
        Snapshot(
            tasks: try Row.fetchAll(db, sql: """
                SELECT id, stage, idx, state, attempt, winner, result FROM tasks WHERE run = ? ORDER BY id
                """, arguments: [run]).map { r in r.columnNames.map { r[$0].map { "\($0)" } } },
            executions: try Row.fetchAll(db, sql: """
                SELECT x.id, x.task, x.state, x.rows_in, x.rows_out, x.rows_quarantined FROM executions x
                JOIN tasks t ON t.id = x.task WHERE t.run = ? ORDER BY x.id
                """, arguments: [run]).map { r in r.columnNames.map { r[$0].map { "\($0)" } } },
            edges: try Int.fetchOne(db, sql: """
                SELECT COUNT(*) FROM edges e JOIN executions x ON x.id = e.execution JOIN tasks t ON t.id = x.task WHERE t.run = ?
                """, arguments: [run]) ?? -1,
            chunks: try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM chunks WHERE run = ?", arguments: [run]) ?? -1)
    }

    @Test func fusedRunRecordsConsolidateAndValidateAsTheirOwnStages() async throws {
        let (_, _, rootPath) = try LocalRunTests.workspace()
        let fleet = try await EmbeddedFleet(root: rootPath)
        defer { fleet.cancel() }
        let done = try await Self.runOrders(fleet)
        #expect(done.state == .succeeded, "\(done.message ?? "")")
        #expect(done.stages.map(\.stage) == Stage.pipeline)

        // Status: both stages, their own counts, consistent with each other.
        let normalize = try #require(Self.stage(done, .normalize))
        let consolidate = try #require(Self.stage(done, .consolidate))
        let validate = try #require(Self.stage(done, .validate))
        #expect(consolidate.total == 4 && consolidate.succeeded == 4 && validate.total == 4 && validate.succeeded == 4)
        #expect(consolidate.rowsIn == normalize.rowsOut && consolidate.rowsOut > 0 && consolidate.rowsOut < consolidate.rowsIn,
                "the orders' corrections are duplicates: \(consolidate)")
        #expect(validate.rowsIn == consolidate.rowsOut)
        #expect(validate.rowsQuarantined > 0 && validate.rowsOut == validate.rowsIn - validate.rowsQuarantined)

        let db = try Self.reader(fleet.root)
        try await db.read { db in
            // Planned fused: four consolidate messages, each carrying validate; validate never sent.
            for body in try Data.fetchAll(db, sql: "SELECT body FROM tasks WHERE run = ? AND stage = 'consolidate'", arguments: [done.id]) {
                let m = try WireCoding.decode(TaskMessage.self, from: [UInt8](body))
                #expect(m.fused == [.validate])
            }
            let sent: Int = try Int.fetchOne(db, sql: """
                SELECT COUNT(*) FROM outbox o JOIN tasks t ON t.id = o.task WHERE t.run = ? AND t.stage = 'validate'
                """, arguments: [done.id]) ?? -1
            #expect(sent == 0)
            // Each validate's winner is its own record of the fused execution.
            for row in try Row.fetchAll(db, sql: """
                SELECT c.idx, c.winner AS cw, v.winner AS vw, v.result FROM tasks c JOIN tasks v ON v.run = c.run AND v.idx = c.idx
                WHERE c.run = ? AND c.stage = 'consolidate' AND v.stage = 'validate'
                """, arguments: [done.id]) {
                #expect((row["vw"] as String?) == (row["cw"] as String?).map { $0 + ".validate" })
                #expect((row["result"] as String?)?.contains("rowsPassed") == true)
            }
            // No intermediate chunk: consolidate wrote none, validate's files lie in the fused execution's folder.
            let paths = try String.fetchAll(db, sql: "SELECT path FROM chunks WHERE run = ?", arguments: [done.id])
            #expect(!paths.contains { $0.contains("/consolidated-") })
            #expect(paths.contains { $0.contains("/consolidate/") && $0.hasSuffix("/validated-00000.parquet") })
            #expect(!paths.contains { $0.contains("/validate/") })
        }

        // Lineage: ingest, normalize, consolidate (a node of no chunk) and validate, back to the input files.
        let tree = try await fleet.engine.lineageTrace(done.id)
        var stages = Set<Stage>()
        var fusedNodes: [LineageNode] = []
        func walk(_ n: LineageNode) {
            if let s = n.producedBy?.stage { stages.insert(s) }
            if n.producedBy?.stage == .consolidate { fusedNodes.append(n) }
            n.inputs.forEach(walk)
        }
        walk(tree)
        #expect(stages.isSuperset(of: [.ingest, .normalize, .consolidate, .validate, .publish]), "\(stages)")
        #expect(!fusedNodes.isEmpty && fusedNodes.allSatisfy {
            $0.sha256.isEmpty && $0.name?.contains("fused") == true && $0.inputs.allSatisfy { $0.producedBy?.stage == .normalize }
        })
        // OpenLineage: each validate's execution (the fused one's
        // `<exec>.validate`) has its own START and COMPLETE, the COMPLETE
        // listing validate's chunks as outputs.
        let events = try await fleet.engine.openLineage(done.id)
        let validateOutputs = try await db.read { db in
            try Dictionary(grouping: Row.fetchAll(db, sql: """
                SELECT t.winner, c.path FROM tasks t JOIN edges e ON e.execution = t.winner AND e.direction = 'out'
                JOIN chunks c ON c.id = e.chunk WHERE t.run = ? AND t.stage = 'validate'
                """, arguments: [done.id]), by: { $0["winner"] as String }).mapValues { rows in
                Set(rows.map { (($0["path"] as String).hasPrefix("/") ? "" : fleet.root.root + "/") + ($0["path"] as String) })
            }
        }
        #expect(validateOutputs.count == 4 && validateOutputs.keys.allSatisfy { $0.hasSuffix(".validate") }, "\(validateOutputs.keys)")
        for (execution, paths) in validateOutputs {
            let own = events.filter { $0.run.facets.bis_execution?.execution == execution }
            #expect(own.contains { $0.eventType == "START" && $0.job.name.hasSuffix(".validate") }, "no START for \(execution)")
            let complete = own.filter { $0.eventType == "COMPLETE" }
            #expect(complete.count == 1 && complete.allSatisfy { Set($0.outputs.map(\.name)) == paths && !paths.isEmpty },
                    "\(execution): \(complete.map(\.outputs)) vs \(paths)")
        }

        // A redelivered fused result (a new execution), and the same event again: nothing changes but a duplicate.
        let before = try await db.read { try Self.snapshot($0, run: done.id) }
        let (message, follower, winner) = try await db.read { db -> (TaskMessage, FollowerResult, String) in
            let t = try #require(try Row.fetchOne(db, sql: """
                SELECT body, winner FROM tasks WHERE run = ? AND stage = 'consolidate' AND idx = 1
                """, arguments: [done.id]))
            let v = try #require(try Row.fetchOne(db, sql: """
                SELECT t.winner, t.result, x.rows_in, x.rows_out, x.rows_quarantined FROM tasks t JOIN executions x ON x.id = t.winner
                WHERE t.run = ? AND t.stage = 'validate' AND t.idx = 1
                """, arguments: [done.id]))
            let outputs = try Row.fetchAll(db, sql: """
                SELECT c.* FROM edges e JOIN chunks c ON c.id = e.chunk WHERE e.execution = ? AND e.direction = 'out'
                """, arguments: [v["winner"] as String]).map { r in
                ChunkRef(path: r["path"], sha256: r["sha256"], rows: r["rows"], bytes: r["bytes"],
                         kind: ChunkRef.Kind(rawValue: r["kind"])!, partition: r["partition"], name: r["name"])
            }
            return (try WireCoding.decode(TaskMessage.self, from: [UInt8](t["body"] as Data)),
                    FollowerResult(stage: .validate, outputs: outputs, rowsIn: v["rows_in"], rowsOut: (v["rows_out"] as Int64) + 1,
                                   rowsQuarantined: v["rows_quarantined"], result: v["result"]),
                    t["winner"] as String)
        }
        let identity = WorkerIdentity(id: "test:dup", host: "test", pid: 1, version: "test")
        let late = FleetIDs.newExecutionID()
        for execution in [late, winner] {
            try await fleet.transport.publishEvent(TaskEvent(kind: .succeeded, task: message, execution: execution, worker: identity,
                                                             deliveryCount: 1, startedAt: Date(), finishedAt: Date(),
                                                             rowsIn: 1, rowsOut: 1, followers: [follower]))
        }
        var after = before
        for _ in 0..<500 {
            after = try await db.read { try Self.snapshot($0, run: done.id) }
            if after.executions.count > before.executions.count { break }
            try await Task.sleep(for: .milliseconds(10))
        }
        try await Task.sleep(for: .milliseconds(200))   // the replayed winner's event, after
        after = try await db.read { try Self.snapshot($0, run: done.id) }
        #expect(after.tasks == before.tasks)
        #expect((after.edges, after.chunks) == (before.edges, before.chunks))
        let added = after.executions.filter { !before.executions.contains($0) }
        #expect(added.count == 1 && added.first?[0] == late && added.first?[2] == "duplicate", "\(added)")
        #expect(after.executions.filter { $0[0] != late } == before.executions)
        let again = try #require(try await fleet.engine.run(done.id))
        #expect(Self.stage(again, .validate)?.rowsOut == validate.rowsOut && Self.stage(again, .consolidate)?.duplicates == 1)
        await fleet.stop()
    }

    @Test func localRunsFusedAndUnfusedGiveTheSameDatasetAndCounts() async throws {
        var unfused = CoordinatorOptions()
        unfused.fuseStages = false
        var views: [RunView] = []
        var rows: [[[Scalar?]]] = []
        var quarantines: [[String]] = []
        for options in [CoordinatorOptions(), unfused] {
            let (_, _, rootPath) = try LocalRunTests.workspace()
            let fleet = try await EmbeddedFleet(root: rootPath, options: options)
            defer { fleet.cancel() }
            let done = try await Self.runOrders(fleet)
            #expect(done.state == .succeeded, "\(done.message ?? "")")
            views.append(done)
            rows.append(try Self.publishedRows(done, root: fleet.root))
            quarantines.append(try await fleet.engine.quarantine(done.id, rule: nil, limit: 10_000)
                .map { "\($0.stage.rawValue) \(($0.file as NSString?)?.lastPathComponent ?? "-"):\($0.line ?? -1) \($0.rule)" }.sorted())
            let consolidated = try await Self.reader(fleet.root).read { db in
                try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM chunks WHERE run = ? AND path LIKE '%/consolidated-%'",
                                 arguments: [done.id]) ?? -1
            }
            #expect((consolidated == 0) == options.fuseStages, "consolidated chunks: \(consolidated)")
            await fleet.stop()
        }
        guard views.count == 2 else { return }
        #expect(!rows[0].isEmpty && rows[0] == rows[1])
        #expect(!quarantines[0].isEmpty && quarantines[0] == quarantines[1])
        for s in Stage.pipeline {
            let a = Self.stage(views[0], s), b = Self.stage(views[1], s)
            #expect(a?.total == b?.total && a?.rowsIn == b?.rowsIn && a?.rowsOut == b?.rowsOut
                    && a?.rowsQuarantined == b?.rowsQuarantined, "\(s): \(String(describing: a)) vs \(String(describing: b))")
        }
    }

    @Test func aFailedFusedTaskIsRetriedWhole() async throws {
        // consolidate/0 fails for good: no validate/0 is recorded; `bis retry` runs both again.
        let (_, _, rootPath) = try LocalRunTests.workspace()
        let fleet = try await EmbeddedFleet(root: rootPath, fault: FaultSwitch(rules: [.init(action: .fail, stage: .consolidate, index: 0)]))
        defer { fleet.cancel() }
        let failed = try await Self.runOrders(fleet)
        #expect(failed.state == .failed)
        #expect(failed.message?.contains("consolidate of partition 0") == true, "\(failed.message ?? "")")
        let db = try Self.reader(fleet.root)
        try await db.read { db in
            let v0 = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM tasks WHERE run = ? AND stage = 'validate' AND idx = 0",
                                      arguments: [failed.id])
            #expect(v0 == 0, "a fused task that failed records no validate")
        }
        // The worker with the fault leaves; a clean one takes its place.
        fleet.worker.drain()
        fleet.cancel()
        let clean = FleetWorker(transport: fleet.transport, chunkStore: fleet.root, concurrency: 2, logger: Logger(label: "test.clean"))
        let working = Task { try await clean.run() }
        defer { working.cancel() }
        _ = try await fleet.engine.retry(failed.id, by: "ops@host")
        var done = try await fleet.engine.waitUntilSettled(failed.id)
        if done.state == .awaitingApproval {
            _ = try await fleet.engine.approve(failed.id, by: "ops@host")
            done = try await fleet.engine.waitUntilSettled(failed.id)
        }
        #expect(done.state == .succeeded, "\(done.message ?? "")")
        try await db.read { db in
            #expect(try Self.executions(db, failed.id, "consolidate", 0) == ["failed", "succeeded"])
            #expect(try Self.executions(db, failed.id, "validate", 0) == ["succeeded"])
            let w = try Row.fetchOne(db, sql: """
                SELECT c.winner AS cw, v.winner AS vw FROM tasks c JOIN tasks v ON v.run = c.run AND v.idx = c.idx
                WHERE c.run = ? AND c.idx = 0 AND c.stage = 'consolidate' AND v.stage = 'validate'
                """, arguments: [failed.id])
            #expect((w?["vw"] as String?) == (w?["cw"] as String?).map { $0 + ".validate" })
        }
        clean.drain()
        await fleet.stop()
    }

    @Test func aTestFaultAimedAtValidateRunsTheTaskUnfused() async throws {
        // As without fusion: validate/1 is a task of its own, and its failure names it.
        let (_, _, rootPath) = try LocalRunTests.workspace()
        let fleet = try await EmbeddedFleet(root: rootPath, fault: FaultSwitch(rules: [.init(action: .fail, stage: .validate, index: 1)]))
        defer { fleet.cancel() }
        let failed = try await Self.runOrders(fleet)
        #expect(failed.state == .failed)
        #expect(failed.message?.contains("validate of partition 1") == true, "\(failed.message ?? "")")
        try await Self.reader(fleet.root).read { db in
            #expect(try Self.executions(db, failed.id, "validate", 1) == ["failed"])
            let consolidated = try Int.fetchOne(db, sql: """
                SELECT COUNT(*) FROM chunks WHERE run = ? AND path LIKE 'runs/%/consolidate/1/%/consolidated-%'
                """, arguments: [failed.id])
            #expect((consolidated ?? 0) >= 1)
        }
        await fleet.stop()
    }

    @Test func timeoutsOnOnlyOneOfTheStagesKeepThemUnfusedAndOnBothAreSummed() async throws {
        for (timeouts, fused, seconds) in [("{consolidate: 10m}", false, "600"), ("{consolidate: 10m, validate: 5m}", true, "900")] {
            let (spec, _, rootPath) = try LocalRunTests.workspace()
            try (try String(contentsOfFile: spec, encoding: .utf8) + "timeouts: \(timeouts)\n")
                .write(toFile: spec, atomically: true, encoding: .utf8)
            let fleet = try await EmbeddedFleet(root: rootPath)
            defer { fleet.cancel() }
            let submitted = try await fleet.submit(spec)
            let waiting = try await fleet.engine.waitUntilSettled(submitted.id)
            #expect(waiting.state == .awaitingApproval, "\(waiting.message ?? "")")
            try await Self.reader(fleet.root).read { db in
                let bodies = try Data.fetchAll(db, sql: "SELECT body FROM tasks WHERE run = ? AND stage = 'consolidate'",
                                               arguments: [submitted.id])
                #expect(bodies.count == 4)
                for body in bodies {
                    let m = try WireCoding.decode(TaskMessage.self, from: [UInt8](body))
                    #expect((m.fused == [.validate]) == fused && m.parameters["timeout_seconds"] == seconds, "\(timeouts): \(m.parameters)")
                }
                let validate = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM tasks WHERE run = ? AND stage = 'validate' AND state = 'succeeded'",
                                                arguments: [submitted.id])
                #expect(validate == 4)
            }
            await fleet.stop()
        }
    }

    @Test func aLiveWorkerThatTakesConsolidateButNotValidateKeepsThemUnfused() async throws {
        let (_, _, rootPath) = try LocalRunTests.workspace()
        let fleet = try await EmbeddedFleet(root: rootPath)
        defer { fleet.cancel() }
        let noValidate = FleetWorker(transport: fleet.transport, chunkStore: fleet.root, stages: Stage.allCases.filter { $0 != .validate },
                                     concurrency: 1, identity: WorkerIdentity(id: "test:novalidate", host: "test", pid: 2, version: "test"),
                                     logger: Logger(label: "test.novalidate"))
        let working = Task { try await noValidate.run() }
        defer { working.cancel() }
        let db = try Self.reader(fleet.root)
        for _ in 0..<300 {
            let known = try await db.read { try Int.fetchOne($0, sql: "SELECT COUNT(*) FROM workers WHERE id = 'test:novalidate'") ?? 0 }
            if known > 0 { break }
            try await Task.sleep(for: .milliseconds(20))
        }
        let done = try await Self.runOrders(fleet)
        #expect(done.state == .succeeded, "\(done.message ?? "")")
        try await db.read { db in
            for body in try Data.fetchAll(db, sql: "SELECT body FROM tasks WHERE run = ? AND stage = 'consolidate'", arguments: [done.id]) {
                #expect(try WireCoding.decode(TaskMessage.self, from: [UInt8](body)).fused == nil)
            }
            let sent = try Int.fetchOne(db, sql: """
                SELECT COUNT(*) FROM outbox o JOIN tasks t ON t.id = o.task WHERE t.run = ? AND t.stage = 'validate'
                """, arguments: [done.id])
            #expect(sent == 4)
        }
        noValidate.drain()
        await fleet.stop()
    }

    @Test func aWorkerWhoseStagesExcludeValidateRunsAFusedMessageUnfused() async throws {
        // The embedded worker takes every stage but consolidate: no live
        // worker takes consolidate when it is planned, so it is planned fused.
        // The fused messages then reach a worker started with --stages
        // consolidate: it runs consolidate alone (consolidated-* chunks), and
        // validate is planned and sent as its own task to the other worker.
        let (spec, _, rootPath) = try LocalRunTests.workspace()
        let fleet = try await EmbeddedFleet(root: rootPath, stages: Stage.allCases.filter { $0 != .consolidate })
        defer { fleet.cancel() }
        let submitted = try await fleet.submit(spec)
        let db = try Self.reader(fleet.root)
        var planned = 0
        for _ in 0..<3000 where planned < 4 {
            planned = try await db.read {
                try Int.fetchOne($0, sql: "SELECT COUNT(*) FROM tasks WHERE run = ? AND stage = 'consolidate'", arguments: [submitted.id]) ?? 0
            }
            if planned < 4 { try await Task.sleep(for: .milliseconds(20)) }
        }
        #expect(planned == 4, "consolidate should have been planned")
        let done = try await Self.settleWithAConsolidateOnlyWorker(fleet, run: submitted.id)
        #expect(done.state == .succeeded, "\(done.message ?? "")")
        let consolidate = try #require(Self.stage(done, .consolidate))
        let validate = try #require(Self.stage(done, .validate))
        #expect(consolidate.succeeded == 4 && validate.succeeded == 4 && validate.rowsIn == consolidate.rowsOut)
        #expect(!(try Self.publishedRows(done, root: fleet.root)).isEmpty)
        let run = done.id
        try await db.read { db in
            // Sent fused (the stored body), run unfused by the consolidate-only worker.
            for body in try Data.fetchAll(db, sql: "SELECT body FROM tasks WHERE run = ? AND stage = 'consolidate'", arguments: [run]) {
                #expect(try WireCoding.decode(TaskMessage.self, from: [UInt8](body)).fused == [.validate])
            }
            let consolidatedBy = try String.fetchAll(db, sql: """
                SELECT DISTINCT x.worker FROM executions x JOIN tasks t ON t.winner = x.id WHERE t.run = ? AND t.stage = 'consolidate'
                """, arguments: [run])
            #expect(consolidatedBy == ["test:consolidate-only"], "\(consolidatedBy)")
            let consolidated = try Int.fetchOne(db, sql: """
                SELECT COUNT(DISTINCT partition) FROM chunks WHERE run = ? AND path LIKE 'runs/%/consolidate/%/consolidated-%'
                """, arguments: [run])
            #expect(consolidated == 4)
            // validate: its own messages, its own executions, on the worker that takes it.
            let sent = try Int.fetchOne(db, sql: """
                SELECT COUNT(*) FROM outbox o JOIN tasks t ON t.id = o.task WHERE t.run = ? AND t.stage = 'validate'
                """, arguments: [run])
            #expect(sent == 4)
            let validators = try Row.fetchAll(db, sql: """
                SELECT x.id, x.worker FROM executions x JOIN tasks t ON t.winner = x.id WHERE t.run = ? AND t.stage = 'validate'
                """, arguments: [run])
            #expect(validators.count == 4 && validators.allSatisfy {
                !($0["id"] as String).hasSuffix(".validate") && ($0["worker"] as String?) != "test:consolidate-only"
            }, "\(validators)")
            let paths = try String.fetchAll(db, sql: "SELECT path FROM chunks WHERE run = ? AND path LIKE '%/validated-%'", arguments: [run])
            #expect(!paths.isEmpty && paths.allSatisfy { $0.contains("/validate/") }, "\(paths)")
        }
        await fleet.stop()
    }

    @Test func aFusedResultThatOverstepsIsRefusedAndRetried() async throws {
        // No worker takes consolidate: its tasks are planned fused and wait,
        // open, for the results sent here by hand, each wrong in one way.
        let (spec, _, rootPath) = try LocalRunTests.workspace()
        let fleet = try await EmbeddedFleet(root: rootPath, stages: Stage.allCases.filter { $0 != .consolidate })
        defer { fleet.cancel() }
        let submitted = try await fleet.submit(spec)
        let db = try Self.reader(fleet.root)
        var bodies = [Data]()
        for _ in 0..<3000 where bodies.count < 4 {
            bodies = try await db.read {
                try Data.fetchAll($0, sql: "SELECT body FROM tasks WHERE run = ? AND stage = 'consolidate' ORDER BY idx",
                                  arguments: [submitted.id])
            }
            if bodies.count < 4 { try await Task.sleep(for: .milliseconds(20)) }
        }
        let messages = try bodies.map { try WireCoding.decode(TaskMessage.self, from: [UInt8]($0)) }
        try #require(messages.count == 4 && messages.allSatisfy { $0.fused == [.validate] })
        func folder(_ m: TaskMessage, _ x: String) -> String {
            fleet.root.executionDirectory(run: m.run, stage: m.stage, index: m.index, execution: x)
        }
        func chunk(_ path: String, _ kind: ChunkRef.Kind) -> ChunkRef {
            ChunkRef(path: path, sha256: String(repeating: "0", count: 64), rows: 1, bytes: 1, kind: kind)
        }
        let outside = "is not a data, quarantine or result file in the execution's folder"
        var sent = [(execution: String, problem: String)]()
        for (i, m) in messages.enumerated() {
            let x = i == 3 ? String(repeating: "x", count: FleetIDs.maximumIDLength - 2) : FleetIDs.newExecutionID()
            let (follower, problem): (FollowerResult, String) = switch i {
            case 0: (FollowerResult(stage: .validate, outputs: [chunk("published/orders/x.parquet", .data)], rowsIn: 1, rowsOut: 1), outside)
            case 1: (FollowerResult(stage: .validate, outputs: [chunk(folder(m, x) + "/r.html", .report)], rowsIn: 1, rowsOut: 1), outside)
            case 2: (FollowerResult(stage: .normalize, rowsIn: 1, rowsOut: 1), "the task was not sent fused with normalize")
            default: (FollowerResult(stage: .validate, outputs: [chunk(folder(m, x) + "/validated-00000.parquet", .data)],
                                     rowsIn: 1, rowsOut: 1), "is too long to name its fused validate execution")
            }
            sent.append((x, problem))
            try await fleet.transport.publishEvent(TaskEvent(
                kind: .succeeded, task: m, execution: x, worker: WorkerIdentity(id: "test:rogue", host: "test", pid: 9, version: "test"),
                deliveryCount: 1, startedAt: Date(), finishedAt: Date(), rowsIn: 1, rowsOut: 1, followers: [follower]))
        }
        // Sent fused, back with rows out but neither data nor a fused result.
        let bare = FleetIDs.newExecutionID()
        sent.append((bare, "neither data of its own nor a fused result"))
        try await fleet.transport.publishEvent(TaskEvent(
            kind: .succeeded, task: messages[0], execution: bare, worker: WorkerIdentity(id: "test:rogue", host: "test", pid: 9, version: "test"),
            deliveryCount: 1, startedAt: Date(), finishedAt: Date(), rowsIn: 5, rowsOut: 5))

        let ids = sent.map(\.execution)
        var states = [String: Row]()
        for _ in 0..<500 {
            states = try await db.read { db in
                Dictionary(uniqueKeysWithValues: try Row.fetchAll(db, sql: "SELECT id, state, error FROM executions WHERE id IN (?, ?, ?, ?, ?)",
                                                                  arguments: StatementArguments(ids)).map { ($0["id"] as String, $0) })
            }
            if states.count == ids.count, states.values.allSatisfy({ ($0["state"] as String) != "running" }) { break }
            try await Task.sleep(for: .milliseconds(20))
        }
        for (x, problem) in sent {
            let row = states[x]
            #expect(row?["state"] as String? == "failed", "\(x.prefix(20)): \(String(describing: row))")
            #expect((row?["error"] as String?)?.contains(problem) == true, "\(x.prefix(20)): \(String(describing: row)) lacks '\(problem)'")
        }
        // Nothing of theirs was recorded, and every consolidate task was retried.
        let (validates, edges, attempts) = try await db.read { db in
            (try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM tasks WHERE run = ? AND stage = 'validate'", arguments: [submitted.id]),
             try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM edges WHERE execution IN (?, ?, ?, ?, ?)", arguments: StatementArguments(ids)),
             try Int.fetchAll(db, sql: "SELECT attempt FROM tasks WHERE run = ? AND stage = 'consolidate' ORDER BY idx",
                              arguments: [submitted.id]))
        }
        #expect(validates == 0)
        #expect(edges == 0)
        // Past here a wrongly committed result would leave the run waiting.
        try #require(attempts == [2, 2, 2, 2] && sent.allSatisfy { states[$0.execution]?["state"] as String? == "failed" })
        // A worker that takes consolidate then finishes the run.
        let done = try await Self.settleWithAConsolidateOnlyWorker(fleet, run: submitted.id)
        #expect(done.state == .succeeded, "\(done.message ?? "")")
        #expect(!(try Self.publishedRows(done, root: fleet.root)).isEmpty)
        await fleet.stop()
    }

    /// Starts a worker that takes consolidate only, waits until the run
    /// settles (approving it when it asks), and drains that worker.
    static func settleWithAConsolidateOnlyWorker(_ fleet: EmbeddedFleet, run: String) async throws -> RunView {
        let only = FleetWorker(transport: fleet.transport, chunkStore: fleet.root, stages: [.consolidate], concurrency: 1,
                               identity: WorkerIdentity(id: "test:consolidate-only", host: "test", pid: 3, version: "test"),
                               logger: Logger(label: "test.consolidate-only"))
        let working = Task { try await only.run() }
        defer { working.cancel() }
        var done = try await fleet.engine.waitUntilSettled(run)
        if done.state == .awaitingApproval {
            _ = try await fleet.engine.approve(run, by: "ops@host")
            done = try await fleet.engine.waitUntilSettled(run)
        }
        only.drain()
        return done
    }

    static func executions(_ db: Database, _ run: String, _ stage: String, _ idx: Int) throws -> [String] {
        try String.fetchAll(db, sql: """
            SELECT x.state FROM executions x JOIN tasks t ON t.id = x.task WHERE t.run = ? AND t.stage = ? AND t.idx = ? ORDER BY x.state
            """, arguments: [run, stage, idx])
    }
}
