import Columnar
import Coordination
import CoordinatorHTTP
import FleetCore
import Foundation
import Logging
import Testing
import TestSupport
import WorkerRuntime

/// The real engine (lineage store in a temp folder, the real worker over the
/// in-memory transport) running examples/orders to the end, served by the
/// real `CoordinatorServer`: what /metrics, the dashboard and the
/// OpenLineage export give for real data, checked by the tools others use
/// (prometheus_client's parser, headless Chromium, openlineage-python).
struct LiveFleet: Sendable {
    let engine: CoordinatorEngine
    let base: String
    let run: String
    /// The same spec with a quality gate the data fails (max_failure_rate 1%): failed after validate.
    let failedRun: String
    let inputs: [String]
    let stages: [Stage]

    /// Started once per test process, on first use; left serving until the process ends.
    static let shared = Task { try await LiveFleet.start() }

    static func start() async throws -> LiveFleet {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("bis-live-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir + "/orders", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: Bis.packageRoot + "/examples/orders/data", toPath: dir + "/orders/data")
        try FileManager.default.copyItem(atPath: Bis.packageRoot + "/examples/orders/pipeline.yml", toPath: dir + "/orders/pipeline.yml")
        let root = ChunkStore(root: dir + "/root")
        try FileManager.default.createDirectory(atPath: root.root, withIntermediateDirectories: true)
        var logger = Logger(label: "test.live")
        logger.logLevel = .critical
        let transport = InMemoryTransport()
        let engine = CoordinatorEngine(store: try LineageStore(path: root.root + "/bis.db"), transport: transport,
                                       chunkStore: root, logger: logger)
        try await engine.start()
        let worker = FleetWorker(transport: transport, chunkStore: root, concurrency: 2, logger: logger)
        Task { try await worker.run() }
        let spec = dir + "/orders/pipeline.yml"
        let submitted = try await engine.submit(SubmitRequest(specPath: spec, specText: try String(contentsOfFile: spec, encoding: .utf8),
                                                              submittedBy: "test@host"))
        let waiting = try await engine.waitUntilSettled(submitted.id)
        guard waiting.state == .awaitingApproval else { throw Failure("the orders run did not reach approval: \(waiting)") }
        _ = try await engine.approve(submitted.id, by: "ops@host")
        let done = try await engine.waitUntilSettled(submitted.id)
        guard done.state == .succeeded else { throw Failure("the orders run did not succeed: \(done.message ?? "")") }

        let strict = dir + "/orders/strict.yml"
        let strictText = try String(contentsOfFile: spec, encoding: .utf8).replacingOccurrences(of: "max_failure_rate: 20%", with: "max_failure_rate: 1%")
        guard strictText.contains("max_failure_rate: 1%") else { throw Failure("examples/orders/pipeline.yml has no max_failure_rate: 20% to tighten") }
        try strictText.write(toFile: strict, atomically: true, encoding: .utf8)
        let failing = try await engine.submit(SubmitRequest(specPath: strict, specText: strictText, submittedBy: "test@host"))
        let failed = try await engine.waitUntilSettled(failing.id)
        guard failed.state == .failed else { throw Failure("the strict run did not fail: \(failed.state)") }

        let server = CoordinatorServer(service: engine, port: 0, logger: logger)
        Task { try await server.run() }
        let port = try await server.boundPort()
        let inputs = try FileManager.default.contentsOfDirectory(atPath: dir + "/orders/data").sorted().map { dir + "/orders/data/" + $0 }
        return LiveFleet(engine: engine, base: "http://127.0.0.1:\(port)", run: submitted.id, failedRun: failing.id, inputs: inputs,
                         stages: done.stages.map(\.stage))
    }

    struct Failure: Error, CustomStringConvertible {
        let description: String
        init(_ d: String) { description = d }
    }
}

/// Runs a program on a thread of its own (never holding one of the few
/// threads the in-process server answers from), stdout and stderr apart.
func runTool(_ executable: String, _ args: [String]) async throws -> (status: Int32, stdout: String, stderr: String) {
    try await withCheckedThrowingContinuation { continuation in
        Thread.detachNewThread {
            do {
                let p = Process()
                p.executableURL = URL(fileURLWithPath: executable)
                p.arguments = args
                let out = Pipe(), err = Pipe()
                p.standardOutput = out
                p.standardError = err
                try p.run()
                let errText = ErrText()
                let reader = Thread { errText.data = err.fileHandleForReading.readDataToEndOfFile(); errText.done.signal() }
                reader.start()
                let o = out.fileHandleForReading.readDataToEndOfFile()
                errText.done.wait()
                p.waitUntilExit()
                continuation.resume(returning: (p.terminationStatus, String(decoding: o, as: UTF8.self),
                                                String(decoding: errText.data, as: UTF8.self)))
            } catch {
                continuation.resume(throwing: error)
            }
        }
    }
}

private final class ErrText: @unchecked Sendable {
    var data = Data()
    let done = DispatchSemaphore(value: 0)
}

enum LiveTools {
    static let scripts = Bis.packageRoot + "/Tests/CoordinatorHTTPTests/python"
    static let prometheus = PythonTool(importing: "prometheus_client")
    static let openLineage = PythonTool(importing: "openlineage.client")

    static let chromium: String? = {
        if let p = ProcessInfo.processInfo.environment["BIS_CHROMIUM"], !p.isEmpty { return p }
        return ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"]
            .first { FileManager.default.isExecutableFile(atPath: $0) }
    }()
    static var chromiumRequired: Bool { ProcessInfo.processInfo.environment["BIS_REQUIRE_CHROMIUM"] == "1" }
    /// Any Python 3: the PNG check needs only the standard library.
    static let anyPython: String? = {
        var candidates = [String]()
        if let p = ProcessInfo.processInfo.environment["BIS_PYTHON"], !p.isEmpty { candidates.append(p) }
        candidates += [Bis.packageRoot + "/.venv/bin/python", "/usr/bin/python3"]
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) }
    }()
    static var chromiumEnabled: Bool { (chromium != nil && anyPython != nil) || chromiumRequired }

    static func temp(_ name: String) throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("bis-live-check-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir + "/" + name
    }
}

@Suite struct LiveEngineTests {
    @Test(.enabled(if: LiveTools.prometheus.enabled, "no Python with prometheus_client (ops/setup; BIS_REQUIRE_PYTHON=1 to insist)"))
    func metricsParseWithPrometheusClientAndCarryNoRunOrTaskIds() async throws {
        let live = try await LiveFleet.shared.value
        let http = HTTPClient(base: live.base)
        let a = try await http.get("/metrics")
        #expect(a.status == 200)
        let file = try LiveTools.temp("metrics.txt")
        try a.data.write(to: URL(fileURLWithPath: file))
        // Every execution id too: none may be a label.
        var executions: Set<String> = []
        for run in [live.run, live.failedRun] {
            executions.formUnion(try await live.engine.openLineage(run).compactMap(\.run.facets.bis_execution?.execution))
        }
        let r = try LiveTools.prometheus.script(LiveTools.scripts + "/check_metrics.py", [file, live.run, live.failedRun] + executions.sorted())
        #expect(r.status == 0, "\(r.output)\n\(a.text)")
        // The runs' committed tasks show in the gauges, by stage and state.
        #expect(a.text.contains("bis_runs{state=\"succeeded\"} 1"), "\(a.text)")
        #expect(a.text.contains("bis_runs{state=\"failed\"} 1"), "\(a.text)")
        #expect(a.text.contains("bis_tasks{stage=\"ingest\",state=\"succeeded\"} 12"), "\(a.text)")
    }

    @Test(.enabled(if: LiveTools.prometheus.enabled, "no Python with prometheus_client (ops/setup; BIS_REQUIRE_PYTHON=1 to insist)"))
    func perPipelineWorkerAndRequestFamiliesParseWithPrometheusClient() async throws {
        let live = try await LiveFleet.shared.value
        let http = HTTPClient(base: live.base)
        // A request Hummingbird's MetricsMiddleware has counted when /metrics is read
        // (it counts a request after its response is written: poll).
        #expect(try await http.get("/healthz").status == 200)
        var text = ""
        for _ in 0..<100 {
            text = try await http.get("/metrics").text
            if text.contains("hb_requests_total{") && text.contains("bis_worker_running_tasks{") { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        let file = try LiveTools.temp("metrics.txt")
        try text.write(toFile: file, atomically: true, encoding: .utf8)
        let r = try LiveTools.prometheus.script(LiveTools.scripts + "/metric_samples.py", [file])
        try #require(r.status == 0, "\(r.output)\n\(text)")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(r.output.utf8)) as? [String: Any], "\(r.output)")
        let types = try #require(json["types"] as? [String: String])
        let samples = try #require(json["samples"] as? [[Any]]).compactMap { s -> (name: String, labels: [String: String], value: Double)? in
            guard s.count == 3, let n = s[0] as? String, let l = s[1] as? [String: String], let v = s[2] as? Double else { return nil }
            return (n, l, v)
        }
        func value(_ name: String, _ labels: [String: String]) -> Double? {
            samples.first { $0.name == name && $0.labels == labels }?.value
        }
        // The existing families keep their names and types.
        for (name, type) in ["bis_runs": "gauge", "bis_tasks": "gauge", "bis_executions": "gauge", "bis_queue_depth": "gauge",
                             "bis_workers_live": "gauge", "bis_task_retries": "counter", "bis_messages_sent": "counter",
                             "bis_messages_rejected": "counter", "bis_intake_commits": "counter", "bis_broker_reconnects": "counter",
                             "bis_worker_broker_reconnects": "gauge", "bis_handoff_latency_seconds": "histogram",
                             "bis_task_duration_seconds": "histogram", "bis_gc_reclaimed_bytes": "counter",
                             "bis_gc_reclaimed_files": "counter", "bis_gc_passes": "counter"] {
            #expect(types[name] == type, "\(name): \(types[name] ?? "missing")")
        }
        #expect(value("bis_runs", ["state": "succeeded"]).map { $0 >= 1 } == true)
        #expect(value("bis_broker_reconnects_total", ["client": "coordinator"]) == 0)
        #expect(value("bis_messages_rejected_total", ["reason": "bad_mac"]) == 0)
        #expect((value("bis_task_duration_seconds_count", [:]) ?? 0) >= 12, "the ingest tasks' durations were observed")
        #expect((value("bis_handoff_latency_seconds_count", [:]) ?? 0) >= 12)

        // Per pipeline: the orders run succeeded, the strict one (same name) failed.
        let p = ["pipeline": "orders-daily"]
        #expect(value("bis_pipeline_runs_total", p.merging(["state": "succeeded"]) { a, _ in a }).map { $0 >= 1 } == true, "\(text)")
        #expect(value("bis_pipeline_runs_total", p.merging(["state": "failed"]) { a, _ in a }).map { $0 >= 1 } == true, "\(text)")
        #expect((value("bis_pipeline_rows_in_total", p) ?? 0) > 0, "\(text)")
        #expect((value("bis_pipeline_rows_out_total", p) ?? 0) > 0, "\(text)")
        #expect(value("bis_pipeline_rows_quarantined_total", p) != nil)
        #expect(value("bis_pipeline_deadline_misses_total", p) == 0)
        #expect(value("bis_pipeline_alerts_sent_total", p) == 0)
        #expect(value("bis_pipeline_alerts_failed_total", p) == 0)
        #expect((value("bis_pipeline_run_duration_seconds_count", p) ?? 0) >= 2)
        let lastSuccess = try #require(value("bis_pipeline_last_success_timestamp_seconds", p), "\(text)")
        let run = try #require(try await live.engine.run(live.run))
        #expect(abs(lastSuccess - (run.finishedAt?.timeIntervalSince1970 ?? 0)) < 0.01, "\(lastSuccess) vs \(run)")

        // Per worker: the in-process worker's heartbeats.
        let workers = samples.filter { $0.name == "bis_worker_resident_memory_bytes" }
        #expect(!workers.isEmpty && workers.allSatisfy { $0.value > 0 && $0.labels["worker"] != nil }, "\(text)")
        #expect(samples.contains { $0.name == "bis_worker_cpu_seconds_total" && $0.value > 0 }, "\(text)")
        #expect(samples.contains { $0.name == "bis_worker_running_tasks" }, "\(text)")

        // Hummingbird's request metrics came along.
        #expect(samples.contains { $0.name == "hb_requests_total" && $0.labels["http_route"] == "/healthz" }, "\(text)")
        #expect(types["http_server_request_duration_seconds"] == "histogram", "\(types.keys.sorted())")
    }

    @Test(.enabled(if: LiveTools.chromiumEnabled, "no chromium (ops/setup installs it; BIS_REQUIRE_CHROMIUM=1 to insist)"))
    func theRunsDashboardRendersInHeadlessChromium() async throws {
        let live = try await LiveFleet.shared.value
        let chromium = try #require(LiveTools.chromium, "no chromium: run ops/setup or set BIS_CHROMIUM")
        let python = try #require(LiveTools.anyPython, "no python3 to decode the PNG")
        let png = try LiveTools.temp("run.png")
        let profile = (png as NSString).deletingLastPathComponent + "/profile"
        let url = "\(live.base)/runs/\(live.run)"
        let common = ["--headless", "--disable-gpu", "--no-sandbox", "--hide-scrollbars", "--no-first-run", "--disable-extensions",
                      "--user-data-dir=\(profile)"]
        let shot = try await runTool(chromium, common + ["--screenshot=\(png)", "--window-size=1280,1400", url])
        #expect(shot.status == 0, "\(shot.stderr)")
        let check = try PythonTool.run(python, [Bis.packageRoot + "/Tests/StagesTests/python/check_png.py", png])
        #expect(check.status == 0, "\(check.output)")
        let info = try #require(try JSONSerialization.jsonObject(with: Data(check.output.utf8)) as? [String: Any], "\(check.output)")
        #expect(info["width"] as? Int == 1280 && info["height"] as? Int == 1400, "\(info)")
        // Text, bars, badges and the lineage graph: far more than a blank page's one color.
        #expect((info["colors"] as? Int ?? 0) > 50, "\(info)")
        #expect((info["non_white"] as? Double ?? 0) > 0.01, "\(info)")

        let dom = try await runTool(chromium, common + ["--dump-dom", url])
        #expect(dom.status == 0, "\(dom.stderr)")
        #expect(dom.stdout.contains(live.run), "\(dom.stdout.prefix(2000))")
        for stage in live.stages { #expect(dom.stdout.contains(">\(stage.rawValue)<"), "stage \(stage.rawValue) missing from the page") }
        #expect(dom.stdout.contains("<svg"), "no lineage graph")
        // Ended: says after how long, and no longer refreshes itself.
        #expect(dom.stdout.contains("finished after"), "\(dom.stdout.prefix(2000))")
        #expect(!dom.stdout.contains("http-equiv=\"refresh\""))

        let index = try await runTool(chromium, common + ["--dump-dom", live.base + "/"])
        #expect(index.stdout.contains("href=\"/runs/\(live.run)\""), "\(index.stdout.prefix(2000))")
    }

    @Test(.enabled(if: LiveTools.openLineage.enabled, "no Python with openlineage-python (ops/setup; BIS_REQUIRE_PYTHON=1 to insist)"))
    func theOpenLineageExportOfAFinishedRunIsValidRunEvents() async throws {
        let live = try await LiveFleet.shared.value
        let ws = try Workspace()
        defer { ws.remove() }
        let r = try await Bis.run(["lineage", "export", live.run, "--openlineage"], in: ws.path, coordinator: live.base)
        #expect(r.status == 0, "\(r.stderr)")
        let file = try LiveTools.temp("events.jsonl")
        try r.stdout.write(toFile: file, atomically: true, encoding: .utf8)
        let check = try LiveTools.openLineage.script(LiveTools.scripts + "/check_openlineage.py", [file])
        #expect(check.status == 0, "\(check.output)")
        let summary = try #require(try JSONSerialization.jsonObject(with: Data(check.output.utf8)) as? [String: Any], "\(check.output)")
        #expect(Set(summary["jobs"] as? [String] ?? []) == Set(["orders-daily"] + Stage.pipeline.map { "orders-daily.\($0.rawValue)" }),
                "\(summary)")
        // The BIS run is the parent run every execution names, with its own START and COMPLETE around theirs.
        let events = try r.stdout.split(separator: "\n").map { try APICoding.decoder().decode(OpenLineageEvent.self, from: Data($0.utf8)) }
        let first = try #require(events.first), last = try #require(events.last)
        #expect(first.eventType == "START" && first.job.name == "orders-daily" && first.run.facets.bis_execution == nil)
        #expect(last.eventType == "COMPLETE" && last.job.name == "orders-daily" && last.run.runId == first.run.runId)
        #expect(events.dropFirst().dropLast().allSatisfy { $0.run.facets.parent?.run.runId == first.run.runId })
        #expect((summary["inputs"] as? Int ?? 0) > 0 && (summary["outputs"] as? Int ?? 0) > 0, "\(summary)")
        // Every input file appears as an input dataset of some event.
        for input in live.inputs { #expect(r.stdout.contains("\"name\":\"\(input)\""), "\(input)") }
    }

    @Test func aRunThatFailedItsGateTracesEveryTaskOfItsLastStageWatchesToExit1AndExportsAFail() async throws {
        let live = try await LiveFleet.shared.value
        // Nothing published: the tree starts at every validate partition's outputs, not one task's.
        let tree = try await live.engine.lineageTrace(live.failedRun)
        let producers = tree.inputs.compactMap(\.producedBy)
        #expect(Set(producers.map(\.stage)) == [.validate], "\(producers)")
        #expect(Set(producers.map(\.task)).count == 4, "\(producers.map(\.task))")

        let ws = try Workspace()
        defer { ws.remove() }
        let watch = try await Bis.run(["status", live.failedRun, "--watch"], in: ws.path, coordinator: live.base)
        #expect(watch.status == 1, "\(watch.stderr)")
        #expect(!watch.stdout.contains("\u{1b}"))
        #expect(watch.stdout.hasPrefix("run \(live.failedRun)  pipeline orders-daily  failed"), "\(watch.stdout)")
        #expect(watch.stdout.contains("the quality gate failed"), "\(watch.stdout)")

        let events = try await live.engine.openLineage(live.failedRun)
        let last = try #require(events.last)
        #expect(last.eventType == "FAIL" && last.job.name == "orders-daily")
        #expect(last.run.facets.errorMessage?.message.contains("max_failure_rate") == true, "\(String(describing: last.run.facets.errorMessage))")
    }

    @Test func quarantineAndLineageOfARealRunThroughTheCLI() async throws {
        let live = try await LiveFleet.shared.value
        let ws = try Workspace()
        defer { ws.remove() }
        // Ingest's rows name file and line; `--rule` picks a validate rule by kind or by name.
        let parse = try await Bis.run(["quarantine", live.run, "--rule", "parse", "--json"], in: ws.path, coordinator: live.base)
        #expect(parse.status == 0, "\(parse.stderr)")
        let parsed = try APICoding.decoder().decode([QuarantinedRow].self, from: Data(parse.stdout.utf8))
        #expect(!parsed.isEmpty && parsed.allSatisfy { $0.stage == .ingest && $0.file != nil && $0.line != nil })
        let allowed = try await Bis.run(["quarantine", live.run, "--rule", "allowed", "--json"], in: ws.path, coordinator: live.base)
        let byKind = try APICoding.decoder().decode([QuarantinedRow].self, from: Data(allowed.stdout.utf8))
        #expect(!byKind.isEmpty && byKind.allSatisfy { $0.rule.contains("allowed country") }, "\(allowed.stdout.prefix(1000))")
        // Validate's rows name the input file and line as ingest's do.
        #expect(byKind.allSatisfy { $0.stage == .validate && $0.file.map(live.inputs.contains) == true && ($0.line ?? 0) > 1 },
                "\(allowed.stdout.prefix(1000))")
        let named = try await Bis.run(["quarantine", live.run, "--rule", "allowed country", "--json"], in: ws.path, coordinator: live.base)
        #expect(try APICoding.decoder().decode([QuarantinedRow].self, from: Data(named.stdout.utf8)) == byKind)
        let table = try await Bis.run(["quarantine", live.run], in: ws.path, coordinator: live.base)
        #expect(table.status == 0)
        #expect(table.stdout.hasPrefix("file "), "\(table.stdout.prefix(500))")

        // The tree of the run ends at every input file, shown with its sha256.
        let trace = try await Bis.run(["lineage", "trace", live.run], in: ws.path, coordinator: live.base)
        #expect(trace.status == 0, "\(trace.stderr)")
        for input in live.inputs {
            #expect(trace.stdout.contains("input \(input)  sha256 \(try sha256(ofFile: input))"), "\(input)")
        }
        // A file's impact: both runs that read it; the first with its dataset version and delivery, the failed one with none.
        let impact = try await Bis.run(["lineage", "impact", live.inputs[0], "--json"], in: ws.path, coordinator: live.base)
        let report = try APICoding.decoder().decode(ImpactReport.self, from: Data(impact.stdout.utf8))
        #expect(report.runs.map(\.run) == [live.run, live.failedRun])
        #expect(report.runs.first?.datasets["orders"] != nil && report.runs.first?.deliveries.count == 1, "\(report)")
        #expect(report.runs.last?.state == .failed && report.runs.last?.datasets.isEmpty == true, "\(report)")
    }
}
