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
}
