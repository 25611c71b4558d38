import Columnar
import Coordination
import Crypto
import FleetCore
import Foundation
import GRDB
import Testing
import TestSupport
@testable import WorkerRuntime

/// Submit records a stat placeholder for a CSV source; the ingests hash
/// their byte ranges and the coordinator records the file's identity from
/// them when the file's last ingest commits (issue 15).
@Suite struct SourceIdentityTests {
    static func sha(_ data: Data) -> String { SHA256.hash(data: data).map { String(format: "%02x", $0) }.joined() }

    static func failure(of task: TaskMessage, _ executor: TaskExecutor) async -> TaskFailure? {
        do {
            _ = try await executor.execute(task, execution: FleetIDs.newExecutionID())
            return nil
        } catch {
            return error
        }
    }

    @Test func identityOfRanges() throws {
        let data = Data((0..<10_000).map { UInt8($0 % 251) })
        let whole = SourceIdentity.Range(start: 0, end: 10_000, sha256: Self.sha(data))
        #expect(SourceIdentity.identity(of: [whole], size: 10_000) == Self.sha(data))
        let a = SourceIdentity.Range(start: 0, end: 4_000, sha256: Self.sha(data[0..<4_000]))
        let b = SourceIdentity.Range(start: 4_000, end: 10_000, sha256: Self.sha(data[4_000..<10_000]))
        let expected = Self.sha(Data("0-4000 \(a.sha256)\n4000-10000 \(b.sha256)\n".utf8))
        #expect(SourceIdentity.identity(of: [b, a], size: 10_000) == expected)
        #expect(SourceIdentity.identity(of: [a, b, b], size: 10_000) == expected, "a range reported twice counts once")
        #expect(SourceIdentity.identity(of: [a], size: 10_000) == nil, "ranges that do not cover the file")
        let json = SourceIdentity.resultJSON(a)
        #expect(SourceIdentity.range(fromResult: json) == a)
        #expect(SourceIdentity.range(fromResult: nil) == nil)
        // A garbled result never becomes an identity: not hex, a placeholder, a reversed range.
        for bad in [SourceIdentity.Range(start: 0, end: 4_000, sha256: "stat:1:2:3"),
                    SourceIdentity.Range(start: 0, end: 4_000, sha256: String(a.sha256.uppercased())),
                    SourceIdentity.Range(start: 0, end: 4_000, sha256: String(a.sha256.dropLast())),
                    SourceIdentity.Range(start: 4_000, end: 0, sha256: a.sha256),
                    SourceIdentity.Range(start: -1, end: 4_000, sha256: a.sha256)] {
            #expect(SourceIdentity.range(fromResult: SourceIdentity.resultJSON(bad)) == nil, "\(bad)")
        }
    }

    /// A shard of a file submitted with a placeholder reports its range's
    /// SHA-256; the same task after the file changed fails permanently.
    @Test func ingestHashesItsRangeAndRefusesAFileChangedAfterSubmit() async throws {
        let dir = NSTemporaryDirectory() + "bis-identity-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let fm = FileManager.default
        try fm.createDirectory(atPath: dir + "/spec", withIntermediateDirectories: true)
        try fm.createDirectory(atPath: dir + "/root", withIntermediateDirectories: true)
        let example = PythonTool.packageRoot + "/examples/orders"
        try fm.copyItem(atPath: example + "/data", toPath: dir + "/spec/data")
        let text = try String(contentsOfFile: example + "/pipeline.yml", encoding: .utf8)
        try text.write(toFile: dir + "/spec/pipeline.yml", atomically: true, encoding: .utf8)
        let spec = SpecRef(text: text, sha256: Self.sha(Data(text.utf8)), file: dir + "/spec/pipeline.yml", directory: dir + "/spec")
        let executor = TaskExecutor(chunkStore: ChunkStore(root: dir + "/root"))
        let file = try fm.contentsOfDirectory(atPath: dir + "/spec/data").sorted().map { dir + "/spec/data/" + $0 }[0]
        let data = try Data(contentsOf: URL(fileURLWithPath: file))
        let placeholder = try SourceIdentity.placeholder(ofFile: file)
        #expect(placeholder.hasPrefix("stat:\(data.count):"))
        let source = ChunkRef(path: file, sha256: placeholder, bytes: Int64(data.count), kind: .source, name: "orders")
        func task(_ start: Int64?, _ end: Int64?) -> TaskMessage {
            TaskMessage(run: "orders-daily-20261127T050000Z-abcd", stage: .ingest, index: 0, attempt: 1, spec: spec,
                        inputs: [source], shard: ShardRef(source: "orders", path: file, start: start, end: end))
        }
        // The whole file: its range hash is the file's SHA-256.
        let whole = try await executor.execute(task(nil, nil), execution: FleetIDs.newExecutionID())
        #expect(SourceIdentity.range(fromResult: whole.result) == .init(start: 0, end: Int64(data.count), sha256: Self.sha(data)))
        // A byte range: the SHA-256 of exactly those bytes.
        let part = try await executor.execute(task(0, 4096), execution: FleetIDs.newExecutionID())
        #expect(SourceIdentity.range(fromResult: part.result) == .init(start: 0, end: 4096, sha256: Self.sha(data[0..<4096])))

        // Changed after submit: a permanent failure that says so.
        try (data + Data("1,1,late,DE,1,1.00,0.00,2026-11-25T10:00:00Z,2026-11-26,\n".utf8)).write(to: URL(fileURLWithPath: file))
        let changed = task(0, 4096)
        let failure: TaskFailure? = await Self.failure(of: changed, executor)
        #expect(failure?.kind == .permanent)
        #expect(failure?.message.contains("changed after the run was submitted") == true, "\(String(describing: failure))")
    }

    /// The fleet end to end with several shards per file: each file's
    /// recorded identity is SHA-256 over its ranges' lines, each range hash
    /// the SHA-256 of its bytes; a duplicate ingest result changes nothing.
    @Test func theRunRecordsEachFilesIdentityFromItsRanges() async throws {
        let (spec, data, rootPath) = try LocalRunTests.workspace()
        let text = try String(contentsOfFile: spec, encoding: .utf8)
        try text.replacingOccurrences(of: "shard_size: 64MiB", with: "shard_size: 4KiB")
            .write(toFile: spec, atomically: true, encoding: .utf8)
        let fleet = try await EmbeddedFleet(root: rootPath)
        defer { fleet.cancel() }
        let engine = fleet.engine
        let submitted = try await fleet.submit(spec)
        let waiting = try await engine.waitUntilSettled(submitted.id)
        #expect(waiting.state == .awaitingApproval, "\(waiting.message ?? "")")
        _ = try await engine.approve(submitted.id, by: "ops@host")
        let done = try await engine.waitUntilSettled(submitted.id)
        #expect(done.state == .succeeded, "\(done.message ?? "")")

        let db = try DatabaseQueue(path: rootPath + "/bis.db")
        func ranges() throws -> [String: [SourceIdentity.Range]] {
            try db.read { db in
                var out: [String: [SourceIdentity.Range]] = [:]
                for row in try Row.fetchAll(db, sql: """
                    SELECT c.path, t.result FROM tasks t JOIN task_inputs ti ON ti.task = t.id JOIN chunks c ON c.id = ti.chunk
                    WHERE t.run = ? AND t.stage = 'ingest' AND c.kind = 'source'
                    """, arguments: [submitted.id]) {
                    let r = try #require(SourceIdentity.range(fromResult: row["result"]))
                    out[row["path"], default: []].append(r)
                }
                return out
            }
        }
        let byFile = try ranges()
        let files = try FileManager.default.contentsOfDirectory(atPath: data).sorted().map { data + "/" + $0 }
        #expect(Set(byFile.keys) == Set(files))
        var expected: [String: String] = [:]
        for file in files {
            let bytes = try Data(contentsOf: URL(fileURLWithPath: file))
            let rs = (byFile[file] ?? []).sorted { $0.start < $1.start }
            #expect(rs.count > 1, "\(file) is cut into several shards")
            var at: Int64 = 0
            var lines = ""
            for r in rs {
                #expect(r.start == at)
                #expect(r.sha256 == Self.sha(bytes[Int(r.start)..<Int(r.end)]))
                lines += "\(r.start)-\(r.end) \(r.sha256)\n"
                at = r.end
            }
            #expect(at == Int64(bytes.count))
            expected[file] = Self.sha(Data(lines.utf8))
        }
        func leaves() async throws -> [String: String] {
            let tree = try await engine.lineageTrace(submitted.id)
            var out: [String: String] = [:]
            func collect(_ n: LineageNode) { if n.inputs.isEmpty { out[n.path] = n.sha256 } else { n.inputs.forEach(collect) } }
            collect(tree)
            return out
        }
        #expect(try await leaves() == expected)
        let bySHA = try await engine.lineageImpact(try #require(expected[files[0]]))
        #expect(bySHA.runs.map(\.run) == [submitted.id])
        let placeholders = try await db.read { try Int.fetchOne($0, sql: "SELECT COUNT(*) FROM chunks WHERE sha256 LIKE 'stat:%'") }
        #expect(placeholders == 0, "no placeholder row is left once every ingest committed")

        // A late duplicate of an ingest, claiming another range hash: recorded as a duplicate, the identity unchanged.
        let message = TaskMessage(run: submitted.id, stage: .ingest, index: 0, attempt: 1,
                                  spec: SpecRef(text: "", sha256: "", file: spec, directory: data), inputs: [])
        let execution = FleetIDs.newExecutionID()
        try await fleet.transport.publishEvent(TaskEvent(
            kind: .succeeded, task: message, execution: execution,
            worker: WorkerIdentity(id: "test:1", host: "test", pid: 1, version: "test"), deliveryCount: 1, startedAt: Date(),
            finishedAt: Date(), result: SourceIdentity.resultJSON(.init(start: 0, end: 4096, sha256: String(repeating: "0", count: 64)))))
        var state: String?
        for _ in 0..<200 {
            state = try await db.read { try String.fetchOne($0, sql: "SELECT state FROM executions WHERE id = ?", arguments: [execution]) }
            if state != nil { break }
            try await Task.sleep(for: .milliseconds(25))
        }
        #expect(state == "duplicate")
        #expect(try await leaves() == expected)
        #expect(try ranges() == byFile)
        await fleet.stop()
    }
}
