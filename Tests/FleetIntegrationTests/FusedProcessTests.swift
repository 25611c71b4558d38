import Foundation
import TestSupport
import Testing

/// A partition's consolidate and validate fused into one task (issue 15),
/// as an operator runs the fleet: real broker, `bis coordinator` and
/// `bis-worker` processes, and a worker that dies after its result. The
/// exactly-once promise of FleetProcessTests, on the fused path.
@Suite(.serialized, .usesBroker, .enabled(if: FleetEnvironment.enabled,
                             "no broker (BIS_TEST_AMQP_URL; run ops/test) or no Python with duckdb (BIS_PYTHON)"))
struct FusedProcessTests {
    @Test func redeliveredFusedResultIsRecordedAsDuplicate() async throws {
        let pipeline = FleetProcessTests.pipelineName("fdup")
        // Worker 0 alone takes consolidate, and validate too, so the planner
        // fuses them (every live worker taking consolidate takes validate).
        // It publishes the fused consolidate/1's result, dies before the
        // ack, and comes back without the fault; the broker redelivers the
        // task and its second result must lose to the first, recording
        // nothing for validate/1. Worker 1 takes every other stage (and
        // validate): were it to take consolidate as well, consolidate/1
        // could land on it and no crash would happen.
        let options = FleetOptions(workers: [
            WorkerSpec(fault: "crash-after-result:\(pipeline)/consolidate/1", stages: "consolidate,validate", restartClean: true),
            WorkerSpec(stages: "ingest,normalize,validate,publish,report,deliver"),
        ], supervise: true)
        try await withFleet("fused-duplicate", options) { fleet in
            let spec = try fleet.writeSpec(pipeline: pipeline, dataset: "orders", summary: "orders_by_region")
            let r = try await fleet.bis(["submit", spec, "--wait"])
            fleet.check(r.exitCode == 0, "submit --wait should exit 0: \(r)")
            let run = try runID(printedBy: r)
            let s = try await fleet.status(run)
            try fleet.checkSucceeded(s, dataset: "orders", summary: "orders_by_region")
            fleet.check((s.stage("consolidate")?.duplicates ?? 0) >= 1, "status should count the redelivered result as a duplicate:\n\(s)")
            fleet.check(fleet.workerStarts(0) >= 2, "worker0 should have crashed after its result and been restarted")

            let lineage = try fleet.checkOneWinnerPerTask(run)
            fleet.check(lineage.tasks(of: "consolidate").count == 4 && lineage.tasks(of: "validate").count == 4,
                        "4 partitions mean 4 consolidate and 4 validate tasks: \(lineage.tasks.map { "\($0.stage)/\($0.index)" })")
            let consolidate = lineage.tasks(of: "consolidate").first { $0.index == 1 }
            let validate = lineage.tasks(of: "validate").first { $0.index == 1 }
            fleet.check(consolidate?.executions["succeeded"] == 1 && (consolidate?.executions["duplicate"] ?? 0) >= 1,
                        "consolidate/1 should have one winner and at least one duplicate: \(String(describing: consolidate))")
            // Fused: every validate's winner is its consolidate's winner's record of validate.
            for p in 0..<4 {
                let c = lineage.tasks(of: "consolidate").first { $0.index == p }?.winner
                let v = lineage.tasks(of: "validate").first { $0.index == p }?.winner
                fleet.check(c != nil && v == c.map { $0 + ".validate" },
                            "validate/\(p)'s winner \(v ?? "none") should be consolidate/\(p)'s winner \(c ?? "none") + .validate")
            }
            fleet.check(validate?.executions == ["succeeded": 1],
                        "validate/1 should have only its one execution, the duplicate recording nothing: \(String(describing: validate))")
        }
    }

    @Test func redeliveredFusedIngestIsRecordedAsDuplicate() async throws {
        let pipeline = FleetProcessTests.pipelineName("fidup")
        // Worker 0 alone takes ingest, and normalize too, so the planner
        // fuses them (every live worker taking ingest takes normalize). It
        // publishes the fused ingest/1's result (the ingest, its normalize
        // follower and, for the source's last ingest, the source's identity
        // in one commit), dies before the ack, and comes back without the
        // fault; the redelivered task's second result must lose to the
        // first, recording nothing for normalize/1. Worker 1 takes every
        // other stage (and normalize): were it to take ingest as well,
        // ingest/1 could land on it and no crash would happen.
        let options = FleetOptions(workers: [
            WorkerSpec(fault: "crash-after-result:\(pipeline)/ingest/1", stages: "ingest,normalize", restartClean: true),
            WorkerSpec(stages: "normalize,consolidate,validate,publish,report,deliver"),
        ], supervise: true)
        try await withFleet("fused-ingest-duplicate", options) { fleet in
            let spec = try fleet.writeSpec(pipeline: pipeline, dataset: "orders", summary: "orders_by_region")
            let r = try await fleet.bis(["submit", spec, "--wait"])
            fleet.check(r.exitCode == 0, "submit --wait should exit 0: \(r)")
            let run = try runID(printedBy: r)
            let s = try await fleet.status(run)
            try fleet.checkSucceeded(s, dataset: "orders", summary: "orders_by_region")
            fleet.check((s.stage("ingest")?.duplicates ?? 0) >= 1, "status should count the redelivered result as a duplicate:\n\(s)")
            fleet.check(fleet.workerStarts(0) >= 2, "worker0 should have crashed after its result and been restarted")

            let lineage = try fleet.checkOneWinnerPerTask(run)
            let ingests = lineage.tasks(of: "ingest"), normalizes = lineage.tasks(of: "normalize")
            fleet.check(ingests.count >= 2 && normalizes.count == ingests.count,
                        "one normalize per ingest, and an ingest/1: \(lineage.tasks.map { "\($0.stage)/\($0.index)" })")
            let ingest = ingests.first { $0.index == 1 }
            let normalize = normalizes.first { $0.index == 1 }
            fleet.check(ingest?.executions["succeeded"] == 1 && (ingest?.executions["duplicate"] ?? 0) >= 1,
                        "ingest/1 should have one winner and at least one duplicate: \(String(describing: ingest))")
            // Fused: every normalize's winner is its ingest's winner's record of normalize.
            for t in ingests {
                let i = t.winner
                let n = normalizes.first { $0.index == t.index }?.winner
                fleet.check(i != nil && n == i.map { $0 + ".normalize" },
                            "normalize/\(t.index)'s winner \(n ?? "none") should be ingest/\(t.index)'s winner \(i ?? "none") + .normalize")
            }
            fleet.check(normalize?.executions == ["succeeded": 1],
                        "normalize/1 should have only its one execution, the duplicate recording nothing: \(String(describing: normalize))")
            // The source's identity was recorded after the crash: no stat
            // placeholder left, neither named by the run nor in the store.
            let left = try placeholders(fleet, run)
            fleet.check(left == Placeholders(run: 0, store: 0),
                        "no source chunk should keep its stat placeholder once every ingest committed: \(left)")
        }
    }

    private struct Placeholders: Decodable, Equatable { var run: Int; var store: Int }

    /// Source chunks whose sha256 is still a `stat:` placeholder (read with Python's sqlite3).
    private func placeholders(_ fleet: Fleet, _ run: String) throws -> Placeholders {
        let r = try FleetEnvironment.python.script(FleetEnvironment.checker, ["placeholders", fleet.db, run])
        guard r.status == 0, let line = r.output.split(separator: "\n").last,
              let counts = try? JSONDecoder().decode(Placeholders.self, from: Data(line.utf8)) else {
            throw FleetError("check_fleet.py placeholders failed (status \(r.status)):\n\(r.output)")
        }
        return counts
    }
}
