import Coordination
import FleetCore
import FleetMetrics
import Foundation
import Testing
import WorkerRuntime

/// The worker's CPU time and resident memory: read from /proc, carried in
/// heartbeats (optional fields: an older worker's beats still parse), shown by
/// the coordinator's /metrics per worker heard from in the last hour.
@Suite struct WorkerResourcesTests {
    @Test func cpuSecondsAreUtimePlusStimeCountedAfterTheCommandName() {
        // The command name may hold spaces and parentheses: fields count after the last ')'.
        let stat = "4242 (bis (worker) x) S 1 4242 4242 0 -1 4194560 1200 0 3 0 250 130 0 0 20 0 9 0 5000 123456789 2500 "
            + "18446744073709551615 1 1 0 0 0 0 0 4096 0 0 0 17 1 0 0 0 0 0\n"
        #expect(ProcessResources.cpuSeconds(stat: stat, ticksPerSecond: 100) == 3.8)
        #expect(ProcessResources.cpuSeconds(stat: "4242 (x) S 1 2", ticksPerSecond: 100) == nil, "too few fields")
        #expect(ProcessResources.cpuSeconds(stat: "no parentheses", ticksPerSecond: 100) == nil)
        #expect(ProcessResources.cpuSeconds(stat: stat, ticksPerSecond: 0) == nil)
    }

    @Test func residentBytesAreTheSecondStatmFieldInPages() {
        #expect(ProcessResources.residentBytes(statm: "30000 2500 800 100 0 9000 0\n", pageSize: 4096) == Int64(10_240_000))
        #expect(ProcessResources.residentBytes(statm: "30000\n", pageSize: 4096) == nil)
        #expect(ProcessResources.residentBytes(statm: "1 x 2", pageSize: 4096) == nil)
        #expect(ProcessResources.residentBytes(statm: "1 \(Int64.max) 2", pageSize: 4096) == nil, "overflow")
    }

    /// glibc takes the worker's 4 MiB mmap threshold (mallopt answers 1).
    @Test(.enabled(if: ProcessInfo.processInfo.environment["MALLOC_MMAP_THRESHOLD_"] == nil))
    func glibcTakesTheWorkersHeapSetting() {
        #expect(ProcessResources.boundHeapRetention())
    }

    @Test func thisProcessHasCPUTimeAndResidentMemory() throws {
        let before = try #require(ProcessResources.current())
        var x: UInt64 = 1
        let until = Date().addingTimeInterval(0.3)
        while Date() < until { for i in 0..<100_000 { x = x &* 6364136223846793005 &+ UInt64(i) } }
        #expect(x != 0)
        let after = try #require(ProcessResources.current())
        #expect(after.cpuSeconds > before.cpuSeconds, "\(before) → \(after)")
        #if os(Linux)
        let rss = try #require(after.residentBytes)
        #expect(rss > 1 << 20 && rss < 1 << 40, "resident \(rss) bytes")
        #endif
    }

    @Test func anOlderWorkersHeartbeatDecodesWithoutTheNewFields() throws {
        // As a worker before node/reconnects and cpuSeconds/residentBytes wrote it.
        let old = #"{"worker":{"id":"h:1:a","host":"h","pid":1,"version":"0.1.0"},"at":1800000000.5,"state":"running","#
            + #""stages":["ingest"],"concurrency":2,"running":["r-ingest-0"]}"#
        let beat = try WireCoding.decode(WorkerHeartbeat.self, from: Array(old.utf8))
        #expect(beat.worker.id == "h:1:a" && beat.running == ["r-ingest-0"])
        #expect(beat.cpuSeconds == nil && beat.residentBytes == nil && beat.node == nil && beat.reconnects == nil)

        let new = WorkerHeartbeat(worker: beat.worker, at: beat.at, state: .running, stages: [.ingest], concurrency: 2, running: [],
                                  cpuSeconds: 12.5, residentBytes: 64 << 20)
        let text = String(decoding: try WireCoding.encode(new), as: UTF8.self)
        #expect(text.contains(#""cpuSeconds":12.5"#) && text.contains(#""residentBytes":67108864"#), "\(text)")
        #expect(try WireCoding.decode(WorkerHeartbeat.self, from: try WireCoding.encode(new)) == new)
    }

    @Test func theWorkersHeartbeatsCarryItsResources() async throws {
        let transport = InMemoryTransport()
        let inbox = try await transport.coordinatorInbox(prefetch: 10)
        let worker = FleetWorker(transport: transport, chunkStore: ChunkStore(root: NSTemporaryDirectory() + "bis-res-" + UUID().uuidString),
                                 concurrency: 1, heartbeatInterval: .milliseconds(50), fault: nil)
        let running = Task { try await worker.run() }
        var beat: WorkerHeartbeat?
        for try await e in inbox {
            try await e.ack()
            if case .heartbeat(let b) = e.body { beat = b; break }
        }
        worker.drain()
        try await running.value
        await transport.close()
        let b = try #require(beat)
        #expect((b.cpuSeconds ?? 0) > 0, "\(b)")
        #if os(Linux)
        #expect((b.residentBytes ?? 0) > 0, "\(b)")
        #endif
    }

    @Test func theCoordinatorShowsWorkersHeardFromInTheLastHour() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("bis-metrics-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let clock = ManualClock()
        var options = CoordinatorOptions()
        options.clock = clock
        let transport = InMemoryTransport()
        let engine = CoordinatorEngine(store: try LineageStore(path: dir + "/bis.db"), transport: transport,
                                       chunkStore: ChunkStore(root: dir), options: options)
        try await engine.start()
        func identity(_ id: String) -> WorkerIdentity { WorkerIdentity(id: id, host: "h", pid: 1, version: "test") }
        // An older worker (no resources) and a current one.
        try await transport.publishHeartbeat(WorkerHeartbeat(worker: identity("old:1:a"), at: clock.now(), state: .running,
                                                             stages: [.ingest], concurrency: 1, running: ["t1"]))
        try await transport.publishHeartbeat(WorkerHeartbeat(worker: identity("new:2:b"), at: clock.now(), state: .running,
                                                             stages: [.ingest], concurrency: 2, running: ["t2", "t3"],
                                                             cpuSeconds: 1.25, residentBytes: 5_000_000))
        var text = ""
        for _ in 0..<200 {
            text = try await engine.prometheusText()
            if text.contains(#"worker="old:1:a""#) && text.contains(#"worker="new:2:b""#) { break }
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(text.contains(#"bis_worker_cpu_seconds_total{worker="new:2:b"} 1.25"#), "\(text)")
        #expect(text.contains(#"bis_worker_resident_memory_bytes{worker="new:2:b"} 5000000.0"#), "\(text)")
        #expect(text.contains(#"bis_worker_running_tasks{worker="new:2:b"} 2.0"#), "\(text)")
        #expect(text.contains(#"bis_worker_running_tasks{worker="old:1:a"} 1.0"#), "\(text)")
        #expect(!text.contains(#"bis_worker_cpu_seconds_total{worker="old:1:a"}"#), "an older worker's CPU time is unknown\n\(text)")
        #expect(!text.contains(#"bis_worker_resident_memory_bytes{worker="old:1:a"}"#), "\(text)")

        // The new worker beats again an hour later; the old one is gone.
        clock.advance(by: 3000)
        try await transport.publishHeartbeat(WorkerHeartbeat(worker: identity("new:2:b"), at: clock.now(), state: .running,
                                                             stages: [.ingest], concurrency: 2, running: [],
                                                             cpuSeconds: 2.5, residentBytes: 6_000_000))
        for _ in 0..<200 {
            text = try await engine.prometheusText()
            // Both effects of the beat: the engine's memory (CPU time) and the
            // workers table (live), which the intake writes separately.
            if text.contains(#"bis_worker_cpu_seconds_total{worker="new:2:b"} 2.5"#), text.contains("bis_workers_live 1.0") { break }
            try await Task.sleep(for: .milliseconds(20))
        }
        // The old worker is quiet (not stopped, not heard from for 3000 s): it
        // counts in bis_workers_quiet and runs no tasks any more.
        #expect(text.contains(#"bis_worker_running_tasks{worker="old:1:a"} 0.0"#), "\(text)")
        #expect(text.contains("bis_workers_quiet 1.0"), "\(text)")
        #expect(text.contains("bis_workers_live 1.0"), "\(text)")
        // A redelivered, older beat of the new worker changes nothing: its CPU time never goes down.
        try await transport.publishHeartbeat(WorkerHeartbeat(worker: identity("new:2:b"), at: clock.now().addingTimeInterval(-60),
                                                             state: .running, stages: [.ingest], concurrency: 2, running: ["t9"],
                                                             cpuSeconds: 1.0, residentBytes: 1))
        try await transport.publishHeartbeat(WorkerHeartbeat(worker: identity("probe:3:c"), at: clock.now(), state: .stopped,
                                                             stages: [.ingest], concurrency: 1, running: []))
        for _ in 0..<200 {
            text = try await engine.prometheusText()
            if text.contains(#"worker="probe:3:c""#) { break }
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(text.contains(#"bis_worker_cpu_seconds_total{worker="new:2:b"} 2.5"#), "\(text)")
        #expect(text.contains(#"bis_worker_running_tasks{worker="new:2:b"} 0.0"#), "\(text)")
        clock.advance(by: 700)
        text = try await engine.prometheusText()
        #expect(!text.contains(#"worker="old:1:a""#), "gone for over an hour\n\(text)")
        #expect(text.contains(#"bis_worker_cpu_seconds_total{worker="new:2:b"} 2.5"#), "\(text)")
        #expect(text.contains(#"bis_worker_running_tasks{worker="new:2:b"} 0.0"#), "\(text)")

        // The alerts' and deadlines' counters, through the engine's API.
        engine.recordDeadlineMiss(pipeline: "nightly")
        engine.recordAlert(sent: true, pipeline: "nightly")
        engine.recordAlert(sent: true, pipeline: "nightly")
        text = try await engine.prometheusText()
        #expect(text.contains(#"bis_pipeline_deadline_misses_total{pipeline="nightly"} 1"#), "\(text)")
        #expect(text.contains(#"bis_pipeline_alerts_sent_total{pipeline="nightly"} 2"#), "\(text)")
        #expect(text.contains(#"bis_pipeline_alerts_failed_total{pipeline="nightly"} 0"#), "\(text)")
        #expect(text.contains(#"bis_pipeline_rows_in_total{pipeline="nightly"} 0"#), "\(text)")
        await engine.stop()
        await transport.close()
    }
}
