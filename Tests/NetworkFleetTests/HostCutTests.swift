import Foundation
import TestSupport
import Testing

/// Workers on separate "hosts" — network namespaces joined to the root
/// namespace by veth pairs, reaching the private broker through a relay on
/// their own addresses — and one host cut off the network mid-task.
///
/// Runs when the broker is configured (ops/test) and network namespaces can
/// be made (root or CAP_NET_ADMIN, iproute2); otherwise it skips, saying
/// which of them is missing.
@Suite(.serialized, .usesBroker, .enabled(if: NetnsGate.enabled, Comment(rawValue: NetnsGate.skipReason)))
struct HostCutTests {
    /// When host A learns that its link is gone, relative to its late result.
    struct Timing: Sendable, CustomTestStringConvertible {
        /// Host A's AMQP heartbeat in seconds: the broker, and A itself,
        /// give up on the connection after about two silent intervals.
        let heartbeat: Int
        /// How long A sleeps in consolidate/0 before executing it (BIS_TEST_FAULT).
        let sleepMilliseconds: Int
        let testDescription: String

        /// A notices the lost connection (≈ 8 s) long before its result is
        /// ready (30 s): the result waits in the client until the reconnect.
        static let lossNoticedFirst = Timing(heartbeat: 4, sleepMilliseconds: 30_000,
                                             testDescription: "the loss noticed before the result")
        /// A's result (20 s) goes out into the cut link well before A can
        /// notice the loss (≥ 38 s after the cut): the publish is lost
        /// unconfirmed, and must be sent again after the reconnect.
        static let resultInFlight = Timing(heartbeat: 20, sleepMilliseconds: 20_000,
                                           testDescription: "the result sent into the cut link")
    }

    /// Host A takes consolidate/0 and sleeps in it (BIS_TEST_FAULT) while its
    /// link is cut: the broker drops its connection and redelivers the task
    /// to host B, which finishes the run. A finishes its execution while cut
    /// off; when its link is back, it reconnects and reports the late result,
    /// which the coordinator records as a duplicate, reclaiming its files.
    /// The published rows equal those of `bis run --local`.
    @Test(arguments: [Timing.lossNoticedFirst, Timing.resultInFlight])
    func aHostCutOffMidTaskIsReplacedAndItsLateResultIsADuplicate(_ timing: Timing) async throws {
        guard let url = NetnsGate.brokerURL else {
            throw NetnsFailure("BIS_REQUIRE_BROKER=1 but BIS_TEST_AMQP_URL is not set: run the tests with ops/test")
        }
        let python = try NetnsGate.python.python()
        let fleet = try NetnsFleet(brokerURL: url, ip: NetnsGate.probe.ip!)
        defer { fleet.shutdown() }   // a backstop: the normal path shuts down below
        var failure: (any Error)?
        do {
            try await scenario(fleet, timing, python: python)
        } catch {
            failure = error
        }
        fleet.shutdown()
        await fleet.deleteQueues()
        if let failure { throw failure }
        fleet.removeScratch()
    }

    private func scenario(_ fleet: NetnsFleet, _ timing: Timing, python: String) async throws {
        let input = fleet.work + "/input"
        try NetnsPipeline.write(to: input)
        let spec = input + "/pipeline.yml"

        let subnet = Int.random(in: 0...120) * 2
        let hostA = try fleet.network.addHost("A", subnet: subnet)
        let hostB = try fleet.network.addHost("B", subnet: subnet + 1)
        _ = try await fleet.startRelay(python: python)
        _ = try await fleet.startCoordinator()

        // A alone at first, so that it surely takes consolidate/0 (and sleeps in it).
        let workerA = try fleet.startWorker("worker-A", on: hostA, heartbeat: timing.heartbeat,
                                            fault: "sleep=\(timing.sleepMilliseconds):consolidate/0")
        let submitted = try fleet.bis(["submit", spec])
        guard submitted.status == 0 else { throw NetnsFailure("\(submitted)\n\(fleet.diagnostics())") }
        let run = submitted.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let consolidate0 = "\(run)/consolidate/0"

        // A's heartbeat says it runs consolidate/0.
        _ = try await netnsPoll("worker A (pid \(workerA.pid)) to report \(consolidate0) running",
                                timeout: 120, diagnostics: fleet.diagnostics) { () throws -> Bool? in
            if !workerA.isRunning { throw NetnsFailure("worker A exited") }
            _ = try? fleet.status(run)
            return try fleet.workers().contains { $0.pid == workerA.pid && $0.running.contains(consolidate0) } ? true : nil
        }
        let workerB = try fleet.startWorker("worker-B", on: hostB, heartbeat: 4)
        _ = try await netnsPoll("worker B (pid \(workerB.pid)) to report in", timeout: 60,
                                diagnostics: fleet.diagnostics) { () throws -> Bool? in
            if !workerB.isRunning { throw NetnsFailure("worker B exited") }
            return try fleet.workers().contains { $0.pid == workerB.pid } ? true : nil
        }

        // Cut A off. The broker notices the silence, requeues consolidate/0, B runs it.
        try fleet.network.cut(hostA)
        let done = try await netnsPoll("run \(run) to succeed with host A cut off", timeout: 240,
                                       diagnostics: fleet.diagnostics) { () throws -> [String: Any]? in
            let view = try fleet.status(run)
            switch view["state"] as? String {
            case "succeeded": return view
            case "failed", "cancelled": throw NetnsFailure("run \(run) ended \(view["state"]!): \(view["message"] ?? "")")
            default: return nil
            }
        }
        let before = try #require(NetnsStage(done, "consolidate"), "no consolidate stage in \(fleet.lastStatus)")
        #expect(before.total == 4 && before.succeeded == 4, "\(fleet.lastStatus)")
        #expect(before.duplicates == 0, "host A is still cut off, so no second result can have arrived: \(fleet.lastStatus)")
        #expect(workerA.isRunning, "a worker that lost its broker keeps trying to reconnect\n\(workerA.tail())")
        let published = try #require(done["published"] as? [String: String], "\(fleet.lastStatus)")
        #expect(published["netns_orders"] != nil, "\(fleet.lastStatus)")
        let redone = try fleet.executions(run, task: consolidate0)
        #expect(redone.contains { $0.pid == workerB.pid && $0.state == "succeeded" },
                "host B's execution of \(consolidate0) should be its winner: \(redone)\n\(fleet.diagnostics())")

        // A, still cut off, finishes its execution (its own log says so) …
        _ = try await netnsPoll("worker A to finish \(consolidate0) while cut off", timeout: 120,
                                diagnostics: fleet.diagnostics) { () throws -> Bool? in
            if !workerA.isRunning { throw NetnsFailure("worker A exited") }
            return workerA.log.split(separator: "\n").contains {
                $0.contains("task.id=\(consolidate0) ") && $0.contains("task succeeded")
            } ? true : nil
        }
        // … and when its link comes back, its late result reaches the coordinator as a duplicate.
        try fleet.network.restore(hostA)
        let after = try await netnsPoll("host A's late result of \(consolidate0) to be recorded as a duplicate",
                                        timeout: 240, diagnostics: fleet.diagnostics) { () throws -> [String: Any]? in
            let view = try fleet.status(run)
            return (NetnsStage(view, "consolidate")?.duplicates ?? 0) >= 1 ? view : nil
        }
        #expect(after["state"] as? String == "succeeded", "\(fleet.lastStatus)")
        #expect(after["published"] as? [String: String] == published, "a duplicate changes nothing published: \(fleet.lastStatus)")
        #expect(NetnsStage(after, "consolidate")?.succeeded == 4, "\(fleet.lastStatus)")
        #expect(workerA.isRunning && workerB.isRunning, "\(fleet.diagnostics())")

        // The lineage: B's execution stays the winner; A's is the duplicate, its files reclaimed.
        let executions = try fleet.executions(run, task: consolidate0)
        #expect(executions.contains { $0.pid == workerB.pid && $0.state == "succeeded" }, "\(executions)")
        let late = executions.filter { $0.pid == workerA.pid && $0.state == "duplicate" }
        #expect(late.count == 1, "host A's execution should be the duplicate: \(executions)\n\(fleet.diagnostics())")
        for x in late {
            let dir = fleet.dataRoot + "/runs/\(run)/consolidate/0/\(x.id)"
            _ = try await netnsPoll("the duplicate's folder \(dir) to be reclaimed", timeout: 60,
                                    diagnostics: fleet.diagnostics) { FileManager.default.fileExists(atPath: dir) ? nil : true }
        }

        // The same spec embedded, without broker or hosts: the same rows.
        let localRoot = fleet.work + "/local"
        let local = try NetnsCommand.run(NetnsFleet.executable("bis"), ["run", "--local", spec, "--data-root", localRoot, "--json"])
        guard local.status == 0,
              let localView = try JSONSerialization.jsonObject(with: Data(local.stdout.utf8)) as? [String: Any],
              let localPublished = localView["published"] as? [String: String] else {
            throw NetnsFailure("bis run --local failed: \(local)")
        }
        #expect(Set(localPublished.keys) == Set(published.keys), "fleet \(published), local \(localPublished)")
        for (dataset, folder) in published.sorted(by: { $0.key < $1.key }) {
            guard let localFolder = localPublished[dataset] else { continue }
            let compared = try NetnsGate.python.script(NetnsFleet.packageRoot + "/Tests/NetworkFleetTests/python/compare_published.py",
                                                       [fleet.dataRoot + "/" + folder, localRoot + "/" + localFolder])
            let verdict = try? JSONSerialization.jsonObject(with: Data(compared.output.utf8)) as? [String: Any]
            #expect(compared.status == 0 && verdict?["ok"] as? Bool == true, "dataset \(dataset): \(compared.output)")
            let rows = verdict?["rows"] as? [Int] ?? []
            #expect(rows.first ?? 0 > 0, "dataset \(dataset) has no rows: \(compared.output)")
        }
    }
}

/// The pipeline of HostCutTests: four CSV files of orders with repeated ids
/// (deduplicated in consolidate), stray spaces, a few values that do not
/// parse (quarantined), four partitions, a validated and published dataset
/// with one summary.
enum NetnsPipeline {
    static let spec = """
    pipeline: netns-cut
    sources:
      orders:
        format: csv
        files: data/*.csv
        columns:
          id: int64
          region: string
          amount: decimal(12,2)
          qty: int64
          day: date
    normalize:
      - trim: [region]
      - upper: [region]
      - derive:
          total: "amount * qty"
      - filter: "qty is null or qty > 0"
    consolidate:
      partition_by: [id]
      partitions: 4
      sort_by: [id]
      dedupe: {key: [id], keep: latest, by: day}
    validate:
      - not_null: [region]
      - max_failure_rate: 60%
    publish:
      dataset: netns_orders
      summaries:
        netns_orders_by_region:
          group_by: [region]
          aggregates:
            total: sum(total)
            lines: count()

    """

    static func write(to dir: String) throws {
        try FileManager.default.createDirectory(atPath: dir + "/data", withIntermediateDirectories: true)
        try spec.write(toFile: dir + "/pipeline.yml", atomically: true, encoding: .utf8)
        var rng = SeededRandom(seed: 20261127)
        let regions = ["  north ", "south", " east", "west  ", "NA", ""]
        var day = 0
        for file in 0..<4 {
            var text = "id,region,amount,qty,day\n"
            for _ in 0..<300 {
                day += 1   // unique per row: the dedupe has no ties to break
                let id = rng.int(1...500)
                let region = regions[rng.int(0...regions.count - 1)]
                var amount = rng.int(0...9) == 0 ? "" : "\(rng.int(0...999)).\(String(format: "%02d", rng.int(0...99)))"
                var qty = String(rng.int(-2...20))
                if rng.int(0...60) == 0 { amount = "1.2.3" }
                if rng.int(0...60) == 0 { qty = "7x" }
                let date = Calendar(identifier: .gregorian).date(byAdding: .day, value: day,
                                                                  to: Date(timeIntervalSince1970: 1_600_000_000))!
                let f = DateFormatter()
                f.locale = Locale(identifier: "en_US_POSIX")
                f.timeZone = TimeZone(identifier: "UTC")
                f.dateFormat = "yyyy-MM-dd"
                text += "\(id),\(region),\(amount),\(qty),\(f.string(from: date))\n"
            }
            try text.write(toFile: dir + "/data/orders-\(file).csv", atomically: true, encoding: .utf8)
        }
    }
}
