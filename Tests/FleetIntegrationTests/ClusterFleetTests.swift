import Foundation
import TestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The fleet's real processes on a private three-node cluster
/// (`ops/broker start --nodes 3`, through `ops/test-cluster`), every process
/// given all three nodes' URLs: broker nodes killed with SIGKILL mid-run.
///
/// Only with `BIS_TEST_CLUSTER=1` (ops/test-cluster sets it, with
/// `BIS_TEST_AMQP_URL` the comma-separated URLs); `ops/test` keeps to the
/// single node. Every test starts with all nodes up.
@Suite(.serialized, .restartsBroker, .enabled(if: ClusterFleet.enabled && FleetEnvironment.enabled,
                                             "needs a three-node cluster (run ops/test-cluster) and Python with duckdb"))
struct ClusterFleetTests {
    /// kill -9 the node the coordinator is on, mid-run; once it is back,
    /// kill -9 the node a worker is on. The run completes, its data equals
    /// DuckDB's and `bis run --local`'s, every task has one winner.
    @Test func coordinatorsNodeThenAWorkersNodeKilledMidRun() async throws {
        try await ClusterFleet.allNodesUp()
        let slow = WorkerSpec(fault: "sleep=1500:normalize")
        try await withFleet("cluster-kill", FleetOptions(workers: [slow, slow])) { fleet in
            let spec = try fleet.writeSpec(pipeline: FleetProcessTests.pipelineName("clkill"), dataset: "orders",
                                           summary: "orders_by_region")
            let run = try await fleet.submit(spec)
            guard try await fleet.runningExecution(run: run, stage: "normalize", maxAge: 10, timeout: 180) != nil else {
                throw FleetError("no normalize execution started")
            }

            // The coordinator's node.
            let coordinatorLog = fleet.logs + "/coordinator.log"
            let cNode = try ClusterFleet.connectedNode(log: coordinatorLog)
            let before = ClusterFleet.reconnectLines(log: coordinatorLog)
            var t0 = Date()
            try await ClusterFleet.control(["kill-node", "\(cNode)"])
            try await ClusterFleet.waitUntil(timeout: 120, "the coordinator reconnected") {
                ClusterFleet.reconnectLines(log: coordinatorLog) > before
            }
            print("cluster: coordinator moved off node \(cNode) in \(String(format: "%.1f", Date().timeIntervalSince(t0))) s")
            let stageBefore = try await fleet.status(run)
            try await ClusterFleet.control(["start-node", "\(cNode)"])

            // Then a worker's node (the cluster whole again first: two nodes
            // down would leave the quorum queues without a majority).
            let workerLog = fleet.logs + "/worker0.log"
            let wNode = try ClusterFleet.connectedNode(log: workerLog)
            let wBefore = ClusterFleet.reconnectLines(log: workerLog)
            t0 = Date()
            try await ClusterFleet.control(["kill-node", "\(wNode)"])
            try await ClusterFleet.waitUntil(timeout: 120, "worker0 reconnected") {
                ClusterFleet.reconnectLines(log: workerLog) > wBefore
            }
            print("cluster: worker0 moved off node \(wNode) in \(String(format: "%.1f", Date().timeIntervalSince(t0))) s")

            let s = try await fleet.waitForRun(run, timeout: 900)
            try await ClusterFleet.control(["start-node", "\(wNode)"])
            try fleet.checkSucceeded(s, dataset: "orders", summary: "orders_by_region")
            _ = try fleet.checkOneWinnerPerTask(run)
            fleet.check(!stageBefore.isSettled, "the run should still have been going at the first kill:\n\(stageBefore)")

            // `bis workers` names each worker's node and counts reconnects.
            let w = try await fleet.bis(["workers", "--json"], timeout: 60)
            let workers = (try? JSONSerialization.jsonObject(with: Data(w.stdout.utf8)) as? [[String: Any]]) ?? []
            fleet.check(workers.count >= 2 && workers.allSatisfy { ($0["node"] as? String)?.contains(":") == true },
                        "bis workers --json should name every worker's broker node: \(w)")
            fleet.check(workers.contains { ($0["brokerReconnects"] as? Int ?? 0) >= 1 },
                        "worker0 reconnected, so some worker should count a reconnect: \(w)")
            let text = try await fleet.bis(["workers"], timeout: 60)
            fleet.check(text.stdout.contains("broker node") && text.stdout.contains("reconnects"), "bis workers: \(text)")
            let metrics = await fleet.metricsText() ?? ""
            fleet.check(!metrics.contains("bis_broker_reconnects_total{client=\"coordinator\"} 0")
                        && metrics.contains("bis_broker_reconnects_total{client=\"coordinator\"}"),
                        "/metrics should count the coordinator's reconnect:\n\(metrics)")

            // The same spec run locally publishes the same data.
            let root = fleet.dir + "/local-root"
            let r = try await fleet.bis(["run", "--local", spec, "--data-root", root, "--json"], timeout: 600)
            fleet.check(r.exitCode == 0, "bis run --local: \(r)")
            let local = try JSONDecoder().decode(RunStatus.self, from: Data(r.stdout.utf8))
            try fleet.checkSucceeded(local, dataset: "orders", summary: "orders_by_region", root: root)
            let a = try fleet.checkPublished(dataset: "orders", summary: "orders_by_region")
            let b = try fleet.checkPublished(dataset: "orders", summary: "orders_by_region", root: root)
            fleet.check(a.ok && b.ok && a.rows == b.rows && a.groups == b.groups,
                        "fleet and local runs differ: \(a.rows)/\(a.groups) vs \(b.rows)/\(b.groups)")
        }
    }

    /// Issue 16's failover defect: kill -9 the node that leads the events
    /// queue while the worker is connected to it, mid-run. The worker
    /// reconnects at once to another node, where its results were nacked for
    /// 30 s or more (a channel whose first publish follows the leader's
    /// loss), handed back, and dead-lettered past the delivery limit: the run
    /// failed "lost: delivery limit". The run must complete, with the data of
    /// `bis run --local` and one winner per task.
    ///
    /// What this test can and cannot show: it is a failover test. Whether the
    /// worker meets the nack window depends on the leader election's timing,
    /// which the test cannot force (on an idle machine it usually does not);
    /// it prints how many publishes were resent and results retried, but a
    /// regression of the nack fix would not fail it. The window itself is
    /// covered by `ClusterBrokerTests.publishesRightAfterTheLeadersNodeIsKilledAreAllConfirmed`
    /// (transport level, always hits it) and the worker's result retry by
    /// `WorkerSettlementTests.aResultPublishThatFailsForAMomentIsTriedAgain`
    /// (scripted transport).
    @Test func theEventsQueuesLeaderNodeKilledUnderAWorkerMidRun() async throws {
        try await ClusterFleet.allNodesUp()
        let slow = WorkerSpec(fault: "sleep=1500:normalize")
        try await withFleet("cluster-events", FleetOptions(workers: [slow])) { fleet in
            let leader = try await ClusterFleet.leader(of: fleet.namespace + ".events")
            // A worker picks its first node at random: start new ones until
            // one is on the leader's node.
            var starts = 1
            while try ClusterFleet.connectedNode(log: fleet.logs + "/worker\(fleet.workerCount - 1).log") != leader {
                guard starts < 25 else { throw FleetError("no worker connected to node \(leader) in \(starts) starts") }
                try await fleet.replaceWorkers(with: [slow])
                starts += 1
            }
            let workerLog = fleet.logs + "/worker\(fleet.workerCount - 1).log"
            let spec = try fleet.writeSpec(pipeline: FleetProcessTests.pipelineName("clevents"), dataset: "orders",
                                           summary: "orders_by_region")
            let run = try await fleet.submit(spec)
            guard try await fleet.runningExecution(run: run, stage: "normalize", maxAge: 10, timeout: 180) != nil else {
                throw FleetError("no normalize execution started")
            }
            let before = ClusterFleet.reconnectLines(log: workerLog)
            let t0 = Date()
            try await ClusterFleet.control(["kill-node", "\(leader)"])
            try await ClusterFleet.waitUntil(timeout: 120, "the worker reconnected") {
                ClusterFleet.reconnectLines(log: workerLog) > before
            }
            print("cluster: the worker moved off node \(leader) (the events queue's leader) in "
                  + "\(String(format: "%.1f", Date().timeIntervalSince(t0))) s")
            let s = try await fleet.waitForRun(run, timeout: 900)
            let text = (try? String(contentsOfFile: workerLog, encoding: .utf8)) ?? ""
            let resent = text.components(separatedBy: "sending it again on a new channel").count - 1
            let retried = text.components(separatedBy: "could not publish the result; trying again").count - 1
            // Whether the broker nacked in the window after the kill depends on
            // timing (the leader's election); told, not asserted.
            print("cluster: run ended \(String(format: "%.1f", Date().timeIntervalSince(t0))) s after the kill; "
                  + "the worker sent \(resent) nacked publish(es) again on a new channel, retried \(retried) result(s)")
            try await ClusterFleet.control(["start-node", "\(leader)"])
            try fleet.checkSucceeded(s, dataset: "orders", summary: "orders_by_region")
            _ = try fleet.checkOneWinnerPerTask(run)

            let root = fleet.dir + "/local-root"
            let r = try await fleet.bis(["run", "--local", spec, "--data-root", root, "--json"], timeout: 600)
            fleet.check(r.exitCode == 0, "bis run --local: \(r)")
            let local = try JSONDecoder().decode(RunStatus.self, from: Data(r.stdout.utf8))
            try fleet.checkSucceeded(local, dataset: "orders", summary: "orders_by_region", root: root)
            let a = try fleet.checkPublished(dataset: "orders", summary: "orders_by_region")
            let b = try fleet.checkPublished(dataset: "orders", summary: "orders_by_region", root: root)
            fleet.check(a.ok && b.ok && a.rows == b.rows && a.groups == b.groups,
                        "fleet and local runs differ: \(a.rows)/\(a.groups) vs \(b.rows)/\(b.groups)")
        }
        try await ClusterFleet.allNodesUp()
    }

    /// One node down from before the fleet starts; it comes back during the
    /// run and rejoins; the run completes and loses nothing.
    @Test func aNodeDownForTheRunRejoinsAndNothingIsLost() async throws {
        try await ClusterFleet.allNodesUp()
        try await ClusterFleet.control(["stop-node", "3"])
        let slow = WorkerSpec(fault: "sleep=1000:normalize")
        try await withFleet("cluster-down", FleetOptions(workers: [slow, slow])) { fleet in
            let spec = try fleet.writeSpec(pipeline: FleetProcessTests.pipelineName("cldown"), dataset: "orders",
                                           summary: "orders_by_region")
            let run = try await fleet.submit(spec)
            guard try await fleet.runningExecution(run: run, stage: "normalize", maxAge: 10, timeout: 180) != nil else {
                throw FleetError("no normalize execution started")
            }
            try await ClusterFleet.control(["start-node", "3"])
            let s = try await fleet.waitForRun(run, timeout: 900)
            try fleet.checkSucceeded(s, dataset: "orders", summary: "orders_by_region")
            _ = try fleet.checkOneWinnerPerTask(run)
            let status = try await ClusterFleet.control(["status"])
            fleet.check(status.components(separatedBy: "@localhost").count - 1 >= 6, "node 3 should be back in the cluster:\n\(status)")
        }
        try await ClusterFleet.allNodesUp()
    }
}

/// The cluster `ops/broker start --nodes 3` runs.
enum ClusterFleet {
    static var enabled: Bool { FleetEnvironment.environment["BIS_TEST_CLUSTER"] == "1" }

    static func urls() throws -> [String] {
        let list = try FleetEnvironment.brokerURL()
        let urls = list.components(separatedBy: ",amqp")
        guard urls.count >= 3 else { throw FleetError("BIS_TEST_AMQP_URL should list the cluster's nodes: \(list)") }
        return urls.enumerated().map { $0.offset == 0 ? $0.element : "amqp" + $0.element }
    }

    /// The AMQP ports of the nodes, in order.
    static func ports() throws -> [Int] {
        try urls().map { u in
            guard let c = URLComponents(string: u), let p = c.port else { throw FleetError("no port in \(u)") }
            return p
        }
    }

    /// `ops/broker ARGS`.
    @discardableResult
    static func control(_ arguments: [String], timeout: Double = 300) async throws -> String {
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("bis-broker-\(randomHex(6))").path
        defer { unlink(out + ".out"); unlink(out + ".err") }
        let p = try ChildProcess(name: "ops/broker \(arguments.joined(separator: " "))", executable: try FleetEnvironment.brokerControl(),
                                 arguments: arguments, environment: FleetEnvironment.environment,
                                 stdout: out + ".out", stderr: out + ".err")
        guard let ended = await p.wait(seconds: timeout), ended == .exited(0) else {
            throw FleetError("ops/broker \(arguments.joined(separator: " ")) failed:\n\(p.stdout)\n\(p.stderr)")
        }
        return p.stdout
    }

    static func allNodesUp() async throws {
        try await control(["start", "--nodes", "3"])
    }

    /// The node (1…) a process's log last said it connected to.
    static func connectedNode(log: String) throws -> Int {
        let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        let ports = try ports()
        for line in text.split(separator: "\n").reversed() where line.contains("connected to broker") {
            for (i, p) in ports.enumerated() where line.contains(":\(p)/") { return i + 1 }
        }
        throw FleetError("\(log) names no node it connected to:\n\(tail(text, lines: 20))")
    }

    /// The node number (1…) that leads a quorum queue, asked of any live node.
    static func leader(of queue: String) async throws -> Int {
        var last = ""
        for n in 1...3 {
            guard let out = try? await control(["ctl-node", "\(n)", "list_queues", "name", "leader", "--quiet", "--no-table-headers"]) else { continue }
            for line in out.split(separator: "\n") {
                let cols = line.split(whereSeparator: { $0 == "\t" || $0 == " " })
                guard cols.count >= 2, cols[0] == queue else { continue }
                // bis-<hash>-N@localhost
                if let at = cols[1].firstIndex(of: "@"), let dash = cols[1][..<at].lastIndex(of: "-"),
                   let number = Int(cols[1][cols[1].index(after: dash)..<at]) {
                    return number
                }
            }
            last = out
        }
        throw FleetError("no node named the leader of \(queue):\n\(last)")
    }

    static func reconnectLines(log: String) -> Int {
        let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        return text.components(separatedBy: "reconnected to broker").count - 1
    }

    static func waitUntil(timeout: Double, _ what: String, _ condition: () -> Bool) async throws {
        let deadline = Date().addingTimeInterval(timeout)
        while !condition() {
            if Date() > deadline { throw FleetError("timed out after \(Int(timeout)) s: \(what)") }
            try await Task.sleep(for: .milliseconds(200))
        }
    }
}
