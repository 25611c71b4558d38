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
        /// A publish (or another rollback) holds the dataset's lock.
        case busy(dataset: String)

        public var description: String {
            switch self {
            case .unknownDataset(let name, let known):
                return "no published dataset '\(name)'"
                    + (known.isEmpty ? " (nothing is published yet)" : " (there are: \(known.joined(separator: ", ")))")
            case .noSuchVersion(let dataset, let run, let versions):
                return "dataset '\(dataset)' has no version of run '\(run)'"
                    + (versions.isEmpty ? "" : " (its versions: \(versions.joined(separator: ", ")))")
                    + ": `bis dataset show \(dataset)` lists them"
            case .busy(let dataset):
                return "dataset '\(dataset)' is being published (or rolled back) right now; nothing moved, try again when it is done"
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

    /// The run dataset `name`'s `CURRENT` names, without reading any
    /// manifest; nil for no such dataset folder or no `CURRENT`.
    public static func current(of name: String, root: String) -> String? {
        guard (try? PublishNames.check(name, kind: "dataset")) != nil else { return nil }
        let folder = root + "/published/" + name
        guard DurableFiles.kind(folder) == .directory else { return nil }
        return currentRun(folder: folder)
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
        /// Summaries of this dataset whose `CURRENT` was pointed at their
        /// version of the same run too (moved or already there).
        public var summaries: [String] = []
        /// Summaries of this dataset without a version of the run: their
        /// `CURRENT` stays where it was.
        public var summariesLeft: [String] = []
    }

    /// Points dataset `name`'s `CURRENT` at the version of run `run` (older
    /// or newer: rolling forward is the same call), then makes `view.sql`
    /// follow it, each file replaced atomically (temp file, fsync, rename,
    /// fsync of the folder), under the dataset's publish lock. Every summary
    /// of the dataset (a folder whose versions have `summaryOf == name`) that
    /// has a version of `run` moves with it, under its own lock (all locks
    /// taken in name order, as publish does); the others are listed in
    /// `summariesLeft`. Every version's files are checked against its
    /// manifest (size and sha256) first: a damaged one is refused
    /// (`PublishError.damagedVersion`) and nothing moves. When `CURRENT`
    /// already names `run`, only `view.sql` is rewritten if it does not
    /// follow `CURRENT`. Before `CURRENT` moves, `.rollback` records the
    /// runs rolled away from (`RollbackMarker`).
    ///
    /// A lock held by a publish for longer than `patience` seconds is not
    /// waited for: `RefusalError.busy`. Throws `RefusalError` for an unknown
    /// dataset or a run without a version.
    public static func rollback(_ name: String, to run: String, root: String, patience: Double = 2,
                                faults: PublishFaults = .none) throws -> Move {
        guard (try? PublishNames.check(name, kind: "dataset")) != nil,
              DurableFiles.kind(root + "/published/" + name) == .directory else {
            throw RefusalError.unknownDataset(name, known: (try? list(root: root))?.map(\.name) ?? [])
        }
        let published = try PublishNames.publishedFolder(root: root)
        let folder = published + "/" + name
        let summaryNames = try list(root: root)
            .filter { $0.name != name && $0.versions.contains { $0.summaryOf == name } }.map(\.name)
        var locks: [DurableFiles.Lock] = []
        defer { locks.forEach { $0.release() } }
        for n in ([name] + summaryNames).sorted() {
            guard let lock = try DurableFiles.Lock.attempt(published + "/" + n + "/.lock", patience: patience) else {
                throw RefusalError.busy(dataset: n)
            }
            locks.append(lock)
        }

        let before = entry(folder, name: name)
        guard (try? PublishNames.check(run, kind: "run")) != nil, run != "CURRENT", run != "view.sql",
              let target = before?.versions.first(where: { $0.run == run }) else {
            throw RefusalError.noSuchVersion(dataset: name, run: run, versions: before?.versions.map(\.run) ?? [])
        }
        try verify(target, at: folder + "/" + run)
        var moving: [(name: String, folder: String, manifest: PublishManifest, versions: [PublishManifest])] = []
        var left: [String] = []
        for s in summaryNames {
            let sf = published + "/" + s
            let se = entry(sf, name: s)
            guard let m = se?.versions.first(where: { $0.run == run && $0.summaryOf == name }) else {
                left.append(s)
                continue
            }
            try verify(m, at: sf + "/" + run)
            moving.append((s, sf, m, se?.versions ?? []))
        }
        let old = currentRun(folder: folder)
        do {
            try point(name, folder: folder, at: target, versions: before?.versions ?? [], faults: faults)
            for s in moving { try point(s.name, folder: s.folder, at: s.manifest, versions: s.versions, faults: faults) }
        } catch let crash as SimulatedCrash {
            throw crash.error
        }
        let after = entry(folder, name: name) ?? Entry(name: name, folder: folder, current: run, versions: [target])
        return Move(from: old, to: run, moved: old != run, entry: after, summaries: moving.map(\.name), summariesLeft: left)
    }

    /// Writes the marker, then `CURRENT`, then `view.sql` of one folder.
    private static func point(_ name: String, folder: String, at target: PublishManifest, versions: [PublishManifest],
                              faults: PublishFaults) throws {
        // The marker first: once CURRENT has moved, a late duplicate of a
        // rolled-away run's publish task must find it (see `RollbackMarker`).
        let held = versions.filter { ($0.created, $0.run) > (target.created, target.run) }.map(\.run)
        try RollbackMarker.write(RollbackMarker(to: target.run, from: currentRun(folder: folder), held: held), folder: folder)
        if currentRun(folder: folder) != target.run {
            try DurableFiles.replace(folder + "/CURRENT", with: Array((target.run + "\n").utf8))
            try faults.at(.pointerSwapped, name)
        }
        let view = viewSQL(dataset: name, folder: folder, manifest: target)
        if DurableFiles.readBytes(folder + "/view.sql") != view {
            try DurableFiles.replace(folder + "/view.sql", with: view)
        }
    }

    /// What is wrong with a dataset folder a reader would notice, nil when
    /// nothing is: `CURRENT` naming no readable version, or `view.sql` not
    /// reading `CURRENT`'s version (a crash between the two files of a
    /// publish or a rollback, or a moved data root).
    public static func problem(_ e: Entry) -> String? {
        if let c = e.current, e.currentVersion == nil {
            return "CURRENT names \(c), which is not a readable version of \(e.name)"
        }
        guard let m = e.currentVersion else { return nil }
        let folder = (try? PublishNames.resolved(e.folder)) ?? e.folder
        guard DurableFiles.readBytes(e.folder + "/view.sql") != viewSQL(dataset: e.name, folder: folder, manifest: m) else { return nil }
        return "view.sql does not read CURRENT's version (\(m.run)); the coordinator rewrites it when it starts, "
            + "and the next publish or rollback of \(e.name) does"
    }

    /// Rewrites `view.sql` of every dataset whose view does not read
    /// `CURRENT`'s version, under the dataset's lock; a dataset whose lock a
    /// publish holds is skipped (the publish writes the view). Returns the
    /// datasets repaired. The coordinator runs it when it starts.
    public static func repairViews(root: String) throws -> [String] {
        guard DurableFiles.kind(root + "/published") == .directory else { return [] }
        let published = try PublishNames.publishedFolder(root: root)
        var repaired: [String] = []
        for e in try list(root: root) where problem(e) != nil {
            let folder = published + "/" + e.name
            guard let lock = try DurableFiles.Lock.attempt(folder + "/.lock", patience: 0) else { continue }
            defer { lock.release() }
            guard let fresh = entry(folder, name: e.name), let m = fresh.currentVersion else { continue }
            let view = viewSQL(dataset: e.name, folder: folder, manifest: m)
            if DurableFiles.readBytes(folder + "/view.sql") != view {
                try DurableFiles.replace(folder + "/view.sql", with: view)
                repaired.append(e.name)
            }
        }
        return repaired
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
