@testable import Coordination
import FleetCore
import Foundation
import GRDB
import Testing

/// `CoordinatorEngine.submit` with input roots (`bis coordinator
/// --input-root`): what lies outside them is refused with
/// `ServiceError.forbidden` before it is parsed or read.
@Suite struct InputRootsEngineTests {
    static let spec = """
        pipeline: orders
        sources:
          orders:
            format: csv
            files: FILES
            columns: {id: int64}

        """

    /// A folder with `in/` (the input root: specs/, team-a/) and `outside/`, and an engine over it.
    struct Setup {
        let dir: String
        let root: String
        let engine: CoordinatorEngine
        let transport: InMemoryTransport

        init() throws {
            dir = FileManager.default.temporaryDirectory.appendingPathComponent("bis-roots-\(UUID().uuidString)").path
            let fm = FileManager.default
            for (path, text) in [("in/specs/data/a.csv", "id\n1\n"), ("in/team-a/b.csv", "id\n2\n"), ("outside/secret.csv", "id\n3\n")] {
                try fm.createDirectory(atPath: (dir + "/" + path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
                try text.write(toFile: dir + "/" + path, atomically: true, encoding: .utf8)
            }
            try InputRootsEngineTests.spec.replacingOccurrences(of: "FILES", with: "data/*.csv")
                .write(toFile: dir + "/outside/p.yml", atomically: true, encoding: .utf8)
            try fm.createDirectory(atPath: dir + "/store", withIntermediateDirectories: true)
            let roots = try InputRoots(resolving: [dir + "/in"], relativeTo: "/")
            root = roots.paths[0]
            transport = InMemoryTransport()
            engine = CoordinatorEngine(store: try LineageStore(path: dir + "/store/bis.db"), transport: transport,
                                       chunkStore: ChunkStore(root: dir + "/store"),
                                       options: CoordinatorOptions(inputRoots: roots, globEntryLimit: 1000))
        }

        func text(_ files: String) -> String { InputRootsEngineTests.spec.replacingOccurrences(of: "FILES", with: files) }

        /// The refusal's kind and message, or nil when the submit was accepted.
        func refusal(_ request: SubmitRequest) async -> ServiceError? {
            do {
                _ = try await engine.submit(request)
                return nil
            } catch let error as ServiceError {
                return error
            } catch {
                Issue.record("not a ServiceError: \(error)")
                return nil
            }
        }

        func remove() async {
            await transport.close()
            try? FileManager.default.removeItem(atPath: dir)
        }
    }

    func forbidden(_ error: ServiceError?) -> String? {
        if case .forbidden(let m) = error { return m }
        return nil
    }

    @Test func pathsOutsideTheInputRootsAre403() async throws {
        let s = try Setup()
        let policy = "this coordinator reads specs and input files only under its input root \(s.root) (bis coordinator --input-root)"
        // The whole file system as an allowed root.
        let wide = forbidden(await s.refusal(SubmitRequest(specPath: s.dir + "/in/specs/p.yml", specText: s.text("data/*.csv"),
                                                           allowedRoots: ["/"], submittedBy: "eve@host")))
        #expect(wide == "the allowed root / is not a folder under the coordinator's input roots (a client may only narrow them): \(policy)")
        // Inline text naming a folder outside.
        let inline = forbidden(await s.refusal(SubmitRequest(specPath: s.dir + "/outside/x.yml", specText: s.text("secret.csv"),
                                                             submittedBy: "eve@host")))
        #expect(inline == "the spec's folder \(s.dir)/outside is not a folder under the coordinator's input roots: \(policy)")
        // No text: the file outside is not read (its folder is refused first).
        let read = forbidden(await s.refusal(SubmitRequest(specPath: s.dir + "/outside/p.yml", submittedBy: "eve@host")))
        #expect(read == "the spec's folder \(s.dir)/outside is not a folder under the coordinator's input roots: \(policy)")
        // A glob leaving the roots: 403, naming the glob and the roots, not the file.
        let glob = forbidden(await s.refusal(SubmitRequest(specPath: s.dir + "/in/specs/p.yml", specText: s.text("../../outside/*.csv"),
                                                           submittedBy: "eve@host")))
        #expect(glob?.contains("'../../outside/*.csv' in source 'orders' is outside the allowed input root \(s.root)/specs") == true,
                "\(glob ?? "accepted")")
        #expect(glob?.contains("secret") == false)
        let all = forbidden(await s.refusal(SubmitRequest(specPath: s.dir + "/in/specs/p.yml", specText: s.text("'/**'"),
                                                          allowedRoots: [s.dir + "/in"], submittedBy: "eve@host")))
        #expect(all?.contains("'/**' in source 'orders' is outside the allowed input roots \(s.root)/specs, \(s.root)") == true,
                "\(all ?? "accepted")")
        let runs = try await s.engine.runs(limit: 10)
        #expect(runs.isEmpty)
        await s.remove()
    }

    @Test func aNarrowedSubmitRunsWithTheSpecsFolderAndItsRoots() async throws {
        let s = try Setup()
        // Without text the spec under a root is read; its own folder is always a root.
        try s.text("[data/*.csv, ../team-a/*.csv]").write(toFile: s.dir + "/in/specs/p.yml", atomically: true, encoding: .utf8)
        let view = try await s.engine.submit(SubmitRequest(specPath: s.dir + "/in/specs/p.yml", allowedRoots: [s.dir + "/in/team-a"],
                                                           submittedBy: "ann@host"))
        #expect(view.pipeline == "orders")
        let inputs = try await s.engine.store.read { db in
            try String.fetchAll(db, sql: "SELECT path FROM chunks WHERE kind = 'source' ORDER BY path")
        }
        #expect(inputs == [s.root + "/specs/data/a.csv", s.root + "/team-a/b.csv"])
        let roots = try await s.engine.store.read { db in
            try String.fetchOne(db, sql: "SELECT allowed_roots FROM runs WHERE id = ?", arguments: [view.id])
        }
        #expect(try JSONDecoder().decode([String].self, from: Data((roots ?? "").utf8)) == [s.root + "/specs", s.root + "/team-a"])
        // Without the narrowed root, team-a is outside the run's roots.
        let narrowed = forbidden(await s.refusal(SubmitRequest(specPath: s.dir + "/in/specs/p.yml", submittedBy: "ann@host")))
        #expect(narrowed?.contains("'../team-a/*.csv' in source 'orders' is outside the allowed input root \(s.root)/specs") == true,
                "\(narrowed ?? "accepted")")
        // A glob under the roots that matches nothing stays a spec error (400).
        let none = await s.refusal(SubmitRequest(specPath: s.dir + "/in/specs/p.yml", specText: s.text("data/*.tsv"), submittedBy: "ann@host"))
        guard case .badRequest(let m) = none else { Issue.record("\(String(describing: none))"); return }
        #expect(m.contains("no file matches 'data/*.tsv' in source 'orders' under the allowed input root \(s.root)/specs"))
        await s.remove()
    }

    /// The coordinator's own files under an input root (with the defaults
    /// the data root, and so the fleet key and the store, lie under it): no
    /// spec reads them as input, by name or by glob, and none is read as a spec.
    @Test func theCoordinatorsOwnFilesAreNoInput() async throws {
        let s = try Setup()
        let key = s.dir + "/in/specs/data/fleet.key"
        try String(repeating: "ab", count: 32).write(toFile: key, atomically: true, encoding: .utf8)
        let engine = CoordinatorEngine(store: try LineageStore(path: s.dir + "/store/own.db"), transport: s.transport,
                                       chunkStore: ChunkStore(root: s.dir + "/store"),
                                       options: CoordinatorOptions(inputRoots: try InputRoots(resolving: [s.dir + "/in"], relativeTo: "/"),
                                                                   globEntryLimit: 1000, protectedFiles: [key]))
        for files in ["data/fleet.key", "'data/*'"] {
            do {
                _ = try await engine.submit(SubmitRequest(specPath: s.dir + "/in/specs/p.yml", specText: s.text(files), submittedBy: "eve@host"))
                Issue.record("\(files): accepted")
            } catch let error as ServiceError {
                guard case .forbidden(let m) = error else { Issue.record("\(files): \(error)"); continue }
                #expect(m == "the input \(s.root)/specs/data/fleet.key is one of the coordinator's own files (its fleet key, store, "
                        + "auth file or TLS key), which no spec may read", "\(files)")
            }
        }
        do {
            _ = try await engine.submit(SubmitRequest(specPath: key, submittedBy: "eve@host"))
            Issue.record("the key as a spec: accepted")
        } catch let error as ServiceError {
            guard case .forbidden(let m) = error else { Issue.record("\(error)"); return }
            #expect(m.hasPrefix("the spec \(key) is one of the coordinator's own files"), "\(m)")
        }
        #expect(try await engine.runs(limit: 10).isEmpty)
        await s.remove()
    }
}
