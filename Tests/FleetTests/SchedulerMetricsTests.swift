import Coordination
import FleetCore
import Foundation
import Testing

/// /metrics' view of the scheduler (issue 13): each pipeline's next slot and
/// how late the last slot started.
@Suite struct SchedulerMetricsTests {
    static func value(_ text: String, _ series: String) -> Double? {
        text.split(separator: "\n").first { $0.hasPrefix(series + " ") }.flatMap { Double($0.split(separator: " ").last!) }
    }

    @Test func nextRunAndLagFollowTheSchedule() async throws {
        // Catch-up `latest` at 12:00Z: the day's 02:15 Helsinki slot (00:15Z) starts 11 h 45 min late.
        let s = try SchedulerTests.setup(catchup: "latest", now: "2026-11-09T12:00:00Z", start: "2026-11-01")
        defer { try? FileManager.default.removeItem(atPath: s.dir) }
        _ = try await s.engine.addPipeline(PipelineAddRequest(specPath: s.spec, by: "ann@host"), as: SchedulerTests.caller)
        let started = await s.engine.schedulerPass()
        #expect(started.count == 1)
        var text = try await s.engine.prometheusText()
        let next = try #require(SlotText.parseUTC("2026-11-10T00:15:00Z")).timeIntervalSince1970
        #expect(Self.value(text, #"bis_pipeline_next_run_timestamp_seconds{pipeline="nightly"}"#) == next, "\(text)")
        #expect(Self.value(text, "bis_scheduler_lag_seconds") == Double(11 * 3600 + 45 * 60), "\(text)")

        // Paused: no next run.
        _ = try await s.engine.changePipeline("nightly", .pause, as: SchedulerTests.caller)
        await s.engine.schedulerPass()
        text = try await s.engine.prometheusText()
        #expect(!text.contains("bis_pipeline_next_run_timestamp_seconds{pipeline=\"nightly\"}"), "\(text)")
        _ = try await s.engine.changePipeline("nightly", .resume, as: SchedulerTests.caller)
        await s.engine.schedulerPass()
        text = try await s.engine.prometheusText()
        #expect(Self.value(text, #"bis_pipeline_next_run_timestamp_seconds{pipeline="nightly"}"#) == next)
    }
}
