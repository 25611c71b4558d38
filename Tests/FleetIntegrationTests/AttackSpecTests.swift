import Foundation
import TestSupport
import Testing

/// The attack suite, part 1: what a hostile or careless spec, input file or
/// caller did to the real fleet (`bis coordinator`, `bis-worker`, the
/// private broker) before issue 12 — one test per defect of its list that
/// lives in specs, data and files (items 1, 2, 5, 7, 8, 10 and 11). The
/// callers' side (roles, tokens, TLS), input roots and queue messages have
/// their own files: AttackAuthTests, AttackInputTests, AttackMessageTests.
///
/// Each test first does what the attacker did, then checks that the fleet
/// refused it with a clear error and is still up and right.
@Suite(.serialized, .usesBroker, .enabled(if: FleetEnvironment.enabled,
                             "no broker (BIS_TEST_AMQP_URL; run ops/test) or no Python with duckdb (BIS_PYTHON)"))
struct AttackSpecTests {
    static func pipelineName(_ word: String) -> String { "\(word)-\(randomHex(6))" }

    /// Item 1: nine levels of ten-fold YAML aliases (a billion laughs, 532
    /// bytes of them) once took the coordinator's memory inside `POST
    /// /api/runs`. Now the submit fails at once with exit 2 and the
    /// position, and the coordinator still answers.
    @Test func aliasBombIsRefusedAndTheCoordinatorStaysUp() async throws {
        try await withFleet("attack-alias", FleetOptions(workers: [WorkerSpec()])) { fleet in
            // The spec every fleet test runs, with its `report:` line replaced by the bomb.
            var bomb = "report:\n  title: t\n  l0: &l0 [x, x, x, x, x, x, x, x, x, x]\n"
            for level in 1...9 {
                bomb += "  l\(level): &l\(level) [" + Array(repeating: "*l\(level - 1)", count: 10).joined(separator: ", ") + "]\n"
            }
            let yaml = FleetData.spec(pipeline: Self.pipelineName("alias"), dataset: "orders", summary: "by_region")
                .split(separator: "\n", omittingEmptySubsequences: false)
                .map { $0.hasPrefix("report:") ? bomb : String($0) + "\n" }.joined()
            let spec = fleet.dir + "/alias.yml"
            try yaml.write(toFile: spec, atomically: true, encoding: .utf8)
            let r = try await fleet.bis(["submit", spec], timeout: 60)
            fleet.check(r.exitCode == 2, "a spec of nested aliases should be refused with exit 2: \(r)")
            fleet.check(r.stderr.contains("expands to more than 100000 YAML values"),
                        "the error should name the bound on the expanded document: \(r)")
            fleet.check(r.stderr.contains("alias.yml:"), "the error should name the file and position: \(r)")
            try await Self.checkStillUp(fleet)
        }
    }

    /// Item 2: a 10,000-term chain `qty+qty+…` (20 KB, no parentheses) made
    /// a tree as deep as it is long; checking it crashed the coordinator
    /// with SIGSEGV. Now it is refused with exit 2 and a position.
    @Test func longFlatExpressionIsRefusedAndTheCoordinatorStaysUp() async throws {
        try await withFleet("attack-chain", FleetOptions(workers: [WorkerSpec()])) { fleet in
            let chain = Array(repeating: "qty", count: 10_000).joined(separator: " + ")
            let yaml = FleetData.spec(pipeline: Self.pipelineName("chain"), dataset: "orders", summary: "by_region")
                .replacingOccurrences(of: "total: \"amount * qty\"", with: "total: \"\(chain)\"")
            let spec = fleet.dir + "/chain.yml"
            try yaml.write(toFile: spec, atomically: true, encoding: .utf8)
            let r = try await fleet.bis(["submit", spec], timeout: 60)
            fleet.check(r.exitCode == 2, "a 10,000-term expression should be refused with exit 2: \(r)")
            fleet.check(r.stderr.contains("nested more than") && r.stderr.contains("chain.yml:"),
                        "the error should name the depth bound and the position: \(r)")
            try await Self.checkStillUp(fleet)
        }
    }

    /// Item 5: workers cached a parsed spec by its text alone, so the same
    /// text submitted from two folders ran the second run over the first
    /// folder's files. Two folders, one spec text, different inputs: each
    /// run ingests its own folder's rows.
    @Test func sameSpecTextFromTwoFoldersReadsEachFoldersInputs() async throws {
        try await withFleet("attack-cache", FleetOptions(workers: [WorkerSpec(concurrency: 1)])) { fleet in
            let text = FleetData.spec(pipeline: Self.pipelineName("cache"), dataset: "orders", summary: "by_region")
            var runs: [(run: String, rows: Int)] = []
            for (folder, rows) in [("a", 3), ("b", 5)] {
                let dir = fleet.dir + "/" + folder
                try FileManager.default.createDirectory(atPath: dir + "/data", withIntermediateDirectories: true)
                var csv = "id,region,amount,qty,day,note\n"
                for i in 1...rows { csv += "\(i),north,\(i).50,\(i),2026-01-0\(i),\(folder)\n" }
                try csv.write(toFile: dir + "/data/orders.csv", atomically: true, encoding: .utf8)
                try text.write(toFile: dir + "/pipeline.yml", atomically: true, encoding: .utf8)
                runs.append((try await fleet.submit(dir + "/pipeline.yml"), rows))
                _ = try await fleet.waitForRun(runs.last!.run, timeout: 180)
            }
            for (run, rows) in runs {
                let s = try await fleet.status(run)
                fleet.check(s.state == "succeeded", "run \(run) should succeed: \(s)")
                fleet.check(s.stage("ingest")?.rowsOut == Int64(rows),
                            "run \(run) should ingest its own folder's \(rows) rows, not the other folder's: \(s)")
            }
        }
    }

    /// Item 7: a broker password holding `/`, `@`, `:` or `%2F` was printed
    /// in full when the connection failed. A coordinator and a worker given
    /// such a (wrong) password in the environment fail to log in, and no
    /// piece of the password reaches their stdout or stderr.
    @Test func brokerPasswordNeverReachesTheLogs() async throws {
        let brokerURL = try FleetEnvironment.brokerURL()
        guard let at = brokerURL.range(of: "@") else { throw FleetError("broker URL without credentials: \(brokerURL)") }
        let hostPart = brokerURL[at.upperBound...]
        let secretURL = "amqp://bis:s3cr/t@pa:ss%2Fwd@" + hostPart
        let fleet = try Fleet(label: "attack-password", options: FleetOptions(workers: []))
        defer { fleet.cleanUp() }
        let env = ["BIS_AMQP_URL": secretURL]
        let coordinator = try fleet.startBis(["coordinator", "--data-root", fleet.dataRoot, "--db", fleet.db,
                                              "--http", "127.0.0.1:\(fleet.port)", "--namespace", fleet.namespace],
                                             environment: env)
        let worker = try ChildProcess(name: "worker", executable: fleet.workerPath,
                                      arguments: ["--data-root", fleet.dataRoot, "--namespace", fleet.namespace],
                                      environment: ProcessInfo.processInfo.environment.merging(env) { $1 },
                                      stdout: fleet.logs + "/worker0.out", stderr: fleet.logs + "/worker0.log")
        // Long enough for a failed login and its log lines (they come at once); then stop both.
        try await Task.sleep(for: .seconds(4))
        await coordinator.0.stop(grace: 10)
        await worker.stop(grace: 10)
        let output = [coordinator.0.stdout, coordinator.0.stderr, worker.stdout, worker.stderr].joined(separator: "\n")
        fleet.check(!output.isEmpty, "the failed login should have been logged")
        for piece in ["s3cr", "t@pa", "pa:ss", "ss%2F", "ss/wd"] {
            fleet.check(!output.contains(piece), "a piece of the password (\(piece)) reached the logs:\n\(tail(output, lines: 30))")
        }
    }

    /// Item 8: a text value `=HYPERLINK(…)` reached the summary CSV as a
    /// live formula. The report's CSVs (and any delivered) show every such
    /// cell as text.
    @Test func deliveredCSVsCarryNoFormulas() async throws {
        try await withFleet("attack-formula", FleetOptions(workers: [WorkerSpec()])) { fleet in
            let dir = fleet.dir + "/formula"
            try FileManager.default.createDirectory(atPath: dir + "/data", withIntermediateDirectories: true)
            let evil = ["=HYPERLINK(\"\"http://evil.example\"\",\"\"x\"\")", "+1+cmd", "@SUM(A1)", "-2+3"]
            var csv = "id,region,amount,qty,day,note\n"
            for (i, region) in (evil + ["north"]).enumerated() { csv += "\(i + 1),\"\(region)\",1.50,\(i + 1),2026-01-01,n\n" }
            try csv.write(toFile: dir + "/data/orders.csv", atomically: true, encoding: .utf8)
            let pipeline = Self.pipelineName("formula")
            let spec = dir + "/pipeline.yml"
            try FleetData.spec(pipeline: pipeline, dataset: "orders", summary: "by_region")
                .write(toFile: spec, atomically: true, encoding: .utf8)
            let run = try await fleet.submit(spec)
            let s = try await fleet.waitForRun(run, timeout: 180)
            fleet.check(s.state == "succeeded", "the run should succeed: \(s)")
            // The summary CSVs the report wrote, and any the delivery carried.
            let csvs = [fleet.dataRoot + "/runs/" + run + "/report", fleet.dataRoot + "/outbox/" + pipeline].flatMap { folder in
                (FileManager.default.enumerator(atPath: folder)?.allObjects as? [String] ?? [])
                    .filter { $0.hasSuffix(".csv") }.map { folder + "/" + $0 }
            }
            fleet.check(!csvs.isEmpty, "the run's report should have written summary CSVs: \(s)")
            var sawNeutralised = false
            for file in csvs {
                let text = try String(contentsOfFile: file, encoding: .utf8)
                for line in text.split(separator: "\r\n") {
                    for field in line.split(separator: ",", omittingEmptySubsequences: false) {
                        let cell = field.hasPrefix("\"") ? field.dropFirst() : field[...]
                        if let first = cell.first, "=+@\t\r".contains(first) {
                            fleet.record("\(file): a cell starts with \(first), a spreadsheet would run it: \(line)")
                        }
                        if cell.hasPrefix("'=HYPERLINK") { sawNeutralised = true }
                    }
                }
            }
            fleet.check(sawNeutralised, "the summary should show the region '=HYPERLINK(…) as text: \(csvs)")
        }
    }

    /// Item 10: the quarantine view decoded whole chunks even for
    /// `--limit 2`. End to end it answers exactly `limit` rows, each with
    /// its file and line, from a run that quarantined many more. (That it
    /// reads only the first row groups, which today's code did not, is
    /// QuarantineViewTests' proof: it makes the later groups unreadable.)
    @Test func quarantineViewHonoursItsLimit() async throws {
        try await withFleet("attack-quarantine", FleetOptions(workers: [WorkerSpec()])) { fleet in
            let spec = try fleet.writeSpec(pipeline: Self.pipelineName("quar"), dataset: "orders", summary: "by_region")
            let run = try await fleet.submit(spec)
            let s = try await fleet.waitForRun(run, timeout: 180)
            fleet.check(s.state == "succeeded", "the run should succeed: \(s)")
            let all = (s.stage("ingest")?.rowsQuarantined ?? 0) + (s.stage("validate")?.rowsQuarantined ?? 0)
            fleet.check(all > 2, "the messy input should quarantine more than 2 rows: \(s)")
            let r = try await fleet.bis(["quarantine", run, "--limit", "2", "--json"], timeout: 60)
            fleet.check(r.exitCode == 0, "bis quarantine should exit 0: \(r)")
            let rows = (try? JSONSerialization.jsonObject(with: Data(r.stdout.utf8))) as? [[String: Any]]
                ?? ((try? JSONSerialization.jsonObject(with: Data(r.stdout.utf8))) as? [String: Any])?["rows"] as? [[String: Any]]
            fleet.check(rows?.count == 2, "--limit 2 should answer exactly 2 rows: \(r)")
            for row in rows ?? [] {
                fleet.check(row["file"] is String && row["line"] is NSNumber, "each row should name its file and line: \(row)")
            }
        }
    }

    /// Item 11: the cancel marker was written in place (a worker could read
    /// half of it). End to end, a cancelled run's marker is whole and no
    /// temporary file is left beside it. (CancelMarkerTests proves the
    /// rename: a symlink planted at the marker's path is replaced, where
    /// the in-place write went through it.)
    @Test func cancelMarkerIsWrittenWhole() async throws {
        let slow = WorkerSpec(fault: "sleep=2000:normalize", concurrency: 1)
        try await withFleet("attack-cancel", FleetOptions(workers: [slow])) { fleet in
            let spec = try fleet.writeSpec(pipeline: Self.pipelineName("cancel"), dataset: "orders", summary: "by_region")
            let run = try await fleet.submit(spec)
            let r = try await fleet.bis(["cancel", run], timeout: 60)
            fleet.check(r.exitCode == 0, "bis cancel should exit 0: \(r)")
            let folder = fleet.dataRoot + "/runs/" + run
            let marker = try? String(contentsOfFile: folder + "/CANCELLED", encoding: .utf8)
            fleet.check(marker == "cancelled\n", "the cancel marker should be whole: \(String(describing: marker))")
            let names = (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
            let stray = names.filter { $0 != "CANCELLED" && ($0.hasPrefix(".") || $0.contains("CANCELLED")) }
            fleet.check(stray.isEmpty, "no temporary file should be left beside the marker: \(names)")
            let s = try await fleet.waitForRun(run, timeout: 120)
            fleet.check(s.state == "cancelled", "the run should end cancelled: \(s)")
        }
    }

    /// The coordinator process is alive and answers `bis status`.
    static func checkStillUp(_ fleet: Fleet) async throws {
        fleet.check(fleet.coordinatorProcess?.termination == nil, "the coordinator should still run")
        let r = try await fleet.bis(["status", "--json"], timeout: 60)
        fleet.check(r.exitCode == 0, "the coordinator should still answer: \(r)")
    }
}
