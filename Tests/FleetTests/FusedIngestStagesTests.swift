import Columnar
import Coordination
import FleetCore
import Foundation
import GRDB
import Logging
import Testing
import WorkerRuntime

/// A shard's ingest and normalize run as one task (the planner's
/// `fused: [normalize]`), and the lineage store still records them as two
/// logical stages: examples/orders on the embedded fleet `bis run --local`
/// runs, fused and not.
@Suite(.serialized) struct FusedIngestStagesTests {
    typealias F = FusedStagesTests

    @Test func fusedRunRecordsIngestAndNormalizeAsTheirOwnStages() async throws {
        let (_, data, rootPath) = try LocalRunTests.workspace()
        let fleet = try await EmbeddedFleet(root: rootPath)
        defer { fleet.cancel() }
        let done = try await F.runOrders(fleet)
        #expect(done.state == .succeeded, "\(done.message ?? "")")
        #expect(done.stages.map(\.stage) == Stage.pipeline)

        // Status: both stages, their own counts, consistent with each other.
        let ingest = try #require(F.stage(done, .ingest))
        let normalize = try #require(F.stage(done, .normalize))
        #expect(ingest.total == 6 && ingest.succeeded == 6 && normalize.total == 6 && normalize.succeeded == 6)
        #expect(ingest.rowsQuarantined > 0 && ingest.rowsOut == ingest.rowsIn - ingest.rowsQuarantined)
        #expect(normalize.rowsIn == ingest.rowsOut && normalize.rowsOut > 0 && normalize.rowsOut < normalize.rowsIn,
                "the orders' filter drops rows: \(normalize)")

        let db = try F.reader(fleet.root)
        try await db.read { db in
            // Planned fused: six ingest messages, each carrying normalize; normalize never sent.
            for body in try Data.fetchAll(db, sql: "SELECT body FROM tasks WHERE run = ? AND stage = 'ingest'", arguments: [done.id]) {
                #expect(try WireCoding.decode(TaskMessage.self, from: [UInt8](body)).fused == [.normalize])
            }
            let sent = try Int.fetchOne(db, sql: """
                SELECT COUNT(*) FROM outbox o JOIN tasks t ON t.id = o.task WHERE t.run = ? AND t.stage = 'normalize'
                """, arguments: [done.id])
            #expect(sent == 0)
            // Each normalize's winner is its own record of the fused execution, its input the shard's source file.
            for row in try Row.fetchAll(db, sql: """
                SELECT i.idx, i.winner AS iw, n.winner AS nw, n.id AS nid, i.id AS iid FROM tasks i
                JOIN tasks n ON n.run = i.run AND n.idx = i.idx WHERE i.run = ? AND i.stage = 'ingest' AND n.stage = 'normalize'
                """, arguments: [done.id]) {
                #expect((row["nw"] as String?) == (row["iw"] as String?).map { $0 + ".normalize" })
                let inputs = { (task: Int64) in
                    try String.fetchAll(db, sql: """
                        SELECT c.kind || ' ' || c.path FROM task_inputs ti JOIN chunks c ON c.id = ti.chunk WHERE ti.task = ? ORDER BY c.id
                        """, arguments: [task])
                }
                let own = try inputs(row["nid"])
                #expect(own == (try inputs(row["iid"])) && own.count == 1 && own[0].hasPrefix("source "), "\(own)")
            }
            // No ingest chunk: normalize's parts lie in the fused execution's folder; ingest's quarantine is ingest's.
            let paths = try String.fetchAll(db, sql: "SELECT path FROM chunks WHERE run = ?", arguments: [done.id])
            #expect(!paths.contains { $0.hasSuffix("/ingest.parquet") })
            #expect(paths.contains { $0.contains("/ingest/") && $0.hasSuffix("/part-00000.parquet") })
            #expect(!paths.contains { $0.contains("/normalize/") })
            let quarantines = try Row.fetchAll(db, sql: """
                SELECT t.stage, c.path FROM chunks c JOIN edges e ON e.chunk = c.id AND e.direction = 'out'
                JOIN executions x ON x.id = e.execution JOIN tasks t ON t.id = x.task WHERE c.run = ? AND c.kind = 'quarantine'
                AND t.stage IN ('ingest', 'normalize')
                """, arguments: [done.id]).map { ($0["stage"] as String, $0["path"] as String) }
            #expect(quarantines.contains { $0.0 == "ingest" && $0.1.hasSuffix("/quarantine.parquet") })
            #expect(quarantines.allSatisfy { $0.0 == "ingest" ? $0.1.hasSuffix("/quarantine.parquet")
                                                              : $0.1.hasSuffix("/normalize-quarantine.parquet") })
        }

        // Lineage: every normalize chunk traces through an ingest node of no chunk to its source file.
        let tree = try await fleet.engine.lineageTrace(done.id)
        var fusedNodes: [LineageNode] = []
        var leaves = Set<String>()
        func walk(_ n: LineageNode) {
            if n.producedBy?.stage == .ingest { fusedNodes.append(n) }
            if n.producedBy?.stage == .normalize {
                #expect(n.inputs.count == 1 && n.inputs.allSatisfy { $0.producedBy?.stage == .ingest }, "\(n.path)")
            }
            if n.inputs.isEmpty { leaves.insert(n.path) }
            n.inputs.forEach(walk)
        }
        walk(tree)
        #expect(!fusedNodes.isEmpty && fusedNodes.allSatisfy {
            $0.sha256.isEmpty && $0.name?.contains("fused into normalize") == true
                && $0.inputs.count == 1 && $0.inputs.allSatisfy { $0.kind == .source }
        })
        // (runOrders submits a workspace of its own: the same files by name.)
        let files = try FileManager.default.contentsOfDirectory(atPath: data).filter { $0.hasSuffix(".csv") }
        #expect(Set(leaves.map { ($0 as NSString).lastPathComponent }) == Set(files) && leaves.count == files.count)
        // OpenLineage: normalize's executions have their own events.
        let events = try await fleet.engine.openLineage(done.id)
        #expect(events.contains { $0.run.facets.bis_execution != nil && $0.job.name.contains("normalize") })
        #expect(events.contains { $0.run.facets.bis_execution != nil && $0.job.name.contains("ingest") })

        // A redelivered fused result (a new execution), and the same event again: nothing changes but a duplicate.
        let before = try await db.read { try F.snapshot($0, run: done.id) }
        let (message, follower, winner) = try await db.read { db -> (TaskMessage, FollowerResult, String) in
            let t = try #require(try Row.fetchOne(db, sql: "SELECT body, winner FROM tasks WHERE run = ? AND stage = 'ingest' AND idx = 1",
                                                  arguments: [done.id]))
            let n = try #require(try Row.fetchOne(db, sql: """
                SELECT t.winner, x.rows_in, x.rows_out, x.rows_quarantined FROM tasks t JOIN executions x ON x.id = t.winner
                WHERE t.run = ? AND t.stage = 'normalize' AND t.idx = 1
                """, arguments: [done.id]))
            let outputs = try Row.fetchAll(db, sql: """
                SELECT c.* FROM edges e JOIN chunks c ON c.id = e.chunk WHERE e.execution = ? AND e.direction = 'out'
                """, arguments: [n["winner"] as String]).map { r in
                ChunkRef(path: r["path"], sha256: r["sha256"], rows: r["rows"], bytes: r["bytes"],
                         kind: ChunkRef.Kind(rawValue: r["kind"])!, partition: r["partition"], name: r["name"])
            }
            return (try WireCoding.decode(TaskMessage.self, from: [UInt8](t["body"] as Data)),
                    FollowerResult(stage: .normalize, outputs: outputs, rowsIn: n["rows_in"], rowsOut: (n["rows_out"] as Int64) + 1,
                                   rowsQuarantined: n["rows_quarantined"]),
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
            after = try await db.read { try F.snapshot($0, run: done.id) }
            if after.executions.count > before.executions.count { break }
            try await Task.sleep(for: .milliseconds(10))
        }
        try await Task.sleep(for: .milliseconds(200))
        after = try await db.read { try F.snapshot($0, run: done.id) }
        #expect(after.tasks == before.tasks)
        #expect((after.edges, after.chunks) == (before.edges, before.chunks))
        let added = after.executions.filter { !before.executions.contains($0) }
        #expect(added.count == 1 && added.first?[0] == late && added.first?[2] == "duplicate", "\(added)")
        #expect(after.executions.filter { $0[0] != late } == before.executions)
        let again = try #require(try await fleet.engine.run(done.id))
        #expect(F.stage(again, .normalize)?.rowsOut == normalize.rowsOut && F.stage(again, .ingest)?.rowsOut == ingest.rowsOut)
        await fleet.stop()
    }

    /// A spec whose normalize casts: ingest quarantines an unparseable id,
    /// normalize a quantity the cast cannot convert; fused and unfused keep
    /// both with their file, line and column, and publish the same rows.
    @Test func bothQuarantinesAreKeptFusedAsUnfused() async throws {
        var unfused = CoordinatorOptions()
        unfused.fuseStages = false
        var seen: [[String]] = []
        var rows: [[[Scalar?]]] = []
        for options in [CoordinatorOptions(), unfused] {
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("bis-fcast-\(UUID().uuidString)").path
            try FileManager.default.createDirectory(atPath: dir + "/data", withIntermediateDirectories: true)
            try "id,qty\n1,5\n2,five\nx,4\n3,7\n".write(toFile: dir + "/data/in.csv", atomically: true, encoding: .utf8)
            let spec = dir + "/pipeline.yml"
            try """
                pipeline: casts
                sources:
                  items:
                    format: csv
                    files: data/*.csv
                    header: true
                    columns: {id: int64, qty: string}
                normalize:
                  - cast: {qty: int64}
                consolidate: {partition_by: [id], partitions: 2, sort_by: [id]}
                publish: {dataset: items}
                """.write(toFile: spec, atomically: true, encoding: .utf8)
            let fleet = try await EmbeddedFleet(root: dir + "/root", options: options)
            defer { fleet.cancel() }
            let submitted = try await fleet.submit(spec)
            let done = try await fleet.engine.waitUntilSettled(submitted.id)
            #expect(done.state == .succeeded, "\(done.message ?? "")")
            let i = try #require(F.stage(done, .ingest)), n = try #require(F.stage(done, .normalize))
            #expect((i.rowsIn, i.rowsOut, i.rowsQuarantined) == (4, 3, 1))
            #expect((n.rowsIn, n.rowsOut, n.rowsQuarantined) == (3, 2, 1))
            let q = try await fleet.engine.quarantine(submitted.id, rule: nil, limit: 10)
            seen.append(q.map { "\($0.stage.rawValue) \(($0.file as NSString?)?.lastPathComponent ?? "-"):\($0.line ?? -1) \($0.column ?? "-") \($0.rule)" }.sorted())
            let published = fleet.root.root + "/" + (done.published["items"] ?? "?")
            var r: [[Scalar?]] = []
            for name in try FileManager.default.contentsOfDirectory(atPath: published).filter({ $0.hasSuffix(".parquet") }).sorted() {
                let b = try ParquetReader(path: published + "/" + name).read()
                for x in 0..<b.rowCount { r.append(b.columns.map { $0.scalar(at: x) }) }
            }
            rows.append(r)
            let ingestChunks = try await F.reader(fleet.root).read { db in
                try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM chunks WHERE run = ? AND path LIKE '%/ingest.parquet'",
                                 arguments: [submitted.id]) ?? -1
            }
            #expect((ingestChunks == 0) == options.fuseStages, "ingest chunks: \(ingestChunks)")
            await fleet.stop()
        }
        guard seen.count == 2 else { return }
        #expect(seen[0] == ["ingest in.csv:4 id parse", "normalize in.csv:3 qty cast"], "\(seen[0])")
        #expect(seen[0] == seen[1])
        #expect(rows[0].count == 2 && rows[0] == rows[1])
    }

    @Test func aFailedFusedIngestIsRetriedWhole() async throws {
        let (_, _, rootPath) = try LocalRunTests.workspace()
        let fleet = try await EmbeddedFleet(root: rootPath, fault: FaultSwitch(rules: [.init(action: .fail, stage: .ingest, index: 0)]))
        defer { fleet.cancel() }
        let failed = try await F.runOrders(fleet)
        #expect(failed.state == .failed)
        let db = try F.reader(fleet.root)
        try await db.read { db in
            let n0 = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM tasks WHERE run = ? AND stage = 'normalize' AND idx = 0",
                                      arguments: [failed.id])
            #expect(n0 == 0, "a fused ingest that failed records no normalize")
        }
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
        try await db.read { (db: Database) throws -> Void in
            #expect(try F.executions(db, failed.id, "ingest", 0) == ["failed", "succeeded"])
            #expect(try F.executions(db, failed.id, "normalize", 0) == ["succeeded"])
        }
        clean.drain()
        await fleet.stop()
    }

    @Test func aTestFaultAimedAtNormalizeRunsTheTaskUnfused() async throws {
        let (_, _, rootPath) = try LocalRunTests.workspace()
        let fleet = try await EmbeddedFleet(root: rootPath, fault: FaultSwitch(rules: [.init(action: .fail, stage: .normalize, index: 1)]))
        defer { fleet.cancel() }
        let failed = try await F.runOrders(fleet)
        #expect(failed.state == .failed)
        #expect(failed.message?.contains("normalize of shard 1") == true, "\(failed.message ?? "")")
        try await F.reader(fleet.root).read { db in
            #expect(try F.executions(db, failed.id, "normalize", 1) == ["failed"])
            let written = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM chunks WHERE run = ? AND path LIKE 'runs/%/ingest/1/%/ingest.parquet'",
                                           arguments: [failed.id])
            #expect(written == 1)
        }
        await fleet.stop()
    }

    @Test func timeoutsOnOnlyOneOfTheStagesKeepThemUnfusedAndOnBothAreSummed() async throws {
        for (timeouts, fused, seconds) in [("{ingest: 10m}", false, "600"), ("{ingest: 10m, normalize: 5m}", true, "900"),
                                          ("{default: 1h, ingest: 10m}", false, "600"), ("{default: 1h}", true, "7200")] {
            let (spec, _, rootPath) = try LocalRunTests.workspace()
            try (try String(contentsOfFile: spec, encoding: .utf8) + "timeouts: \(timeouts)\n")
                .write(toFile: spec, atomically: true, encoding: .utf8)
            let fleet = try await EmbeddedFleet(root: rootPath)
            defer { fleet.cancel() }
            let submitted = try await fleet.submit(spec)
            let waiting = try await fleet.engine.waitUntilSettled(submitted.id)
            #expect(waiting.state == .awaitingApproval, "\(waiting.message ?? "")")
            try await F.reader(fleet.root).read { db in
                let bodies = try Data.fetchAll(db, sql: "SELECT body FROM tasks WHERE run = ? AND stage = 'ingest'", arguments: [submitted.id])
                #expect(bodies.count == 6)
                for body in bodies {
                    let m = try WireCoding.decode(TaskMessage.self, from: [UInt8](body))
                    #expect((m.fused == [.normalize]) == fused && m.parameters["timeout_seconds"] == seconds, "\(timeouts): \(m.parameters)")
                }
                let normalize = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM tasks WHERE run = ? AND stage = 'normalize' AND state = 'succeeded'",
                                                 arguments: [submitted.id])
                #expect(normalize == 6)
            }
            await fleet.stop()
        }
    }

    @Test func aLiveWorkerThatTakesIngestButNotNormalizeKeepsThemUnfused() async throws {
        let (_, _, rootPath) = try LocalRunTests.workspace()
        let fleet = try await EmbeddedFleet(root: rootPath)
        defer { fleet.cancel() }
        let noNormalize = FleetWorker(transport: fleet.transport, chunkStore: fleet.root, stages: Stage.allCases.filter { $0 != .normalize },
                                      concurrency: 1, identity: WorkerIdentity(id: "test:nonormalize", host: "test", pid: 2, version: "test"),
                                      logger: Logger(label: "test.nonormalize"))
        let working = Task { try await noNormalize.run() }
        defer { working.cancel() }
        let db = try F.reader(fleet.root)
        for _ in 0..<300 {
            let known = try await db.read { try Int.fetchOne($0, sql: "SELECT COUNT(*) FROM workers WHERE id = 'test:nonormalize'") ?? 0 }
            if known > 0 { break }
            try await Task.sleep(for: .milliseconds(20))
        }
        let done = try await F.runOrders(fleet)
        #expect(done.state == .succeeded, "\(done.message ?? "")")
        try await db.read { db in
            for body in try Data.fetchAll(db, sql: "SELECT body FROM tasks WHERE run = ? AND stage = 'ingest'", arguments: [done.id]) {
                #expect(try WireCoding.decode(TaskMessage.self, from: [UInt8](body)).fused == nil)
            }
            let sent = try Int.fetchOne(db, sql: """
                SELECT COUNT(*) FROM outbox o JOIN tasks t ON t.id = o.task WHERE t.run = ? AND t.stage = 'normalize'
                """, arguments: [done.id])
            #expect(sent == 6)
        }
        noNormalize.drain()
        await fleet.stop()
    }
}
