import Foundation
import Testing
@testable import FleetCore

/// Glob resolution and the allowed-roots rule, on real temp folders.
@Suite struct SpecInputTests {
    func spec(files: String) -> String {
        """
        pipeline: orders
        sources:
          orders:
            format: csv
            files: \(files)
            columns: {id: int64}

        """
    }

    /// The messages `load` throws, or [] when it loads.
    func loadErrors(_ path: String, allowedRoots: [String] = []) -> [String] {
        do {
            _ = try PipelineSpec.load(path: path, allowedRoots: allowedRoots)
            return []
        } catch {
            return error.errors.map(\.description)
        }
    }

    @Test func globsMatchWithinASegmentAndDoubleStarAtAnyDepth() throws {
        try withTempDir { dir in
            let root = PathResolver.canonical(dir.path)
            for file in ["data/a.csv", "data/b.csv", "data/c.txt", "data/.hidden.csv", "data/x1.csv", "data/x22.csv",
                         "data/2026/01/d.csv", "data/2026/e.csv", "data/2026/.skip/f.csv"] {
                try dir.write(file, "id\n1\n")
            }
            let specPath = try dir.write("spec.yml", spec(files: "[data/*.csv, 'data/x?.csv', 'data/[ab].csv', data/**/*.csv]"))
            let loaded = try PipelineSpec.load(path: specPath)
            // Sorted, without repeats; `*` skips dot files; `**` does not enter hidden folders.
            #expect(loaded.sources[0].resolvedFiles == [
                "\(root)/data/2026/01/d.csv", "\(root)/data/2026/e.csv",
                "\(root)/data/a.csv", "\(root)/data/b.csv", "\(root)/data/x1.csv", "\(root)/data/x22.csv",
            ])
            #expect(loaded.allowedRoots == [root])
        }
    }

    @Test func aGlobThatMatchesNothingIsNamed() throws {
        try withTempDir { dir in
            try dir.write("data/a.csv", "id\n1\n")
            let specPath = try dir.write("spec.yml", spec(files: "[data/*.csv, data/*.tsv, missing/**/*.csv]"))
            let folder = URL(fileURLWithPath: specPath).deletingLastPathComponent().path
            let root = PathResolver.canonical(folder)
            #expect(loadErrors(specPath) == [
                "\(specPath):5:25: no file matches 'data/*.tsv' in source 'orders' under the allowed input root \(root) "
                    + "(relative globs start at \(folder))",
                "\(specPath):5:37: no file matches 'missing/**/*.csv' in source 'orders' under the allowed input root \(root) "
                    + "(relative globs start at \(folder))",
            ])
            // The spec can still be checked without its inputs.
            let unresolved = try PipelineSpec.load(path: specPath, resolvingInputs: false)
            #expect(unresolved.sources[0].resolvedFiles.isEmpty)
        }
    }

    @Test func dotDotEscapesAreRefused() throws {
        try withTempDir { dir in
            try dir.write("outside.csv", "id\n1\n")
            let specPath = try dir.write("specs/spec.yml", spec(files: "../outside.csv"))
            let root = PathResolver.canonical(dir.path + "/specs")
            let file = PathResolver.canonical(dir.path + "/outside.csv")
            let folder = URL(fileURLWithPath: specPath).deletingLastPathComponent().path
            // Refused on the glob's text, before any folder is read: the
            // error names the glob and the root, never the file outside.
            #expect(loadErrors(specPath) == [
                "\(specPath):5:12: '../outside.csv' in source 'orders' is outside the allowed input root \(root): "
                    + "a glob must lie under one of them (relative globs start at \(folder))",
            ])
            #expect(!loadErrors(specPath).joined().contains(file))
        }
    }

    @Test func symlinksPointingOutAreRefusedAndAnAllowedRootAdmitsThem() throws {
        try withTempDir { dir in
            let target = try dir.write("elsewhere/real.csv", "id\n1\n")
            let specPath = try dir.write("specs/spec.yml", spec(files: "data/*.csv"))
            try FileManager.default.createDirectory(atPath: dir.path + "/specs/data", withIntermediateDirectories: true)
            try FileManager.default.createSymbolicLink(atPath: dir.path + "/specs/data/link.csv", withDestinationPath: target)
            let specFolder = URL(fileURLWithPath: specPath).deletingLastPathComponent().path
            let root = PathResolver.canonical(specFolder)
            let real = PathResolver.canonical(target)
            // The link (under the root) is named, never its target.
            #expect(loadErrors(specPath) == [
                "\(specPath):5:12: 'data/*.csv' in source 'orders' reaches \(specFolder)/data/link.csv, a symlink that leads "
                    + "outside the allowed input root \(root); move the file under the spec's folder or allow its folder "
                    + "as an input root",
            ])
            #expect(!loadErrors(specPath).joined().contains(real))
            let loaded = try PipelineSpec.load(path: specPath, allowedRoots: [dir.path + "/elsewhere"])
            #expect(loaded.sources[0].resolvedFiles == [real])
            #expect(loaded.allowedRoots == [root, PathResolver.canonical(dir.path + "/elsewhere")])
        }
    }

    @Test func aSymlinkInsideTheRootIsResolved() throws {
        try withTempDir { dir in
            let target = try dir.write("data/real.csv", "id\n1\n")
            try FileManager.default.createSymbolicLink(atPath: dir.path + "/data/alias.csv", withDestinationPath: target)
            let specPath = try dir.write("spec.yml", spec(files: "data/alias.csv"))
            let loaded = try PipelineSpec.load(path: specPath)
            #expect(loaded.sources[0].resolvedFiles == [PathResolver.canonical(target)])
        }
    }

    @Test func anUnreadableSpecFileIsASpecError() {
        #expect(loadErrors("/nonexistent/bis/spec.yml").first?.hasPrefix("/nonexistent/bis/spec.yml: cannot read the spec") == true)
    }
}
