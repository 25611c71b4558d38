import CoordinatorAPI
import FleetMetrics
import Testing

/// `BisMetrics`, the registry behind /metrics, without an engine.
@Suite struct BisMetricsTests {
    @Test func twoRegistriesCountApart() {
        // Each engine owns one: coordinators in one process (tests) never see each other's counts.
        let a = BisMetrics(), b = BisMetrics()
        a.recordDeadlineMiss(pipeline: "nightly")
        a.observeTaskDuration(2)
        let textA = a.render(MetricsSnapshot(runs: [.failed: 2]))
        let textB = b.render(MetricsSnapshot(runs: [.failed: 5]))
        #expect(textA.contains(#"bis_pipeline_deadline_misses_total{pipeline="nightly"} 1"#), "\(textA)")
        #expect(!textB.contains("nightly"), "\(textB)")
        #expect(textA.contains("bis_task_duration_seconds_count 1") && textB.contains("bis_task_duration_seconds_count 0"))
        #expect(textA.contains(#"bis_runs{state="failed"} 2.0"#) && textB.contains(#"bis_runs{state="failed"} 5.0"#))
    }

    @Test func snapshotCountsAreSetAtEachRenderAndVanishedLabelSetsShowZero() {
        let m = BisMetrics()
        var s = MetricsSnapshot(tasks: [.init(stage: .ingest, state: .running, count: 3)], queueDepths: [.ingest: 7], messagesSent: 10)
        s.messagesRejected = ["bad_mac": 2]
        s.gcReclaimedBytes = 4096
        var text = m.render(s)
        #expect(text.contains(#"bis_tasks{stage="ingest",state="running"} 3.0"#), "\(text)")
        #expect(text.contains(#"bis_queue_depth{stage="ingest"} 7.0"#))
        #expect(text.contains("bis_messages_sent_total 10"))
        #expect(text.contains(#"bis_messages_rejected_total{reason="bad_mac"} 2"#))
        #expect(text.contains(#"bis_messages_rejected_total{reason="missing_mac"} 0"#))
        #expect(text.contains("bis_gc_reclaimed_bytes_total 4096"))
        #expect(text.contains("# TYPE bis_worker_broker_reconnects gauge"))
        #expect(text.contains("# HELP bis_runs Runs in the lineage store by state."))

        // The running tasks finished; the queue went.
        s = MetricsSnapshot(tasks: [.init(stage: .ingest, state: .succeeded, count: 3)], messagesSent: 12)
        text = m.render(s)
        #expect(text.contains(#"bis_tasks{stage="ingest",state="running"} 0.0"#), "\(text)")
        #expect(text.contains(#"bis_tasks{stage="ingest",state="succeeded"} 3.0"#))
        #expect(text.contains(#"bis_queue_depth{stage="ingest"} 0.0"#))
        #expect(text.contains("bis_messages_sent_total 12"))
    }

    @Test func pipelinesAndWorkers() {
        let m = BisMetrics()
        m.registerPipeline("orders")
        var text = m.render(MetricsSnapshot())
        for family in ["bis_pipeline_runs_total", "bis_pipeline_rows_in_total", "bis_pipeline_rows_out_total",
                       "bis_pipeline_rows_quarantined_total", "bis_pipeline_deadline_misses_total",
                       "bis_pipeline_alerts_sent_total", "bis_pipeline_alerts_failed_total"] {
            #expect(text.contains(family + #"{pipeline="orders""#), "\(family)\n\(text)")
        }
        #expect(text.contains(#"bis_pipeline_run_duration_seconds_count{pipeline="orders"} 0"#), "\(text)")
        #expect(!text.contains("bis_pipeline_last_success_timestamp_seconds{"), "no success yet")

        m.recordRunFinished(FinishedRun(pipeline: "orders", state: .succeeded, durationSeconds: 90, rowsIn: 100, rowsOut: 95, rowsQuarantined: 5))
        m.recordAlert(sent: false, pipeline: "orders")
        m.setSchedulePeriod(pipeline: "orders", seconds: 86400)
        text = m.render(MetricsSnapshot(), lastSuccess: ["orders": 1_800_000_000],
                        workers: [WorkerResources(worker: "h:1:a", cpuSeconds: 3.5, residentBytes: 1 << 20, runningTasks: 2)])
        #expect(text.contains(#"bis_pipeline_runs_total{pipeline="orders",state="succeeded"} 1"#), "\(text)")
        #expect(text.contains(#"bis_pipeline_rows_in_total{pipeline="orders"} 100"#))
        #expect(text.contains(#"bis_pipeline_rows_out_total{pipeline="orders"} 95"#))
        #expect(text.contains(#"bis_pipeline_rows_quarantined_total{pipeline="orders"} 5"#))
        #expect(text.contains(#"bis_pipeline_alerts_failed_total{pipeline="orders"} 1"#))
        #expect(text.contains(#"bis_pipeline_run_duration_seconds_bucket{pipeline="orders",le="120.0"} 1"#), "\(text)")
        #expect(text.contains(#"bis_pipeline_last_success_timestamp_seconds{pipeline="orders"} 1800000000.0"#))
        #expect(text.contains(#"bis_pipeline_schedule_period_seconds{pipeline="orders"} 86400.0"#))
        #expect(text.contains(#"bis_worker_cpu_seconds_total{worker="h:1:a"} 3.5"#))
        #expect(text.contains(#"bis_worker_resident_memory_bytes{worker="h:1:a"} 1048576.0"#))
        #expect(text.contains(#"bis_worker_running_tasks{worker="h:1:a"} 2.0"#))

        // The worker went (out of the last hour); the schedule was removed.
        m.setSchedulePeriod(pipeline: "orders", seconds: nil)
        text = m.render(MetricsSnapshot())
        #expect(!text.contains("h:1:a"), "\(text)")
        #expect(!text.contains("bis_pipeline_schedule_period_seconds{"))
    }
}
