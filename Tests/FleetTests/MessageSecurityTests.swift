import Columnar
import Coordination
import FleetCore
import Foundation
import TestSupport
import Testing
import WorkerRuntime

private func tempDir() throws -> String {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("bis-msgsec-\(UUID().uuidString)").path
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    return dir
}

/// The fleet key's MACs.
@Suite struct FleetKeyTests {
    @Test func aMACVerifiesOnlyForTheSameKeyBodyAndKind() throws {
        let key = FleetKey.random(), other = FleetKey.random()
        let body = Array(#"{"run":"r"}"#.utf8)
        let mac = key.mac(.task, body)
        #expect(mac.count == 64)
        #expect(key.verify(.task, body, mac: mac) == .valid)
        #expect(key.verify(.task, body, mac: mac.uppercased()) == .valid)
        #expect(other.verify(.task, body, mac: mac) == .wrong)
        #expect(key.verify(.event, body, mac: mac) == .wrong)
        #expect(key.verify(.task, body + [0x20], mac: mac) == .wrong)
        #expect(key.verify(.task, body, mac: nil) == .missing)
        #expect(key.verify(.task, body, mac: "") == .missing)
        #expect(key.verify(.task, body, mac: "zz") == .wrong)
        #expect(key.verify(.task, body, mac: String(mac.dropLast(2))) == .wrong)
    }

    @Test func aKeyShorterThan32BytesIsRefused() throws {
        #expect(throws: FleetKeyError.self) { _ = try FleetKey(bytes: Array(repeating: 1, count: 31)) }
        _ = try FleetKey(bytes: Array(repeating: 1, count: 32))
        let dir = try tempDir()
        try String(repeating: "a", count: 31).appending("\n").write(toFile: dir + "/k", atomically: true, encoding: .utf8)
        do {
            _ = try FleetKey.load(file: dir + "/k")
            Issue.record("a 31-byte key file was accepted")
        } catch {
            #expect(error.message.contains("31 bytes") && error.message.contains("at least 32"), "\(error)")
            #expect(!error.message.contains("aaaa"), "the error shows the key: \(error)")
        }
    }

    /// The dispatch hot path signs every task message once: microseconds
    /// (a generous bound, only to catch an accidental slow path).
    @Test func signingIsCheapNextToDispatch() {
        let key = FleetKey.random()
        let body = [UInt8](repeating: 0x61, count: 4096)   // a task message with its spec text
        let clock = ContinuousClock()
        let elapsed = clock.measure {
            for _ in 0..<10_000 { _ = key.verify(.task, body, mac: key.mac(.task, body)) }
        }
        print("fleet key: 10,000 MACs and checks of 4 KiB in \(elapsed)")
        #expect(elapsed < .seconds(5))
    }

    @Test func processesRacingToCreateTheKeyFileAllReadTheSameKey() async throws {
        let file = try tempDir() + "/fleet.key"
        let keys = await withTaskGroup(of: FleetKey?.self) { group in
            for _ in 0..<8 { group.addTask { try? FleetKey.loadOrCreate(file: file).key } }
            var out: [FleetKey] = []
            for await k in group { if let k { out.append(k) } }
            return out
        }
        #expect(keys.count == 8)
        let body = Array("x".utf8)
        let mac = keys[0].mac(.event, body)
        for k in keys { #expect(k.verify(.event, body, mac: mac) == .valid) }
    }
}

/// Ids and chunk paths a message may carry.
@Suite struct MessageFieldTests {
    @Test func idsAreOnePlainPathComponent() {
        for ok in ["noop-20261204T120000Z-ab12", "0123456789abcdef", "late", "a.b_c-d", "R1"] {
            #expect(FleetIDs.isValidID(ok), "\(ok)")
        }
        for bad in ["", ".", "..", "../../../../runs/victim", "a/b", "-x", ".hidden", "a b", "a\u{0}b", "é",
                    String(repeating: "a", count: 129)] {
            #expect(!FleetIDs.isValidID(bad), "\(bad)")
        }
    }

    @Test func chunkPathsAreConfinedToTheDataRootNamingTheField() throws {
        let root = try tempDir()
        let store = ChunkStore(root: root)
        #expect(try store.absolute("runs/r/ingest/0/e/part.parquet") == store.root + "/runs/r/ingest/0/e/part.parquet")
        for (bad, words) in [("/etc/passwd", "absolute"), ("../outside", "'..'"), ("runs/../../x", "'..'"),
                             ("runs//x", "empty"), ("", "empty")] {
            do {
                _ = try store.absolute(bad, field: "inputs[3].path")
                Issue.record("\(bad) was accepted")
            } catch {
                #expect(error.kind == .permanent)
                #expect(error.message.contains("inputs[3].path") && error.message.contains(words), "\(error)")
            }
        }
        // A symlink inside the root that leads out of it.
        let outside = try tempDir()
        try "secret".write(toFile: outside + "/secret.txt", atomically: true, encoding: .utf8)
        try FileManager.default.createDirectory(atPath: root + "/runs", withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: root + "/runs/evil", withDestinationPath: outside)
        #expect(throws: TaskFailure.self) { _ = try store.absolute("runs/evil/secret.txt", field: "inputs[0].path") }
        #expect(throws: TaskFailure.self) { _ = try store.absolute("runs/evil/new/folder", field: "execution folder") }
    }

    @Test func eventsWithTraversingIdsOrPathsAreRefused() {
        let task = TaskMessage(run: "r-1", stage: .ingest, index: 0, attempt: 1, spec: nil)
        let worker = WorkerIdentity(id: "w", host: "h", pid: 1, version: "t")
        var e = TaskEvent(kind: .succeeded, task: task, execution: "../../../../runs/victim", worker: worker, deliveryCount: 0,
                          startedAt: Date())
        #expect(throws: MessageFieldError(field: "execution", value: "../../../../runs/victim",
                                          problem: "is not a valid id (1 to 128 of A-Z a-z 0-9 . _ -, starting with a letter or digit)")) {
            try e.validate()
        }
        e.execution = "0123456789abcdef"
        try? e.validate()
        e.outputs = [ChunkRef(path: "/etc/passwd", sha256: "x", bytes: 1, kind: .quarantine)]
        #expect(throws: MessageFieldError.self) { try e.validate() }
        e.outputs = [ChunkRef(path: "/srv/out/report.html", sha256: "x", bytes: 1, kind: .delivery)]
        #expect(throws: Never.self) { try e.validate() }
        e.outputs = [ChunkRef(path: "/srv/out/../../etc/passwd", sha256: "x", bytes: 1, kind: .delivery)]
        #expect(throws: MessageFieldError.self) { try e.validate() }
    }

    @Test func theWorkerRefusesAnAbsoluteChunkPathNamingTheField() async throws {
        let store = ChunkStore(root: try tempDir())
        let executor = TaskExecutor(chunkStore: store)
        let spec = SpecRef(text: "pipeline: p\n", sha256: "x", file: "/x/p.yml", directory: "/x")
        let task = TaskMessage(run: "r-1", stage: .normalize, index: 0, attempt: 1, spec: spec,
                               inputs: [ChunkRef(path: "/etc/passwd", sha256: "00", bytes: 1, kind: .data)])
        do {
            _ = try await executor.execute(task, execution: "0123456789abcdef")
            Issue.record("an absolute chunk path was accepted")
        } catch {
            #expect(error.kind == .permanent)
            #expect(error.message.contains("inputs[0].path") && error.message.contains("/etc/passwd")
                    && error.message.contains("absolute"), "\(error)")
        }
        #expect((try? FileManager.default.contentsOfDirectory(atPath: store.root))?.isEmpty ?? true)
    }
}

/// Ingest reads only a source the message names, under the spec's allowed roots.
@Suite struct IngestConfinementTests {
    func fixture() throws -> (TaskExecutor, SpecRef, [String]) {
        let dir = try tempDir()
        let files = try MessyOrders.writeInputs(to: dir).files
        let text = MessyOrders.specHead(pipeline: "conf")
        let spec = SpecRef(text: text, sha256: "x", file: dir + "/conf.yml", directory: dir)
        return (TaskExecutor(chunkStore: ChunkStore(root: dir + "/root")), spec, files)
    }

    func refusal(_ executor: TaskExecutor, _ task: TaskMessage) async -> TaskFailure? {
        do {
            _ = try await executor.execute(task, execution: "0123456789abcdef")
            return nil
        } catch {
            return error
        }
    }

    @Test func aSourceOutsideTheAllowedRootsIsRefused() async throws {
        let (executor, spec, _) = try fixture()
        let outside = try tempDir() + "/orders.csv"
        try "id,region,amount,qty,day,note\n1,x,1,1,2024-01-01,n\n".write(toFile: outside, atomically: true, encoding: .utf8)
        let size = Int64(try Data(contentsOf: URL(fileURLWithPath: outside)).count)
        let task = TaskMessage(run: "conf-1", stage: .ingest, index: 0, attempt: 1, spec: spec,
                               inputs: [ChunkRef(path: outside, sha256: "0", bytes: size, kind: .source, name: "orders")],
                               shard: ShardRef(source: "orders", path: outside))
        let failure = try #require(await refusal(executor, task))
        #expect(failure.kind == .permanent && failure.message.contains("outside the allowed input root"), "\(failure)")
    }

    @Test func aShardPathThatIsNotASourceInputIsRefused() async throws {
        let (executor, spec, files) = try fixture()
        let size = Int64(try Data(contentsOf: URL(fileURLWithPath: files[0])).count)
        let hash = sha256(ofFileBytes: try Data(contentsOf: URL(fileURLWithPath: files[0])))
        let task = TaskMessage(run: "conf-1", stage: .ingest, index: 0, attempt: 1, spec: spec,
                               inputs: [ChunkRef(path: files[0], sha256: hash, bytes: size, kind: .source, name: "orders")],
                               shard: ShardRef(source: "orders", path: files[1]))
        let failure = try #require(await refusal(executor, task))
        #expect(failure.kind == .permanent && failure.message.contains("shard.path") && failure.message.contains(files[1]),
                "\(failure)")
    }
}

private func sha256(ofFileBytes data: Data) -> String { Checksum.sha256(Array(data)) }

/// Signed messages over the in-memory transport, with the real engine.
@Suite struct SignedMessageTests {
    static let identity = WorkerIdentity(id: "test:1", host: "test", pid: 1, version: "test")

    func rejected(_ engine: CoordinatorEngine, _ reason: String, atLeast n: Int) async throws -> Int {
        var seen = 0
        for _ in 0..<200 {
            seen = try await engine.metricsSnapshot().messagesRejected[reason] ?? 0
            if seen >= n { break }
            try await Task.sleep(for: .milliseconds(10))
        }
        return seen
    }

    @Test func aForgedTaskMessageIsNeverHandedToAWorkerAndIsCounted() async throws {
        let dir = try tempDir()
        let transport = InMemoryTransport()
        let engine = CoordinatorEngine(store: try LineageStore(path: dir + "/bis.db"), transport: transport,
                                       chunkStore: ChunkStore(root: dir))
        try await engine.start()
        let deliveries = try await transport.taskDeliveries(stages: [.noop], prefetch: 4)
        let forged = try WireCoding.encode(TaskMessage(run: "forged-1", stage: .noop, index: 0, attempt: 1, spec: nil))
        await transport.publishRawTask(forged, stage: .noop, mac: nil)
        await transport.publishRawTask(forged, stage: .noop, mac: FleetKey.random().mac(.task, forged))
        let handed = Task { () -> Bool in
            for try await _ in deliveries { return true }
            return false
        }
        try await Task.sleep(for: .milliseconds(300))
        handed.cancel()
        #expect(await transport.rejectedMessages().map(\.reason) == [.missingMAC, .badMAC])
        #expect(try await rejected(engine, "missing_mac", atLeast: 1) == 1)
        #expect(try await rejected(engine, "bad_mac", atLeast: 1) == 1)
        #expect(await transport.pending() == 0)
        await engine.stop()
        await transport.close()
        #expect(await (try? handed.value) != true)
    }

    @Test func anEventWithAWrongMACIsNotCommitted() async throws {
        let dir = try tempDir()
        let transport = InMemoryTransport()
        let engine = CoordinatorEngine(store: try LineageStore(path: dir + "/bis.db"), transport: transport,
                                       chunkStore: ChunkStore(root: dir))
        try await engine.start()
        let deliveries = try await transport.taskDeliveries(stages: [.noop], prefetch: 4)
        let run = try await engine.submitNoop(tasks: 1, by: "test")
        var iterator = deliveries.makeAsyncIterator()
        let delivery = try #require(try await iterator.next())
        let task = try #require(delivery.task)
        let event = TaskEvent(kind: .succeeded, task: task, execution: "0123456789abcdef", worker: Self.identity,
                              deliveryCount: 0, startedAt: Date(), finishedAt: Date())
        let body = try WireCoding.encode(event)
        await transport.publishRawEvent(body, mac: FleetKey.random().mac(.event, body))
        #expect(try await rejected(engine, "bad_mac", atLeast: 1) == 1)
        #expect(try await engine.run(run)?.state == .running)
        #expect(try await engine.run(run)?.stages.first?.succeeded == 0)
        // The same event, signed: committed.
        try await transport.publishEvent(event)
        try await delivery.ack()
        #expect(try await engine.waitUntilSettled(run).state == .succeeded)
        await engine.stop()
        await transport.close()
    }

    @Test func aDuplicateEventWithATraversingExecutionIdDeletesNothing() async throws {
        let dir = try tempDir()
        let victim = dir + "/runs/victim-1"
        try FileManager.default.createDirectory(atPath: victim + "/ingest/0/e", withIntermediateDirectories: true)
        try "rows".write(toFile: victim + "/ingest/0/e/part.parquet", atomically: true, encoding: .utf8)
        let transport = InMemoryTransport()
        let engine = CoordinatorEngine(store: try LineageStore(path: dir + "/bis.db"), transport: transport,
                                       chunkStore: ChunkStore(root: dir))
        try await engine.start()
        let deliveries = try await transport.taskDeliveries(stages: [.noop], prefetch: 4)
        let run = try await engine.submitNoop(tasks: 1, by: "test")
        var iterator = deliveries.makeAsyncIterator()
        let delivery = try #require(try await iterator.next())
        let task = try #require(delivery.task)
        for execution in ["0123456789abcdef", "../../../../runs/victim-1"] {
            try await transport.publishEvent(TaskEvent(kind: .succeeded, task: task, execution: execution, worker: Self.identity,
                                                       deliveryCount: 0, startedAt: Date(), finishedAt: Date()))
        }
        try await delivery.ack()
        #expect(try await engine.waitUntilSettled(run).state == .succeeded)
        #expect(try await rejected(engine, "invalid_field", atLeast: 1) == 1)
        try await Task.sleep(for: .milliseconds(100))
        #expect(FileManager.default.fileExists(atPath: victim + "/ingest/0/e/part.parquet"))
        await engine.stop()
        await transport.close()
    }
}
