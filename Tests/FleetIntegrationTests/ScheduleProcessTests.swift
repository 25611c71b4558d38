import FleetCore
import Foundation
import TestSupport
import Testing

/// Registered pipelines with real processes (docs/schedules.md): a schedule
/// whose start lies five days back with `catchup: all` yields five runs,
/// one per slot, each reading its own day's file, though the coordinator
/// is killed (kill -9) in the middle of the catch-up; `bis trigger` runs a
/// registered pipeline; a slot waiting for its input file proceeds when the
/// file appears; a `* * * * *` schedule starts a run on its own.
@Suite(.serialized, .usesBroker, .enabled(if: FleetEnvironment.enabled,
                             "no broker (BIS_TEST_AMQP_URL; run ops/test) or no Python with duckdb (BIS_PYTHON)"))
struct ScheduleProcessTests {
    /// The fields of `bis runs --json` these tests read.
    struct RunLine: Decodable {
        struct StageLine: Decodable { var stage: String; var rowsOut: Int64 }
        var id: String
        var pipeline: String
        var state: String
        var slot: String?
        var trigger: String?
        var version: Int?
        var params: [String: String]?
        var stages: [StageLine]
    }

    static func runs(_ fleet: Fleet, pipeline: String) async throws -> [RunLine] {
        let r = try await fleet.bis(["runs", "--json", "--limit", "200"], timeout: 60)
        guard r.exitCode == 0 else { throw FleetError("bis runs failed: \(r)") }
        return try JSONDecoder().decode([RunLine].self, from: Data(r.stdout.utf8)).filter { $0.pipeline == pipeline }
    }

    /// Today (UTC), as the coordinator's clock reads it, taken once per
    /// test: every date of the test counts from it, so a test that runs
    /// over UTC midnight still agrees with itself (the schedule's `end`
    /// keeps the coordinator's slots the same).
    static func today() -> Int { Int((Date().timeIntervalSince1970 / 86400).rounded(.down)) }

    @Test func catchUpAllSurvivesKill9AndTriggerRuns() async throws {
        try await withFleet("schedule") { fleet in
            let name = "sched-\(randomHex(6))"
            let today = Self.today()
            func day(_ k: Int) -> String { LocalDay.text(today + k) }
            // Day -k has k + 1 rows: each run's ingest count names the file it read.
            try FileManager.default.createDirectory(atPath: fleet.dir + "/daily", withIntermediateDirectories: true)
            for k in 0...5 {
                var csv = "id,amount\n"
                for i in 0...k { csv += "\(i),\(i * 10)\n" }
                try csv.write(toFile: fleet.dir + "/daily/\(day(-k)).csv", atomically: true, encoding: .utf8)
            }
            let spec = fleet.dir + "/\(name).yml"
            // Version 1 holds each run before delivery (approval: required),
            // so with max_active_runs: 2 the catch-up cannot run ahead of the
            // test: at most two runs exist and three slots are claimed but
            // not started when the coordinator is killed.
            func specText(approval: Bool) -> String {
                """
                pipeline: \(name)
                schedule:
                  cron: "0 6 * * *"
                  start: \(day(-5))
                  end: \(day(-1))
                  catchup: all
                  max_active_runs: 2
                sources:
                  orders:
                    format: csv
                    files: "daily/${date}.csv"
                    columns: {id: int64, amount: int64}
                publish:
                  dataset: \(name.replacingOccurrences(of: "-", with: "_"))
                \(approval ? "deliver: {to: outbox/\(name), approval: required}\n" : "")
                """
            }
            try specText(approval: true).write(toFile: spec, atomically: true, encoding: .utf8)
            let added = try await fleet.bis(["pipeline", "add", spec])
            guard fleet.check(added.exitCode == 0, "pipeline add should exit 0: \(added)") else { return }

            // Kill -9 the coordinator once the catch-up has started some runs but not all.
            let deadline = Date().addingTimeInterval(180)
            var seen: [RunLine] = []
            while Date() < deadline {
                seen = try await Self.runs(fleet, pipeline: name)
                if !seen.isEmpty { break }
                try await Task.sleep(for: .milliseconds(500))
            }
            fleet.check(!seen.isEmpty && seen.count < 5, "the kill should land mid catch-up: \(seen.count) runs seen")
            await fleet.killCoordinator()
            try await fleet.startCoordinator()

            // Each run that waits for approval is approved, as an operator would.
            var runs: [RunLine] = []
            var approved = Set<String>()
            let end = Date().addingTimeInterval(480)
            while Date() < end {
                runs = try await Self.runs(fleet, pipeline: name)
                if runs.count >= 5, runs.allSatisfy({ ["succeeded", "failed", "cancelled"].contains($0.state) }) { break }
                for r in runs where r.state == "awaiting_approval" && !approved.contains(r.id) {
                    let a = try await fleet.bis(["approve", r.id], timeout: 60)
                    if fleet.check(a.exitCode == 0, "bis approve \(r.id): \(a)") { approved.insert(r.id) }
                }
                try await Task.sleep(for: .seconds(1))
            }
            fleet.check(approved.count == 5, "each scheduled run waited for approval: \(approved.count) approved")
            // A few more scheduler passes: nothing new may start.
            try await Task.sleep(for: .seconds(11))
            runs = try await Self.runs(fleet, pipeline: name)
            let expectedSlots = (1...5).reversed().map { day(-$0) + "T06:00:00Z" }
            fleet.check(runs.count == 5, "five runs, one per slot: \(runs.map { "\($0.id) \($0.slot ?? "-")" })")
            fleet.check(runs.compactMap(\.slot).sorted() == expectedSlots, "the slots: \(runs.compactMap(\.slot).sorted())")
            for r in runs {
                fleet.check(r.state == "succeeded" && r.trigger == "schedule" && r.version == 1,
                            "run \(r.id): \(r.state) \(r.trigger ?? "-") v\(r.version ?? 0)")
                let date = String((r.slot ?? "").prefix(10))
                fleet.check(r.params?["date"] == date, "run \(r.id) has date \(r.params?["date"] ?? "-"), its slot \(date)")
                let k = today - (LocalDay.parse(date) ?? 0)
                let rows = r.stages.first { $0.stage == "ingest" }?.rowsOut
                fleet.check(rows == Int64(k + 1), "run \(r.id) of \(date) read \(rows ?? -1) rows, its day's file has \(k + 1)")
            }

            // Version 2 delivers without approval: the backfills and the trigger below run through.
            try specText(approval: false).write(toFile: spec, atomically: true, encoding: .utf8)
            let second = try await fleet.bis(["pipeline", "add", spec])
            guard fleet.check(second.exitCode == 0, "pipeline add of version 2 should exit 0: \(second)") else { return }

            // A backfill of three days: all three succeeded already, so skipped; with --rerun, three runs.
            let skip = try await fleet.bis(["backfill", name, "--from", day(-3), "--to", day(-1), "--wait"], timeout: 120)
            fleet.check(skip.exitCode == 0 && skip.stderr.contains("3 slots: 0 done, 0 failed, 0 running, 0 waiting, 3 skipped"),
                        "a backfill of succeeded slots skips them: \(skip)")
            let rerun = try await fleet.bis(["backfill", name, "--from", day(-3), "--to", day(-1), "--rerun",
                                             "--max-active", "2", "--wait"], timeout: 420)
            fleet.check(rerun.exitCode == 0 && rerun.stderr.contains("3 slots: 3 done, 0 failed"), "backfill --rerun: \(rerun)")
            let id = rerun.stdout.split(separator: "\n").first.map(String.init) ?? "-"
            let status = try await fleet.bis(["status", id])
            fleet.check(status.exitCode == 0 && status.stdout.contains("3 done"), "bis status BACKFILL: \(status)")
            let backfilled = try await Self.runs(fleet, pipeline: name).filter { $0.trigger == "backfill" }
            fleet.check(backfilled.count == 3 && backfilled.allSatisfy { $0.state == "succeeded" },
                        "three backfill runs: \(backfilled.map { "\($0.id) \($0.state)" })")

            let listed = try await fleet.bis(["pipelines", "--json"])
            fleet.check(listed.exitCode == 0 && listed.stdout.contains("\"name\" : \"\(name)\""), "bis pipelines: \(listed)")

            // bis trigger: today's file, now.
            let t = try await fleet.bis(["trigger", name, "--date", day(0), "--wait"], timeout: 240)
            fleet.check(t.exitCode == 0, "bis trigger --wait should exit 0: \(t)")
            let manual = try await Self.runs(fleet, pipeline: name).filter { $0.trigger == "manual" }
            fleet.check(manual.count == 1 && manual.first?.stages.first { $0.stage == "ingest" }?.rowsOut == 1,
                        "one manual run reading today's file: \(manual.map(\.id))")
        }
    }

    /// The fields of `bis pipelines --json` this test reads.
    struct PipelineLine: Decodable {
        var name: String
        var queuedSlots: Int
    }

    /// `wait_for: {files: true}` with real processes (issue 13): a slot
    /// whose input file is not there waits, without a run, through a
    /// coordinator kill -9 and restart; the file appears and the run
    /// proceeds, reading it. The slot is tried again every minute, so the
    /// deadline after the file appears is generous (the 2-core CI).
    @Test func aRunWaitingForItsInputFileProceedsWhenItAppears() async throws {
        try await withFleet("wait-for") { fleet in
            let name = "waitfor-\(randomHex(6))"
            let today = Self.today()
            let yesterday = LocalDay.text(today - 1)
            try FileManager.default.createDirectory(atPath: fleet.dir + "/w", withIntermediateDirectories: true)
            let spec = fleet.dir + "/\(name).yml"
            try """
                pipeline: \(name)
                schedule:
                  cron: "0 6 * * *"
                  start: \(yesterday)
                  end: \(yesterday)
                  catchup: all
                wait_for: {files: true, timeout: 2h}
                sources:
                  orders:
                    format: csv
                    files: "w/${date}.csv"
                    columns: {id: int64, amount: int64}

                """.write(toFile: spec, atomically: true, encoding: .utf8)
            let added = try await fleet.bis(["pipeline", "add", spec])
            guard fleet.check(added.exitCode == 0, "pipeline add should exit 0: \(added)") else { return }

            func queued() async throws -> Int? {
                let r = try await fleet.bis(["pipelines", "--json"], timeout: 60)
                guard r.exitCode == 0 else { return nil }
                return try JSONDecoder().decode([PipelineLine].self, from: Data(r.stdout.utf8)).first { $0.name == name }?.queuedSlots
            }
            // The slot is claimed and waits: counted as queued, no run.
            var waiting: Int?
            let claimed = Date().addingTimeInterval(180)
            while Date() < claimed {
                waiting = try await queued()
                if waiting == 1 { break }
                try await Task.sleep(for: .seconds(1))
            }
            guard fleet.check(waiting == 1, "the slot should wait for w/\(yesterday).csv: queuedSlots \(waiting ?? -1)") else { return }
            fleet.check(try await Self.runs(fleet, pipeline: name).isEmpty, "no run while the slot waits for its file")

            // Killed and restarted while the slot waits: it still waits.
            await fleet.killCoordinator()
            try await fleet.startCoordinator()
            fleet.check(try await queued() == 1, "the slot still waits after a restart")
            fleet.check(try await Self.runs(fleet, pipeline: name).isEmpty, "no run after the restart either")

            // The file appears: within a few check intervals the run starts and reads it.
            try "id,amount\n1,10\n2,20\n3,30\n".write(toFile: fleet.dir + "/w/\(yesterday).csv", atomically: true, encoding: .utf8)
            var runs: [RunLine] = []
            let end = Date().addingTimeInterval(300)
            while Date() < end {
                runs = try await Self.runs(fleet, pipeline: name)
                if !runs.isEmpty, runs.allSatisfy({ ["succeeded", "failed", "cancelled"].contains($0.state) }) { break }
                try await Task.sleep(for: .seconds(2))
            }
            fleet.check(runs.count == 1, "one run once the file appeared: \(runs.map { "\($0.id) \($0.state)" })")
            if let r = runs.first {
                fleet.check(r.state == "succeeded" && r.trigger == "schedule" && r.slot == yesterday + "T06:00:00Z"
                            && r.params?["date"] == yesterday,
                            "run \(r.id): \(r.state) \(r.trigger ?? "-") slot \(r.slot ?? "-") date \(r.params?["date"] ?? "-")")
                let rows = r.stages.first { $0.stage == "ingest" }?.rowsOut
                fleet.check(rows == 3, "the run read the file that appeared: \(rows ?? -1) rows")
            }
            fleet.check(try await queued() == 0, "no slot waits any more")
        }
    }

    @Test func everyMinuteStartsARunOnItsOwn() async throws {
        try await withFleet("every-minute", FleetOptions(workers: [WorkerSpec()])) { fleet in
            let name = "minute-\(randomHex(6))"
            try FileManager.default.createDirectory(atPath: fleet.dir + "/m", withIntermediateDirectories: true)
            try "id\n1\n".write(toFile: fleet.dir + "/m/in.csv", atomically: true, encoding: .utf8)
            let spec = fleet.dir + "/\(name).yml"
            try """
                pipeline: \(name)
                schedule: {cron: "* * * * *", catchup: none}
                sources:
                  s: {format: csv, files: m/in.csv, columns: {id: int64}}

                """.write(toFile: spec, atomically: true, encoding: .utf8)
            let added = try await fleet.bis(["pipeline", "add", spec])
            guard fleet.check(added.exitCode == 0, "pipeline add: \(added)") else { return }
            var runs: [RunLine] = []
            let deadline = Date().addingTimeInterval(120)
            while Date() < deadline {
                runs = try await Self.runs(fleet, pipeline: name)
                if !runs.isEmpty { break }
                try await Task.sleep(for: .seconds(1))
            }
            fleet.check(runs.count >= 1 && runs.allSatisfy { $0.trigger == "schedule" }, "a scheduled run within two minutes")
            let paused = try await fleet.bis(["pipeline", "pause", name])
            fleet.check(paused.exitCode == 0, "pipeline pause: \(paused)")
        }
    }
}
