import Foundation
import TestSupport
import Testing
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The fleet as an operator runs it: `bis coordinator` and `bis-worker`
/// processes on the private broker, driven by the `bis` CLI, with workers,
/// the coordinator and the broker killed or restarted mid-run. Every run's
/// published data is compared row by row with DuckDB running the same
/// pipeline on the same CSV files (python/check_fleet.py).
///
/// Serialized: each test starts a fleet of processes; several at once would
/// starve a 2-core machine. No timing assertions: timeouts are safety nets.
@Suite(.serialized, .usesBroker, .enabled(if: FleetEnvironment.enabled,
                             "no broker (BIS_TEST_AMQP_URL; run ops/test) or no Python with duckdb (BIS_PYTHON)"))
struct FleetProcessTests {
    /// A pipeline name no other run on the broker shares; it starts the run
    /// ids, so fault targets (`RUN_PREFIX/stage/index`) hit this test's runs only.
    static func pipelineName(_ word: String) -> String { "\(word)-\(randomHex(6))" }

    @Test func runCompletesWithTwoWorkersAndMatchesDuckDB() async throws {
        try await withFleet("basic") { fleet in
            let spec = try fleet.writeSpec(pipeline: Self.pipelineName("basic"), dataset: "orders", summary: "orders_by_region")
            let r = try await fleet.bis(["submit", spec, "--wait"])
            fleet.check(r.exitCode == 0, "submit --wait should exit 0 when the run succeeds: \(r)")
            let run = try runID(printedBy: r)
            let s = try await fleet.status(run)
            try fleet.checkSucceeded(s, dataset: "orders", summary: "orders_by_region")
            let lineage = try fleet.checkOneWinnerPerTask(run)
            fleet.check(lineage.tasks(of: "consolidate").count == 4 && lineage.tasks(of: "validate").count == 4,
                        "4 partitions mean 4 consolidate and 4 validate tasks: \(lineage.tasks.map { "\($0.stage)/\($0.index)" })")
        }
    }

    @Test func localRunMatchesDuckDB() async throws {
        let fleet = try Fleet(label: "local", options: FleetOptions(workers: []))
        do {
            let spec = try fleet.writeSpec(pipeline: Self.pipelineName("local"), dataset: "orders", summary: "orders_by_region")
            let root = fleet.dir + "/local-root"
            let r = try await fleet.bis(["run", "--local", spec, "--data-root", root, "--json"], timeout: 300)
            fleet.check(r.exitCode == 0, "bis run --local should exit 0 when the run succeeds: \(r)")
            let s = try JSONDecoder().decode(RunStatus.self, from: Data(r.stdout.utf8))
            try fleet.checkSucceeded(s, dataset: "orders", summary: "orders_by_region", root: root)
        } catch {
            fleet.record("\(error)")
        }
        await fleet.stop()
        fleet.cleanUp()
    }

    @Test func workerKilledMidTaskLosesNothing() async throws {
        // Normalize sleeps 3 s: the victim is chosen from an execution the
        // store saw start at most 1 s ago, so it is still running at the kill.
        let slow = WorkerSpec(fault: "sleep=3000:normalize")
        try await withFleet("kill-worker", FleetOptions(workers: [slow, slow])) { fleet in
            let spec = try fleet.writeSpec(pipeline: Self.pipelineName("killw"), dataset: "orders", summary: "orders_by_region")
            let run = try await fleet.submit(spec)
            guard let victim = try await fleet.runningExecution(run: run, stage: "normalize", maxAge: 1) else {
                throw FleetError("no worker of the fleet announced a normalize execution")
            }
            let ended = await fleet.worker(victim.worker)?.kill9()
            fleet.check(ended == .signaled(SIGKILL), "worker\(victim.worker) should have died of SIGKILL, got \(String(describing: ended))")

            let s = try await fleet.waitForRun(run, timeout: 240)
            try fleet.checkSucceeded(s, dataset: "orders", summary: "orders_by_region")
            let lineage = try fleet.checkOneWinnerPerTask(run)
            // The killed execution stays in the lineage, abandoned once another worker's won.
            let held = lineage.tasks(of: "normalize").first { $0.index == victim.index }
            fleet.check(held?.executions["abandoned"] == 1,
                        "normalize/\(victim.index), whose execution \(victim.execution) died with worker\(victim.worker), "
                        + "should show it abandoned beside its winner: \(String(describing: held))")
        }
    }

    @Test func redeliveredResultIsRecordedAsDuplicate() async throws {
        let pipeline = Self.pipelineName("dup")
        // Worker 0 alone takes consolidate: it publishes consolidate/1's
        // result, dies before the ack, and comes back without the fault
        // (restarted by the supervisor); the broker redelivers the task and
        // its second result must lose to the first.
        let options = FleetOptions(workers: [
            WorkerSpec(fault: "crash-after-result:\(pipeline)/consolidate/1", stages: "consolidate", restartClean: true),
            WorkerSpec(stages: "ingest,normalize,validate,publish,report,deliver"),
        ], supervise: true)
        try await withFleet("duplicate", options) { fleet in
            let spec = try fleet.writeSpec(pipeline: pipeline, dataset: "orders", summary: "orders_by_region")
            let r = try await fleet.bis(["submit", spec, "--wait"])
            fleet.check(r.exitCode == 0, "submit --wait should exit 0: \(r)")
            let run = try runID(printedBy: r)
            let s = try await fleet.status(run)
            try fleet.checkSucceeded(s, dataset: "orders", summary: "orders_by_region")
            fleet.check((s.stage("consolidate")?.duplicates ?? 0) >= 1, "status should count the redelivered result as a duplicate:\n\(s)")
            fleet.check(fleet.workerStarts(0) >= 2, "worker0 should have crashed after its result and been restarted")
            let lineage = try fleet.checkOneWinnerPerTask(run)
            let target = lineage.tasks(of: "consolidate").first { $0.index == 1 }
            fleet.check(target?.executions["succeeded"] == 1 && (target?.executions["duplicate"] ?? 0) >= 1,
                        "consolidate/1 should have one winner and at least one duplicate: \(String(describing: target))")
        }
    }

    @Test func taskThatAlwaysCrashesFailsItsRunOnly() async throws {
        let doomed = Self.pipelineName("doomed"), steady = Self.pipelineName("steady")
        // The fault is set fleet-wide, as an operator sets an environment.
        // Validate has a worker of its own with one slot: a worker holds up
        // to `concurrency` unstarted messages of every stage queue it
        // consumes, and a crash charges each of them a delivery; with
        // --delivery-limit 1 a worker crashing while it holds the other
        // run's messages would get them dead-lettered (FleetAMQP's
        // AMQPTransport.taskDeliveries: "give workers fewer stages").
        let fault = "crash:\(doomed)/validate/1"
        let options = FleetOptions(workers: [
            WorkerSpec(fault: fault, stages: "validate", concurrency: 1),
            WorkerSpec(fault: fault, stages: "ingest,normalize,consolidate,publish,report,deliver"),
        ], supervise: true,
                                   coordinatorArguments: ["--delivery-limit", "1", "--max-attempts", "2"],
                                   workerArguments: ["--delivery-limit", "1"])
        try await withFleet("crash-loop", options) { fleet in
            let doomedSpec = try fleet.writeSpec(pipeline: doomed, dataset: "doomed_orders", summary: "doomed_by_region")
            let steadySpec = try fleet.writeSpec(pipeline: steady, dataset: "steady_orders", summary: "steady_by_region")
            let a = try fleet.startBis(["submit", doomedSpec, "--wait"])
            let b = try fleet.startBis(["submit", steadySpec, "--wait"])
            let ra = try await fleet.finish(a, timeout: 300)
            let rb = try await fleet.finish(b, timeout: 300)

            fleet.check(ra.exitCode == 1, "submit --wait of a failing run should exit 1: \(ra)")
            let doomedRun = try runID(printedBy: ra)
            let sa = try await fleet.status(doomedRun)
            fleet.check(sa.state == "failed", "the run whose validate/1 always crashes should fail:\n\(sa)")
            fleet.check(sa.message?.contains("validate of partition 1") == true,
                        "the failure should name the task (validate of partition 1): \(sa.message ?? "no message")")
            fleet.check(!FileManager.default.fileExists(atPath: fleet.dataRoot + "/published/doomed_orders/CURRENT"),
                        "a failed run must publish nothing")
            fleet.check(fleet.workerStarts(0) >= 3,
                        "the validate worker should have crashed on every delivery and been restarted (\(fleet.workerStarts(0)) starts)")
            fleet.check(fleet.workerStarts(1) == 1, "the other worker never takes validate and should never have crashed")
            // A retry reached the stage queue through a delay queue: the reason must
            // still be the stage queue's delivery limit, not the delay's expiry.
            #expect(sa.message?.contains("delivery_limit") == true, "\(sa.message ?? "no message")")

            fleet.check(rb.exitCode == 0, "the other pipeline's run on the same fleet should succeed: \(rb)")
            let steadyRun = try runID(printedBy: rb)
            let sb = try await fleet.status(steadyRun)
            try fleet.checkSucceeded(sb, dataset: "steady_orders", summary: "steady_by_region")
        }
    }

    @Test func coordinatorKilledMidRunResumes() async throws {
        let slow = WorkerSpec(fault: "sleep=1000:normalize")
        try await withFleet("kill-coordinator", FleetOptions(workers: [slow, slow])) { fleet in
            let spec = try fleet.writeSpec(pipeline: Self.pipelineName("killc"), dataset: "orders", summary: "orders_by_region")
            // bis follows the run across the coordinator's restart.
            let waiting = try fleet.startBis(["submit", spec, "--wait"])
            let run = try await fleet.runID(of: waiting)
            let before = try await fleet.waitForRun(run, timeout: 120) { ($0.stage("ingest")?.succeeded ?? 0) > 0 || $0.isSettled }
            fleet.check(!before.isSettled, "the run should still be going when the coordinator is killed:\n\(before)")
            let ended = await fleet.coordinatorProcess?.kill9()
            fleet.check(ended == .signaled(SIGKILL), "the coordinator should have died of SIGKILL, got \(String(describing: ended))")
            // The workers go on; their results wait in the broker.
            try await Task.sleep(for: .seconds(2))
            try await fleet.startCoordinator()

            let s = try await fleet.waitForRun(run, timeout: 240)
            try fleet.checkSucceeded(s, dataset: "orders", summary: "orders_by_region")
            _ = try fleet.checkOneWinnerPerTask(run)
            let w = try await fleet.finish(waiting, timeout: 120)
            fleet.check(w.exitCode == 0, "submit --wait should ride out the coordinator's restart and exit 0: \(w)")
        }
    }

    @Test(.restartsBroker) func brokerRestartMidRunCompletes() async throws {
        let control = try FleetEnvironment.brokerControl()
        let slow = WorkerSpec(fault: "sleep=1000:normalize")
        try await withFleet("broker-restart", FleetOptions(workers: [slow, slow])) { fleet in
            let spec = try fleet.writeSpec(pipeline: Self.pipelineName("brk"), dataset: "orders", summary: "orders_by_region")
            let waiting = try fleet.startBis(["submit", spec, "--wait"])
            let run = try await fleet.runID(of: waiting)
            let before = try await fleet.waitForRun(run, timeout: 120) { ($0.stage("ingest")?.succeeded ?? 0) > 0 || $0.isSettled }
            fleet.check(!before.isSettled, "the run should still be going when the broker restarts:\n\(before)")
            let restart = try ChildProcess(name: "ops/broker restart", executable: control, arguments: ["restart"],
                                           environment: ProcessInfo.processInfo.environment,
                                           stdout: fleet.logs + "/broker-restart.log", stderr: fleet.logs + "/broker-restart.log",
                                           append: true)
            let ended = await restart.wait(seconds: 300)
            fleet.check(ended == .exited(0), "ops/broker restart: \(String(describing: ended))\n\(tail(restart.stdout, lines: 30))")

            let s = try await fleet.waitForRun(run, timeout: 300)
            try fleet.checkSucceeded(s, dataset: "orders", summary: "orders_by_region")
            _ = try fleet.checkOneWinnerPerTask(run)
            let w = try await fleet.finish(waiting, timeout: 120)
            fleet.check(w.exitCode == 0, "submit --wait should exit 0 once the run succeeded: \(w)")
        }
    }

    @Test func cancelStopsARun() async throws {
        let slow = WorkerSpec(fault: "sleep=1500:normalize")
        try await withFleet("cancel", FleetOptions(workers: [slow, slow])) { fleet in
            let spec = try fleet.writeSpec(pipeline: Self.pipelineName("cancel"), dataset: "orders", summary: "orders_by_region")
            let waiting = try fleet.startBis(["submit", spec, "--wait"])
            let run = try await fleet.runID(of: waiting)
            let before = try await fleet.waitForRun(run, timeout: 120) { ($0.stage("normalize")?.total ?? 0) > 0 || $0.isSettled }
            fleet.check(!before.isSettled, "the run should still be going when it is cancelled:\n\(before)")

            let c = try await fleet.bis(["cancel", run])
            fleet.check(c.exitCode == 0 && c.stdout.contains("cancelled"), "bis cancel should exit 0 and say cancelled: \(c)")
            let w = try await fleet.finish(waiting, timeout: 120)
            fleet.check(w.exitCode == 1, "submit --wait of a cancelled run should exit 1: \(w)")
            let s = try await fleet.status(run)
            fleet.check(s.state == "cancelled", "the run should be cancelled:\n\(s)")

            // Tasks still running when it was cancelled finish; nothing may follow them.
            try await Task.sleep(for: .seconds(5))
            let after = try await fleet.status(run)
            fleet.check(after.state == "cancelled" && (after.stage("publish")?.total ?? 0) == 0,
                        "a cancelled run should plan nothing more:\n\(after)")
            fleet.check(!FileManager.default.fileExists(atPath: fleet.dataRoot + "/published/orders/CURRENT"),
                        "a cancelled run must publish nothing")
            let again = try await fleet.bis(["cancel", run])
            fleet.check(again.exitCode == 1, "cancelling a cancelled run should be refused with exit 1: \(again)")
        }
    }

    @Test func approvalGatesDelivery() async throws {
        try await withFleet("approve") { fleet in
            let pipeline = Self.pipelineName("approve")
            let spec = try fleet.writeSpec(pipeline: pipeline, dataset: "orders", summary: "orders_by_region", approval: "required")
            let run = try await fleet.submit(spec)
            let waiting = try await fleet.waitForRun(run, timeout: 180)
            fleet.check(waiting.state == "awaiting_approval", "a spec with approval: required should stop before deliver:\n\(waiting)")
            fleet.check(waiting.receipt == nil && (waiting.stage("deliver")?.total ?? 0) == 0,
                        "nothing may be delivered before approval:\n\(waiting)")
            let outbox = fleet.dataRoot + "/outbox/\(pipeline)"
            let delivered = (try? FileManager.default.contentsOfDirectory(atPath: outbox)) ?? []
            fleet.check(delivered.isEmpty, "the delivery folder should be empty before approval: \(delivered)")

            let a = try await fleet.bis(["approve", run])
            fleet.check(a.exitCode == 0, "bis approve should exit 0: \(a)")
            let s = try await fleet.waitForRun(run, timeout: 180)
            fleet.check(s.approvedBy != nil, "status should say who approved:\n\(s)")
            try fleet.checkSucceeded(s, dataset: "orders", summary: "orders_by_region")
            let now = (try? FileManager.default.contentsOfDirectory(atPath: outbox)) ?? []
            fleet.check(!now.isEmpty, "after approval the delivery folder \(outbox) should hold the delivery")
        }
    }

    @Test func retryRerunsOnlyWhatFailed() async throws {
        let pipeline = Self.pipelineName("retry")
        let failing = WorkerSpec(fault: "fail:\(pipeline)/validate/0")
        try await withFleet("retry", FleetOptions(workers: [failing, failing])) { fleet in
            let spec = try fleet.writeSpec(pipeline: pipeline, dataset: "orders", summary: "orders_by_region")
            let r = try await fleet.bis(["submit", spec, "--wait"])
            fleet.check(r.exitCode == 1, "submit --wait of a failing run should exit 1: \(r)")
            let run = try runID(printedBy: r)
            let failed = try await fleet.status(run)
            fleet.check(failed.state == "failed", "the run should fail on validate/0:\n\(failed)")
            fleet.check(failed.message?.contains("validate of partition 0") == true,
                        "the failure should name the task (validate of partition 0): \(failed.message ?? "no message")")

            // The workers are fixed: clean ones take their place.
            try await fleet.replaceWorkers(with: [WorkerSpec(), WorkerSpec()])
            let retry = try await fleet.bis(["retry", run])
            fleet.check(retry.exitCode == 0, "bis retry should exit 0: \(retry)")
            let s = try await fleet.waitForRun(run, timeout: 180)
            try fleet.checkSucceeded(s, dataset: "orders", summary: "orders_by_region")
            fleet.check(s.stage("ingest")?.duplicates == 0, "ingest should not have run again:\n\(s)")

            let lineage = try fleet.lineage(run)
            let ingest = lineage.tasks(of: "ingest")
            let rerun = ingest.filter { $0.executions.values.reduce(0, +) != 1 }
            fleet.check(!ingest.isEmpty && rerun.isEmpty,
                        "every ingest task should have exactly one execution after the retry; not so: "
                        + rerun.map { "\($0.index): \($0.executions)" }.joined(separator: ", "))
            let v0 = lineage.tasks(of: "validate").first { $0.index == 0 }
            fleet.check(v0?.executions["failed"] == 1 && v0?.executions["succeeded"] == 1,
                        "validate/0 should have failed once, then succeeded once: \(String(describing: v0))")
        }
    }
}

/// The run id `bis submit` printed as its first line.
func runID(printedBy r: CommandResult) throws -> String {
    guard let line = r.stdout.split(separator: "\n").first, !line.isEmpty else { throw FleetError("no run id: \(r)") }
    return line.trimmingCharacters(in: .whitespaces)
}
