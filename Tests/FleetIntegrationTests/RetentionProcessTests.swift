import Foundation
import TestSupport
import Testing

/// Retention on the real fleet: `bis coordinator` (short windows), two
/// `bis-worker`s and the broker, driven by `bis gc`. Finished runs' folders
/// listed then removed, a retry after that refused, the lineage marked
/// removed, versions beyond `publish.keep` removed but never CURRENT nor a
/// recent delivery, and a pass killed with SIGKILL mid-removal finished by
/// the next (periodic) pass, every remaining version read back with DuckDB.
@Suite(.serialized, .usesBroker, .enabled(if: FleetEnvironment.enabled,
                             "no broker (BIS_TEST_AMQP_URL; run ops/test) or no Python with duckdb (BIS_PYTHON)"))
struct RetentionProcessTests {
    /// `bis gc --json` as the test reads it.
    struct Report: Decodable {
        struct Item: Decodable {
            var kind: String
            var path: String
            var bytes: Int64
            var files: Int
            var reason: String
            var outcome: String
        }
        var dryRun: Bool
        var items: [Item]
        var bytes: Int64
        func paths(_ kind: String) -> Set<String> { Set(items.filter { $0.kind == kind }.map(\.path)) }
    }

    static let keepDelivered = 45.0

    @Test func gcRemovesWhatRetentionAllowsAndSurvivesAKillMidPass() async throws {
        let options = FleetOptions(coordinatorArguments: [
            "--keep-intermediate", "0s", "--keep-delivered", "\(Int(Self.keepDelivered))s", "--gc-interval", "0s",
        ])
        try await withFleet("retention", options) { fleet in
            let pipeline = "keep-\(randomHex(6))"
            let text = FleetData.spec(pipeline: pipeline, dataset: "orders", summary: "by_region")
                .replacingOccurrences(of: "  dataset: orders\n", with: "  dataset: orders\n  keep: 1\n")
            let spec = fleet.dir + "/\(pipeline).yml"
            try text.write(toFile: spec, atomically: true, encoding: .utf8)
            let failing = fleet.dir + "/\(pipeline)-gate.yml"
            try text.replacingOccurrences(of: "max_failure_rate: 90%", with: "max_failure_rate: 0%")
                .replacingOccurrences(of: "pipeline: \(pipeline)", with: "pipeline: \(pipeline)-gate")
                .write(toFile: failing, atomically: true, encoding: .utf8)

            func run(_ path: String, _ state: String) async throws -> String {
                let id = try await fleet.submit(path)
                let s = try await fleet.waitForRun(id, timeout: 180)
                fleet.check(s.state == state, "run \(id) should be \(state): \(s)")
                return id
            }
            func gc(_ args: [String]) async throws -> Report {
                let r = try await fleet.bis(["gc", "--json"] + args, timeout: 120)
                guard r.exitCode == 0 else { throw FleetError("bis gc failed: \(r)") }
                return try JSONDecoder().decode(Report.self, from: Data(r.stdout.utf8))
            }
            let root = fleet.dataRoot
            func exists(_ rel: String) -> Bool { FileManager.default.fileExists(atPath: root + "/" + rel) }

            // A failed run (the quality gate), then A; B and C after A's
            // delivery is older than --keep-delivered.
            let failed = try await run(failing, "failed")
            let a = try await run(spec, "succeeded")
            let aDone = Date()
            try await Task.sleep(for: .seconds(max(0, Self.keepDelivered + 1 - Date().timeIntervalSince(aDone))))
            let b = try await run(spec, "succeeded")
            let c = try await run(spec, "succeeded")

            // Dry run: every finished run's folder, and A's versions (beyond
            // keep: 1, its delivery old); B's delivery is recent, C is CURRENT.
            let dry = try await gc(["--dry-run"])
            fleet.check(dry.dryRun, "a dry run says so")
            fleet.check(dry.paths("intermediate") == Set([failed, a, b, c].map { "runs/\($0)" }),
                        "the finished runs' folders are listed: \(dry.items.map(\.path))")
            fleet.check(dry.paths("version") == ["published/orders/\(a)", "published/by_region/\(a)"],
                        "only A's versions go (B delivered recently, C is CURRENT): \(dry.items.map(\.path))")
            fleet.check(dry.bytes > 0, "bytes are counted: \(dry.bytes)")
            fleet.check(exists("runs/\(a)") && exists("published/orders/\(a)"), "a dry run removes nothing")
            let listing = try await fleet.bis(["gc", "--dry-run"])
            fleet.check(listing.exitCode == 0 && listing.stdout.contains("would remove") && listing.stdout.contains("runs/\(a)"),
                        "the text lists paths: \(listing)")

            let pass = try await gc([])
            fleet.check(pass.items.allSatisfy { $0.outcome == "removed" }, "every item removed: \(pass.items.map(\.outcome))")
            for id in [failed, a, b, c] { fleet.check(!exists("runs/\(id)"), "runs/\(id) is gone") }
            fleet.check(!exists("published/orders/\(a)") && !exists("published/by_region/\(a)"), "A's versions are gone")
            fleet.check(exists("published/orders/\(b)/_manifest.json") && exists("published/orders/\(c)/_manifest.json"),
                        "B (recent delivery) and C (CURRENT) stay")
            let versions = try fleet.checkVersions(dataset: "orders")
            fleet.check(versions.ok && Set(versions.versions.keys) == [b, c] && versions.current == c,
                        "the remaining versions read back with DuckDB: \(versions)")
            let current = try fleet.checkPublished(dataset: "orders", summary: "by_region")
            fleet.check(current.ok && current.version == c, "CURRENT matches DuckDB: \(current.mismatches)")

            // The failed run cannot be retried any more, and says why.
            let retry = try await fleet.bis(["retry", failed])
            fleet.check(retry.exitCode == 1 && retry.stderr.contains("cannot be retried")
                        && retry.stderr.contains("removed by retention"), "retry refused with the reason: \(retry)")
            // The lineage keeps the history, marked removed.
            let trace = try await fleet.bis(["lineage", "trace", c])
            fleet.check(trace.exitCode == 0 && trace.stdout.contains("[removed") && trace.stdout.contains("input "),
                        "trace shows removed handoffs down to the inputs: \(trace)")
            let metrics = await fleet.metricsText() ?? ""
            fleet.check(metrics.contains("bis_gc_reclaimed_bytes_total \(pass.bytes)") && pass.bytes > 0,
                        "/metrics counts the bytes: \(metrics.split(separator: "\n").filter { $0.hasPrefix("bis_gc") })")
            let audit = try await fleet.bis(["audit", "--json"])
            let entries = (try? JSONDecoder().decode([AuditRow].self, from: Data(audit.stdout.utf8))) ?? []
            fleet.check(audit.exitCode == 0 && entries.contains {
                $0.action == "gc" && $0.principal == "anonymous" && $0.outcome == "ok" && ($0.detail ?? "").contains("removed")
            }, "the pass is audited as gc, naming the principal (anonymous: no --auth): \(audit)")

            // kill -9 in the middle of removing B's version: the coordinator
            // kills itself once the version is out of reach, files still there.
            await fleet.stopCoordinator()
            fleet.setNextCoordinator(arguments: ["--keep-delivered", "0s"], environment: ["BIS_TEST_GC_FAULT": "version-unlinked"])
            try await fleet.startCoordinator()
            let killed = try await fleet.bis(["gc"], timeout: 120)
            fleet.check(killed.exitCode != 0, "the pass died with the coordinator: \(killed)")
            _ = await fleet.coordinatorProcess?.wait(seconds: 30)
            let midway = try fleet.checkVersions(dataset: "orders").merging(try fleet.checkVersions(dataset: "by_region"))
            fleet.check(midway.ok, "every remaining version reads after the kill: \(midway.mismatches)")
            fleet.check(midway.leftovers.contains { $0.hasPrefix(".tmp-removing-\(b)") },
                        "a version was out of reach when the coordinator died: \(midway.leftovers)")

            // Restarted without the fault, with the periodic pass on: it finishes the job.
            fleet.setNextCoordinator(arguments: ["--keep-delivered", "0s", "--gc-interval", "2s"])
            try await fleet.startCoordinator()
            let deadline = Date().addingTimeInterval(60)
            var after = try fleet.checkVersions(dataset: "orders")
            while Date() < deadline {
                after = try fleet.checkVersions(dataset: "orders")
                let summary = try fleet.checkVersions(dataset: "by_region")
                if after.leftovers.isEmpty && summary.leftovers.isEmpty && after.versions.count == 1
                    && summary.versions.count == 1 { break }
                try await Task.sleep(for: .seconds(1))
            }
            fleet.check(after.ok && after.leftovers.isEmpty && Set(after.versions.keys) == [c] && after.current == c,
                        "the next pass removed B and its leftovers, C reads: \(after)")
            let summary = try fleet.checkVersions(dataset: "by_region")
            fleet.check(summary.ok && summary.leftovers.isEmpty && Set(summary.versions.keys) == [c], "\(summary)")
            let nothing = try await gc(["--dry-run"])
            fleet.check(nothing.items.isEmpty, "nothing left to do: \(nothing.items.map(\.path))")
            let again = try fleet.checkPublished(dataset: "orders", summary: "by_region")
            fleet.check(again.ok && again.version == c, "CURRENT still matches DuckDB: \(again.mismatches)")

            // kill -9 once a folder removal is recorded, nothing removed yet
            // (the periodic pass off, so the run's folder waits for bis gc).
            await fleet.stopCoordinator()
            fleet.setNextCoordinator(arguments: ["--keep-delivered", "0s"], environment: ["BIS_TEST_GC_FAULT": "intent-recorded"])
            try await fleet.startCoordinator()
            let d = try await run(spec, "succeeded")
            let dying = try await fleet.bis(["gc"], timeout: 120)
            fleet.check(dying.exitCode != 0, "the pass died with the coordinator: \(dying)")
            _ = await fleet.coordinatorProcess?.wait(seconds: 30)
            fleet.check(exists("runs/\(d)"), "killed before anything of runs/\(d) went")
            let dMidway = try fleet.checkVersions(dataset: "orders")
            fleet.check(dMidway.ok && dMidway.current == d, "every version reads after the kill: \(dMidway)")

            // Restarted with the periodic pass: it finishes the recorded removal.
            fleet.setNextCoordinator(arguments: ["--keep-delivered", "0s", "--gc-interval", "2s"])
            try await fleet.startCoordinator()
            let until = Date().addingTimeInterval(60)
            while Date() < until, exists("runs/\(d)") { try await Task.sleep(for: .seconds(1)) }
            fleet.check(!exists("runs/\(d)"), "the next pass removed runs/\(d)")
            let dTrace = try await fleet.bis(["lineage", "trace", d])
            fleet.check(dTrace.exitCode == 0 && dTrace.stdout.contains("[removed"), "its handoffs are marked removed: \(dTrace)")
            let dPublished = try fleet.checkPublished(dataset: "orders", summary: "by_region")
            fleet.check(dPublished.ok && dPublished.version == d, "CURRENT matches DuckDB: \(dPublished.mismatches)")
        }
    }

    /// `bis audit --json` as the test reads it.
    struct AuditRow: Decodable {
        var action: String
        var principal: String?
        var outcome: String?
        var detail: String?
    }
}

/// What `check_fleet.py versions` found.
struct VersionsCheck: Decodable, Sendable, CustomStringConvertible {
    var ok: Bool
    var versions: [String: Int]
    var current: String
    var view_rows: Int
    var leftovers: [String]
    var mismatches: [String]

    var description: String {
        "versions \(versions), current \(current), view rows \(view_rows), leftovers \(leftovers), mismatches \(mismatches)"
    }

    func merging(_ other: VersionsCheck) -> VersionsCheck {
        var m = self
        m.ok = ok && other.ok
        m.leftovers += other.leftovers
        m.mismatches += other.mismatches
        return m
    }
}
