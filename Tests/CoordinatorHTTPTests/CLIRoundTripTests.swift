import Coordination
import CoordinatorHTTP
import Foundation
import Logging
import TestSupport
import Testing

/// The built `bis` against the in-process server over a fake service: what
/// an operator types, what they see, and the exit codes scripts rely on.
@Suite struct CLIRoundTripTests {
    @Test func submitPrintsOnlyTheRunIdAndSendsTheSpecWithAbsolutePaths() async throws {
        let ws = try Workspace.withOrders()
        defer { ws.remove() }
        try FileManager.default.createDirectory(atPath: ws.path + "/more", withIntermediateDirectories: true)
        try await withServer { fake, http in
            let r = try await Bis.run(["submit", "orders.yml", "--allow-root", "more"], in: ws.path, coordinator: http.base)
            #expect(r.status == 0, "\(r.stderr)")
            #expect(r.stdout == "orders-20261127T050000Z-0001\n")
            let sent = try #require(await fake.submitted.first)
            let real = URL(fileURLWithPath: ws.path).resolvingSymlinksInPath().path
            #expect([ws.path + "/orders.yml", real + "/orders.yml"].contains(sent.specPath), "\(sent.specPath)")
            #expect(sent.specText == ordersSpec)
            #expect(sent.allowedRoots.count == 1 && sent.allowedRoots[0].hasSuffix("/more") && sent.allowedRoots[0].hasPrefix("/"))
            #expect(sent.submittedBy.hasPrefix("tester@"))
        }
    }

    @Test func submitWithJSONPrintsTheRunView() async throws {
        let ws = try Workspace.withOrders()
        defer { ws.remove() }
        try await withServer { _, http in
            let r = try await Bis.run(["submit", "orders.yml", "--json"], in: ws.path, coordinator: http.base)
            #expect(r.status == 0, "\(r.stderr)")
            let view = try APICoding.decoder().decode(RunView.self, from: Data(r.stdout.utf8))
            #expect(view.state == .pending)
            #expect(view.pipeline == "orders")
        }
    }

    @Test func submitWaitExits0OnlyWhenTheRunSucceeds() async throws {
        let ws = try Workspace.withOrders()
        defer { ws.remove() }
        try await withServer { fake, http in
            let id = "orders-20261127T050000Z-0001"
            await fake.script(id, [.running, .awaitingApproval, .awaitingApproval, .running, .succeeded])
            let ok = try await Bis.run(["submit", "orders.yml", "--wait", "--poll-seconds", "0.01"], in: ws.path, coordinator: http.base)
            #expect(ok.status == 0, "\(ok.stderr)")
            #expect(ok.stdout == id + "\n")
            // Said once, though the run was seen waiting twice.
            let note = "run \(id) awaits approval: bis approve \(id)"
            #expect(ok.stderr.components(separatedBy: note).count == 2, "\(ok.stderr)")

            let failing = "orders-20261127T050000Z-0002"
            await fake.script(failing, [.running, .failed])
            let bad = try await Bis.run(["submit", "orders.yml", "--wait", "--poll-seconds", "0.01"], in: ws.path, coordinator: http.base)
            #expect(bad.status == 1)
            #expect(bad.stderr.contains("run \(failing) failed: validate partition 1 failed: not_null(id): 3 rows"), "\(bad.stderr)")

            let cancelled = "orders-20261127T050000Z-0003"
            await fake.script(cancelled, [.cancelled])
            let gone = try await Bis.run(["submit", "orders.yml", "--wait", "--poll-seconds", "0.01"], in: ws.path, coordinator: http.base)
            #expect(gone.status == 1)
        }
    }

    @Test func submitWaitRidesOutACoordinatorRestart() async throws {
        let ws = try Workspace.withOrders()
        defer { ws.remove() }
        var logger = Logger(label: "test.http")
        logger.logLevel = .critical
        let id = "orders-20261127T050000Z-0001"
        let before = FakeCoordinatorService()
        await before.script(id, Array(repeating: .running, count: 100_000))
        let first = CoordinatorServer(service: before, port: 0, logger: logger)
        let servingFirst = Task { try await first.run() }
        let port = try await first.boundPort()
        let base = "http://127.0.0.1:\(port)"

        let bis = try RunningBis(["submit", "orders.yml", "--wait", "--poll-seconds", "0.02"], in: ws.path, coordinator: base)
        // The coordinator goes away while bis waits...
        await before.polled(id)
        servingFirst.cancel()
        _ = try? await servingFirst.value
        await bis.stderr(contains: "lost the coordinator at \(base); trying again")
        // ...and comes back on the same address, where the run has succeeded meanwhile.
        let after = FakeCoordinatorService()
        await after.add(sampleRun(id, .succeeded))
        let second = CoordinatorServer(service: after, port: port, logger: logger)
        let servingSecond = Task { try await second.run() }
        defer { servingSecond.cancel() }
        _ = try await second.boundPort()

        let r = await bis.result()
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout == id + "\n")
        #expect(r.stderr.contains("reached the coordinator at \(base) again"), "\(r.stderr)")
        #expect(r.stderr.contains("run \(id) succeeded"), "\(r.stderr)")
    }

    @Test func submitWaitGivesUpWithExit3WhenTheCoordinatorStaysAway() async throws {
        let ws = try Workspace.withOrders()
        defer { ws.remove() }
        var logger = Logger(label: "test.http")
        logger.logLevel = .critical
        let fake = FakeCoordinatorService()
        await fake.script("orders-20261127T050000Z-0001", Array(repeating: .running, count: 100_000))
        let server = CoordinatorServer(service: fake, port: 0, logger: logger)
        let serving = Task { try await server.run() }
        let base = "http://127.0.0.1:\(try await server.boundPort())"
        let bis = try RunningBis(["submit", "orders.yml", "--wait", "--poll-seconds", "0.02", "--reconnect-seconds", "0"],
                                 in: ws.path, coordinator: base)
        await fake.polled("orders-20261127T050000Z-0001")
        serving.cancel()
        let r = await bis.result()
        #expect(r.status == 3, "\(r.stderr)")
        #expect(r.stderr.contains("cannot reach the coordinator at \(base)"), "\(r.stderr)")
    }

    @Test func specErrorsTheCoordinatorFindsExit2() async throws {
        let ws = try Workspace.withOrders()
        defer { ws.remove() }
        try await withServer { fake, http in
            await fake.refuseSpecs("orders.yml: input data/a.csv is outside the allowed roots")
            let r = try await Bis.run(["submit", "orders.yml"], in: ws.path, coordinator: http.base)
            #expect(r.status == 2)
            #expect(r.stderr.contains("outside the allowed roots"), "\(r.stderr)")
            #expect(r.stdout.isEmpty)
        }
    }

    @Test func statusShowsTheStagesAndExits1ForAFailedRun() async throws {
        let ws = try Workspace()
        defer { ws.remove() }
        try await withServer { fake, http in
            await fake.add(sampleRun("r-ok", .succeeded))
            await fake.add(sampleRun("r-bad", .failed))
            let bad = try await Bis.run(["status", "r-bad"], in: ws.path, coordinator: http.base)
            #expect(bad.status == 1, "\(bad.stderr)")
            let lines = bad.stdout.split(separator: "\n").map(String.init)
            #expect(lines.first?.hasPrefix("run r-bad  pipeline orders  failed") == true, "\(bad.stdout)")
            #expect(lines.contains("  validate partition 1 failed"), "\(bad.stdout)")
            let header = try #require(lines.first { $0.hasPrefix("stage") })
            #expect(header.split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ")
                    == "stage tasks running retried failed rows in rows out quarantined")
            let ingest = try #require(lines.first { $0.hasPrefix("ingest") })
            #expect(ingest.split(separator: " ").map(String.init) == ["ingest", "4/4", "0", "0", "0", "1000", "990", "10"])
            let validate = try #require(lines.firstIndex { $0.hasPrefix("validate") })
            #expect(lines[validate].split(separator: " ").map(String.init) == ["validate", "1/2", "0", "2", "1", "0", "0", "0"])
            #expect(lines[validate + 1] == "    last error: task validate/1: not_null(id) failed for 3 rows")

            let ok = try await Bis.run(["status", "r-ok", "--json"], in: ws.path, coordinator: http.base)
            #expect(ok.status == 0)
            #expect(try APICoding.decoder().decode(RunView.self, from: Data(ok.stdout.utf8)) == sampleRun("r-ok", .succeeded))

            let missing = try await Bis.run(["status", "nope"], in: ws.path, coordinator: http.base)
            #expect(missing.status == 2)
            #expect(missing.stderr == "error: no run nope\n")
        }
    }

    @Test func runsAndStatusWithoutARunListRecentRuns() async throws {
        let ws = try Workspace()
        defer { ws.remove() }
        try await withServer { fake, http in
            let empty = try await Bis.run(["runs"], in: ws.path, coordinator: http.base)
            #expect(empty.status == 0)
            #expect(empty.stdout.contains("no runs yet"))

            await fake.add(sampleRun("r1", .succeeded))
            await fake.add(sampleRun("r2", .running))
            let runs = try await Bis.run(["runs", "--limit", "5"], in: ws.path, coordinator: http.base)
            #expect(runs.status == 0, "\(runs.stderr)")
            let lines = runs.stdout.split(separator: "\n").map { $0.split(separator: " ").map(String.init) }
            #expect(lines.first == ["run", "state", "age", "duration"])
            #expect(lines.dropFirst().map { Array($0.prefix(2)) } == [["r2", "running"], ["r1", "succeeded"]])
            // A run still going shows its duration so far; a settled one that does not say when it ended, none.
            #expect(lines.dropFirst().first?.last?.hasSuffix("…") == true, "\(runs.stdout)")
            #expect(lines.last?.last == "-", "\(runs.stdout)")
            #expect(await fake.lastLimit == 5)

            let status = try await Bis.run(["status", "--json"], in: ws.path, coordinator: http.base)
            #expect(status.status == 0)
            #expect(try APICoding.decoder().decode([RunView].self, from: Data(status.stdout.utf8)).map(\.id) == ["r2", "r1"])
        }
    }

    @Test func workersShowHostPidVersionStateTasksAndQuiet() async throws {
        let ws = try Workspace()
        defer { ws.remove() }
        try await withServer { fake, http in
            await fake.setWorkers([
                WorkerView(id: "w1", host: "node-a", pid: 101, version: "0.4.0", state: .running, lastSeen: Date(),
                           running: ["r1/ingest/0", "r1/ingest/1"], quiet: false),
                WorkerView(id: "w2", host: "node-b", pid: 202, version: "0.4.0", state: .draining,
                           lastSeen: Date(timeIntervalSinceNow: -600), running: [], quiet: true),
            ])
            let r = try await Bis.run(["workers"], in: ws.path, coordinator: http.base)
            #expect(r.status == 0, "\(r.stderr)")
            let lines = r.stdout.split(separator: "\n").map(String.init)
            #expect(lines.count == 3)
            #expect(lines[1].hasPrefix("node-a") && lines[1].contains("101") && lines[1].contains("r1/ingest/0,r1/ingest/1"))
            #expect(lines[2].hasPrefix("node-b") && lines[2].contains("draining") && lines[2].hasSuffix("(quiet)"), "\(lines[2])")

            let json = try await Bis.run(["workers", "--json"], in: ws.path, coordinator: http.base)
            #expect(try APICoding.decoder().decode([WorkerView].self, from: Data(json.stdout.utf8)).map(\.host) == ["node-a", "node-b"])
        }
    }

    @Test func actionsPrintTheNewStateAndMap404To2And409To1() async throws {
        let ws = try Workspace()
        defer { ws.remove() }
        try await withServer { fake, http in
            await fake.add(sampleRun("r1", .awaitingApproval))
            let approve = try await Bis.run(["approve", "r1"], in: ws.path, coordinator: http.base)
            #expect(approve.status == 0, "\(approve.stderr)")
            #expect(approve.stdout == "run r1: running\n")
            let actions = await fake.actions
            #expect(actions.count == 1 && actions[0].hasPrefix("approve r1 by tester@"), "\(actions)")

            let retry = try await Bis.run(["retry", "r1"], in: ws.path, coordinator: http.base)
            #expect(retry.status == 1)
            #expect(retry.stderr == "error: run r1 is running: cannot retry it\n")

            let cancel = try await Bis.run(["cancel", "r1", "--json"], in: ws.path, coordinator: http.base)
            #expect(cancel.status == 0)
            #expect(try APICoding.decoder().decode(RunView.self, from: Data(cancel.stdout.utf8)).state == .cancelled)

            let missing = try await Bis.run(["approve", "nope"], in: ws.path, coordinator: http.base)
            #expect(missing.status == 2)
            #expect(missing.stderr == "error: no run nope\n")
        }
    }

    // Issue 12: a missing or refused token was exit 2 and reads needed no
    // token (this test asserted both); now 401 is exit 4, "refused", and
    // reads need the token too.
    @Test func aTokenIsSentFromBIS_TOKENAndItsAbsenceIsExit4() async throws {
        let ws = try Workspace.withOrders()
        defer { ws.remove() }
        try await withServer(token: "t0ken") { fake, http in
            await fake.add(sampleRun("r1", .running))
            let without = try await Bis.run(["cancel", "r1"], in: ws.path, coordinator: http.base)
            #expect(without.status == 4)
            #expect(without.stderr == "error: refused: not authenticated: this coordinator requires a token: set BIS_TOKEN\n")
            let submit = try await Bis.run(["submit", "orders.yml"], in: ws.path, coordinator: http.base, token: "wrong")
            #expect(submit.status == 4)
            #expect(submit.stderr.contains("refused the token in BIS_TOKEN"), "\(submit.stderr)")

            // Reads need the token too.
            let status = try await Bis.run(["status", "r1"], in: ws.path, coordinator: http.base)
            #expect(status.status == 4, "\(status.stderr)")
            let read = try await Bis.run(["status", "r1"], in: ws.path, coordinator: http.base, token: "t0ken")
            #expect(read.status == 0, "\(read.stderr)")

            let with = try await Bis.run(["cancel", "r1"], in: ws.path, coordinator: http.base, token: "t0ken")
            #expect(with.status == 0, "\(with.stderr)")
            #expect(with.stdout == "run r1: cancelled\n")
        }
    }

    @Test func anAddressWithoutSchemeWorks() async throws {
        let ws = try Workspace()
        defer { ws.remove() }
        try await withServer { _, http in
            let bare = http.base.replacingOccurrences(of: "http://", with: "")
            let r = try await Bis.run(["runs", "--coordinator", bare + "/"], in: ws.path, coordinator: "http://127.0.0.1:1")
            #expect(r.status == 0, "\(r.stderr)")
        }
    }
}
