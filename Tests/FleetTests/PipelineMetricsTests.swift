@testable import Coordination
import FleetCore
import FleetMetrics
import Foundation
import Logging
import Testing
import WorkerRuntime

/// The per-pipeline families' counting: each finished run once per time it
/// finishes (also when two scrapes see it, and not again after a restart),
/// each committed result's rows once (a retried run reuses its results), and
/// a retried run's duration from the retry.
@Suite struct PipelineMetricsTests {
    /// The value of the sample `series` (name and labels, as written) in `text`.
    static func value(_ text: String, _ series: String) -> Double? {
        for line in text.split(separator: "\n") where line.hasPrefix(series + " ") {
            return Double(line.dropFirst(series.count + 1))
        }
        return nil
    }

    static func finished(_ id: String, at: Double) -> (id: String, run: FinishedRun, at: Double) {
        (id, FinishedRun(pipeline: "p", state: .succeeded, durationSeconds: 1), at)
    }

    @Test func takeCountsEachFinishedRunOnceAlsoWhenRunsShareAFinishTime() {
        var m = EngineMetrics()
        m.finished = (100, [])
        // Two runs finished at 105; the scrape sees both, the next scrape (same query, `>= 105`) again.
        #expect(m.take([Self.finished("a", at: 101), Self.finished("b", at: 105), Self.finished("c", at: 105)]).count == 3)
        #expect(m.take([Self.finished("b", at: 105), Self.finished("c", at: 105)]).isEmpty)
        // A third run finished at that same second after the scrape: counted, the others not again.
        #expect(m.take([Self.finished("b", at: 105), Self.finished("c", at: 105), Self.finished("d", at: 105)]).count == 1)
        #expect(m.finished.at == 105 && m.finished.seen == ["b", "c", "d"])
        // Later ones move the mark on; earlier than the mark never count.
        #expect(m.take([Self.finished("d", at: 105), Self.finished("e", at: 107)]).count == 1)
        #expect(m.take([Self.finished("z", at: 99)]).isEmpty)
        #expect(m.finished.at == 107 && m.finished.seen == ["e"])
    }

    @Test func aHeartbeatOlderThanTheLastOneIsIgnoredAndCPUTimeNeverGoesDown() {
        var m = EngineMetrics()
        let w = WorkerIdentity(id: "h:1:a", host: "h", pid: 1, version: "test")
        func beat(_ at: Double, cpu: Double?, running: Int) -> WorkerHeartbeat {
            WorkerHeartbeat(worker: w, at: Date(timeIntervalSince1970: at), state: .running, stages: [.ingest], concurrency: 4,
                            running: (0..<running).map { "t\($0)" }, cpuSeconds: cpu, residentBytes: 10)
        }
        m.heard(beat(1000, cpu: 5, running: 2), at: 1000)
        m.heard(beat(990, cpu: 4, running: 3), at: 1001)   // redelivered, older
        #expect(m.workerResources["h:1:a"]?.resources.cpuSeconds == 5)
        #expect(m.workerResources["h:1:a"]?.resources.runningTasks == 2)
        m.heard(beat(1010, cpu: 4.5, running: 1), at: 1010)   // newer, but a lower reading: kept at 5
        #expect(m.workerResources["h:1:a"]?.resources.cpuSeconds == 5)
        #expect(m.workerResources["h:1:a"]?.resources.runningTasks == 1)
        m.heard(beat(1020, cpu: 6, running: 0), at: 1020)
        #expect(m.workerResources["h:1:a"]?.resources.cpuSeconds == 6)
    }

    /// examples/orders with a quality gate its data fails: the run fails after
    /// validate, is retried (it fails again at the gate, reusing every
    /// committed result), and the coordinator restarts on the same store.
    @Test func aRetriedRunsRowsCountOnceItsDurationRunsFromTheRetryAndARestartCountsNothingAgain() async throws {
        let (spec, _, rootPath) = try LocalRunTests.workspace()
        let strict = (spec as NSString).deletingLastPathComponent + "/strict.yml"
        let strictText = try String(contentsOfFile: spec, encoding: .utf8)
            .replacingOccurrences(of: "max_failure_rate: 20%", with: "max_failure_rate: 1%")
        try #require(strictText.contains("max_failure_rate: 1%"))
        try strictText.write(toFile: strict, atomically: true, encoding: .utf8)
        let fleet = try await EmbeddedFleet(root: rootPath)
        defer { fleet.cancel() }
        let engine = fleet.engine
        let p = #"{pipeline="orders-daily""#
        let submitted = try await fleet.submit(strict)
        let failed = try await engine.waitUntilSettled(submitted.id)
        try #require(failed.state == .failed, "\(failed.message ?? "")")
        let rowsIn = failed.stages.filter { $0.stage == .ingest }.map(\.rowsIn).reduce(0, +)
        let rowsOut = failed.stages.filter { $0.stage == .publish }.map(\.rowsOut).reduce(0, +)
        let quarantined = failed.stages.map(\.rowsQuarantined).reduce(0, +)
        #expect(rowsIn > 0 && quarantined > 0, "\(failed.stages)")
        let firstDuration = try #require(failed.finishedAt).timeIntervalSince(failed.submittedAt)

        var text = try await engine.prometheusText()
        #expect(Self.value(text, "bis_pipeline_runs_total\(p),state=\"failed\"}") == 1, "\(text)")
        #expect(Self.value(text, "bis_pipeline_runs_total\(p),state=\"succeeded\"}") == 0)
        #expect(Self.value(text, "bis_pipeline_rows_in_total\(p)}") == Double(rowsIn), "\(text)")
        #expect(Self.value(text, "bis_pipeline_rows_out_total\(p)}") == Double(rowsOut))
        #expect(Self.value(text, "bis_pipeline_rows_quarantined_total\(p)}") == Double(quarantined))
        #expect(Self.value(text, "bis_pipeline_run_duration_seconds_count\(p)}") == 1)

        // Some time passes before the retry: not part of the retried run's duration.
        try await Task.sleep(for: .milliseconds(1500))
        _ = try await engine.retry(submitted.id, by: "ops@host")
        let again = try await engine.waitUntilSettled(submitted.id)
        #expect(again.state == .failed, "\(again.message ?? "")")
        // Every result was reused: nothing new committed, the same rows as before.
        #expect(again.stages.map(\.rowsIn) == failed.stages.map(\.rowsIn))
        #expect(again.stages.map(\.rowsQuarantined) == failed.stages.map(\.rowsQuarantined))
        text = try await engine.prometheusText()
        #expect(Self.value(text, "bis_pipeline_runs_total\(p),state=\"failed\"}") == 2, "the run failed twice\n\(text)")
        #expect(Self.value(text, "bis_pipeline_rows_in_total\(p)}") == Double(rowsIn), "counted once\n\(text)")
        #expect(Self.value(text, "bis_pipeline_rows_out_total\(p)}") == Double(rowsOut))
        #expect(Self.value(text, "bis_pipeline_rows_quarantined_total\(p)}") == Double(quarantined))
        #expect(Self.value(text, "bis_pipeline_run_duration_seconds_count\(p)}") == 2)
        let sum = try #require(Self.value(text, "bis_pipeline_run_duration_seconds_sum\(p)}"), "\(text)")
        // The first run's time, and the retry's (under a second: the gate fails at once), not the wait before it.
        #expect(sum >= firstDuration && sum < firstDuration + 1.0, "\(sum) vs \(firstDuration)\n\(text)")
        // A second scrape counts nothing again.
        let text2 = try await engine.prometheusText()
        #expect(Self.value(text2, "bis_pipeline_runs_total\(p),state=\"failed\"}") == 2, "\(text2)")
        #expect(Self.value(text2, "bis_pipeline_run_duration_seconds_count\(p)}") == 2)
        await fleet.stop()

        // A coordinator restarted on the same store: the pipeline's series are
        // there, at 0; the runs finished before it started do not count again.
        var logger = Logger(label: "test.restart")
        logger.logLevel = .critical
        let transport = InMemoryTransport()
        let restarted = CoordinatorEngine(store: try LineageStore(path: fleet.root.root + "/bis.db"), transport: transport,
                                          chunkStore: fleet.root, logger: logger)
        try await restarted.start()
        text = try await restarted.prometheusText()
        #expect(Self.value(text, "bis_pipeline_runs_total\(p),state=\"failed\"}") == 0, "\(text)")
        #expect(Self.value(text, "bis_pipeline_rows_in_total\(p)}") == 0)
        #expect(Self.value(text, "bis_pipeline_run_duration_seconds_count\(p)}") == 0)
        await restarted.stop()
        await transport.close()
    }
}
