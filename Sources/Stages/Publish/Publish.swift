#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Columnar
import FleetCore
import Foundation

/// Points between publish's steps where a test can make it fail as if the
/// process died there. The hook gets the step and the dataset; if it throws,
/// publish stops at once and leaves everything as a crash would (temp
/// folders included), then rethrows the error.
public struct PublishFaults: Sendable {
    public enum Step: String, Sendable, CaseIterable {
        /// The version's files and manifest are complete in the temp folder,
        /// not yet renamed into place.
        case versionWritten
        /// The version folder is in place; `CURRENT` still names the old run.
        case versionCommitted
        /// `CURRENT` names the new run; `view.sql` is not yet regenerated.
        case pointerSwapped
        /// `view.sql` follows `CURRENT`; older versions not yet removed.
        case viewWritten
    }

    public var hook: (@Sendable (Step, String) throws -> Void)?

    public init(_ hook: (@Sendable (Step, String) throws -> Void)? = nil) {
        self.hook = hook
    }

    public static var none: PublishFaults { PublishFaults() }

    func at(_ step: Step, _ dataset: String) throws {
        guard let hook else { return }
        do {
            try hook(step, dataset)
        } catch {
            throw SimulatedCrash(error: error)
        }
    }
}

/// An error from the fault hook: publish must not tidy up after it.
struct SimulatedCrash: Error {
    let error: any Error
}

/// One dataset version as published (or found already published).
public struct PublishedVersion: Sendable, Equatable {
    public let dataset: String
    public let run: String
    /// Absolute path of the version folder, `<root>/published/<dataset>/<run>`.
    public let path: String
    public let manifest: PublishManifest
    /// True when an identical version of this run was already in place and
    /// nothing was written for it.
    public let reused: Bool

    public var manifestPath: String { path + "/_manifest.json" }
    /// Absolute paths of the version's Parquet files, in manifest order.
    public var files: [String] { manifest.files.map { path + "/" + $0.name } }
}

/// What `publish` did.
public struct PublishResult: Sendable, Equatable {
    /// The validated rows.
    public let dataset: PublishedVersion
    /// One per summary, by summary name.
    public let summaries: [PublishedVersion]
    /// Dataset name → the run its `CURRENT` names afterwards. Usually this
    /// run; an older version re-published leaves a newer one current.
    public let current: [String: String]
    /// Version folders removed by retention (absolute paths).
    public let removed: [String]

    /// The dataset first, then the summaries.
    public var versions: [PublishedVersion] { [dataset] + summaries }
}

/// Publishes a run's validated chunks as dataset `dataset`, and each summary
/// (its partitions' partial aggregates merged) as a dataset named after the
/// summary, under `<root>/published`:
///
/// ```
/// <root>/published/<dataset>/
///     CURRENT                      the current run id and a newline
///     view.sql                     CREATE OR REPLACE VIEW "<dataset>" over CURRENT's files
///     <run>/part-00000.parquet     the validated chunks, linked or copied, in `chunks` order
///     <run>/_manifest.json         see `PublishManifest`
///     .lock                        held while publishing this dataset
///     .rollback                    the runs a rollback moved away from (`RollbackMarker`)
///     .tmp-…                       a version being written (removed by the next publish if left by a crash)
/// ```
///
/// A summary dataset has one file, `part-00000.parquet`: the group-by
/// columns, then one column per aggregate, one row per group sorted by the
/// group key (`PartialAggregate.result()`).
///
/// The steps, each durable before the next: every version is written under a
/// temp folder (files fsynced, sha256 of each copy checked against its
/// source, manifest, folder fsynced) and renamed into place; then each
/// dataset's `CURRENT` is replaced (temp file, fsync, rename, fsync of the
/// folder) and its `view.sql` regenerated the same way; then versions
/// beyond the `retention` most recent (by manifest `created`, then run id)
/// are removed — never `CURRENT`'s. Each dataset switches atomically on its
/// own; a crash anywhere leaves every dataset's `CURRENT` on a complete
/// version, and publishing the run again completes the rest.
///
/// Publishing a run again is idempotent: a version of the run that is
/// already in place with the same content (schema, files, sha256) is kept
/// as it is and returned with `reused`; one with other content is refused
/// (`PublishError.runAlreadyPublished`) because a run's output never
/// changes. `CURRENT` moves only forward: to this run's version when it is
/// at least as new (created, then run id) as the one `CURRENT` names, so a
/// late duplicate of an old run's publish cannot bring old data back, and
/// never to a run that `bis dataset rollback` moved it away from
/// (`RollbackMarker`), so a late duplicate of the bad run's publish cannot
/// undo a rollback.
///
/// `view.sql` names the files by absolute path (resolved through symlinks),
/// so `duckdb -c ".read <root>/published/<dataset>/view.sql"` works from any
/// directory; after moving the data root, publish again to rewrite it.
///
/// - Parameters:
///   - dataset: the spec's `publish.dataset`.
///   - run: the run id. Names: `[A-Za-z0-9_.-]+`, not starting with `.`,
///     without `..`; a run may not be called `CURRENT` or `view.sql`.
///   - pipeline: recorded in the manifests.
///   - chunks: the validated chunks, all of one schema (names and types).
///   - summaries: summary name → the partitions' partials, merged in the
///     order given (pass them in partition order: double sums depend on it
///     by rounding). Every summary needs at least one partial.
///   - root: the data root (created if missing).
///   - retention: how many versions of each dataset to keep, at least 1.
///   - now: the manifests' creation time.
///   - schema: the dataset's schema when `chunks` is empty (one empty file
///     is published so the view still works); ignored otherwise.
///   - provenance: keep the chunks' provenance columns (`_source_file`,
///     `_source_line`, see `Provenance`) in the dataset. When false (the
///     default) a chunk that has them is rewritten without them (same row
///     groups, values and metadata) instead of linked, and the dataset has
///     exactly the normalized columns.
///   - schemaChange: the schema contract (`SchemaContract`): how each new
///     version's schema may differ from the one its dataset's `CURRENT`
///     names. Every version is checked before any is put in place; one that
///     is not allowed throws `PublishError.schemaChanged` and nothing is
///     published.
///   - faults: test hook, see `PublishFaults`.
public func publish(
    dataset: String, run: String, pipeline: String, chunks: [String],
    summaries: [String: [PartialAggregate]], root: String, retention: Int, now: Date,
    schema: Schema? = nil, provenance: Bool = false, schemaChange: PublishSpec.SchemaChange = .none,
    faults: PublishFaults = .none
) throws -> PublishResult {
    try PublishNames.check(dataset, kind: "dataset")
    try PublishNames.check(run, kind: "run")
    guard run != "CURRENT", run != "view.sql" else { throw PublishError.invalidName(kind: "run", name: run) }
    for name in summaries.keys {
        try PublishNames.check(name, kind: "summary")
        guard name != dataset else {
            throw PublishError.invalidInput("summary '\(name)' has the dataset's own name; give it another name")
        }
    }
    guard retention >= 1 else { throw PublishError.invalidInput("retention must keep at least 1 version, not \(retention)") }

    let published = try PublishNames.publishedFolder(root: root)
    let names = [dataset] + summaries.keys.sorted()
    var folders: [String: String] = [:]
    for name in names {
        folders[name] = published + "/" + name
        try DurableFiles.ensureDirectory(published + "/" + name)
    }
    // Locks in name order, so two publishers sharing summary names cannot deadlock.
    let locks = try names.sorted().map { try DurableFiles.Lock(folders[$0]! + "/.lock") }
    defer { locks.forEach { $0.release() } }

    var staged: [StagedVersion] = []
    do {
        for name in names { try removeLeftovers(in: folders[name]!) }

        // Every version is written to its temp folder first, so the schema
        // contract is checked for all of them before any is put in place.
        let context = VersionContext(run: run, pipeline: pipeline, now: now, faults: faults)
        staged.append(try context.stage(dataset: dataset, folder: folders[dataset]!, kind: "dataset", summaryOf: nil) { temp in
            try stageChunks(chunks, schema: schema, provenance: provenance, into: temp)
        })
        for name in summaries.keys.sorted() {
            let partials = summaries[name]!
            staged.append(try context.stage(dataset: name, folder: folders[name]!, kind: "summary", summaryOf: dataset) { temp in
                try stageSummary(name, partials, run: run, into: temp)
            })
        }
        for s in staged { try checkContract(s, run: run, policy: schemaChange) }
        var versions: [PublishedVersion] = []
        for s in staged { versions.append(try context.place(s)) }

        var current: [String: String] = [:]
        var removed: [String] = []
        for v in versions {
            let folder = folders[v.dataset]!
            current[v.dataset] = try swapPointer(to: v, folder: folder, faults: faults)
            removed += try applyRetention(retention, folder: folder)
        }
        return PublishResult(dataset: versions[0], summaries: Array(versions.dropFirst()), current: current, removed: removed)
    } catch let crash as SimulatedCrash {
        throw crash.error
    } catch {
        // Versions staged but not placed (a refused schema, a failed summary).
        for s in staged where DurableFiles.kind(s.temp) != .missing { try? DurableFiles.removeTree(s.temp) }
        throw error
    }
}

/// Refuses a new version whose schema differs from `CURRENT`'s in a way
/// `policy` does not allow. A version already in place (the same run
/// published again) passed the check when it was placed; a dataset without
/// `CURRENT` gets its contract from this version. When `CURRENT` names a
/// version that cannot be read (missing, damaged manifest, not a run name),
/// the contract is the newest readable version's, and the error says so:
/// an unreadable `CURRENT` never lets a changed schema through unchecked.
private func checkContract(_ s: StagedVersion, run: String, policy: PublishSpec.SchemaChange) throws {
    guard policy != .any, DurableFiles.kind(s.folder + "/" + run) == .missing,
          let current = currentRun(folder: s.folder), current != run else { return }
    let reference: (run: String, manifest: PublishManifest, label: String)
    do {
        try PublishNames.check(current, kind: "run")
        reference = (current, try readVersion(s.folder + "/" + current), current)
    } catch {
        guard let newest = newestReadableVersion(in: s.folder, except: run) else { return }
        reference = (newest.run, newest,
                     "\(current), which cannot be read (\(error)); compared with \(newest.run), the newest readable version")
    }
    if let difference = SchemaContract.violation(from: reference.manifest.schema, to: s.manifest.schema, policy: policy) {
        throw PublishError.schemaChanged(dataset: s.manifest.dataset, current: reference.label,
                                         currentHash: reference.manifest.schemaSHA256, newHash: s.manifest.schemaSHA256,
                                         difference: difference, policy: policy)
    }
}

/// The newest version in place (by `created`, then run id) whose manifest
/// reads and names its folder, other than `run`'s.
private func newestReadableVersion(in folder: String, except run: String) -> PublishManifest? {
    guard let names = try? DurableFiles.entries(folder) else { return nil }
    var best: PublishManifest?
    for name in names where !name.hasPrefix(".") && name != "CURRENT" && name != "view.sql" && name != run {
        guard DurableFiles.kind(folder + "/" + name) == .directory,
              let m = try? readVersion(folder + "/" + name), m.run == name else { continue }
        if best.map({ (m.created, m.run) > ($0.created, $0.run) }) ?? true { best = m }
    }
    return best
}

// MARK: - Names and paths

/// The names publish turns into folders under the data root.
public enum PublishNames {
    /// Dataset, summary and run names: `[A-Za-z0-9_.-]+`, no leading `.`,
    /// no `..`, at most 200 bytes; throws `PublishError.invalidName`.
    public static func check(_ name: String, kind: String) throws {
        let allowed = name.utf8.allSatisfy { c in
            (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || c == 0x5F || c == 0x2D || c == 0x2E
        }
        guard !name.isEmpty, name.utf8.count <= 200, allowed, !name.hasPrefix("."), !name.contains("..") else {
            throw PublishError.invalidName(kind: kind, name: name)
        }
    }

    /// `<root>/published` as an absolute path with the root's symlinks
    /// resolved; creates both if missing, refuses a `published` that is a
    /// symlink or a file.
    static func publishedFolder(root: String) throws -> String {
        let absolute = root.hasPrefix("/") ? root : FileManager.default.currentDirectoryPath + "/" + root
        do {
            try FileManager.default.createDirectory(atPath: absolute, withIntermediateDirectories: true)
        } catch {
            throw PublishError.io("cannot create the data root \(absolute): \(error.localizedDescription)", errno: 0)
        }
        guard let resolved = realpath(absolute, nil) else {
            throw PublishError.io("cannot resolve the data root \(absolute)", errno: errno)
        }
        defer { free(resolved) }
        let base = String(cString: resolved)
        let published = (base == "/" ? "" : base) + "/published"
        try DurableFiles.ensureDirectory(published)
        return published
    }

    static func resolved(_ path: String) throws -> String {
        guard let r = realpath(path, nil) else { throw PublishError.io("cannot resolve \(path)", errno: errno) }
        defer { free(r) }
        return String(cString: r)
    }
}

/// Removes `.tmp-…` entries a crashed publish left (called under the lock,
/// so no other publisher is writing them).
private func removeLeftovers(in folder: String) throws {
    var removed = false
    for entry in try DurableFiles.entries(folder) where entry.hasPrefix(".tmp-") {
        try DurableFiles.removeTree(folder + "/" + entry)
        removed = true
    }
    if removed { try DurableFiles.sync(folder) }
}

// MARK: - Versions

/// A version written to its temp folder, not yet in place.
private struct StagedVersion {
    let dataset: String
    let folder: String
    let temp: String
    let manifest: PublishManifest
}

private struct VersionContext {
    let run: String
    let pipeline: String
    let now: Date
    let faults: PublishFaults

    /// Writes a version into a temp folder with `stage` (which returns the
    /// schema and files) and adds the manifest.
    func stage(dataset: String, folder: String, kind: String, summaryOf: String?,
               stage: (String) throws -> (Schema, [PublishManifest.File])) throws -> StagedVersion {
        let temp = folder + "/.tmp-" + run + "-" + UUID().uuidString
        guard mkdir(temp, 0o755) == 0 else { throw PublishError.io("cannot create \(temp)", errno: errno) }
        do {
            let (schema, files) = try stage(temp)
            let manifest = PublishManifest(pipeline: pipeline, run: run, dataset: dataset, kind: kind, summaryOf: summaryOf,
                                           schema: schema, files: files, created: now)
            try DurableFiles.create(temp + "/_manifest.json", try manifest.jsonBytes())
            try DurableFiles.sync(temp)
            try faults.at(.versionWritten, dataset)
            return StagedVersion(dataset: dataset, folder: folder, temp: temp, manifest: manifest)
        } catch let error as SimulatedCrash {
            throw error
        } catch {
            try? DurableFiles.removeTree(temp)
            throw error
        }
    }

    /// Renames a staged version into place — or finds the same version
    /// already there.
    func place(_ s: StagedVersion) throws -> PublishedVersion {
        let (dataset, folder, temp, manifest) = (s.dataset, s.folder, s.temp, s.manifest)
        do {
            let final = folder + "/" + run
            switch DurableFiles.kind(final) {
            case .missing:
                try DurableFiles.check(rename(temp, final), "cannot rename \(temp) to \(final)")
                try DurableFiles.sync(folder)
                try faults.at(.versionCommitted, dataset)
                return PublishedVersion(dataset: dataset, run: run, path: final, manifest: manifest, reused: false)
            case .directory:
                let existing = try readVersion(final)
                if let difference = manifest.difference(from: existing) {
                    throw PublishError.runAlreadyPublished(dataset: dataset, run: run, difference: difference)
                }
                try verify(existing, at: final)
                try DurableFiles.removeTree(temp)
                return PublishedVersion(dataset: dataset, run: run, path: final, manifest: existing, reused: true)
            default:
                throw PublishError.unsafePath(final, reason: "exists and is not a version folder")
            }
        } catch let error as SimulatedCrash {
            throw error
        } catch {
            try? DurableFiles.removeTree(temp)
            throw error
        }
    }
}

/// The manifest of a version folder in place.
func readVersion(_ path: String) throws -> PublishManifest {
    guard let bytes = DurableFiles.readBytes(path + "/_manifest.json") else {
        throw PublishError.damagedVersion(path: path, reason: "no readable _manifest.json")
    }
    do {
        return try PublishManifest(json: bytes)
    } catch {
        throw PublishError.damagedVersion(path: path, reason: "_manifest.json does not decode: \(error)")
    }
}

/// Every file of a version in place still has its manifest's size and sha256.
func verify(_ manifest: PublishManifest, at path: String) throws {
    for f in manifest.files {
        let file = path + "/" + f.name
        guard DurableFiles.kind(file) == .file else { throw PublishError.damagedVersion(path: path, reason: "\(f.name) is missing") }
        let digest = try sha256(ofFile: file)
        guard digest == f.sha256 else {
            throw PublishError.damagedVersion(path: path, reason: "\(f.name) has sha256 \(digest), its manifest says \(f.sha256)")
        }
    }
}

private func partName(_ i: Int) -> String { "part-" + String(format: "%05d", i) + ".parquet" }

/// Links (or copies) the chunks into `temp` as part-NNNNN.parquet and checks
/// each copy's sha256 against its source; without `provenance`, a chunk
/// with provenance columns is rewritten without them instead.
private func stageChunks(_ chunks: [String], schema given: Schema?, provenance: Bool,
                         into temp: String) throws -> (Schema, [PublishManifest.File]) {
    guard !chunks.isEmpty else {
        guard var given else {
            throw PublishError.invalidInput("no validated chunks to publish and no schema for an empty dataset")
        }
        if !provenance { given = Provenance.stripped(given) }
        let w = try ParquetWriter(path: temp + "/" + partName(0), schema: given, options: publishWriterOptions())
        let r = try w.finish()
        return (given, [PublishManifest.File(name: partName(0), sha256: r.sha256, rows: r.rows, bytes: r.bytes)])
    }
    var schema: Schema?
    var files: [PublishManifest.File] = []
    for (i, chunk) in chunks.enumerated() {
        let source = try PublishNames.resolved(chunk)
        let reader = try ParquetReader(path: source)
        let dropped = provenance ? reader.schema : Provenance.stripped(reader.schema)
        if let s = schema {
            guard s.fields.map(\.name) == dropped.fields.map(\.name),
                  s.fields.map(\.type) == dropped.fields.map(\.type) else {
                throw PublishError.invalidInput("validated chunk \(chunk) has columns \(describeColumns(dropped)), "
                                                + "but \(chunks[0]) has \(describeColumns(s)): a dataset has one schema")
            }
            schema = Schema(zip(s.fields, dropped.fields).map { Field($0.name, $0.type, nullable: $0.nullable || $1.nullable) })
        } else {
            schema = dropped
        }
        let name = partName(i)
        let destination = temp + "/" + name
        if dropped != reader.schema {
            let r = try rewrite(reader, keeping: dropped, to: destination)
            files.append(PublishManifest.File(name: name, sha256: r.sha256, rows: r.rows, bytes: r.bytes))
            continue
        }
        let expected = try sha256(ofFile: source)
        // A hard link is the same file (the same inode): its bytes are the
        // ones just hashed. A copy is read back and checked.
        let linked = try DurableFiles.linkOrCopy(source, to: destination)
        let actual = linked ? expected : try sha256(ofFile: destination)
        guard actual == expected else {
            throw PublishError.checksumMismatch(path: destination, expected: expected, actual: actual)
        }
        files.append(PublishManifest.File(name: name, sha256: actual, rows: reader.rowCount, bytes: try DurableFiles.size(destination)))
    }
    return (schema!, files)
}

/// Writes `reader`'s rows with only the columns of `schema` (a subset of its
/// own, in order), one row group per row group and with its metadata, so the
/// same chunk always gives the same bytes.
private func rewrite(_ reader: ParquetReader, keeping schema: Schema, to destination: String) throws -> WriteResult {
    var options = publishWriterOptions()
    options.keyValueMetadata = reader.keyValueMetadata
    options.rowGroupRows = max(1, reader.rowGroups.map { Int($0.rowCount) }.max() ?? 1)
    let writer = try ParquetWriter(path: destination, schema: schema, options: options)
    do {
        for g in reader.rowGroups.indices {
            let batch = try reader.readRowGroup(g, columns: schema.fields.map(\.name))
            try writer.append(try ColumnBatch(schema: schema, columns: batch.columns))
        }
        return try writer.finish()
    } catch {
        writer.abandon()
        throw error
    }
}

private func describeColumns(_ s: Schema) -> String {
    "(" + s.fields.map { "\($0.name) \($0.type)" }.joined(separator: ", ") + ")"
}

/// Merges a summary's partials in order and writes the result as one file.
private func stageSummary(_ name: String, _ partials: [PartialAggregate], run: String, into temp: String) throws -> (Schema, [PublishManifest.File]) {
    guard var merged = partials.first else {
        throw PublishError.invalidInput("summary '\(name)' has no partial aggregates: validate writes one per partition")
    }
    for p in partials.dropFirst() {
        do {
            try merged.merge(p)
        } catch {
            throw PublishError.invalidInput("summary '\(name)': \(error)")
        }
    }
    let table = try merged.result()
    var options = publishWriterOptions()
    options.keyValueMetadata = [KeyValue("bis.stage", "publish"), KeyValue("bis.run", run), KeyValue("bis.summary", name)]
    let w = try ParquetWriter(path: temp + "/" + partName(0), schema: table.schema, options: options)
    try w.append(table)
    let r = try w.finish()
    return (table.schema, [PublishManifest.File(name: partName(0), sha256: r.sha256, rows: r.rows, bytes: r.bytes)])
}

private func publishWriterOptions() -> WriterOptions {
    var o = WriterOptions()
    o.createdBy = FleetVersion.createdBy
    return o
}

// MARK: - Pointer, view, retention

/// The run `CURRENT` names, if any.
func currentRun(folder: String) -> String? {
    guard let bytes = DurableFiles.readBytes(folder + "/CURRENT") else { return nil }
    let text = String(decoding: bytes, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    return text.isEmpty ? nil : text
}

/// Moves `CURRENT` to `version` unless it names a newer version or a
/// rollback moved it away from `version`'s run (`RollbackMarker`), then makes
/// `view.sql` follow `CURRENT`. Returns the run `CURRENT` names.
private func swapPointer(to version: PublishedVersion, folder: String, faults: PublishFaults) throws -> String {
    var target = version.run
    var targetManifest = version.manifest
    let old = currentRun(folder: folder)
    let held = RollbackMarker.read(folder: folder)?.held.contains(version.run) == true
    if let old, old != version.run, (try? PublishNames.check(old, kind: "run")) != nil,
       let oldManifest = try? readVersion(folder + "/" + old),
       held || (oldManifest.created, old) > (version.manifest.created, version.run) {
        target = old
        targetManifest = oldManifest
    } else if old != version.run {
        try DurableFiles.replace(folder + "/CURRENT", with: Array((version.run + "\n").utf8))
        try faults.at(.pointerSwapped, version.dataset)
    }
    let view = viewSQL(dataset: version.dataset, folder: folder, manifest: targetManifest)
    if DurableFiles.readBytes(folder + "/view.sql") != view {
        try DurableFiles.replace(folder + "/view.sql", with: view)
    }
    try faults.at(.viewWritten, version.dataset)
    return target
}

/// `CREATE OR REPLACE VIEW "<dataset>"` over the files of the version
/// `manifest` describes, named one by one by absolute path (no glob, so only
/// the manifest's files count and no character of the root can act as a
/// wildcard).
func viewSQL(dataset: String, folder: String, manifest: PublishManifest) -> [UInt8] {
    func literal(_ s: String) -> String { "'" + s.replacingOccurrences(of: "'", with: "''") + "'" }
    let files = manifest.files.map { literal(folder + "/" + manifest.run + "/" + $0.name) }.joined(separator: ", ")
    let text = """
        -- bis publish: dataset \(dataset), run \(manifest.run) (the run CURRENT names), \(manifest.rows) rows.
        -- Regenerated whenever CURRENT moves. Use: duckdb -c ".read \(folder)/view.sql"
        CREATE OR REPLACE VIEW "\(dataset)" AS SELECT * FROM read_parquet([\(files)]);

        """
    return Array(text.utf8)
}

/// Removes versions beyond the `keep` most recent (by manifest `created`,
/// then run id), never the one `CURRENT` names. A version is first renamed
/// to a `.tmp-` name, so a half-removed one never looks complete.
private func applyRetention(_ keep: Int, folder: String) throws -> [String] {
    let current = currentRun(folder: folder)
    var versions: [(run: String, created: String)] = []
    for entry in try DurableFiles.entries(folder) where !entry.hasPrefix(".") {
        let path = folder + "/" + entry
        guard DurableFiles.kind(path) == .directory, let m = try? readVersion(path), m.run == entry else { continue }
        versions.append((entry, m.created))
    }
    versions.sort { ($0.created, $0.run) > ($1.created, $1.run) }
    var removed: [String] = []
    for v in versions.dropFirst(keep) where v.run != current {
        let path = folder + "/" + v.run
        let doomed = folder + "/.tmp-removing-" + v.run + "-" + UUID().uuidString
        try DurableFiles.check(rename(path, doomed), "cannot rename \(path) to \(doomed)")
        try DurableFiles.removeTree(doomed)
        removed.append(path)
    }
    if !removed.isEmpty { try DurableFiles.sync(folder) }
    return removed
}
