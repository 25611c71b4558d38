import Coordination
import CoordinatorHTTP
import FleetCore
import Foundation
import Logging
import ServiceLifecycle
import Testing

/// Every route over a fake service: status codes, JSON shapes, error mapping.
@Suite struct RouteTests {
    @Test func healthzAnswersOk() async throws {
        try await withServer { _, http in
            let a = try await http.get("/healthz")
            #expect(a.status == 200)
            #expect(a.text == "ok")
        }
    }

    @Test func submitAnswers201WithTheRunAndPassesTheRequestOn() async throws {
        try await withServer { fake, http in
            let request = SubmitRequest(specPath: "/data/orders.yml", specText: "pipeline: orders\n",
                                        allowedRoots: ["/data/in"], submittedBy: "ann@host")
            let a = try await http.post("/api/runs", json: request)
            #expect(a.status == 201, "\(a.text)")
            #expect(a.contentType?.hasPrefix("application/json") == true)
            let object = try #require(a.object)
            #expect(object["state"] as? String == "pending")
            #expect(object["pipeline"] as? String == "orders")
            // ISO-8601 in UTC, not seconds since 1970.
            #expect(object["submittedAt"] as? String == "2026-11-18T11:06:40.000Z")
            let stages = try #require(object["stages"] as? [[String: Any]])
            #expect(stages.first?["stage"] as? String == "ingest")
            let sent = await fake.submitted
            #expect(sent.count == 1)
            #expect(sent.first?.specText == "pipeline: orders\n")
            #expect(sent.first?.allowedRoots == ["/data/in"])
            #expect(sent.first?.submittedBy == "ann@host")
        }
    }

    @Test func keysAreSorted() async throws {
        try await withServer { fake, http in
            await fake.add(sampleRun("r1", .running))
            let text = try await http.get("/api/runs/r1").text
            let keys = ["approvalRequired", "id", "pipeline", "published", "specSHA256", "stages", "state", "submittedAt", "submittedBy"]
            let positions = keys.map { text.range(of: "\"\($0)\":")?.lowerBound }
            #expect(positions.allSatisfy { $0 != nil }, "\(text)")
            #expect(positions.compactMap { $0 } == positions.compactMap { $0 }.sorted(), "\(text)")
        }
    }

    @Test func specErrorsFromTheServiceAre400WithTheirMessage() async throws {
        try await withServer { fake, http in
            await fake.refuseSpecs("orders.yml:3:5: unknown format 'xml'")
            let a = try await http.post("/api/runs", json: SubmitRequest(specPath: "/x/orders.yml", submittedBy: "ann@host"))
            #expect(a.status == 400)
            #expect(a.error == "orders.yml:3:5: unknown format 'xml'")
        }
    }

    @Test func badJSONIs400NamingWhatIsWrong() async throws {
        try await withServer { _, http in
            let missing = try await http.post("/api/runs", raw: #"{"specPath": "/x.yml", "allowedRoots": []}"#)
            #expect(missing.status == 400)
            #expect(missing.error?.contains("submittedBy") == true, "\(missing.text)")

            let wrongType = try await http.post("/api/runs", raw: #"{"specPath": 7, "allowedRoots": [], "submittedBy": "a@b"}"#)
            #expect(wrongType.status == 400)
            #expect(wrongType.error?.contains("'specPath' should be a string") == true, "\(wrongType.text)")

            let notJSON = try await http.post("/api/runs", raw: "pipeline: orders")
            #expect(notJSON.status == 400)
            #expect(notJSON.error?.contains("not valid JSON") == true, "\(notJSON.text)")

            let empty = try await http.send("POST", "/api/runs", body: nil)
            #expect(empty.status == 400)
            #expect(empty.error?.contains("needs a JSON SubmitRequest body") == true, "\(empty.text)")

            let noActor = try await http.post("/api/runs/r1/approve", raw: "{}")
            #expect(noActor.status == 400)
            #expect(noActor.error?.contains("'by'") == true, "\(noActor.text)")
        }
    }

    @Test func runsListsMostRecentFirstUpToTheLimit() async throws {
        try await withServer { fake, http in
            await fake.add(sampleRun("r1", .succeeded))
            await fake.add(sampleRun("r2", .running))
            await fake.add(sampleRun("r3", .failed))
            let all = try await http.get("/api/runs")
            #expect(all.status == 200)
            #expect(try all.decode([RunView].self).map(\.id) == ["r3", "r2", "r1"])
            #expect(await fake.lastLimit == 20)

            let two = try await http.get("/api/runs?limit=2")
            #expect(try two.decode([RunView].self).map(\.id) == ["r3", "r2"])
            #expect(await fake.lastLimit == 2)

            for bad in ["0", "-1", "many"] {
                let a = try await http.get("/api/runs?limit=\(bad)")
                #expect(a.status == 400)
                #expect(a.error?.contains("limit must be a whole number") == true, "\(a.text)")
            }
        }
    }

    @Test func oneRunComesBackWholeOr404() async throws {
        try await withServer { fake, http in
            let run = sampleRun("orders-20261127T050000Z-0001", .failed)
            await fake.add(run)
            let a = try await http.get("/api/runs/orders-20261127T050000Z-0001")
            #expect(a.status == 200)
            #expect(try a.decode(RunView.self) == run)

            let missing = try await http.get("/api/runs/nope")
            #expect(missing.status == 404)
            #expect(missing.error == "no run nope")
        }
    }

    @Test func actionsMoveTheRunOrAnswer409Or404() async throws {
        try await withServer { fake, http in
            await fake.add(sampleRun("r1", .awaitingApproval))
            await fake.add(sampleRun("r2", .failed))
            await fake.add(sampleRun("r3", .running))

            let approved = try await http.post("/api/runs/r1/approve", json: ActionRequest(by: "bob@host"))
            #expect(approved.status == 200, "\(approved.text)")
            #expect(try approved.decode(RunView.self).state == .running)
            #expect(try approved.decode(RunView.self).approvedBy == "bob@host")

            let retried = try await http.post("/api/runs/r2/retry", json: ActionRequest(by: "bob@host"))
            #expect(retried.status == 200)
            #expect(try retried.decode(RunView.self).state == .running)

            let cancelled = try await http.post("/api/runs/r3/cancel", json: ActionRequest(by: "bob@host"))
            #expect(cancelled.status == 200)
            #expect(try cancelled.decode(RunView.self).state == .cancelled)

            let again = try await http.post("/api/runs/r3/cancel", json: ActionRequest(by: "bob@host"))
            #expect(again.status == 409)
            #expect(again.error == "run r3 is cancelled: cannot cancel it")

            let missing = try await http.post("/api/runs/nope/approve", json: ActionRequest(by: "bob@host"))
            #expect(missing.status == 404)
            #expect(missing.error == "no run nope")

            #expect(await fake.actions == ["approve r1 by bob@host", "retry r2 by bob@host", "cancel r3 by bob@host"])
        }
    }

    @Test func workersComeBackAsJSON() async throws {
        try await withServer { fake, http in
            let worker = WorkerView(id: "w1", host: "node-a", pid: 4242, version: "0.4.0", state: .running,
                                    lastSeen: FakeCoordinatorService.epoch, running: ["r1/ingest/0"], quiet: false)
            await fake.setWorkers([worker])
            let a = try await http.get("/api/workers")
            #expect(a.status == 200)
            #expect(try a.decode([WorkerView].self) == [worker])
            let first = try #require((try a.json() as? [[String: Any]])?.first)
            #expect(first["host"] as? String == "node-a")
            #expect(first["lastSeen"] as? String == "2026-11-18T11:06:40.000Z")
        }
    }

    @Test func metricsArePrometheusText() async throws {
        try await withServer { fake, http in
            await fake.add(sampleRun("r1", .running))
            let a = try await http.get("/metrics")
            #expect(a.status == 200)
            #expect(a.contentType == "text/plain; version=0.0.4; charset=utf-8")
            #expect(a.text.contains("bis_runs{state=\"running\"} 1"))
            // The workers' reconnects can drop (a worker gone): a gauge, not a counter's series.
            #expect(a.text.contains("# TYPE bis_worker_broker_reconnects gauge"))
            #expect(!a.text.contains("bis_broker_reconnects_total{client=\"workers\"}"))
        }
    }

    @Test func aBodyOverFourMebibytesIs413() async throws {
        try await withServer { fake, http in
            let huge = SubmitRequest(specPath: "/x.yml", specText: String(repeating: "#", count: 5 << 20), submittedBy: "a@b")
            let a = try await http.post("/api/runs", json: huge)
            #expect(a.status == 413)
            #expect(a.error == "the request body is too large")
            #expect(await fake.submitted.isEmpty)
        }
    }

    @Test func anUnknownRouteIsAJSON404() async throws {
        try await withServer { _, http in
            let a = try await http.get("/api/nothing")
            #expect(a.status == 404)
            #expect(a.error?.contains("no route GET /api/nothing") == true, "\(a.text)")
        }
    }
}

/// The token rule: with a token (BIS_TOKEN: one admin), every route but
/// /healthz needs `Authorization: Bearer <token>`.
@Suite struct TokenTests {
    static let token = "s3cret-token"

    @Test func postsWithoutTheTokenAre401AndDoNothing() async throws {
        try await withServer(token: Self.token) { fake, http in
            await fake.add(sampleRun("r1", .running))
            let submit = SubmitRequest(specPath: "/x/orders.yml", submittedBy: "ann@host")
            for (label, answer) in [
                ("none", try await http.post("/api/runs", json: submit)),
                ("wrong", try await http.post("/api/runs", json: submit, token: "s3cret-tokem")),
                ("prefix", try await http.post("/api/runs", json: submit, token: "s3cret")),
                ("longer", try await http.post("/api/runs", json: submit, token: Self.token + "x")),
                ("not bearer", try await http.send("POST", "/api/runs", body: try APICoding.encoder().encode(submit),
                                                   authorization: "Basic \(Self.token)")),
                ("cancel", try await http.post("/api/runs/r1/cancel", json: ActionRequest(by: "eve@host"))),
            ] {
                #expect(answer.status == 401, "\(label)")
                #expect(answer.text == #"{"error":"this coordinator requires a token: set BIS_TOKEN"}"#, "\(label)")
            }
            #expect(await fake.submitted.isEmpty)
            #expect(await fake.actions.isEmpty)
        }
    }

    @Test func postsWithTheTokenGoThrough() async throws {
        try await withServer(token: Self.token) { fake, http in
            await fake.add(sampleRun("r1", .running))
            let a = try await http.post("/api/runs", json: SubmitRequest(specPath: "/x/orders.yml", submittedBy: "ann@host"),
                                        token: Self.token)
            #expect(a.status == 201, "\(a.text)")
            let c = try await http.post("/api/runs/r1/cancel", json: ActionRequest(by: "ann@host"), token: Self.token)
            #expect(c.status == 200, "\(c.text)")
        }
    }

    // Issue 12 item 4: GETs used to stay open with a token (this test asserted it).
    @Test func getsNeedTheTokenTooButHealthz() async throws {
        try await withServer(token: Self.token) { fake, http in
            await fake.add(sampleRun("r1", .running))
            for path in ["/api/runs", "/api/runs/r1", "/api/workers", "/metrics"] {
                let a = try await http.get(path)
                #expect(a.status == 401, "\(path): \(a.text)")
                let b = try await http.send("GET", path, body: nil, token: Self.token)
                #expect(b.status == 200, "\(path): \(b.text)")
            }
            #expect(try await http.get("/healthz").status == 200)
        }
    }
}

@Suite struct ServerLifecycleTests {
    @Test func runReturnsWhenItsTaskIsCancelled() async throws {
        let server = CoordinatorServer(service: FakeCoordinatorService(), port: 0, logger: Logger(label: "test"))
        let serving = Task { try await server.run() }
        let port = try await server.boundPort()
        #expect(port > 0)
        serving.cancel()
        // Either a clean return or a CancellationError: both mean it stopped.
        _ = try? await serving.value
        let http = HTTPClient(base: "http://127.0.0.1:\(port)")
        await #expect(throws: (any Error).self) { try await http.get("/healthz") }
    }

    @Test func aServiceGroupsGracefulShutdownStopsIt() async throws {
        let server = CoordinatorServer(service: FakeCoordinatorService(), port: 0, logger: Logger(label: "test"))
        let group = ServiceGroup(configuration: .init(services: [server], logger: Logger(label: "test")))
        let running = Task { try await group.run() }
        let port = try await server.boundPort()
        let http = HTTPClient(base: "http://127.0.0.1:\(port)")
        let before = try await http.get("/healthz")
        #expect(before.status == 200)
        await group.triggerGracefulShutdown()
        try await running.value
        await #expect(throws: (any Error).self) { try await http.get("/healthz") }
    }

    @Test func aPortInUseFailsRunAndBoundPort() async throws {
        let first = CoordinatorServer(service: FakeCoordinatorService(), port: 0, logger: Logger(label: "test"))
        let serving = Task { try await first.run() }
        defer { serving.cancel() }
        let port = try await first.boundPort()
        let second = CoordinatorServer(service: FakeCoordinatorService(), port: port, logger: Logger(label: "test"))
        let clash = Task { try await second.run() }
        await #expect(throws: (any Error).self) { try await second.boundPort() }
        await #expect(throws: (any Error).self) { try await clash.value }
    }
}
