import Columnar
import Coordination
import CoordinatorHTTP
import FleetCore
import Foundation
import Logging
import Testing
import WorkerRuntime

/// The embedded fleet — engine, lineage store and worker over the in-memory
/// transport — running examples/orders end to end: approval, publish,
/// report, deliver, and the lineage, quarantine and OpenLineage views of it.
@Suite struct LocalRunTests {
    static let packageRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

    /// examples/orders copied into a fresh folder (spec + data), and a data root beside it.
    static func workspace() throws -> (spec: String, data: String, root: String) {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("bis-local-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir + "/orders", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: packageRoot + "/examples/orders/data", toPath: dir + "/orders/data")
        try FileManager.default.copyItem(atPath: packageRoot + "/examples/orders/pipeline.yml", toPath: dir + "/orders/pipeline.yml")
        return (dir + "/orders/pipeline.yml", dir + "/orders/data", dir + "/root")
    }

    @Test func ordersRunEndToEndWithApprovalLineageAndQuarantine() async throws {
        let (spec, data, rootPath) = try Self.workspace()
        let fleet = try await EmbeddedFleet(root: rootPath)
        defer { fleet.cancel() }
        let (engine, root) = (fleet.engine, fleet.root)
        let submitted = try await fleet.submit(spec)
        #expect(submitted.state == .running)
        let waiting = try await engine.waitUntilSettled(submitted.id)
        #expect(waiting.state == .awaitingApproval, "\(waiting.message ?? "")")
        #expect(waiting.receipt == nil)
        #expect(waiting.stages.map(\.stage) == [.ingest, .normalize, .consolidate, .validate, .publish, .report])

        let approved = try await engine.approve(submitted.id, by: "ops@host")
        #expect(approved.approvedBy == "ops@host")
        let done = try await engine.waitUntilSettled(submitted.id)
        #expect(done.state == .succeeded, "\(done.message ?? "")")
        #expect(done.stages.map(\.stage) == Stage.pipeline)
        for s in done.stages { #expect(s.succeeded == s.total && s.failed == 0, "\(s.stage)") }
        let ingest = try #require(done.stages.first)
        #expect(ingest.total == 6, "one shard per input file")
        #expect(ingest.rowsQuarantined > 0)
        #expect(done.stages.first { $0.stage == .validate }!.rowsQuarantined > 0)
        let datasetDir = try #require(done.published["orders"])
        #expect(FileManager.default.fileExists(atPath: root.root + "/" + datasetDir + "/_manifest.json"))
        let receipt = try #require(done.receipt)
        #expect(FileManager.default.fileExists(atPath: receipt.hasPrefix("/") ? receipt : root.root + "/" + receipt))

        // Lineage: from the run down to every input file, with its sha256.
        let tree = try await engine.lineageTrace(submitted.id)
        var leaves: [LineageNode] = []
        func collect(_ n: LineageNode) { if n.inputs.isEmpty { leaves.append(n) } else { n.inputs.forEach(collect) } }
        collect(tree)
        let files = try FileManager.default.contentsOfDirectory(atPath: data).sorted().map { data + "/" + $0 }
        #expect(Set(leaves.map(\.path)) == Set(files))
        for leaf in leaves {
            #expect(leaf.kind == .source)
            #expect(leaf.sha256 == (try sha256(ofFile: leaf.path)))
        }
        // Impact: the file → this run, its dataset version and its delivery.
        let impact = try await engine.lineageImpact(files[0])
        #expect(impact.runs.map(\.run) == [submitted.id])
        #expect(impact.runs.first?.datasets["orders"] == datasetDir)
        #expect(impact.runs.first?.deliveries.count == 1)
        let bySHA = try await engine.lineageImpact(try sha256(ofFile: files[1]))
        #expect(bySHA.runs.map(\.run) == [submitted.id])

        // Quarantine: ingest's rows name file and line; validate's name the rule.
        let quarantined = try await engine.quarantine(submitted.id, rule: nil, limit: 1000)
        #expect(Int64(quarantined.count) == ingest.rowsQuarantined + done.stages.first { $0.stage == .validate }!.rowsQuarantined)
        let parse = quarantined.filter { $0.stage == .ingest }
        #expect(!parse.isEmpty && parse.allSatisfy { $0.file != nil && ($0.line ?? 0) > 1 && !$0.reason.isEmpty })
        #expect(quarantined.contains { $0.stage == .validate && $0.rule.contains("allowed") })
        // Validate's rows name file and line too: the record at that line of that file is the row's.
        let validated = quarantined.filter { $0.stage == .validate }
        #expect(!validated.isEmpty)
        for q in validated {
            let file = try #require(q.file, "\(q)")
            let line = try #require(q.line, "\(q)")
            #expect(files.contains(file), "\(q)")
            let values = try #require(try JSONSerialization.jsonObject(with: Data(q.row.utf8)) as? [String: Any])
            #expect(values.keys.allSatisfy { !$0.hasPrefix("_source_") }, "\(q.row)")
            let text = try String(contentsOfFile: file, encoding: .utf8)
            let physical = text.split(separator: "\n", omittingEmptySubsequences: false)
            #expect(line >= 2 && Int(line) <= physical.count, "\(q)")
            if line >= 2 && Int(line) <= physical.count {
                let prefix = "\(values["order_id"] ?? "?"),\(values["line"] ?? "?"),"
                #expect(physical[Int(line) - 1].hasPrefix(prefix), "\(file):\(line) is '\(physical[Int(line) - 1])', row \(q.row)")
            }
        }
        // A rule by its name as the quarantine shows it, or by its kind.
        let onlyRange = try await engine.quarantine(submitted.id, rule: "range unit_price", limit: 1000)
        #expect(!onlyRange.isEmpty && onlyRange.allSatisfy { $0.rule.contains("range unit_price") })
        #expect(try await engine.quarantine(submitted.id, rule: "range", limit: 1000) == onlyRange)

        // OpenLineage: a START and an end event per execution, and the run's own around them, the parent of every execution.
        let events = try await engine.openLineage(submitted.id)
        let starts = events.filter { $0.eventType == "START" }.count
        #expect(starts > 0 && events.count == 2 * starts)
        let executions = events.filter { $0.run.facets.bis_execution != nil }
        #expect(executions.count == events.count - 2)
        #expect(executions.allSatisfy { $0.run.facets.parent?.run.runId == events[0].run.runId })

        // The dashboard shows the run's stages.
        let page = try #require(try await Dashboard.page(path: "/runs/\(submitted.id)", from: engine))
        for s in Stage.pipeline { #expect(page.contains(">\(s.rawValue)<")) }

        await fleet.stop()
    }
}

/// Rows whose value a normalize `cast` cannot convert are quarantined by
/// normalize with their file and line, and the run goes on without them.
@Suite struct NormalizeQuarantineRunTests {
    @Test func aValueThatDoesNotCastIsQuarantinedAndTheRunSucceeds() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("bis-cast-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir + "/data", withIntermediateDirectories: true)
        try "id,qty\n1,5\n2,five\n3,7\n".write(toFile: dir + "/data/in.csv", atomically: true, encoding: .utf8)
        let spec = dir + "/pipeline.yml"
        try """
            pipeline: casts
            sources:
              items:
                format: csv
                files: data/*.csv
                header: true
                columns: {id: int64, qty: string}
            normalize:
              - cast: {qty: int64}
            consolidate: {partition_by: [id], partitions: 2}
            publish: {dataset: items}
            """.write(toFile: spec, atomically: true, encoding: .utf8)
        let fleet = try await EmbeddedFleet(root: dir + "/root")
        defer { fleet.cancel() }
        let engine = fleet.engine
        let submitted = try await fleet.submit(spec)
        let done = try await engine.waitUntilSettled(submitted.id)
        #expect(done.state == .succeeded, "\(done.message ?? "")")
        let normalize = try #require(done.stages.first { $0.stage == .normalize })
        #expect(normalize.rowsIn == 3 && normalize.rowsOut == 2 && normalize.rowsQuarantined == 1)

        let q = try await engine.quarantine(submitted.id, rule: "cast", limit: 10)
        #expect(q.count == 1)
        let row = try #require(q.first)
        #expect(row.stage == .normalize && row.rule == "cast" && row.column == "qty" && row.row == "five")
        #expect(row.file?.hasSuffix("data/in.csv") == true && row.line == 3, "\(row)")
        #expect(row.reason.contains("is not a number"))
        #expect(try await engine.quarantine(submitted.id, rule: "parse", limit: 10).isEmpty)

        await fleet.stop()
    }
}

/// The embedded fleet `bis run --local` runs: an engine on a fresh lineage
/// store under `root`, and one worker with two slots, over the in-memory transport.
struct EmbeddedFleet {
    let root: ChunkStore
    let transport = InMemoryTransport()
    let engine: CoordinatorEngine
    let worker: FleetWorker
    let working: Task<Void, Error>

    init(root path: String, options: CoordinatorOptions = CoordinatorOptions(), fault: FaultSwitch? = nil,
         stages: [Stage] = Stage.allCases) async throws {
        root = ChunkStore(root: path)
        try FileManager.default.createDirectory(atPath: root.root, withIntermediateDirectories: true)
        engine = CoordinatorEngine(store: try LineageStore(path: root.root + "/bis.db"), transport: transport, chunkStore: root,
                                   options: options)
        try await engine.start()
        let worker = FleetWorker(transport: transport, chunkStore: root, stages: stages, concurrency: 2, fault: fault,
                                 logger: Logger(label: "test.worker"))
        self.worker = worker
        working = Task { try await worker.run() }
    }

    func submit(_ spec: String) async throws -> RunView {
        try await engine.submit(SubmitRequest(specPath: spec, specText: try String(contentsOfFile: spec, encoding: .utf8),
                                              submittedBy: "test@host"))
    }

    func stop() async {
        worker.drain()
        await engine.stop()
        await transport.close()
    }

    func cancel() { working.cancel() }
}
