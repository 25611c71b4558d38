import Coordination
import CoordinatorHTTP
import Crypto
import FleetCore
import FleetWire
import Foundation
import Logging
import Testing
import TestSupport

/// `GET /api/datasets`, `GET /api/datasets/{name}`, `POST
/// /api/datasets/{name}/rollback` and `bis datasets|dataset show|dataset
/// rollback` over the real engine, on a data root whose `published/` folder
/// is written here as publish lays it out (manifests, CURRENT, view.sql).
@Suite(.serialized) struct DatasetRouteTests {
    struct Root {
        let dir: String
        var data: String { dir + "/root" }
        var published: String { data + "/published" }

        init() throws {
            dir = FileManager.default.temporaryDirectory.appendingPathComponent("bis-datasets-\(UUID().uuidString)").path
            try FileManager.default.createDirectory(atPath: dir + "/root/published", withIntermediateDirectories: true)
        }

        /// A version folder of `run` with one file of `rows` lines and a manifest, as publish writes it.
        func version(_ dataset: String, _ run: String, rows: Int64, created: String, columns: [(String, String, Bool)],
                     kind: String = "dataset") throws {
            let folder = published + "/\(dataset)/\(run)"
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            let bytes = Data("rows of \(run)\n".utf8)
            try bytes.write(to: URL(fileURLWithPath: folder + "/part-00000.parquet"))
            let sha = SHA256.hash(data: bytes).map { String(format: "%02x", $0) }.joined()
            let schema = columns.map { #"{"name":"\#($0.0)","nullable":\#($0.2),"type":"\#($0.1)"}"# }.joined(separator: ",")
            let manifest = """
                {"bis_version":"0.1.0","bytes":\(bytes.count),"created":"\(created)","dataset":"\(dataset)",
                 "files":[{"bytes":\(bytes.count),"name":"part-00000.parquet","rows":\(rows),"sha256":"\(sha)"}],
                 "format_version":1,"kind":"\(kind)","pipeline":"orders","rows":\(rows),"run":"\(run)","schema":[\(schema)]}
                """
            try manifest.write(toFile: folder + "/_manifest.json", atomically: true, encoding: .utf8)
        }

        func setCurrent(_ dataset: String, _ run: String) throws {
            try (run + "\n").write(toFile: published + "/\(dataset)/CURRENT", atomically: true, encoding: .utf8)
        }

        func current(_ dataset: String) -> String? {
            try? String(contentsOfFile: published + "/\(dataset)/CURRENT", encoding: .utf8)
        }

        func view(_ dataset: String) -> String? {
            try? String(contentsOfFile: published + "/\(dataset)/view.sql", encoding: .utf8)
        }

        func remove() { try? FileManager.default.removeItem(atPath: dir) }
    }

    static let columns = [("id", "int64", false), ("revenue", "decimal(18,4)", true)]

    /// Two versions of `orders` (CURRENT r2) and one of summary `orders_by_day`.
    static func populated() throws -> Root {
        let root = try Root()
        try root.version("orders", "r1", rows: 10, created: "2026-11-27T03:40:00.000Z", columns: columns)
        try root.version("orders", "r2", rows: 12, created: "2026-11-28T03:40:00.000Z", columns: columns + [("note", "string", true)])
        try root.setCurrent("orders", "r2")
        try root.version("orders_by_day", "r2", rows: 3, created: "2026-11-28T03:40:00.000Z", columns: [("day", "date", true)],
                         kind: "summary")
        try root.setCurrent("orders_by_day", "r2")
        return root
    }

    /// The real engine over `root`, served with `access` (nil: no auth).
    static func withEngine<T: Sendable>(_ root: Root, access: Access? = nil,
                                        _ body: @Sendable (CoordinatorEngine, HTTPClient) async throws -> T) async throws -> T {
        var logger = Logger(label: "test.datasets")
        logger.logLevel = .critical
        let engine = CoordinatorEngine(store: try LineageStore(path: root.dir + "/store/bis.db"), transport: InMemoryTransport(),
                                       chunkStore: ChunkStore(root: root.data), logger: logger)
        // As a coordinator does when it starts: view.sql written for every CURRENT.
        await engine.repairDatasetViews()
        let server = CoordinatorServer(service: engine, port: 0, access: access, logger: logger)
        let serving = Task { try await server.run() }
        defer { serving.cancel() }
        let port = try await server.boundPort()
        return try await body(engine, HTTPClient(base: "http://127.0.0.1:\(port)"))
    }

    @Test func listAndShowReadThePublishedFolders() async throws {
        let root = try Self.populated()
        defer { root.remove() }
        try await Self.withEngine(root) { _, http in
            let list = try await http.get("/api/datasets")
            #expect(list.status == 200)
            let views = try list.decode([DatasetView].self)
            #expect(views.map(\.name) == ["orders", "orders_by_day"])
            #expect(views[0].versions == 2 && views[0].current == "r2" && views[0].rows == 12 && views[0].kind == "dataset")
            #expect(views[0].schemaSHA256?.count == 64)
            #expect(views[1].kind == "summary" && views[1].versions == 1)

            let show = try await http.get("/api/datasets/orders")
            let detail = try show.decode(DatasetDetail.self)
            #expect(detail.versions.map(\.run) == ["r2", "r1"] && detail.versions.map(\.current) == [true, false])
            #expect(detail.versions.map(\.path) == ["published/orders/r2", "published/orders/r1"])
            #expect(detail.versions[0].schemaSHA256 == views[0].schemaSHA256)
            #expect(detail.versions[0].schemaSHA256 != detail.versions[1].schemaSHA256)
            #expect(detail.columns.map(\.name) == ["id", "revenue", "note"])
            // The hash is the documented one: compact sorted JSON of the r1 schema.
            let r1 = #"[{"name":"id","nullable":false,"type":"int64"},{"name":"revenue","nullable":true,"type":"decimal(18,4)"}]"#
            #expect(detail.versions[1].schemaSHA256 == SHA256.hash(data: Data(r1.utf8)).map { String(format: "%02x", $0) }.joined())

            let missing = try await http.get("/api/datasets/nope")
            #expect(missing.status == 404)
            #expect(missing.error == "no published dataset 'nope' (there are: orders, orders_by_day)")
        }
    }

    @Test func rollbackMovesCurrentWritesTheViewAndAnAuditRow() async throws {
        let root = try Self.populated()
        defer { root.remove() }
        try await Self.withEngine(root) { engine, http in
            let back = try await http.post("/api/datasets/orders/rollback", json: RollbackRequest(to: "r1", by: "ann@host"))
            #expect(back.status == 200, "\(back.text)")
            let result = try back.decode(RollbackResult.self)
            #expect(result.from == "r2" && result.to == "r1" && result.moved)
            #expect(result.detail.dataset.current == "r1")
            #expect(root.current("orders") == "r1\n")
            #expect(root.view("orders")?.contains("/published/orders/r1/part-00000.parquet") == true)
            #expect(root.view("orders")?.contains(#"CREATE OR REPLACE VIEW "orders""#) == true)
            let audit = try await engine.audit(run: "r1", limit: 10)
            #expect(audit.map(\.action) == ["dataset.rolled_back"])
            #expect(audit.first?.actor == "ann@host" && audit.first?.principal == "anonymous")
            #expect(audit.first?.detail == "dataset orders: CURRENT moved from r2 to r1")

            // Forward again, then the same again: nothing moves.
            let forward = try await http.post("/api/datasets/orders/rollback", json: RollbackRequest(to: "r2", by: "ann@host"))
            #expect(try forward.decode(RollbackResult.self).moved && root.current("orders") == "r2\n")
            let again = try await http.post("/api/datasets/orders/rollback", json: RollbackRequest(to: "r2", by: "ann@host"))
            #expect(try again.decode(RollbackResult.self).moved == false)
        }
    }

    @Test func rollbackRefusesUnknownDatasetsMissingVersionsAndDamagedOnes() async throws {
        let root = try Self.populated()
        defer { root.remove() }
        try await Self.withEngine(root) { engine, http in
            let unknown = try await http.post("/api/datasets/nope/rollback", json: RollbackRequest(to: "r1", by: "ann@host"))
            #expect(unknown.status == 404 && unknown.error?.contains("no published dataset 'nope'") == true, "\(unknown.text)")
            let noVersion = try await http.post("/api/datasets/orders/rollback", json: RollbackRequest(to: "r9", by: "ann@host"))
            #expect(noVersion.status == 404)
            #expect(noVersion.error == "dataset 'orders' has no version of run 'r9' (its versions: r2, r1): "
                    + "`bis dataset show orders` lists them")
            let empty = try await http.post("/api/datasets/orders/rollback", raw: #"{"to":" ","by":"ann@host"}"#)
            #expect(empty.status == 400)
            try "changed".write(toFile: root.published + "/orders/r1/part-00000.parquet", atomically: true, encoding: .utf8)
            let damaged = try await http.post("/api/datasets/orders/rollback", json: RollbackRequest(to: "r1", by: "ann@host"))
            #expect(damaged.status == 409 && damaged.error?.contains("is damaged") == true, "\(damaged.text)")
            #expect(root.current("orders") == "r2\n")
            #expect(try await engine.audit(run: nil, limit: 10).filter { $0.action == "dataset.rolled_back" }.isEmpty)
        }
    }

    @Test func theAuditLogHasTheRequestAndItsOutcomeAndProblemsAreFlagged() async throws {
        let root = try Self.populated()
        defer { root.remove() }
        try await Self.withEngine(root) { engine, http in
            _ = try await http.post("/api/datasets/orders/rollback", json: RollbackRequest(to: "r1", by: "ann@host"))
            let back = try await http.post("/api/datasets/orders/rollback", json: RollbackRequest(to: "r1", by: "ann@host"))
            let result = try back.decode(RollbackResult.self)
            #expect(!result.moved && result.fromSchemaSHA256 == result.detail.dataset.schemaSHA256)
            let missing = try await http.post("/api/datasets/orders/rollback", json: RollbackRequest(to: "r9", by: "ann@host"))
            #expect(missing.status == 404)
            let rows = try await engine.audit(run: nil, limit: 20).filter { $0.action.hasPrefix("dataset.") }
            #expect(rows.map(\.action).sorted() == ["dataset.rollback_refused", "dataset.rollback_requested", "dataset.rollback_requested",
                                                     "dataset.rollback_requested", "dataset.rollback_unchanged", "dataset.rolled_back"])
            let requested = rows.filter { $0.action == "dataset.rollback_requested" }.compactMap(\.detail)
            #expect(requested.contains { $0.hasPrefix("dataset orders: rollback to r1 requested; CURRENT names r2 (readers' schema changes: sha256 ") },
                    "\(requested)")
            #expect(requested.contains("dataset orders: rollback to r1 requested; CURRENT names r1"), "\(requested)")
            #expect(rows.first { $0.action == "dataset.rollback_unchanged" }?.detail == "dataset orders: CURRENT already named r1; view.sql checked")
            #expect(rows.first { $0.action == "dataset.rollback_refused" }?.detail?.hasPrefix(
                "dataset orders: rollback to r9 refused: dataset 'orders' has no version of run 'r9'") == true)

            // CURRENT naming a version that is gone: shown as written, and flagged.
            try root.setCurrent("orders", "r7")
            let view = try await http.get("/api/datasets").decode([DatasetView].self)[0]
            #expect(view.current == "r7" && view.rows == nil)
            #expect(view.problem == "CURRENT names r7, which is not a readable version of orders")
            let list = try await Bis.run(["datasets"], in: root.dir, coordinator: http.base)
            #expect(list.stdout.contains("\n! orders: CURRENT names r7, which is not a readable version of orders"), "\(list.stdout)")
        }
    }

    @Test func aDatasetPublishedOutsideTheStoreIsNamedWhenTraced() async throws {
        let root = try Self.populated()
        defer { root.remove() }
        try await Self.withEngine(root) { engine, _ in
            let error = await #expect(throws: ServiceError.self) { _ = try await engine.lineageTrace("orders") }
            #expect("\(error.map { "\($0)" } ?? "")".contains("dataset orders's CURRENT names run r2, whose version the lineage store does not know"),
                    "\(String(describing: error))")
        }
    }

    @Test func pathsOutOfThePublishedFolderAreRefused() async throws {
        let root = try Self.populated()
        defer { root.remove() }
        // A dataset-looking folder outside published/, reached by `..` or by a symlink.
        let outside = root.data + "/outside"
        try root.version("../outside", "r1", rows: 1, created: "2026-11-27T03:40:00.000Z", columns: Self.columns)
        try root.version("../outside", "r2", rows: 2, created: "2026-11-28T03:40:00.000Z", columns: Self.columns)
        try "r2\n".write(toFile: outside + "/CURRENT", atomically: true, encoding: .utf8)
        try FileManager.default.createSymbolicLink(atPath: root.published + "/linked", withDestinationPath: outside)
        try await Self.withEngine(root) { engine, http in
            for name in ["..%2Foutside", "%2e%2e%2Foutside", "%2E%2E", "..", "linked"] {
                let r = try await http.post("/api/datasets/\(name)/rollback", json: RollbackRequest(to: "r1", by: "ann@host"))
                #expect(r.status == 404, "\(name): \(r.status) \(r.text)")
                let show = try await http.get("/api/datasets/\(name)")
                #expect(show.status == 404, "\(name): \(show.status) \(show.text)")
            }
            #expect(try String(contentsOfFile: outside + "/CURRENT", encoding: .utf8) == "r2\n")
            #expect(!FileManager.default.fileExists(atPath: outside + "/view.sql"))
            #expect(!FileManager.default.fileExists(atPath: outside + "/.rollback"))
            let list = try await http.get("/api/datasets").decode([DatasetView].self)
            #expect(list.map(\.name) == ["orders", "orders_by_day"])
            #expect(try await engine.audit(run: nil, limit: 20).filter { $0.action.hasPrefix("dataset.") }.isEmpty)
        }
    }

    @Test func rollbackNeedsTheOperatorRoleAndRecordsThePrincipal() async throws {
        let root = try Self.populated()
        defer { root.remove() }
        try await Self.withEngine(root, access: try Principals.access()) { engine, http in
            let viewerList = try await http.send("GET", "/api/datasets", body: nil, token: Principals.tokens["vera"])
            #expect(viewerList.status == 200)
            let viewer = try await http.post("/api/datasets/orders/rollback", json: RollbackRequest(to: "r1", by: "x@y"),
                                             token: Principals.tokens["vera"])
            #expect(viewer.status == 403)
            #expect(viewer.error == "vera is a viewer: rolling back dataset orders needs the operator or admin role")
            let approver = try await http.post("/api/datasets/orders/rollback", json: RollbackRequest(to: "r1", by: "x@y"),
                                               token: Principals.tokens["bob"])
            #expect(approver.status == 403)
            #expect(root.current("orders") == "r2\n")

            let op = try await http.post("/api/datasets/orders/rollback", json: RollbackRequest(to: "r1", by: "x@y"),
                                         token: Principals.tokens["ann"])
            #expect(op.status == 200)
            let rows = try await engine.audit(run: nil, limit: 10)
            let done = rows.first { $0.action == "dataset.rolled_back" }
            #expect(done?.actor == "ann" && done?.principal == "ann" && done?.role == "operator" && done?.run == "r1")
            #expect(rows.contains { $0.action == "request.refused" && $0.principal == "vera" && $0.detail?.contains("rollback dataset orders") == true })
        }
    }

    @Test func theCLIListsShowsAndRollsBack() async throws {
        let root = try Self.populated()
        defer { root.remove() }
        try await Self.withEngine(root) { _, http in
            let list = try await Bis.run(["datasets"], in: root.dir, coordinator: http.base)
            #expect(list.status == 0, "\(list.stderr)")
            let lines = list.stdout.split(separator: "\n")
            #expect(lines.first?.hasPrefix("NAME") == true && lines.first?.contains("SCHEMA") == true, "\(list.stdout)")
            #expect(lines.count == 3 && lines[1].hasPrefix("orders ") && lines[1].contains("r2"), "\(list.stdout)")

            let show = try await Bis.run(["dataset", "show", "orders"], in: root.dir, coordinator: http.base)
            #expect(show.status == 0)
            #expect(show.stdout.contains("dataset orders (dataset): 2 versions, CURRENT r2"), "\(show.stdout)")
            #expect(show.stdout.contains("columns of CURRENT:\n  id int64 not null\n  revenue decimal(18,4)\n  note string"), "\(show.stdout)")
            let json = try await Bis.run(["dataset", "show", "orders", "--json"], in: root.dir, coordinator: http.base)
            #expect(try APICoding.decoder().decode(DatasetDetail.self, from: Data(json.stdout.utf8)).versions.count == 2)

            let back = try await Bis.run(["dataset", "rollback", "orders", "--to", "r1"], in: root.dir, coordinator: http.base)
            #expect(back.status == 0 && back.stdout == "dataset orders: CURRENT moved from r2 to r1\n", "\(back)")
            let unknown = try await Bis.run(["dataset", "rollback", "nope", "--to", "r1"], in: root.dir, coordinator: http.base)
            #expect(unknown.status == 2 && unknown.stderr.contains("no published dataset 'nope'"), "\(unknown)")
            let noVersion = try await Bis.run(["dataset", "rollback", "orders", "--to", "r9"], in: root.dir, coordinator: http.base)
            #expect(noVersion.status == 2 && noVersion.stderr.contains("has no version of run 'r9'"), "\(noVersion)")
            let missingTo = try await Bis.run(["dataset", "rollback", "orders"], in: root.dir, coordinator: http.base)
            #expect(missingTo.status == 2)
            #expect(root.current("orders") == "r1\n")
        }
    }
}

/// The examples/orders run of `LiveFleet`: `bis lineage trace orders` (a
/// bare dataset name) and the schema hash in the run view and its page.
@Suite struct DatasetLiveTests {
    @Test func aBareDatasetNameTracesCurrentAndTheRunShowsItsSchemaHash() async throws {
        let live = try await LiveFleet.shared.value
        let byName = try await live.engine.lineageTrace("orders")
        let byVersion = try await live.engine.lineageTrace("orders/\(live.run)")
        #expect(byName.path == "published/orders/\(live.run)/_manifest.json")
        #expect(byName == byVersion)
        let ws = try Workspace()
        defer { ws.remove() }
        let cli = try await Bis.run(["lineage", "trace", "orders"], in: ws.path, coordinator: live.base)
        #expect(cli.status == 0, "\(cli.stderr)")
        for input in live.inputs { #expect(cli.stdout.contains("input \(input)"), "\(input)") }

        let view = try #require(try await live.engine.run(live.run))
        let hash = try #require(view.publishedSchemas?["orders"])
        #expect(try await live.engine.datasets().first { $0.name == "orders" }?.schemaSHA256 == hash)
        #expect(view.publishedSchemas?["revenue_by_country"] != nil)
        // The report's Published table has it too.
        let report = live.engine.chunkStore.root + "/" + (try #require(view.reportDirectory)) + "/report.html"
        let html = try String(contentsOfFile: report, encoding: .utf8)
        #expect(html.contains("<th>schema sha256</th>") && html.contains(hash), "\(report)")
        let page = try await HTTPClient(base: live.base).get("/runs/\(live.run)")
        #expect(page.text.contains("<h2>Published</h2>") && page.text.contains(hash), "\(page.text.prefix(2000))")
        let status = try await Bis.run(["status", live.run], in: ws.path, coordinator: live.base)
        #expect(status.stdout.contains("published orders: published/orders/\(live.run)\n  schema sha256 \(hash)"), "\(status.stdout)")
    }
}
