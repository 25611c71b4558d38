import Columnar
import Foundation
import Testing
@testable import Stages

@Suite struct PublishTests {
    @Test func layoutAndManifestsOfTheDatasetAndItsSummary() throws {
        let f = try PublishFixture()
        defer { f.dir.cleanup() }
        let chunks = try f.chunks("a")
        let r = try f.publishRun("run-1", chunks)

        #expect(f.entries("orders") == [".lock", "CURRENT", "run-1", "view.sql"])
        #expect(f.entries("orders/run-1") == ["_manifest.json", "part-00000.parquet", "part-00001.parquet", "part-00002.parquet"])
        #expect(f.entries("by_flag") == [".lock", "CURRENT", "run-1", "view.sql"])
        #expect(f.entries("by_flag/run-1") == ["_manifest.json", "part-00000.parquet"])
        #expect(f.text("orders/CURRENT") == "run-1\n")
        #expect(f.text("by_flag/CURRENT") == "run-1\n")

        let m = try f.manifest("orders", "run-1")
        #expect(m == r.dataset.manifest)
        #expect(m.pipeline == "orders-daily" && m.run == "run-1" && m.dataset == "orders" && m.kind == "dataset")
        #expect(m.summaryOf == nil)
        #expect(m.created == "2026-11-18T11:06:40.000Z")
        #expect(m.bisVersion == "0.1.0")
        #expect(m.formatVersion == 1)
        #expect(m.schema.map(\.name) == ["id", "flag", "amount", "price", "name"])
        #expect(m.schema.map(\.type) == ["int64", "string", "decimal(10,2)", "double", "string"])
        #expect(m.files.map(\.name) == ["part-00000.parquet", "part-00001.parquet", "part-00002.parquet"])
        #expect(m.rows == 600 && m.files.allSatisfy { $0.rows == 200 })
        for (file, chunk) in zip(m.files, chunks) {
            let published = f.published + "/orders/run-1/" + file.name
            #expect(file.sha256 == (try sha256(ofFile: chunk)))
            #expect(file.sha256 == (try sha256(ofFile: published)))
            #expect(file.bytes == (try FileManager.default.attributesOfItem(atPath: published)[.size] as? Int64))
        }
        #expect(m.bytes == m.files.reduce(0) { $0 + $1.bytes })
        #expect(r.dataset.path.hasSuffix("/published/orders/run-1") && r.dataset.path.hasPrefix("/"))
        #expect(r.dataset.files.count == 3 && !r.dataset.reused)
        #expect(r.current == ["orders": "run-1", "by_flag": "run-1"])

        // The manifest's keys as a script reads them.
        let raw = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: r.dataset.manifestPath))) as? [String: Any])
        #expect(Set(raw.keys) == ["format_version", "pipeline", "run", "dataset", "kind", "schema", "files", "rows", "bytes",
                                   "created", "bis_version"])

        let s = try f.manifest("by_flag", "run-1")
        #expect(s.kind == "summary" && s.summaryOf == "orders")
        #expect(s.schema.map(\.name) == ["flag", "rows", "amount_sum", "names", "min_name", "max_amount", "avg_price", "amounts"])
        #expect(s.files.count == 1 && s.rows == 4)  // A, N, R and null
        #expect(r.summaries.map(\.dataset) == ["by_flag"])

        // The view names the current version's files by absolute path.
        let view = try #require(f.text("orders/view.sql"))
        #expect(view.contains("CREATE OR REPLACE VIEW \"orders\" AS SELECT * FROM read_parquet(['\(r.dataset.path)/part-00000.parquet', "))
    }

    @Test func publishingTheSameRunAgainChangesNothing() throws {
        let f = try PublishFixture()
        defer { f.dir.cleanup() }
        let chunks = try f.chunks("a")
        let first = try f.publishRun("run-1", chunks)
        let before = try f.snapshot()
        // Later, as a redelivered task would.
        let again = try publish(dataset: "orders", run: "run-1", pipeline: "orders-daily", chunks: chunks,
                                summaries: try f.partials(chunks), root: f.root, retention: 3, now: Date())
        let after = try f.snapshot()
        #expect(before.keys.sorted() == after.keys.sorted())
        for (path, (bytes, mtime)) in before {
            #expect(after[path]?.0 == bytes, "\(path) changed")
            #expect(after[path]?.1 == mtime, "\(path) was rewritten")
        }
        #expect(again.versions.allSatisfy { $0.reused })
        #expect(again.dataset.manifest == first.dataset.manifest)
        #expect(again.summaries.map(\.manifest) == first.summaries.map(\.manifest))
    }

    @Test func otherContentForAPublishedRunIsRefused() throws {
        let f = try PublishFixture()
        defer { f.dir.cleanup() }
        _ = try f.publishRun("run-1", try f.chunks("a"))
        let before = try f.snapshot()
        let other = try f.chunks("b", seed: 7)
        let error = #expect(throws: PublishError.self) { _ = try f.publishRun("run-1", other) }
        guard case .runAlreadyPublished(let dataset, let run, let difference)? = error else {
            Issue.record("expected runAlreadyPublished, got \(String(describing: error))")
            return
        }
        #expect(dataset == "orders" && run == "run-1" && difference.contains("part-00000.parquet"), "\(difference)")
        // Fewer files is refused too.
        #expect(throws: PublishError.self) { _ = try f.publishRun("run-1", Array(try f.chunks("a").prefix(2))) }
        let after = try f.snapshot()
        #expect(before.keys.sorted() == after.keys.sorted())
        #expect(before.allSatisfy { after[$0.key]?.0 == $0.value.0 })
    }

    @Test func aDamagedPublishedFileIsReportedOnRepublish() throws {
        let f = try PublishFixture()
        defer { f.dir.cleanup() }
        let chunks = try f.chunks("a")
        _ = try f.publishRun("run-1", chunks)
        let part = f.published + "/orders/run-1/part-00001.parquet"
        try FileManager.default.removeItem(atPath: part)
        let error = #expect(throws: PublishError.self) { _ = try f.publishRun("run-1", chunks) }
        guard case .damagedVersion(_, let reason)? = error else {
            Issue.record("expected damagedVersion, got \(String(describing: error))")
            return
        }
        #expect(reason.contains("part-00001.parquet is missing"))
    }

    @Test(arguments: [PublishFaults.Step.versionWritten, .versionCommitted, .pointerSwapped, .viewWritten])
    func aCrashLeavesTheOldVersionCurrentAndAReplayCompletes(step: PublishFaults.Step) throws {
        let f = try PublishFixture()
        defer { f.dir.cleanup() }
        _ = try f.publishRun("run-1", try f.chunks("a", count: 2, rows: 50), at: 0)
        let oldView = try #require(f.text("orders/view.sql"))
        let next = try f.chunks("b", count: 3, rows: 40, firstID: 1000, seed: 2)
        let crash = PublishFaults { s, dataset in
            if s == step, dataset == "orders" { throw InjectedCrash() }
        }
        #expect(throws: InjectedCrash.self) { _ = try f.publishRun("run-2", next, at: 60, faults: crash) }

        switch step {
        case .versionWritten, .versionCommitted:
            // Nothing a reader follows has moved.
            #expect(f.text("orders/CURRENT") == "run-1\n")
            #expect(f.text("orders/view.sql") == oldView)
            #expect(step == .versionCommitted || f.entries("orders").contains { $0.hasPrefix(".tmp-run-2-") })
            if StagesPython.enabled {
                let v = try f.duckdbView("orders")
                #expect(v.rows == 100 && v.ids == Array(0..<100))
            }
        case .pointerSwapped:
            #expect(f.text("orders/CURRENT") == "run-2\n")
        case .viewWritten:
            #expect(f.text("orders/CURRENT") == "run-2\n")
            #expect(f.text("orders/view.sql")?.contains("/orders/run-2/part-00002.parquet") == true)
        }
        // The summary's pointer was not reached: summaries switch after the dataset.
        #expect(f.text("by_flag/CURRENT") == "run-1\n")

        // The task is retried: publish completes and cleans the crash's leftovers.
        let r = try f.publishRun("run-2", next, at: 120)
        #expect(r.current == ["orders": "run-2", "by_flag": "run-2"])
        #expect(f.text("orders/CURRENT") == "run-2\n" && f.text("by_flag/CURRENT") == "run-2\n")
        #expect(f.text("orders/view.sql")?.contains("/orders/run-2/part-00002.parquet") == true)
        #expect(!f.entries("orders").contains { $0.hasPrefix(".tmp") })
        #expect(f.entries("orders") == [".lock", "CURRENT", "run-1", "run-2", "view.sql"])
        // A version already in place keeps its manifest (and creation time).
        #expect(r.dataset.reused == (step != .versionWritten))
        if StagesPython.enabled {
            let v = try f.duckdbView("orders")
            #expect(v.rows == 120 && v.ids == Array(1000..<1120))
        }
    }

    @Test func retentionKeepsTheMostRecentVersionsAndPointerOnlyMovesForward() throws {
        let f = try PublishFixture()
        defer { f.dir.cleanup() }
        for i in 1...4 {
            let r = try f.publishRun("run-\(i)", try f.chunks("c\(i)", count: 1, rows: 10, firstID: Int64(i * 100), seed: UInt64(i)),
                                     at: Double(i) * 60, retention: 2)
            #expect(r.removed == (i > 2 ? [f.published + "/orders/run-\(i - 2)", f.published + "/by_flag/run-\(i - 2)"] : []))
        }
        #expect(f.entries("orders") == [".lock", "CURRENT", "run-3", "run-4", "view.sql"])
        #expect(f.entries("by_flag") == [".lock", "CURRENT", "run-3", "run-4", "view.sql"])
        #expect(f.text("orders/CURRENT") == "run-4\n")

        // A late duplicate of an older run's publish (created before run-4)
        // must not bring old data back: CURRENT stays on run-4.
        let late = try f.publishRun("run-0", try f.chunks("c0", count: 1, rows: 10, firstID: 0, seed: 9), at: 30, retention: 3)
        #expect(late.current["orders"] == "run-4")
        #expect(f.text("orders/CURRENT") == "run-4\n")
        #expect(f.text("orders/view.sql")?.contains("/orders/run-4/") == true)
        #expect(f.entries("orders") == [".lock", "CURRENT", "run-0", "run-3", "run-4", "view.sql"])
        // With retention 1 only CURRENT's version is left.
        _ = try f.publishRun("run-4", try f.chunks("c4", count: 1, rows: 10, firstID: 400, seed: 4), at: 240, retention: 1)
        #expect(f.entries("orders") == [".lock", "CURRENT", "run-4", "view.sql"])
    }

    @Test(arguments: ["", "..", "../x", "a/b", ".hidden", "a..b", "/abs", "sp ace", "ü"])
    func namesThatCouldLeaveTheRootAreRefused(name: String) throws {
        let f = try PublishFixture()
        defer { f.dir.cleanup() }
        let chunks = try f.chunks("a", count: 1, rows: 5)
        for (dataset, run, summary) in [(name, "run-1", "s"), ("orders", name, "s"), ("orders", "run-1", name)] {
            #expect(throws: PublishError.self) {
                _ = try publish(dataset: dataset, run: run, pipeline: "p", chunks: chunks,
                                summaries: [summary: try f.partials(chunks)["by_flag"]!], root: f.root, retention: 1, now: Date())
            }
        }
        #expect(!FileManager.default.fileExists(atPath: f.root))
        #expect(f.dir.entries() == ["validated-a"])
    }

    @Test func reservedRunNamesAndRetentionBelowOneAreRefused() throws {
        let f = try PublishFixture()
        defer { f.dir.cleanup() }
        let chunks = try f.chunks("a", count: 1, rows: 5)
        #expect(throws: PublishError.invalidName(kind: "run", name: "CURRENT")) { _ = try f.publishRun("CURRENT", chunks) }
        #expect(throws: PublishError.invalidName(kind: "run", name: "view.sql")) { _ = try f.publishRun("view.sql", chunks) }
        #expect(throws: PublishError.self) { _ = try f.publishRun("r", chunks, retention: 0) }
        #expect(throws: PublishError.self) {
            _ = try publish(dataset: "orders", run: "r", pipeline: "p", chunks: chunks, summaries: ["orders": try f.partials(chunks)["by_flag"]!],
                            root: f.root, retention: 1, now: Date())
        }
        #expect(throws: PublishError.self) {
            _ = try publish(dataset: "orders", run: "r", pipeline: "p", chunks: chunks, summaries: ["s": []], root: f.root, retention: 1, now: Date())
        }
    }

    @Test func aSymlinkedDatasetFolderIsRefused() throws {
        let f = try PublishFixture()
        defer { f.dir.cleanup() }
        let elsewhere = try f.dir.sub("elsewhere")
        try FileManager.default.createDirectory(atPath: f.published, withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: f.published + "/orders", withDestinationPath: elsewhere)
        let chunks = try f.chunks("a", count: 1, rows: 5)
        let error = #expect(throws: PublishError.self) { _ = try f.publishRun("run-1", chunks) }
        guard case .unsafePath(let path, _)? = error else {
            Issue.record("expected unsafePath, got \(String(describing: error))")
            return
        }
        #expect(path.hasSuffix("/published/orders"))
        #expect(f.dir.entries("elsewhere").isEmpty)
    }

    @Test func chunksOfDifferentSchemasAreRefused() throws {
        let f = try PublishFixture()
        defer { f.dir.cleanup() }
        let a = try f.chunks("a", count: 1, rows: 5)
        let odd = try opWriteChunk(f.dir.file("odd.parquet"), [try opBatch([("id", .string, [.string("x")])])]).path
        #expect(throws: PublishError.self) {
            _ = try publish(dataset: "orders", run: "r", pipeline: "p", chunks: a + [odd], summaries: [:], root: f.root,
                            retention: 1, now: Date())
        }
        #expect(f.entries("orders") == [".lock"])
    }

    @Test func partialsFilesRoundTrip() throws {
        let f = try PublishFixture()
        defer { f.dir.cleanup() }
        let chunks = try f.chunks("a", count: 1, rows: 50)
        let partials = ["by_flag": try f.partials(chunks)["by_flag"]![0]]
        let path = f.dir.file("validated-00000.partials.json")
        try PartialsFile.write(partials, to: path)
        let back = try PartialsFile.read(path)
        #expect(back == partials)
        #expect(try PartialsFile.encode(back) == (try PartialsFile.encode(partials)))
        try "[1]".write(toFile: path, atomically: true, encoding: .utf8)
        #expect(throws: PublishError.self) { _ = try PartialsFile.read(path) }
    }
}

@Suite struct PublishLinkTests {
    static func identity(_ path: String) throws -> (device: Int, inode: Int) {
        let a = try FileManager.default.attributesOfItem(atPath: path)
        return ((a[.systemNumber] as? NSNumber)?.intValue ?? -1, (a[.systemFileNumber] as? NSNumber)?.intValue ?? -1)
    }

    @Test func chunksAreHardLinkedOnOneFilesystemAndCopiedAcrossFilesystems() throws {
        let f = try PublishFixture()
        defer { f.dir.cleanup() }
        let local = try f.chunks("a", count: 1, rows: 20)
        let r = try f.publishRun("run-1", local)
        let published = try Self.identity(r.dataset.files[0])
        let source = try Self.identity(local[0])
        #expect(published.device == source.device && published.inode == source.inode)

        // /dev/shm is another filesystem (tmpfs) where there is one: link(2) fails with EXDEV, publish copies.
        let shm = "/dev/shm/bis-publish-\(UUID().uuidString)"
        guard (try? FileManager.default.createDirectory(atPath: shm, withIntermediateDirectories: false)) != nil else { return }
        defer { try? FileManager.default.removeItem(atPath: shm) }
        let remote = try opWriteChunk(shm + "/validated-00000.parquet", [try ParquetReader(path: local[0]).read()]).path
        guard try Self.identity(remote).device != source.device else { return }
        let c = try publish(dataset: "orders", run: "run-2", pipeline: "p", chunks: [remote], summaries: [:], root: f.root,
                            retention: 5, now: Date(timeIntervalSince1970: 1_900_000_000))
        let copied = try Self.identity(c.dataset.files[0])
        #expect(copied.device == source.device)
        #expect(c.dataset.manifest.files[0].sha256 == (try sha256(ofFile: remote)))
        #expect(c.dataset.manifest.files[0].sha256 == (try sha256(ofFile: c.dataset.files[0])))
        #expect(f.text("orders/CURRENT") == "run-2\n")
    }
}
