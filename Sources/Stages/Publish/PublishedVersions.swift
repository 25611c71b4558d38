#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import FleetCore
import Foundation

/// The published datasets as the coordinator's retention (`bis gc`) sees
/// them: which versions each dataset folder holds, which one `CURRENT` and
/// `view.sql` point at, and the removal of one version under the dataset's
/// publish lock, made unreachable (renamed to a `.tmp-removing-` name)
/// before any of its files goes.
public enum PublishedVersions {
    /// One complete version folder.
    public struct Version: Sendable, Hashable {
        public var dataset: String
        public var run: String
        /// The manifest's `created` (ISO 8601 text: sorts as time).
        public var created: String
        /// Bytes and files of the folder (manifest included).
        public var bytes: Int64
        public var files: Int
    }

    /// A dataset folder's versions, newest first (by `created`, then run id,
    /// as publish's own retention orders them), and what points at them.
    public struct Dataset: Sendable, Hashable {
        public var name: String
        public var versions: [Version]
        /// The run `CURRENT` names.
        public var current: String?
        /// The runs whose folder `view.sql` names (normally `current`'s only).
        public var viewRuns: Set<String>
        /// `.tmp-…` entries: a crashed publish's or removal's leftovers.
        public var leftovers: [String]
    }

    /// Every dataset under `<root>/published` (empty when there is none).
    public static func list(root: String) -> [Dataset] {
        let published = root + "/published"
        // A symlinked published/ is not followed: publish refuses one too.
        guard DurableFiles.kind(published) == .directory, let names = try? DurableFiles.entries(published) else { return [] }
        return names.filter { !$0.hasPrefix(".") && DurableFiles.kind(published + "/" + $0) == .directory }
            .map { dataset(published + "/" + $0, name: $0) }
    }

    static func dataset(_ folder: String, name: String) -> Dataset {
        var versions: [Version] = []
        var leftovers: [String] = []
        for entry in (try? DurableFiles.entries(folder)) ?? [] {
            if entry.hasPrefix(".tmp-") { leftovers.append(entry); continue }
            guard !entry.hasPrefix("."), entry != "CURRENT", entry != "view.sql" else { continue }
            let path = folder + "/" + entry
            guard DurableFiles.kind(path) == .directory, let bytes = DurableFiles.readBytes(path + "/_manifest.json"),
                  let m = try? PublishManifest(json: bytes), m.run == entry else { continue }
            let (b, f) = treeSize(path)
            versions.append(Version(dataset: name, run: entry, created: m.created, bytes: b, files: f))
        }
        versions.sort { ($0.created, $0.run) > ($1.created, $1.run) }
        let view = DurableFiles.readBytes(folder + "/view.sql").map { String(decoding: $0, as: UTF8.self) } ?? ""
        let viewRuns = Set(versions.map(\.run).filter { view.contains("/" + $0 + "/") })
        return Dataset(name: name, versions: versions, current: currentRun(folder: folder), viewRuns: viewRuns,
                       leftovers: leftovers)
    }

    /// Bytes and regular files under `path` (a file or a folder); zeros when it is missing.
    public static func treeSize(_ path: String) -> (bytes: Int64, files: Int) {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else { return (0, 0) }
        if !isDir.boolValue { return ((try? DurableFiles.size(path)) ?? 0, 1) }
        var bytes: Int64 = 0
        var files = 0
        let e = FileManager.default.enumerator(atPath: path)
        while let rel = e?.nextObject() as? String {
            let full = path + "/" + rel
            if DurableFiles.kind(full) == .file {
                bytes += (try? DurableFiles.size(full)) ?? 0
                files += 1
            }
        }
        return (bytes, files)
    }

    /// What `remove` did.
    public enum Removal: Sendable, Equatable {
        /// The version is gone (now, or already before).
        case removed
        /// `CURRENT` or `view.sql` names it: kept, nothing touched.
        case pointedAt
    }

    /// Removes version `run` of `dataset` under the dataset's publish lock:
    /// refuses (`.pointedAt`) when `CURRENT` or `view.sql` names it; renames
    /// the folder to `.tmp-removing-<run>-<uuid>` and syncs the dataset
    /// folder (from then on no reader or publish sees it as a version), then
    /// `unlinked` runs (a test hook: a crash there), then the tree goes.
    /// Idempotent: with the folder already gone, it finishes any
    /// `.tmp-removing-<run>-…` leftover and answers `.removed`.
    public static func remove(root: String, dataset: String, run: String,
                              unlinked: () throws -> Void = {}) throws -> Removal {
        try PublishNames.check(dataset, kind: "dataset")
        try PublishNames.check(run, kind: "run")
        let folder = root + "/published/" + dataset
        guard DurableFiles.kind(folder) == .directory else { return .removed }
        let lock = try DurableFiles.Lock(folder + "/.lock")
        defer { lock.release() }
        let view = DurableFiles.readBytes(folder + "/view.sql").map { String(decoding: $0, as: UTF8.self) } ?? ""
        if currentRun(folder: folder) == run || view.contains("/" + run + "/") { return .pointedAt }
        let path = folder + "/" + run
        if DurableFiles.kind(path) == .directory {
            let doomed = folder + "/.tmp-removing-" + run + "-" + UUID().uuidString
            try DurableFiles.check(rename(path, doomed), "cannot rename \(path) to \(doomed)")
            try DurableFiles.sync(folder)
            try unlinked()
            try DurableFiles.removeTree(doomed)
        }
        // Leftovers of an earlier removal of this run that did not finish.
        for entry in try DurableFiles.entries(folder) where entry.hasPrefix(".tmp-removing-" + run + "-") {
            try DurableFiles.removeTree(folder + "/" + entry)
        }
        try DurableFiles.sync(folder)
        return .removed
    }
}
