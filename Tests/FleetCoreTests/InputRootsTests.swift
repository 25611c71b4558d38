#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import Testing
@testable import FleetCore

/// The coordinator's input roots (`InputRoots.admit`) and the confined glob
/// walk: what a client names outside the roots is refused without being
/// read, and no error names anything outside them.
@Suite struct InputRootsTests {
    let spec = """
        pipeline: orders
        sources:
          orders:
            format: csv
            files: data/*.csv
            columns: {id: int64}

        """

    func refusal(_ roots: InputRoots, specPath: String, specText: String? = nil, allowedRoots: [String] = [])
        -> InputRefusal? {
        do {
            _ = try roots.admit(specPath: specPath, specText: specText, allowedRoots: allowedRoots, base: "/nonexistent")
            return nil
        } catch {
            return error
        }
    }

    @Test func rootsAreResolvedAndMustBeExistingFolders() throws {
        try withTempDir { dir in
            try dir.write("real/a.txt", "x")
            try FileManager.default.createSymbolicLink(atPath: dir.path + "/alias", withDestinationPath: dir.path + "/real")
            let roots = try InputRoots(resolving: ["alias", "real", dir.path + "/real/"], relativeTo: dir.path)
            #expect(roots.paths == [PathResolver.canonical(dir.path + "/real")])
            #expect(throws: InputRootsError.self) { try InputRoots(resolving: ["missing"], relativeTo: dir.path) }
            #expect(throws: InputRootsError.self) { try InputRoots(resolving: ["real/a.txt"], relativeTo: dir.path) }
            #expect(throws: InputRootsError.self) { try InputRoots(resolving: [], relativeTo: dir.path) }
            do {
                _ = try InputRoots(resolving: ["missing"], relativeTo: dir.path)
            } catch {
                #expect((error as? InputRootsError)?.message == "the input root missing does not exist")
            }
        }
    }

    @Test func aSpecFolderOutsideTheRootsIsRefusedInlineOrNot() throws {
        try withTempDir { dir in
            try dir.write("in/specs/data/a.csv", "id\n1\n")
            try dir.write("secret/p.yml", spec)
            let roots = try InputRoots(resolving: [dir.path + "/in"], relativeTo: "/")
            let root = roots.paths[0]
            let policy = "this coordinator reads specs and input files only under its input root \(root) "
                + "(bis coordinator --input-root)"
            #expect(refusal(roots, specPath: dir.path + "/secret/p.yml", specText: spec)
                    == .forbidden("the spec's folder \(dir.path)/secret is not a folder under the coordinator's input roots: \(policy)"))
            #expect(refusal(roots, specPath: "/x.yml", specText: spec)
                    == .forbidden("the spec's folder / is not a folder under the coordinator's input roots: \(policy)"))
            // `..` is applied to the text: it cannot climb out.
            #expect(refusal(roots, specPath: dir.path + "/in/specs/../../secret/p.yml", specText: spec)
                    == .forbidden("the spec's folder \(dir.path)/secret is not a folder under the coordinator's input roots: \(policy)"))
            // A folder under a root that does not exist gets the same answer.
            #expect(refusal(roots, specPath: dir.path + "/in/nope/p.yml", specText: spec)
                    == .forbidden("the spec's folder \(dir.path)/in/nope is not a folder under the coordinator's input roots: \(policy)"))
            let admitted = try roots.admit(specPath: dir.path + "/in/specs/p.yml", specText: spec, allowedRoots: [], base: "/")
            #expect(admitted.directory == root + "/specs")
            #expect(admitted.file == dir.path + "/in/specs/p.yml")
            #expect(admitted.allowedRoots == [])
            #expect(admitted.text == spec)
        }
    }

    @Test func aSymlinkedSpecFolderLeadingOutIsRefusedWhetherItsTargetExistsOrNot() throws {
        try withTempDir { dir in
            try dir.write("in/x", "")
            try dir.write("secret/p.yml", spec)
            try FileManager.default.createSymbolicLink(atPath: dir.path + "/in/out", withDestinationPath: dir.path + "/secret")
            try FileManager.default.createSymbolicLink(atPath: dir.path + "/in/gone", withDestinationPath: dir.path + "/nothing")
            let roots = try InputRoots(resolving: [dir.path + "/in"], relativeTo: "/")
            guard case .forbidden(let out) = refusal(roots, specPath: dir.path + "/in/out/p.yml") else {
                Issue.record("not refused"); return
            }
            guard case .forbidden(let gone) = refusal(roots, specPath: dir.path + "/in/gone/p.yml") else {
                Issue.record("not refused"); return
            }
            // The same words for both: the answer does not tell whether the target exists.
            #expect(out.replacingOccurrences(of: "/in/out", with: "/in/gone") == gone)
            #expect(!out.contains("secret") && !gone.contains("nothing"))
        }
    }

    @Test func withoutTextTheSpecIsReadOnlyUnderARoot() throws {
        try withTempDir { dir in
            try dir.write("in/specs/p.yml", spec)
            try dir.write("in/specs/sub/x", "")
            try dir.write("secret/s.yml", spec)
            // A spec under the root that is a symlink to a file outside.
            try FileManager.default.createSymbolicLink(atPath: dir.path + "/in/specs/link.yml", withDestinationPath: dir.path + "/secret/s.yml")
            // A FIFO outside the roots: opening it to read would block, so a
            // refusal that returns proves nothing was read.
            #expect(mkfifo(dir.path + "/in/specs/fifo.yml", 0o600) == 0)
            let roots = try InputRoots(resolving: [dir.path + "/in"], relativeTo: "/")
            let admitted = try roots.admit(specPath: dir.path + "/in/specs/p.yml", specText: nil, allowedRoots: [], base: "/")
            #expect(admitted.text == spec)
            guard case .forbidden(let m) = refusal(roots, specPath: dir.path + "/in/specs/link.yml") else {
                Issue.record("a spec linked from outside was read"); return
            }
            #expect(m.hasPrefix("the spec \(dir.path)/in/specs/link.yml is not under the coordinator's input roots: "))
            #expect(refusal(roots, specPath: dir.path + "/in/specs/fifo.yml")
                    == .unreadable("cannot read the spec \(dir.path)/in/specs/fifo.yml: not a regular file"))
            #expect(refusal(roots, specPath: dir.path + "/in/specs/sub")?.description.contains("not a regular file") == true)
            #expect(refusal(roots, specPath: dir.path + "/in/specs/none.yml")
                    == .unreadable("cannot read the spec \(dir.path)/in/specs/none.yml: no such file"))
        }
    }

    @Test func aPathSpelledThroughTheRootAsGivenIsUnderIt() throws {
        try withTempDir { dir in
            try dir.write("mnt/in/specs/p.yml", spec)
            try dir.write("mnt/in/team/x", "")
            try dir.write("mnt/other/y", "")
            try FileManager.default.createSymbolicLink(atPath: dir.path + "/in", withDestinationPath: dir.path + "/mnt/in")
            let roots = try InputRoots(resolving: [dir.path + "/in"], relativeTo: "/")
            let real = PathResolver.canonical(dir.path + "/mnt/in")
            #expect(roots.paths == [real])
            let admitted = try roots.admit(specPath: dir.path + "/in/specs/p.yml", specText: nil,
                                           allowedRoots: [dir.path + "/in/team"], base: "/")
            #expect(admitted.directory == real + "/specs")
            #expect(admitted.allowedRoots == [real + "/team"])
            #expect(admitted.text == spec)
            // The spelling does not reach beyond the root: `..` is applied first.
            #expect(refusal(roots, specPath: dir.path + "/in/../other/p.yml", specText: spec) != nil)
            #expect(roots.contains(real + "/team") && !roots.contains(PathResolver.canonical(dir.path + "/mnt/other")))
        }
    }

    @Test func anOversizedSpecFileIsRefused() throws {
        try withTempDir { dir in
            try dir.write("in/p.yml", String(repeating: "#", count: 2000))
            let roots = try InputRoots(resolving: [dir.path + "/in"], relativeTo: "/")
            #expect(throws: InputRefusal.self) {
                try roots.admit(specPath: dir.path + "/in/p.yml", specText: nil, allowedRoots: [], base: "/", maxSpecBytes: 1000)
            }
        }
    }

    @Test func allowedRootsMayOnlyNarrow() throws {
        try withTempDir { dir in
            try dir.write("in/specs/p.yml", spec)
            try dir.write("in/team-a/a.csv", "id\n1\n")
            try dir.write("other/b.csv", "id\n1\n")
            try FileManager.default.createSymbolicLink(atPath: dir.path + "/in/escape", withDestinationPath: dir.path + "/other")
            let roots = try InputRoots(resolving: [dir.path + "/in"], relativeTo: "/")
            let path = dir.path + "/in/specs/p.yml"
            for wider in ["/", dir.path, dir.path + "/other", dir.path + "/in/escape", dir.path + "/in/../other", "../other"] {
                guard case .forbidden(let m) = refusal(roots, specPath: path, specText: spec, allowedRoots: [wider]) else {
                    Issue.record("\(wider) was admitted"); continue
                }
                #expect(m.hasPrefix("the allowed root \(wider) is not a folder under the coordinator's input roots "
                                    + "(a client may only narrow them): this coordinator reads specs and input files only "
                                    + "under its input root \(roots.paths[0])"), "\(m)")
            }
            let narrowed = try roots.admit(specPath: path, specText: spec, allowedRoots: [dir.path + "/in/team-a", "team-a"],
                                           base: dir.path + "/in")
            #expect(narrowed.allowedRoots == [roots.paths[0] + "/team-a"])
            // The input roots themselves are allowed: a client may name them.
            let same = try roots.admit(specPath: path, specText: spec, allowedRoots: [dir.path + "/in"], base: "/")
            #expect(same.allowedRoots == roots.paths)
        }
    }

    // MARK: the confined walk

    @Test func confineFollowsLinksOnlyByTheirTextUnderTheRoots() throws {
        try withTempDir { dir in
            try dir.write("in/data/a.csv", "x")
            try dir.write("out/b.csv", "x")
            let fm = FileManager.default
            try fm.createSymbolicLink(atPath: dir.path + "/in/rel", withDestinationPath: "data/a.csv")
            try fm.createSymbolicLink(atPath: dir.path + "/in/abs", withDestinationPath: dir.path + "/in/data")
            try fm.createSymbolicLink(atPath: dir.path + "/in/out", withDestinationPath: dir.path + "/out")
            try fm.createSymbolicLink(atPath: dir.path + "/in/nowhere", withDestinationPath: dir.path + "/out/none")
            try fm.createSymbolicLink(atPath: dir.path + "/in/back", withDestinationPath: "../out/b.csv")
            try fm.createSymbolicLink(atPath: dir.path + "/in/loop", withDestinationPath: "loop")
            let root = PathResolver.canonical(dir.path + "/in")
            #expect(PathResolver.confine(root + "/rel", roots: [root]) == .inside(root + "/data/a.csv"))
            #expect(PathResolver.confine(root + "/abs/a.csv", roots: [root]) == .inside(root + "/data/a.csv"))
            #expect(PathResolver.confine(root + "/data/missing", roots: [root]) == .missing)
            #expect(PathResolver.confine(root + "/data/a.csv/below", roots: [root]) == .missing)
            #expect(PathResolver.confine(root + "/out", roots: [root]) == .outside)
            #expect(PathResolver.confine(root + "/out/b.csv", roots: [root]) == .outside)
            #expect(PathResolver.confine(root + "/nowhere", roots: [root]) == .outside)
            #expect(PathResolver.confine(root + "/back", roots: [root]) == .outside)
            #expect(PathResolver.confine(root + "/loop", roots: [root]) == .outside)
            #expect(PathResolver.confine(PathResolver.canonical(dir.path + "/out/b.csv"), roots: [root]) == .outside)
            // A second root admits the target.
            let out = PathResolver.canonical(dir.path + "/out")
            #expect(PathResolver.confine(root + "/back", roots: [root, out]) == .inside(out + "/b.csv"))
        }
    }

    func resolveErrors(_ specPath: String, allowedRoots: [String] = [], entryLimit: Int = PipelineSpec.defaultGlobEntryLimit)
        -> SpecErrors? {
        do {
            var s = try PipelineSpec.load(path: specPath, allowedRoots: allowedRoots, resolvingInputs: false)
            try s.resolveInputs(entryLimit: entryLimit)
            return nil
        } catch {
            return error
        }
    }

    func specWith(files: String) -> String {
        spec.replacingOccurrences(of: "files: data/*.csv", with: "files: \(files)")
    }

    @Test func aGlobOfTheWholeFileSystemFailsBeforeAnyWalk() throws {
        var walk = GlobWalk(roots: ["/nonexistent/in"], limit: 10)
        for pattern in ["/**", "/**/*.csv", "/etc/*", "/nonexistent/*/x.csv", "/nonexistent"] {
            #expect(walk.expand(pattern) == .outside, "\(pattern)")
        }
        #expect(walk.visited == 0)
        try withTempDir { dir in
            let specPath = try dir.write("specs/p.yml", specWith(files: "['/**', '../**/*.csv', '/*/passwd']"))
            let started = ContinuousClock.now
            let errors = try #require(resolveErrors(specPath))
            #expect(ContinuousClock.now - started < .seconds(1))
            #expect(errors.outsideRoots)
            let root = PathResolver.canonical(dir.path + "/specs")
            #expect(errors.errors.map(\.message) == [
                "'/**' in source 'orders' is outside the allowed input root \(root): a glob must lie under one of them "
                    + "(relative globs start at \(dir.path)/specs)",
                "'../**/*.csv' in source 'orders' is outside the allowed input root \(root): a glob must lie under one of them "
                    + "(relative globs start at \(dir.path)/specs)",
                "'/*/passwd' in source 'orders' is outside the allowed input root \(root): a glob must lie under one of them "
                    + "(relative globs start at \(dir.path)/specs)",
            ])
        }
    }

    @Test func aGlobErrorNeverNamesAFileOutsideTheRoots() throws {
        try withTempDir { dir in
            try dir.write("outside/secret-name.csv", "id\n1\n")
            try dir.write("outside/deeper/other-secret.csv", "id\n1\n")
            try dir.write("specs/data/a.csv", "id\n1\n")
            try FileManager.default.createSymbolicLink(atPath: dir.path + "/specs/data/door", withDestinationPath: dir.path + "/outside")
            let specPath = try dir.write("specs/p.yml", specWith(
                files: "['data/door/*.csv', 'data/*/*.csv', 'data/**/*.csv', 'data/door/deeper/*.csv', 'data/door/none/*.csv']"))
            let errors = try #require(resolveErrors(specPath))
            let text = errors.description
            #expect(errors.outsideRoots)
            for secret in ["secret-name", "other-secret", "/outside"] {
                #expect(!text.contains(secret + ".csv") && !text.contains(dir.path + secret), "\(secret): \(text)")
            }
            // Each glob that reaches the link names the link (under the root) and nothing past it, whether
            // or not the path past it exists.
            let link = PathResolver.canonical(dir.path + "/specs") + "/data/door"
            let lines = errors.errors.map(\.message)
            #expect(lines.filter { $0.contains("reaches \(link), a symlink that leads outside") }.count == 4, "\(text)")
            // `**` does not go through the link, and finds the file under the root.
            #expect(!lines.contains { $0.hasPrefix("'data/**/*.csv'") })
        }
    }

    @Test func theWalkIsBounded() throws {
        try withTempDir { dir in
            for i in 0..<40 { try dir.write("specs/data/d\(i % 4)/f\(i).csv", "id\n1\n") }
            let specPath = try dir.write("specs/p.yml", specWith(files: "data/**/*.csv"))
            let errors = try #require(resolveErrors(specPath, entryLimit: 20))
            #expect(!errors.outsideRoots)
            let root = PathResolver.canonical(dir.path + "/specs")
            #expect(errors.errors.map(\.message) == [
                "'data/**/*.csv' in source 'orders' looks at more than 20 folder entries under the allowed input root \(root); "
                    + "name the folders before '**' or split the source",
            ])
            #expect(resolveErrors(specPath, entryLimit: 200) == nil)
        }
    }

    @Test func anAbsoluteGlobSpelledThroughTheSpecsFolderAsNamedIsRead() throws {
        try withTempDir { dir in
            try dir.write("real/data/a.csv", "id\n1\n")
            try FileManager.default.createSymbolicLink(atPath: dir.path + "/alias", withDestinationPath: dir.path + "/real")
            let specPath = try dir.write("alias/p.yml", specWith(files: "'\(dir.path)/alias/data/*.csv'"))
            let loaded = try PipelineSpec.load(path: specPath)
            #expect(loaded.sources[0].resolvedFiles == [PathResolver.canonical(dir.path + "/real/data/a.csv")])
        }
    }
}
