#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// The published datasets under a data root, read from disk: each
/// `published/<dataset>/` folder, its version folders (a readable
/// `_manifest.json` whose `run` is the folder's name) and its `CURRENT`.
/// Also moves `CURRENT` to another version (`rollback`).
public enum DatasetCatalog {
    /// One dataset folder.
    public struct Entry: Sendable, Equatable {
        public let name: String
        /// Absolute path of `published/<name>`.
        public let folder: String
        /// The run `CURRENT` names, as written (it may name a version that is gone).
        public let current: String?
        /// Newest first (manifest `created`, then run id).
        public let versions: [PublishManifest]

        /// The manifest of the version `CURRENT` names, when it is there.
        public var currentVersion: PublishManifest? { versions.first { $0.run == current } }
    }

    /// Why a rollback was refused.
    public enum RefusalError: Error, Sendable, Equatable, CustomStringConvertible {
        /// No such dataset under the data root.
        case unknownDataset(String, known: [String])
        /// The dataset has no version of that run.
        case noSuchVersion(dataset: String, run: String, versions: [String])

        public var description: String {
            switch self {
            case .unknownDataset(let name, let known):
                return "no published dataset '\(name)'"
                    + (known.isEmpty ? " (nothing is published yet)" : " (there are: \(known.joined(separator: ", ")))")
            case .noSuchVersion(let dataset, let run, let versions):
                return "dataset '\(dataset)' has no version of run '\(run)'"
                    + (versions.isEmpty ? "" : " (its versions: \(versions.joined(separator: ", ")))")
                    + ": `bis dataset show \(dataset)` lists them"
            }
        }
    }

    /// Every dataset folder under `<root>/published`, by name; empty when
    /// nothing was published.
    public static func list(root: String) throws -> [Entry] {
        let published = root + "/published"
        guard DurableFiles.kind(published) == .directory else { return [] }
        return try DurableFiles.entries(published).compactMap { name in
            guard !name.hasPrefix("."), (try? PublishNames.check(name, kind: "dataset")) != nil else { return nil }
            return entry(published + "/" + name, name: name)
        }
    }

    /// The dataset `name`, nil when there is no such folder.
    public static func dataset(_ name: String, root: String) throws -> Entry? {
        guard (try? PublishNames.check(name, kind: "dataset")) != nil else { return nil }
        let folder = root + "/published/" + name
        guard DurableFiles.kind(folder) == .directory else { return nil }
        return entry(folder, name: name)
    }

    private static func entry(_ folder: String, name: String) -> Entry? {
        guard DurableFiles.kind(folder) == .directory, let names = try? DurableFiles.entries(folder) else { return nil }
        var versions: [PublishManifest] = []
        for run in names where !run.hasPrefix(".") && run != "CURRENT" && run != "view.sql" {
            guard DurableFiles.kind(folder + "/" + run) == .directory,
                  let m = try? readVersion(folder + "/" + run), m.run == run else { continue }
            versions.append(m)
        }
        versions.sort { ($0.created, $0.run) > ($1.created, $1.run) }
        return Entry(name: name, folder: folder, current: currentRun(folder: folder), versions: versions)
    }

    /// What `rollback` did.
    public struct Move: Sendable, Equatable {
        public let from: String?
        public let to: String
        /// False when `CURRENT` already named `to`.
        public let moved: Bool
        public let entry: Entry
    }

    /// Points dataset `name`'s `CURRENT` at the version of run `run` (older
    /// or newer: rolling forward is the same call), then makes `view.sql`
    /// follow it, each file replaced atomically (temp file, fsync, rename,
    /// fsync of the folder), under the dataset's publish lock. The version's
    /// files are checked against its manifest (size and sha256) first: a
    /// damaged version is refused (`PublishError.damagedVersion`) and
    /// nothing moves. When `CURRENT` already names `run`, only `view.sql` is
    /// rewritten if it does not follow `CURRENT`.
    ///
    /// Throws `RefusalError` for an unknown dataset or a run without a version.
    public static func rollback(_ name: String, to run: String, root: String) throws -> Move {
        guard (try? PublishNames.check(name, kind: "dataset")) != nil,
              DurableFiles.kind(root + "/published/" + name) == .directory else {
            throw RefusalError.unknownDataset(name, known: (try? list(root: root))?.map(\.name) ?? [])
        }
        let published = try PublishNames.publishedFolder(root: root)
        let folder = published + "/" + name
        let lock = try DurableFiles.Lock(folder + "/.lock")
        defer { lock.release() }

        let before = entry(folder, name: name)
        guard (try? PublishNames.check(run, kind: "run")) != nil, run != "CURRENT", run != "view.sql",
              let target = before?.versions.first(where: { $0.run == run }) else {
            throw RefusalError.noSuchVersion(dataset: name, run: run, versions: before?.versions.map(\.run) ?? [])
        }
        try verify(target, at: folder + "/" + run)
        let old = currentRun(folder: folder)
        // The marker first: once CURRENT has moved, a late duplicate of a
        // rolled-away run's publish task must find it (see `RollbackMarker`).
        let held = (before?.versions ?? []).filter { ($0.created, $0.run) > (target.created, target.run) }.map(\.run)
        try RollbackMarker.write(RollbackMarker(to: run, from: old, held: held), folder: folder)
        if old != run {
            try DurableFiles.replace(folder + "/CURRENT", with: Array((run + "\n").utf8))
        }
        let view = viewSQL(dataset: name, folder: folder, manifest: target)
        if DurableFiles.readBytes(folder + "/view.sql") != view {
            try DurableFiles.replace(folder + "/view.sql", with: view)
        }
        let after = entry(folder, name: name) ?? Entry(name: name, folder: folder, current: run, versions: [target])
        return Move(from: old, to: run, moved: old != run, entry: after)
    }
}

/// `published/<dataset>/.rollback`: written by `DatasetCatalog.rollback`
/// before it moves `CURRENT`, so the move outlives late duplicates of the
/// publish tasks of the runs it rolled away from. `held` lists the runs of
/// every version newer than `to` at the time; publish never moves `CURRENT`
/// to a held run (a worker may run a redelivered publish task again, and its
/// version, already in place, would otherwise be current again). A run
/// published for the first time after the rollback moves `CURRENT` as usual.
/// Only another rollback changes the marker: rolling forward to the newest
/// version removes it.
public struct RollbackMarker: Codable, Sendable, Equatable {
    public var to: String
    public var from: String?
    public var held: [String]

    public init(to: String, from: String?, held: [String]) {
        self.to = to
        self.from = from
        self.held = held
    }

    static func path(_ folder: String) -> String { folder + "/.rollback" }

    /// The marker in `folder`, nil when there is none (or it does not decode:
    /// the marker only ever holds `CURRENT` back, it never moves it).
    public static func read(folder: String) -> RollbackMarker? {
        guard let bytes = DurableFiles.readBytes(path(folder)) else { return nil }
        return try? JSONDecoder().decode(RollbackMarker.self, from: Data(bytes))
    }

    /// Replaces the marker atomically; removes it when nothing is held.
    static func write(_ marker: RollbackMarker, folder: String) throws {
        if marker.held.isEmpty {
            guard DurableFiles.kind(path(folder)) != .missing else { return }
            try DurableFiles.check(unlink(path(folder)), "cannot remove \(path(folder))")
            try DurableFiles.sync(folder)
            return
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        try DurableFiles.replace(path(folder), with: Array(try encoder.encode(marker)) + [0x0A])
    }
}
