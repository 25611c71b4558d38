import Coordination
import CoordinatorHTTP
import FleetCore
import Foundation
import TestSupport
import Testing

/// `bis status --watch`, `bis quarantine` and `bis lineage` as an operator
/// runs them, against the in-process server over the fake service.
@Suite struct OperationsCLITests {
    @Test func watchOnAPipePrintsPlainBlocksUntilTheRunSettlesAndExits0() async throws {
        let ws = try Workspace()
        defer { ws.remove() }
        try await withServer { fake, http in
            let id = "orders-20261127T050000Z-0001"
            // The same view twice in a row: printed once.
            let views = [0, 1, 1, 2, 3, 4].map { Fixtures.progressing(id, done: $0, final: .succeeded) }
            await fake.progress(id, through: views)
            let r = try await Bis.run(["status", id, "--watch", "--interval", "0.01"], in: ws.path, coordinator: http.base)
            #expect(r.status == 0, "\(r.stderr)")
            #expect(!r.stdout.contains("\u{1b}"), "escape codes on a pipe: \(r.stdout.debugDescription)")
            let blocks = r.stdout.components(separatedBy: "\n\n")
            #expect(blocks.count == 5, "\(r.stdout)")
            #expect(blocks.first?.hasPrefix("run \(id)  pipeline orders  running") == true, "\(r.stdout)")
            #expect(blocks.last?.hasPrefix("run \(id)  pipeline orders  succeeded") == true, "\(r.stdout)")
            let header = try #require(blocks[0].split(separator: "\n").first { $0.hasPrefix("stage") })
            #expect(header.split(separator: " ").joined(separator: " ")
                    == "stage progress tasks running retried failed rows in rows out quarantined rows/s eta")
            let first = try #require(blocks[0].split(separator: "\n").first { $0.hasPrefix("ingest") })
            #expect(first.contains("[--------------------]") && first.contains("0/4"), "\(first)")
            let done = try #require(blocks.last?.split(separator: "\n").first { $0.hasPrefix("ingest") })
            let cells = done.split(separator: " ").map(String.init)
            #expect(cells.prefix(9) == ["ingest", "[####################]", "4/4", "0", "0", "0", "400", "392", "8"], "\(done)")
            #expect(cells.last == "done", "\(done)")
            let half = try #require(blocks[2].split(separator: "\n").first { $0.hasPrefix("ingest") })
            let halfCells = half.split(separator: " ").map(String.init)
            #expect(halfCells[1] == "[##########----------]" && halfCells[2] == "2/4", "\(half)")
            // rows out per second and an ETA from the task rate, once tasks finished.
            #expect(halfCells[halfCells.count - 2] != "-" && halfCells.last != "-", "\(half)")
        }
    }

    @Test func watchExits1WhenTheRunFailsAndShowsTheErrorUnderTheStage() async throws {
        let ws = try Workspace()
        defer { ws.remove() }
        try await withServer { fake, http in
            let id = "orders-20261127T050000Z-0002"
            await fake.progress(id, through: [0, 2, 4].map { Fixtures.progressing(id, done: $0, final: .failed) })
            let r = try await Bis.run(["status", id, "--watch", "--interval", "0.01"], in: ws.path, coordinator: http.base)
            #expect(r.status == 1, "\(r.stderr)")
            #expect(!r.stdout.contains("\u{1b}"))
            let last = try #require(r.stdout.components(separatedBy: "\n\n").last).split(separator: "\n").map(String.init)
            #expect(last.first?.hasPrefix("run \(id)  pipeline orders  failed") == true, "\(r.stdout)")
            #expect(last.contains("  task ingest 3 failed: not_null id: 12 rows"), "\(r.stdout)")
            let stage = try #require(last.firstIndex { $0.hasPrefix("ingest") })
            #expect(last[stage + 1] == "    failed: ingest of shard 3 (a.csv): not_null id: 12 rows", "\(r.stdout)")
        }
    }

    @Test func watchWithJSONPrintsOneViewPerChangeAndStopsAtApproval() async throws {
        let ws = try Workspace()
        defer { ws.remove() }
        try await withServer { fake, http in
            let id = "orders-20261127T050000Z-0003"
            await fake.progress(id, through: [1, 1, 4].map { Fixtures.progressing(id, done: $0, final: .awaitingApproval) })
            let r = try await Bis.run(["status", id, "--watch", "--json", "--interval", "0.01"], in: ws.path, coordinator: http.base)
            #expect(r.status == 0, "\(r.stderr)")
            let views = try r.stdout.split(separator: "\n").map { try APICoding.decoder().decode(RunView.self, from: Data($0.utf8)) }
            #expect(views.map(\.state) == [.running, .awaitingApproval])
        }
    }

    @Test func watchNeedsARunAndNoRunIsExit2() async throws {
        let ws = try Workspace()
        defer { ws.remove() }
        try await withServer { _, http in
            let usage = try await Bis.run(["status", "--watch"], in: ws.path, coordinator: http.base)
            #expect(usage.status == 2)
            #expect(usage.stderr.contains("--watch follows one run"), "\(usage.stderr)")
            let missing = try await Bis.run(["status", "nope", "--watch"], in: ws.path, coordinator: http.base)
            #expect(missing.status == 2)
            #expect(missing.stderr == "error: no run nope\n")
        }
    }

    @Test func quarantineShowsATableWithTheRowCut() async throws {
        let ws = try Workspace()
        defer { ws.remove() }
        try await withServer { fake, http in
            await fake.setQuarantine("r1", Fixtures.quarantine)
            let r = try await Bis.run(["quarantine", "r1"], in: ws.path, coordinator: http.base)
            #expect(r.status == 0, "\(r.stderr)")
            let lines = r.stdout.split(separator: "\n").map(String.init)
            #expect(lines.count == 4, "\(r.stdout)")
            #expect(lines[0].split(separator: " ") == ["file", "line", "rule", "reason", "row"])
            #expect(lines[1].hasPrefix("/data/orders/a.csv") && lines[1].contains("  17  parse "), "\(lines[1])")
            #expect(lines[1].contains("  '12,5' is not a decimal(10,2) (column amount)  "), "\(lines[1])")
            #expect(lines[1].hasSuffix("17,12,5,2026-01-01"))
            #expect(lines[2].hasPrefix("runs/r1/validate/1/x2/quarantine.parquet") && lines[2].contains("not_null id; unique id, day"))
            // The long row is cut to --width (60) with an ellipsis.
            #expect(lines[2].hasSuffix("…") && !lines[2].contains(String(repeating: "x", count: 100)), "\(lines[2])")

            let ranged = try await Bis.run(["quarantine", "r1", "--rule", "range", "--limit", "5"], in: ws.path, coordinator: http.base)
            #expect(ranged.status == 0)
            #expect(ranged.stdout.split(separator: "\n").count == 2, "\(ranged.stdout)")
            #expect(await fake.quarantineAsks.last == "r1 rule=range limit=5")

            let json = try await Bis.run(["quarantine", "r1", "--json", "--limit", "2"], in: ws.path, coordinator: http.base)
            #expect(try APICoding.decoder().decode([QuarantinedRow].self, from: Data(json.stdout.utf8)) == Array(Fixtures.quarantine.prefix(2)))

            let limited = try await Bis.run(["quarantine", "r1", "--limit", "1"], in: ws.path, coordinator: http.base)
            #expect(limited.stdout.contains("(first 1 rows; more may be quarantined: raise --limit)"), "\(limited.stdout)")

            let none = try await Bis.run(["quarantine", "r1", "--rule", "regex"], in: ws.path, coordinator: http.base)
            #expect(none.status == 0)
            #expect(none.stdout == "no quarantined rows in run r1 for rule 'regex'\n")

            let missing = try await Bis.run(["quarantine", "nope"], in: ws.path, coordinator: http.base)
            #expect(missing.status == 2)
            #expect(missing.stderr == "error: no run nope\n")
            let bad = try await Bis.run(["quarantine", "r1", "--limit", "0"], in: ws.path, coordinator: http.base)
            #expect(bad.status == 2)
        }
    }

    @Test func lineageTracePrintsAnIndentedTreeDownToTheInputsSHA256() async throws {
        let ws = try Workspace()
        defer { ws.remove() }
        try await withServer { fake, http in
            await fake.setTrace("orders/r1", Fixtures.trace)
            let r = try await Bis.run(["lineage", "trace", "orders/r1"], in: ws.path, coordinator: http.base)
            #expect(r.status == 0, "\(r.stderr)")
            let lines = r.stdout.split(separator: "\n").map(String.init)
            #expect(lines[0].hasPrefix("publish published/orders/r1/_manifest.json  rows 2  sha256 eeeeeeeeeeeeeeee  task r1/publish/0  execution x6"),
                    "\(r.stdout)")
            #expect(lines[1].hasPrefix("└─ validate runs/r1/validate/0/x5/validated-00000.parquet  rows 2"), "\(r.stdout)")
            #expect(lines[2].hasPrefix("   ├─ normalize runs/r1/normalize/0/x4/p0.parquet"), "\(r.stdout)")
            #expect(lines[3].hasPrefix("   │  └─ ingest runs/r1/ingest/0/x1/part-00000.parquet"), "\(r.stdout)")
            #expect(lines[4] == "   │     └─ input /data/orders/a.csv  sha256 \(Fixtures.inputSHA)  source orders", "\(r.stdout)")
            // The shared ingest chunk is shown once, then referred to.
            #expect(lines[6].hasSuffix("(inputs shown above)"), "\(r.stdout)")
            #expect(lines.count == 7, "\(r.stdout)")

            let json = try await Bis.run(["lineage", "trace", "orders/r1", "--json"], in: ws.path, coordinator: http.base)
            #expect(try APICoding.decoder().decode(LineageNode.self, from: Data(json.stdout.utf8)) == Fixtures.trace)

            let unknown = try await Bis.run(["lineage", "trace", "zzz"], in: ws.path, coordinator: http.base)
            #expect(unknown.status == 2)
            #expect(unknown.stderr.contains("nothing in the lineage store matches 'zzz'"), "\(unknown.stderr)")
        }
    }

    @Test func lineageImpactListsRunsDatasetsAndDeliveriesAndSendsRelativePathsAbsolute() async throws {
        let ws = try Workspace()
        defer { ws.remove() }
        try await withServer { fake, http in
            await fake.setImpact(Fixtures.inputSHA, Fixtures.impact)
            let r = try await Bis.run(["lineage", "impact", Fixtures.inputSHA], in: ws.path, coordinator: http.base)
            #expect(r.status == 0, "\(r.stderr)")
            #expect(r.stdout == """
                run r1  pipeline orders  succeeded
                  read /data/orders/a.csv  sha256 \(Fixtures.inputSHA)
                  published orders: published/orders/r1
                  published orders_by_day: published/orders_by_day/r1
                  delivered: runs/r1/deliver/0/x7/receipt.json
                run r2  pipeline orders  failed
                  read /data/orders/a.csv  sha256 \(Fixtures.inputSHA)
                  (nothing published or delivered)

                """, "\(r.stdout)")

            let relative = try await Bis.run(["lineage", "impact", "data/a.csv"], in: ws.path, coordinator: http.base)
            #expect(relative.status == 0)
            #expect(relative.stdout.hasPrefix("no run has read /"), "\(relative.stdout)")
            let asked = try #require(await fake.impactAsks.last)
            #expect(asked.hasPrefix("/") && asked.hasSuffix("/data/a.csv"), "\(asked)")

            let json = try await Bis.run(["lineage", "impact", Fixtures.inputSHA, "--json"], in: ws.path, coordinator: http.base)
            #expect(try APICoding.decoder().decode(ImpactReport.self, from: Data(json.stdout.utf8)) == Fixtures.impact)
        }
    }

    @Test func lineageExportPrintsOneOpenLineageEventALine() async throws {
        let ws = try Workspace()
        defer { ws.remove() }
        try await withServer { fake, http in
            await fake.setEvents("r1", Fixtures.events)
            let r = try await Bis.run(["lineage", "export", "r1", "--openlineage"], in: ws.path, coordinator: http.base)
            #expect(r.status == 0, "\(r.stderr)")
            let lines = r.stdout.split(separator: "\n")
            #expect(lines.count == 2)
            #expect(try lines.map { try APICoding.decoder().decode(OpenLineageEvent.self, from: Data($0.utf8)) } == Fixtures.events)

            let noFormat = try await Bis.run(["lineage", "export", "r1"], in: ws.path, coordinator: http.base)
            #expect(noFormat.status == 2)
            #expect(noFormat.stderr.contains("--openlineage"), "\(noFormat.stderr)")
            let missing = try await Bis.run(["lineage", "export", "nope", "--openlineage"], in: ws.path, coordinator: http.base)
            #expect(missing.status == 2)
            #expect(missing.stderr == "error: no run nope\n")
        }
    }

    @Test func workersMarksQuietOnlyThoseThatDidNotSayTheyStopped() async throws {
        let ws = try Workspace()
        defer { ws.remove() }
        try await withServer { fake, http in
            await fake.setWorkers([
                WorkerView(id: "w1", host: "node-a", pid: 1, version: "0.4.0", state: .running,
                           lastSeen: Date(timeIntervalSinceNow: -120), running: ["r1/ingest/0"], quiet: true),
                WorkerView(id: "w2", host: "node-b", pid: 2, version: "0.4.0", state: .stopped,
                           lastSeen: Date(timeIntervalSinceNow: -120), running: [], quiet: true),
            ])
            let r = try await Bis.run(["workers"], in: ws.path, coordinator: http.base)
            let lines = r.stdout.split(separator: "\n").map(String.init)
            #expect(lines.count == 3, "\(r.stdout)")
            #expect(lines[1].hasSuffix("(quiet)"), "\(lines[1])")
            #expect(lines[2].contains("stopped") && !lines[2].contains("quiet"), "\(lines[2])")
        }
    }

    @Test func unreachableCoordinatorIsExit3ForTheNewCommands() async throws {
        let ws = try Workspace()
        defer { ws.remove() }
        for args in [["quarantine", "r1"], ["lineage", "trace", "r1"], ["lineage", "impact", "/x.csv"],
                     ["lineage", "export", "r1", "--openlineage"], ["status", "r1", "--watch", "--reconnect-seconds", "0"]] {
            let r = try await Bis.run(args, in: ws.path, coordinator: "http://127.0.0.1:1")
            #expect(r.status == 3, "\(args): \(r.stderr)")
        }
    }
}
