import Coordination
import CoordinatorHTTP
import FleetCore
import Foundation
import Logging
import Testing

/// `POST /api/runs` on the real engine with input roots: refusals are 403
/// with the engine's message; a glob error names no file outside the roots.
@Suite struct InputRootsRouteTests {
    static let spec = """
        pipeline: orders
        sources:
          orders:
            format: csv
            files: FILES
            columns: {id: int64}

        """

    func withRootedServer(_ body: @Sendable (HTTPClient, _ dir: String, _ root: String) async throws -> Void) async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("bis-roots-http-\(UUID().uuidString)").path
        let fm = FileManager.default
        for (path, text) in [("in/specs/data/a.csv", "id\n1\n"), ("outside/secret-ledger.csv", "id\n3\n")] {
            try fm.createDirectory(atPath: (dir + "/" + path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try text.write(toFile: dir + "/" + path, atomically: true, encoding: .utf8)
        }
        try fm.createDirectory(atPath: dir + "/store", withIntermediateDirectories: true)
        defer { try? fm.removeItem(atPath: dir) }
        let roots = try InputRoots(resolving: [dir + "/in"], relativeTo: "/")
        var logger = Logger(label: "test.http")
        logger.logLevel = .critical
        let transport = InMemoryTransport()
        let engine = CoordinatorEngine(store: try LineageStore(path: dir + "/store/bis.db"), transport: transport,
                                       chunkStore: ChunkStore(root: dir + "/store"), options: CoordinatorOptions(inputRoots: roots),
                                       logger: logger)
        let server = CoordinatorServer(service: engine, port: 0, logger: logger)
        let serving = Task { try await server.run() }
        defer { serving.cancel() }
        let port = try await server.boundPort()
        try await body(HTTPClient(base: "http://127.0.0.1:\(port)"), dir, roots.paths[0])
        await transport.close()
    }

    func text(_ files: String) -> String { Self.spec.replacingOccurrences(of: "FILES", with: files) }

    @Test func pathsOutsideTheInputRootsAre403WithAMessage() async throws {
        try await withRootedServer { http, dir, root in
            let policy = "this coordinator reads specs and input files only under its input root \(root) (bis coordinator --input-root)"
            let wide = try await http.post("/api/runs", json: SubmitRequest(specPath: dir + "/in/specs/p.yml", specText: text("data/*.csv"),
                                                                            allowedRoots: ["/"], submittedBy: "eve@host"))
            #expect(wide.status == 403)
            #expect(wide.contentType?.hasPrefix("application/json") == true)
            #expect(wide.error == "the allowed root / is not a folder under the coordinator's input roots (a client may only narrow them): \(policy)")
            let unread = try await http.post("/api/runs", json: SubmitRequest(specPath: dir + "/outside/secret-ledger.csv", submittedBy: "eve@host"))
            #expect(unread.status == 403)
            #expect(unread.error == "the spec's folder \(dir)/outside is not a folder under the coordinator's input roots: \(policy)")
            let inline = try await http.post("/api/runs", json: SubmitRequest(specPath: dir + "/outside/p.yml", specText: text("*.csv"),
                                                                              submittedBy: "eve@host"))
            #expect(inline.status == 403)
            let all = try await http.post("/api/runs", json: SubmitRequest(specPath: dir + "/in/specs/p.yml", specText: text("'/**'"),
                                                                           submittedBy: "eve@host"))
            #expect(all.status == 403)
            #expect(all.error == "\(dir)/in/specs/p.yml:5:12: '/**' in source 'orders' is outside the allowed input root \(root)/specs: "
                    + "a glob must lie under one of them (relative globs start at \(root)/specs)")
            let climb = try await http.post("/api/runs", json: SubmitRequest(specPath: dir + "/in/specs/p.yml",
                                                                             specText: text("'../../outside/*.csv'"), submittedBy: "eve@host"))
            #expect(climb.status == 403)
            #expect(climb.error?.contains("secret-ledger") == false)
            let runs = try await http.get("/api/runs")
            #expect(runs.text == "[]")
        }
    }

    @Test func aSubmitUnderTheRootsIsAccepted() async throws {
        try await withRootedServer { http, dir, root in
            let ok = try await http.post("/api/runs", json: SubmitRequest(specPath: dir + "/in/specs/p.yml", specText: text("data/*.csv"),
                                                                          allowedRoots: [dir + "/in/specs/data"], submittedBy: "ann@host"))
            #expect(ok.status == 201, "\(ok.text)")
            let none = try await http.post("/api/runs", json: SubmitRequest(specPath: dir + "/in/specs/p.yml", specText: text("data/*.tsv"),
                                                                            submittedBy: "ann@host"))
            #expect(none.status == 400)
            #expect(none.error == "\(dir)/in/specs/p.yml:5:12: no file matches 'data/*.tsv' in source 'orders' under the allowed input "
                    + "root \(root)/specs (relative globs start at \(root)/specs)")
        }
    }
}
