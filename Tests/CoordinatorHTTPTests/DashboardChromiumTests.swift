import Columnar
import Coordination
import CoordinatorHTTP
import FleetCore
import Foundation
import Logging
import Testing
import TestSupport
import WorkerRuntime

/// The dashboard's buttons in headless Chromium (issue 13): the real engine
/// and worker, the orders pipeline registered, the server with principals.
/// Chromium is driven over the DevTools protocol by
/// python/dashboard_clicks.py: sign in, Run now, sign out, Approve as
/// another principal; a viewer sees no buttons. A POST without the CSRF
/// token is refused (a plain HTTP request) and starts nothing.
@Suite(.serialized) struct DashboardChromiumTests {
    @Test(.enabled(if: LiveTools.chromiumEnabled, "no chromium (ops/setup installs it; BIS_REQUIRE_CHROMIUM=1 to insist)"))
    func signInRunNowApproveAndAViewerSeesNoButtons() async throws {
        let chromium = try #require(LiveTools.chromium, "no chromium: run ops/setup or set BIS_CHROMIUM")
        let python = try #require(LiveTools.anyPython, "no python3 to drive chromium")
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("bis-dash-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir + "/orders", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: Bis.packageRoot + "/examples/orders/data", toPath: dir + "/orders/data")
        let spec = dir + "/orders/pipeline.yml"
        try FileManager.default.copyItem(atPath: Bis.packageRoot + "/examples/orders/pipeline.yml", toPath: spec)
        let root = ChunkStore(root: dir + "/root")
        try FileManager.default.createDirectory(atPath: root.root, withIntermediateDirectories: true)
        var logger = Logger(label: "test.dashboard")
        logger.logLevel = .critical
        let transport = InMemoryTransport()
        let engine = CoordinatorEngine(store: try LineageStore(path: root.root + "/bis.db"), transport: transport,
                                       chunkStore: root, logger: logger)
        try await engine.start()
        let worker = FleetWorker(transport: transport, chunkStore: root, concurrency: 2, logger: logger)
        let working = Task { try await worker.run() }
        defer { working.cancel() }
        let ann = Caller(principal: Principal(name: "ann", role: .operator), claimedName: "ann")
        let added = try await engine.addPipeline(PipelineAddRequest(specPath: spec, specText: try String(contentsOfFile: spec, encoding: .utf8),
                                                                    by: "ann"), as: ann)
        let pipeline = added.pipeline.name
        let server = CoordinatorServer(service: engine, port: 0, access: try Principals.access(), logger: logger)
        let serving = Task { try await server.run() }
        defer { serving.cancel() }
        let base = "http://127.0.0.1:\(try await server.boundPort())"

        // A POST without the CSRF token (a plain HTTP request) is refused and starts nothing.
        let browser = Browser(base: base)
        let cookie = try await browser.signIn(Principals.tokens["ann"]!)
        let refused = try await browser.send("POST", "/pipelines/\(pipeline)/run", cookie: cookie, form: [:])
        #expect(refused.status == 403, "\(refused.body)")
        #expect(try await engine.runs(limit: 10).isEmpty)

        let out = try await runTool(python, [Bis.packageRoot + "/Tests/CoordinatorHTTPTests/python/dashboard_clicks.py", chromium,
                                             dir + "/profile", base, pipeline, Principals.tokens["ann"]!,
                                             Principals.tokens["bob"]!, Principals.tokens["vera"]!])
        let seen = try #require(try JSONSerialization.jsonObject(with: Data(out.stdout.utf8)) as? [String: Any], "\(out.stdout) \(out.stderr)")
        #expect(seen["error"] == nil, "\(seen)")
        #expect((seen["operator_header"] as? String)?.contains("ann") == true, "\(seen)")
        #expect(seen["operator_pipeline_buttons"] as? [String] == ["Sign out", "Run now", "Pause"], "\(seen)")
        #expect(seen["approver_run_buttons"] as? [String] == ["Sign out", "Approve"], "\(seen)")
        #expect(seen["viewer_pipeline_buttons"] as? [String] == ["Sign out"], "\(seen)")
        #expect(seen["viewer_run_buttons"] as? [String] == ["Sign out"], "\(seen)")
        #expect((seen["viewer_pipelines_text"] as? String)?.contains(pipeline) == true)

        // The run Chromium started and approved: through the engine, audited by name.
        let run = try #require(seen["run"] as? String, "\(seen)")
        let done = try await engine.waitUntilSettled(run)
        #expect(done.state == .succeeded, "\(done.message ?? "")")
        #expect(done.submitterPrincipal == "ann" && done.approvedBy == "bob", "\(done)")
        let audit = try await engine.audit(run: run, limit: 100)
        #expect(audit.contains { $0.principal == "bob" && $0.action == "run.approved" }, "\(audit.map { "\($0.actor) \($0.action)" })")
        #expect(audit.contains { $0.principal == "ann" && $0.action.hasPrefix("run.") }, "\(audit.map { "\($0.actor) \($0.action)" })")
        #expect(try await engine.runs(limit: 10).count == 1)
        // The finished run's page lists the worker that ran it, and publish feeds the datasets.
        let page = try await browser.send("GET", "/runs/\(run)", cookie: cookie)
        // (the workers still running its last tasks while their heartbeats say so, then those the store names).
        let workers = page.body.components(separatedBy: "<h2>Workers</h2>").last ?? ""
        #expect(!page.body.contains("no worker has reported yet") && workers.contains("<tr><td>"), "\(page.body)")
        #expect(page.body.contains(#"data-from="publish""#))
        let pipelines = try await browser.send("GET", "/pipelines", cookie: cookie)
        #expect(pipelines.body.contains(#"class="slot succeeded" href="/runs/\#(run)""#), "\(pipelines.body)")
    }
}
