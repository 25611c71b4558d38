import Columnar
import Crypto
import FleetCore
import Foundation
import Stages
import Testing
import TestSupport
@testable import WorkerRuntime

/// The orders example driven task by task through `TaskExecutor`, as the
/// coordinator's planner will send the tasks.
@Suite struct TaskExecutorTests {
    let dir: String
    let root: String
    let spec: SpecRef
    let executor: TaskExecutor
    let run = "orders-daily-20261127T050000Z-abcd"

    init() throws {
        dir = NSTemporaryDirectory() + "bis-executor-" + UUID().uuidString
        let specDir = dir + "/spec"
        root = dir + "/root"
        let fm = FileManager.default
        try fm.createDirectory(atPath: specDir, withIntermediateDirectories: true)
        try fm.createDirectory(atPath: root, withIntermediateDirectories: true)
        let example = PythonTool.packageRoot + "/examples/orders"
        try fm.copyItem(atPath: example + "/data", toPath: specDir + "/data")
        let text = try String(contentsOfFile: example + "/pipeline.yml", encoding: .utf8)
        try text.write(toFile: specDir + "/pipeline.yml", atomically: true, encoding: .utf8)
        spec = SpecRef(text: text, sha256: Self.sha(Data(text.utf8)), file: specDir + "/pipeline.yml", directory: specDir)
        executor = TaskExecutor(chunkStore: ChunkStore(root: root))
    }

    static func sha(_ data: Data) -> String { SHA256.hash(data: data).map { String(format: "%02x", $0) }.joined() }

    func task(_ stage: Stage, _ index: Int, inputs: [ChunkRef] = [], shard: ShardRef? = nil,
              parameters: [String: String] = [:]) -> TaskMessage {
        TaskMessage(run: run, stage: stage, index: index, attempt: 1, spec: spec, inputs: inputs, shard: shard, parameters: parameters)
    }

    func execute(_ t: TaskMessage) async throws -> TaskOutcome {
        let o = try await executor.execute(t, execution: FleetIDs.newExecutionID())
        for out in o.outputs {
            #expect(!out.path.hasPrefix("/"), "\(t.stage) output \(out.path) is not relative to the data root")
            let data = try Data(contentsOf: URL(fileURLWithPath: root + "/" + out.path))
            #expect(Self.sha(data) == out.sha256, "\(out.path)")
            #expect(Int64(data.count) == out.bytes)
        }
        return o
    }

    @Test func theOrdersPipelineRunsTaskByTask() async throws {
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // ingest: one task per file (whole-file shards).
        let files = try FileManager.default.contentsOfDirectory(atPath: dir + "/spec/data").sorted().map { dir + "/spec/data/" + $0 }
        var ingested: [ChunkRef] = []
        var quarantined: Int64 = 0
        for (i, file) in files.enumerated() {
            let data = try Data(contentsOf: URL(fileURLWithPath: file))
            let source = ChunkRef(path: file, sha256: Self.sha(data), bytes: Int64(data.count), kind: .source, name: "orders")
            let o = try await execute(task(.ingest, i, inputs: [source], shard: ShardRef(source: "orders", path: file)))
            #expect(o.rowsIn == o.rowsOut + o.rowsQuarantined)
            let data0 = try #require(o.outputs.first { $0.kind == .data })
            #expect(data0.path.hasPrefix("runs/\(run)/ingest/\(i)/"))
            ingested.append(data0)
            quarantined += o.rowsQuarantined
        }
        #expect(quarantined > 0, "the example has a price that is not a number")

        // normalize: one per shard, chunks by partition.
        var byPartition: [Int: [ChunkRef]] = [:]
        for (i, chunk) in ingested.enumerated() {
            let o = try await execute(task(.normalize, i, inputs: [chunk]))
            for out in o.outputs {
                #expect(out.kind == .data)
                byPartition[try #require(out.partition), default: []].append(out)
            }
        }

        // consolidate and validate per partition (some may be empty).
        var validated: [ChunkRef] = []
        var results: [ValidateResult] = []
        for p in 0..<4 {
            let c = try await execute(task(.consolidate, p, inputs: byPartition[p] ?? []))
            #expect(c.outputs.allSatisfy { $0.partition == p && $0.kind == .data })
            let v = try await execute(task(.validate, p, inputs: c.outputs))
            let result = try #require(v.outputs.first { $0.kind == .result && $0.name == "validate-result" })
            #expect(result.partition == p)
            #expect(v.outputs.contains { $0.kind == .result && $0.name == "partials" })
            results.append(try ValidateResult(json: Array(try #require(v.result).utf8)))
            validated += v.outputs.filter { $0.kind == .data || ($0.kind == .result && $0.name == "partials") }
        }
        #expect(results.reduce(0) { $0 + $1.rowsIn } > 0)

        // publish: the dataset and its summary, reused when published again.
        let pub = try await execute(task(.publish, 0, inputs: validated))
        #expect(Set(pub.outputs.compactMap(\.name)) == ["orders", "revenue_by_country"])
        #expect(pub.outputs.allSatisfy { $0.kind == .result && $0.path.hasPrefix("published/") && $0.path.hasSuffix("/_manifest.json") })
        let again = try await execute(task(.publish, 0, inputs: validated))
        #expect(again.result?.contains("\"reused\":true") == true)

        // report: the summary tables read back from the published summary.
        let summary = RunSummary(pipeline: "orders-daily", runID: run, title: "orders-daily", startedAt: Date(), status: "succeeded")
        let manifests = pub.outputs.filter { $0.name == "revenue_by_country" }
        let rep = try await execute(task(.report, 0, inputs: manifests,
                                         parameters: ["summary": String(decoding: try summary.jsonData(), as: UTF8.self)]))
        #expect(rep.outputs.allSatisfy { $0.kind == .report })
        let names = Set(rep.outputs.map { ($0.path as NSString).lastPathComponent })
        #expect(names.contains("report.html") && names.contains("report.xlsx") && names.contains { $0.hasSuffix(".csv") })
        let html = try String(contentsOfFile: root + "/" + rep.outputs.first { $0.path.hasSuffix("report.html") }!.path, encoding: .utf8)
        #expect(html.contains("Orders, daily"), "the spec's title")
        #expect(rep.rowsIn > 0, "the summary's rows")

        // deliver: needs approval; twice is a no-op.
        let deliverInputs = rep.outputs + pub.outputs.filter { $0.name == "orders" }
        await #expect(throws: TaskFailure.self) { try await self.execute(self.task(.deliver, 0, inputs: deliverInputs)) }
        let approval = ["approved_by": "ana", "approved_at": "2026-11-27T05:00:00Z"]
        let d1 = try await execute(task(.deliver, 0, inputs: deliverInputs, parameters: approval))
        #expect(d1.outputs.allSatisfy { $0.kind == .delivery && $0.path.hasPrefix("outbox/finance/\(run)/") })
        #expect(d1.outputs.contains { $0.path.hasSuffix("receipt.json") })
        let d2 = try await execute(task(.deliver, 0, inputs: deliverInputs, parameters: approval))
        #expect(d1.result == d2.result)
    }

    @Test func aTamperedInputIsRefusedNamingTheFileAndBothChecksums() async throws {
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let file = dir + "/spec/data/orders-emea-2026-11-25.csv"
        let data = try Data(contentsOf: URL(fileURLWithPath: file))
        let source = ChunkRef(path: file, sha256: Self.sha(data), bytes: Int64(data.count), kind: .source, name: "orders")
        let o = try await execute(task(.ingest, 0, inputs: [source], shard: ShardRef(source: "orders", path: file)))
        var chunk = try #require(o.outputs.first { $0.kind == .data })
        let actual = chunk.sha256
        chunk.sha256 = String(repeating: "0", count: 64)
        do {
            _ = try await executor.execute(task(.normalize, 0, inputs: [chunk]), execution: FleetIDs.newExecutionID())
            Issue.record("a tampered input was used")
        } catch {
            #expect(error.kind == .transient)
            #expect(error.message.contains(chunk.path) && error.message.contains(actual) && error.message.contains(chunk.sha256),
                    "\(error.message)")
        }
    }

    /// A row-group shard is checked by the file's size, as a byte range
    /// is: each of a file's row-group tasks hashed the whole file.
    @Test func aRowGroupShardChecksTheSizeNotTheHash() throws {
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let file = dir + "/spec/data/orders-emea-2026-11-25.csv"
        let data = try Data(contentsOf: URL(fileURLWithPath: file))
        let parsed = try executor.parsedSpec(spec)
        let shard = ShardRef(source: "orders", path: file, rowGroup: 0)
        // Not the file's hash (no shard reads the whole file), the right size: accepted without hashing.
        let unhashed = ChunkRef(path: file, sha256: String(repeating: "0", count: 64), bytes: Int64(data.count), kind: .source, name: "orders")
        try executor.verify(unhashed, shard: shard, spec: parsed, field: "inputs[0]")
        // The wrong size: refused, the file changed after planning.
        let resized = ChunkRef(path: file, sha256: Self.sha(data), bytes: Int64(data.count) + 1, kind: .source, name: "orders")
        do {
            try executor.verify(resized, shard: shard, spec: parsed, field: "inputs[0]")
            Issue.record("a file of another size was accepted")
        } catch let error as TaskFailure {
            #expect(error.message.contains("the file changed after the run was planned"), "\(error.message)")
        }
        // The whole file (no row group, no range) is still hashed.
        #expect(throws: TaskFailure.self) {
            try executor.verify(unhashed, shard: ShardRef(source: "orders", path: file), spec: parsed, field: "inputs[0]")
        }
    }

    @Test func aBadSpecIsAPermanentFailure() async throws {
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var t = task(.normalize, 0)
        t.spec = SpecRef(text: "pipeline: x\n", sha256: "", file: "bad.yml", directory: dir)
        do {
            _ = try await executor.execute(t, execution: FleetIDs.newExecutionID())
            Issue.record("a bad spec ran")
        } catch {
            #expect(error.kind == .permanent)
            #expect(error.message.contains("bad.yml"), "\(error.message)")
        }
    }

    @Test func consolidateWithoutInputsSucceedsWithNoOutputs() async throws {
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let o = try await execute(task(.consolidate, 3))
        #expect(o.outputs.isEmpty)
    }

    /// The same spec text submitted from two folders, with other allowed
    /// roots, is parsed for each: a cache keyed by the text alone ran the
    /// second with the first one's folder and roots (issue 12, item 5).
    @Test func theSameSpecTextFromTwoFoldersKeepsEachOnesRoots() throws {
        let executor = TaskExecutor(chunkStore: ChunkStore(root: dir))
        let text = "pipeline: p\nsources:\n  s:\n    format: csv\n    files: [\"in/*.csv\"]\n    columns: {a: int64}\n"
        let sha = Checksum.sha256(utf8: text)
        let first = try executor.parsedSpec(SpecRef(text: text, sha256: sha, file: "/team-a/p.yml", directory: "/team-a",
                                                    allowedRoots: ["/team-a"]))
        let second = try executor.parsedSpec(SpecRef(text: text, sha256: sha, file: "/team-b/p.yml", directory: "/team-b",
                                                     allowedRoots: ["/team-b", "/shared"]))
        #expect(first.directory == "/team-a")
        #expect(second.directory == "/team-b")
        #expect(second.allowedRoots.contains("/shared"))
        #expect(!first.allowedRoots.contains("/shared"))
    }
}
