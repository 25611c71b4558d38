import FleetCore
import Foundation
import GRDB
import Logging
import ServiceLifecycle
import Stages

/// How long the coordinator keeps what runs leave behind (`bis coordinator
/// --keep-intermediate`, `--keep-delivered`, `--keep-lineage`,
/// `--gc-interval`), in seconds.
public struct RetentionOptions: Sendable {
    /// A finished run's `runs/<run>/` (succeeded, cancelled, or failed: a
    /// failed run can be retried until then), counted from its `finished_at`.
    public var keepIntermediate: Double
    /// A published version named by a delivery younger than this is kept
    /// beyond `publish.keep`.
    public var keepDelivered: Double
    /// Executions' lineage rows (and their edges) older than this are pruned.
    public var keepLineage: Double
    /// How often the coordinator's own pass runs; nil: never (only `bis gc`).
    public var interval: Duration?
    /// Test hook: see `GCFaults`.
    public var faults: GCFaults

    public static let defaultKeepIntermediate = 7.0 * 86400
    public static let defaultKeepDelivered = 30.0 * 86400
    public static let defaultKeepLineage = 400.0 * 86400

    public init(keepIntermediate: Double = defaultKeepIntermediate, keepDelivered: Double = defaultKeepDelivered,
                keepLineage: Double = defaultKeepLineage, interval: Duration? = .seconds(3600), faults: GCFaults = .none) {
        self.keepIntermediate = keepIntermediate
        self.keepDelivered = keepDelivered
        self.keepLineage = keepLineage
        self.interval = interval
        self.faults = faults
    }
}

/// TEST-ONLY points in a retention pass where a test makes it stop as if the
/// process died there (`bis coordinator` wires `BIS_TEST_GC_FAULT=STEP` to a
/// SIGKILL of itself). The hook gets the step and the folder; when it
/// throws, the pass stops at once, leaving store and files as a crash would.
public struct GCFaults: Sendable {
    public enum Step: String, Sendable, CaseIterable {
        /// Candidates listed (folders walked); nothing recorded yet (the
        /// path is empty).
        case candidatesListed = "candidates-listed"
        /// The removal is recorded in the store; nothing removed yet.
        case intentRecorded = "intent-recorded"
        /// A published version was renamed out of reach; its files are still there.
        case versionUnlinked = "version-unlinked"
        /// The files are gone; the store does not yet say so.
        case filesRemoved = "files-removed"
    }

    public var hook: (@Sendable (Step, String) throws -> Void)?

    public init(_ hook: (@Sendable (Step, String) throws -> Void)? = nil) {
        self.hook = hook
    }

    public static var none: GCFaults { GCFaults() }

    /// A hook's error on its way out of a removal (never taken for a failed removal).
    struct Stop: Error {
        var error: any Error
    }

    func at(_ step: Step, _ path: String) throws {
        try hook?(step, path)
    }
}

/// One pass at a time: the periodic one and `bis gc` take turns.
actor GCGate {
    private var busy = false
    private var waiters: [CheckedContinuation<Void, Never>] = []

    func acquire() async {
        if !busy {
            busy = true
            return
        }
        await withCheckedContinuation { waiters.append($0) }
    }

    func release() {
        if waiters.isEmpty { busy = false } else { waiters.removeFirst().resume() }
    }
}

/// The coordinator's periodic retention pass (every `--gc-interval`), a
/// service of its ServiceGroup. The first pass comes one interval (at most a
/// minute) after start, so a pass killed midway is finished soon.
struct RetentionPass: Service {
    let engine: CoordinatorEngine
    let interval: Duration

    func run() async throws {
        try await cancelWhenGracefulShutdown { [engine, interval] in
            var wait = min(interval, .seconds(60))
            while !Task.isCancelled {
                do { try await Task.sleep(for: wait) } catch { return }
                wait = interval
                do {
                    _ = try await engine.gc(dryRun: false, caller: nil)
                } catch is CancellationError {
                    return
                } catch {
                    engine.logger.error("the retention pass failed; the next one tries again", metadata: ["error": "\(error)"])
                }
            }
        }
    }
}

extension CoordinatorEngine {
    /// `bis gc`: a retention pass as `caller` (see `gc(dryRun:caller:)`).
    public func gc(dryRun: Bool, as caller: Caller) async throws -> GCReport {
        try await gc(dryRun: dryRun, caller: caller)
    }

    /// One retention pass. First it finishes removals an earlier pass
    /// recorded and did not complete (a crash); then it removes, each
    /// recorded in the store before any file goes and marked done after:
    /// - the `runs/<run>/` folder of every run that finished (succeeded,
    ///   failed, cancelled) longer than `keepIntermediate` ago; a failed run
    ///   so collected can no longer be retried;
    /// - published versions beyond their spec's `publish.keep` newest, never
    ///   the one `CURRENT` or `view.sql` names, never one whose run delivered
    ///   less than `keepDelivered` ago or is still running (or failed and
    ///   retryable);
    /// and prunes the lineage rows (executions, edges, chunks no longer
    /// referenced) of executions older than `keepLineage`. Runs, tasks,
    /// their inputs' hashes, published versions' and delivery receipts' rows
    /// and the audit log stay.
    ///
    /// A dry run changes nothing and lists what would go. A real pass writes
    /// an audit row: always for a caller, for the periodic pass only when it
    /// removed something. `caller` nil: the coordinator's own pass (the
    /// periodic one, and `bis run --local`'s at the end of its run).
    public func gc(dryRun: Bool, caller: Caller?) async throws -> GCReport {
        await gcGate.acquire()
        do {
            let report = try await gcPass(dryRun: dryRun, caller: caller)
            await gcGate.release()
            return report
        } catch {
            await gcGate.release()
            throw error
        }
    }

    private struct Candidate: Sendable {
        var kind: String
        var path: String
        var run: String
        var dataset: String?
        var bytes: Int64
        var files: Int
        var reason: String
    }

    private func gcPass(dryRun: Bool, caller: Caller?) async throws -> GCReport {
        let r = options.retention
        let now = clock.seconds
        var report = GCReport(dryRun: dryRun, at: Date(timeIntervalSince1970: now),
                              keepIntermediateSeconds: r.keepIntermediate, keepDeliveredSeconds: r.keepDelivered,
                              keepLineageSeconds: r.keepLineage)

        // Removals recorded by an earlier pass and not finished.
        let pending: [(Int64, Candidate)] = try await store.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM gc_intents WHERE done_at IS NULL ORDER BY id").map { row in
                (row["id"], Candidate(kind: row["kind"], path: row["path"], run: row["run"], dataset: row["dataset"],
                                      bytes: row["bytes"], files: row["files"], reason: row["reason"]))
            }
        }
        var work = pending
        let fresh = try await candidates(now: now)
        if !dryRun { try options.retention.faults.at(.candidatesListed, "") }
        if dryRun {
            work += fresh.map { (0, $0) }
        } else if !fresh.isEmpty {
            // Recorded before any file goes, each checked again inside the
            // transaction (a retry may have restarted the run since).
            let recorded: [(Int64, Candidate)] = try await store.write { [self] db in
                var out: [(Int64, Candidate)] = []
                for c in fresh where try stillCollectable(c, now: now, db) {
                    try db.run("""
                        INSERT INTO gc_intents(kind, path, run, dataset, bytes, files, reason, planned_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                        """, [c.kind, c.path, c.run, c.dataset, c.bytes, c.files, c.reason, now])
                    out.append((db.lastInsertedRowID, c))
                }
                return out
            }
            work += recorded
        }

        for (id, c) in work {
            var item = GCReport.Item(kind: c.kind, path: c.path, run: c.run, dataset: c.dataset, bytes: c.bytes,
                                     files: c.files, reason: id != 0 && pending.contains(where: { $0.0 == id })
                                        ? c.reason + " (finishing an earlier pass)" : c.reason,
                                     outcome: "planned")
            if !dryRun {
                item.outcome = try await execute(id: id, c)
            }
            if item.outcome == "planned" || item.outcome == "removed" {
                report.bytes += c.bytes
                report.files += c.files
            }
            report.items.append(item)
        }

        let (executions, edges) = try await pruneLineage(before: now - r.keepLineage, retryableAfter: now - r.keepIntermediate,
                                                         dryRun: dryRun)
        report.lineageExecutionsPruned = executions
        report.lineageEdgesPruned = edges

        if !dryRun {
            let removed = report.items.filter { $0.outcome == "removed" }
            metricsState.withLock { m in
                m.gcPasses += 1
                m.gcBytes += removed.reduce(0) { $0 + $1.bytes }
                m.gcFiles += removed.reduce(0) { $0 + $1.files }
            }
            let detail = "removed \(removed.count) folders (\(report.bytes) bytes, \(report.files) files); "
                + "pruned the lineage of \(executions) executions (\(edges) edges)"
            if let caller {
                try await store.write { db in try db.audit(actor: caller.name, action: "gc", run: nil, detail: detail, at: now, caller: caller) }
            } else if !removed.isEmpty || executions > 0 {
                // Only when it removed something: an item kept or failing
                // again every hour adds no row.
                try await store.write { db in try db.audit(actor: "coordinator", action: "gc", run: nil, detail: detail, at: now) }
            }
            if !report.items.isEmpty || executions > 0 {
                logger.info("retention pass", metadata: ["gc.removed": "\(removed.count)", "gc.bytes": "\(report.bytes)",
                                                         "gc.lineage_executions": "\(executions)"])
            }
        }
        return report
    }

    /// What this pass would remove, beyond what is already recorded.
    private func candidates(now: Double) async throws -> [Candidate] {
        let r = options.retention
        let root = chunkStore.root
        // Runs finished long enough ago, with nothing of theirs in flight,
        // whose folder no unfinished removal names (a folder a removal
        // already took that is there again, late writes or a failed
        // removal, is taken again).
        let runs: [(String, String)] = try await store.read { db in
            try Row.fetchAll(db, sql: """
                SELECT id, state FROM runs r WHERE state IN ('succeeded', 'failed', 'cancelled') AND finished_at IS NOT NULL
                AND finished_at <= ? AND \(Self.nothingPendingOrInFlight)
                ORDER BY finished_at, id
                """, arguments: [now - r.keepIntermediate]).map { ($0["id"], $0["state"]) }
        }
        let keepText = RetentionDuration.text(r.keepIntermediate)
        // The tree walks on a thread of their own, not the cooperative pool.
        var (out, datasets): ([Candidate], [PublishedVersions.Dataset]) = try await onRetentionThread { [chunkStore] in
            var out: [Candidate] = []
            for (run, state) in runs where FleetIDs.isValidID(run) {
                let rel = chunkStore.runDirectory(run: run)
                var isDir: ObjCBool = false
                guard FileManager.default.fileExists(atPath: root + "/" + rel, isDirectory: &isDir), isDir.boolValue,
                      Self.holdsMoreThanTheCancelMarker(root + "/" + rel) else { continue }
                let (bytes, files) = PublishedVersions.treeSize(root + "/" + rel)
                out.append(Candidate(kind: "intermediate", path: rel, run: run, dataset: nil, bytes: bytes, files: files,
                                     reason: "run \(state) more than \(keepText) ago (--keep-intermediate)"))
            }
            // Published versions beyond their spec's keep.
            return (out, PublishedVersions.list(root: root))
        }
        guard !datasets.isEmpty else { return out }
        let newest = datasets.compactMap(\.versions.first?.run)
        let (keeps, protected, recorded): ([String: Int], [String: String], Set<String>) = try await store.read { [self] db in
            var keeps: [String: Int] = [:]
            for run in Set(newest) {
                if let record = try RunRecord.fetch(db, run), let spec = try? spec(record), let publish = spec.publish {
                    keeps[run] = publish.keep
                }
            }
            let protected = try protectedVersions(of: nil, now: now, db)
            // A version found pointed at when its turn came (outcome `kept`)
            // is considered again: CURRENT may have moved on since.
            let recorded = Set(try String.fetchAll(db, sql: """
                SELECT path FROM gc_intents WHERE kind = 'version' AND (done_at IS NULL OR outcome = 'removed')
                """))
            return (keeps, protected, recorded)
        }
        for d in datasets {
            let keep = d.versions.first.flatMap { keeps[$0.run] } ?? PublishSpec.defaultKeep
            for v in d.versions.dropFirst(keep) {
                let rel = "published/\(d.name)/\(v.run)"
                guard v.run != d.current, !d.viewRuns.contains(v.run), protected[v.run] == nil, !recorded.contains(rel) else { continue }
                out.append(Candidate(kind: "version", path: rel, run: v.run, dataset: d.name, bytes: v.bytes, files: v.files,
                                     reason: "beyond the newest \(keep) versions of \(d.name) (publish.keep)"))
            }
        }
        return out
    }

    /// Runs whose published versions stay whatever `publish.keep` says, and
    /// why: delivered less than `keepDelivered` ago, or still running,
    /// awaiting approval, or failed and retryable. `run` nil: every such run.
    private func protectedVersions(of run: String?, now: Double, _ db: Database) throws -> [String: String] {
        let r = options.retention
        let one = run == nil ? "" : " AND run = ?"
        var protected: [String: String] = [:]
        for row in try Row.fetchAll(db, sql: """
            SELECT run, MAX(finished_at) AS at FROM tasks WHERE stage = 'deliver' AND state = 'succeeded' AND finished_at > ?\(one)
            GROUP BY run
            """, arguments: StatementArguments([now - r.keepDelivered] + (run.map { [$0] } ?? []))) {
            protected[row["run"]] = "delivered less than \(RetentionDuration.text(r.keepDelivered)) ago (--keep-delivered)"
        }
        for row in try Row.fetchAll(db, sql: """
            SELECT id, state FROM runs WHERE (state IN ('pending', 'running', 'awaiting_approval')
            OR (state = 'failed' AND (finished_at IS NULL OR finished_at > ?)))\(run == nil ? "" : " AND id = ?")
            """, arguments: StatementArguments([now - r.keepIntermediate] + (run.map { [$0] } ?? []))) {
            protected[row["id"]] = "its run is \(row["state"] as String)"
        }
        return protected
    }

    /// For `runs r`: no unfinished removal of its folder, no task of it
    /// queued or running (a failed run's other tasks may still be), no
    /// message of it still to send. Its folder goes only under no one.
    static let nothingPendingOrInFlight = """
        NOT EXISTS (SELECT 1 FROM gc_intents g WHERE g.run = r.id AND g.kind = 'intermediate' AND g.done_at IS NULL)
        AND NOT EXISTS (SELECT 1 FROM tasks t WHERE t.run = r.id AND t.state IN ('queued', 'running'))
        AND NOT EXISTS (SELECT 1 FROM outbox o JOIN tasks t ON t.id = o.task WHERE t.run = r.id AND o.sent_at IS NULL)
        """

    /// Whether a run's folder holds anything but its cancel marker (which
    /// retention keeps: workers skip the run's messages still in the broker by it).
    static func holdsMoreThanTheCancelMarker(_ folder: String) -> Bool {
        ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).contains { $0 != "CANCELLED" }
    }

    /// Inside the transaction that records it: a run's folder only while the
    /// run is still finished, nothing of it in flight, and no unfinished
    /// removal names it.
    private func stillCollectable(_ c: Candidate, now: Double, _ db: Database) throws -> Bool {
        if try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM gc_intents WHERE path = ? AND done_at IS NULL",
                            arguments: [c.path]) ?? 0 > 0 { return false }
        if c.kind == "version" {
            // Checked again here: a retry (or a delivery) since the listing
            // protects the version as it would have then.
            return try protectedVersions(of: c.run, now: now, db).isEmpty
        }
        guard let run = try RunRecord.fetch(db, c.run), [.succeeded, .failed, .cancelled].contains(run.state),
              let finished = run.finishedAt else { return false }
        guard try Bool.fetchOne(db, sql: "SELECT \(Self.nothingPendingOrInFlight) FROM runs r WHERE r.id = ?",
                                arguments: [c.run]) ?? false else { return false }
        return finished <= now - options.retention.keepIntermediate
    }

    /// Removes one recorded folder and marks it done; idempotent, so a pass
    /// killed anywhere in here is finished by the next. Returns the outcome.
    private func execute(id: Int64, _ c: Candidate) async throws -> String {
        let faults = options.retention.faults
        try faults.at(.intentRecorded, c.path)
        var outcome = "removed"
        do {
            // flock (which waits for a whole publish), removals of trees: on
            // a thread of their own, never the cooperative pool.
            outcome = try await onRetentionThread { [chunkStore] in
                var outcome = "removed"
                switch c.kind {
                case "intermediate":
                    let parts = c.path.split(separator: "/")
                    guard parts.count == 2, parts[0] == "runs", FleetIDs.isValidID(String(parts[1])) else {
                        throw ServiceError.badRequest("refusing to remove \(c.path): not a run's folder")
                    }
                    let path = try chunkStore.absolute(c.path, field: "run folder")
                    // A cancelled run's marker comes back at once: its messages
                    // still in the broker must go on being skipped.
                    let cancelled = chunkStore.isCancelled(run: c.run)
                    if FileManager.default.fileExists(atPath: path) { try FileManager.default.removeItem(atPath: path) }
                    if cancelled { chunkStore.markCancelled(run: c.run) }
                case "version":
                    let result = try PublishedVersions.remove(root: chunkStore.root, dataset: c.dataset ?? "", run: c.run) {
                        do { try faults.at(.versionUnlinked, c.path) } catch { throw GCFaults.Stop(error: error) }
                    }
                    if result == .pointedAt { outcome = "kept" }
                default:
                    throw ServiceError.badRequest("unknown removal kind \(c.kind)")
                }
                return outcome
            }
        } catch let stop as GCFaults.Stop {
            throw stop.error
        } catch {
            // Any error (a permission, a lock, a symlink out of the root, a
            // bad name): this item is done as failed and the pass goes on, so
            // one folder that cannot go never stops retention as a whole.
            outcome = "failed: \(error)"
        }
        try faults.at(.filesRemoved, c.path)
        let now = clock.seconds
        let final = outcome
        try await store.write { db in
            try db.run("UPDATE gc_intents SET done_at = ?, outcome = ? WHERE id = ?", [now, final, id])
            if final == "removed" {
                let prefix = c.path + "/"
                // By run first (chunks_by_run; a chunk's run is the run whose
                // execution wrote it, as every file under runs/<run>/ and
                // published/<dataset>/<run>/), then by path.
                try db.run("UPDATE chunks SET removed_at = ? WHERE run = ? AND removed_at IS NULL AND substr(path, 1, ?) = ?",
                           [now, c.run, prefix.utf8.count, prefix])
            }
        }
        return outcome
    }

    /// Deletes (or, dry, counts) the lineage rows of executions that ended
    /// before `cutoff` in runs that are over (a failed run only once it can
    /// no longer be retried: a retry reuses its committed outputs through
    /// these rows): their edges, the executions, then chunk rows nothing
    /// references any more — never source files' (the runs' inputs'
    /// hashes), published versions' nor delivery receipts' (`bis lineage
    /// trace RUN` and `impact` fall back on them).
    private func pruneLineage(before cutoff: Double, retryableAfter: Double, dryRun: Bool) async throws -> (Int, Int) {
        let select = """
            SELECT x.id FROM executions x JOIN tasks t ON t.id = x.task JOIN runs r ON r.id = t.run
            WHERE COALESCE(x.finished_at, x.started_at, 0) < ? AND r.state IN ('succeeded', 'failed', 'cancelled')
            AND NOT (r.state = 'failed' AND (r.finished_at IS NULL OR r.finished_at > ?)
                     AND NOT EXISTS (SELECT 1 FROM gc_intents g WHERE g.run = r.id AND g.kind = 'intermediate'))
            """
        let arguments: StatementArguments = [cutoff, retryableAfter]
        if dryRun {
            return try await store.read { db in
                let n = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM (\(select))", arguments: arguments) ?? 0
                let e = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM edges WHERE execution IN (\(select))", arguments: arguments) ?? 0
                return (n, e)
            }
        }
        return try await store.write { db in
            try db.execute(sql: "CREATE TEMP TABLE IF NOT EXISTS gc_prune(id TEXT PRIMARY KEY)")
            try db.execute(sql: "DELETE FROM gc_prune")
            try db.execute(sql: "INSERT INTO gc_prune \(select)", arguments: arguments)
            let n = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM gc_prune") ?? 0
            guard n > 0 else { return (0, 0) }
            // Only the chunks these executions touched can lose their last
            // reference: checked one by one through indexes (edges' primary
            // key, task_inputs_by_chunk), never a scan of every chunk while
            // the write lock holds intake back.
            try db.execute(sql: "CREATE TEMP TABLE IF NOT EXISTS gc_prune_chunks(id INTEGER PRIMARY KEY)")
            try db.execute(sql: "DELETE FROM gc_prune_chunks")
            try db.execute(sql: "INSERT OR IGNORE INTO gc_prune_chunks SELECT chunk FROM edges WHERE execution IN (SELECT id FROM gc_prune)")
            try db.execute(sql: "DELETE FROM edges WHERE execution IN (SELECT id FROM gc_prune)")
            let e = db.changesCount
            try db.execute(sql: "DELETE FROM executions WHERE id IN (SELECT id FROM gc_prune)")
            try db.execute(sql: """
                DELETE FROM chunks WHERE id IN (SELECT id FROM gc_prune_chunks)
                AND kind != 'source' AND substr(path, 1, 10) != 'published/' AND path NOT LIKE '%/receipt.json'
                AND NOT EXISTS (SELECT 1 FROM edges WHERE edges.chunk = chunks.id)
                AND NOT EXISTS (SELECT 1 FROM task_inputs WHERE task_inputs.chunk = chunks.id)
                """)
            try db.execute(sql: "DELETE FROM gc_prune")
            try db.execute(sql: "DELETE FROM gc_prune_chunks")
            return (n, e)
        }
    }

    /// Why `run` cannot be retried any more: retention removed (or is
    /// removing) its intermediate chunks, or pruned the lineage rows a
    /// retry reuses its committed outputs through. nil when it still can.
    static func retentionRefusal(run id: String, _ db: Database) throws -> String? {
        // The latest removal of the folder says where it stands.
        guard let row = try Row.fetchOne(db, sql: """
            SELECT planned_at, done_at, reason, outcome FROM gc_intents WHERE run = ? AND kind = 'intermediate' ORDER BY id DESC LIMIT 1
            """, arguments: [id]) else {
            // A failed run past its window whose folder was already gone (no
            // removal recorded): planned again without these rows, downstream
            // would get no inputs at all.
            if try Bool.fetchOne(db, sql: """
                SELECT EXISTS (SELECT 1 FROM tasks t WHERE t.run = ? AND t.winner IS NOT NULL
                               AND NOT EXISTS (SELECT 1 FROM executions x WHERE x.id = t.winner))
                """, arguments: [id]) ?? false {
                return "run \(id) cannot be retried: retention (bis gc) pruned the lineage of its executions "
                    + "(--keep-lineage), which a retry needs to reuse their outputs; submit the spec again for a new run"
            }
            return nil
        }
        let reason: String = row["reason"]
        let head = "run \(id) cannot be retried: its intermediate chunks (runs/\(id)/) "
        let tail = ", because the \(reason); submit the spec again for a new run"
        guard let done: Double = row["done_at"] else {
            let at = Date(timeIntervalSince1970: row["planned_at"])
            return head + "are being removed by retention (bis gc), since \(at.formatted(.iso8601))" + tail
        }
        let at = Date(timeIntervalSince1970: done).formatted(.iso8601)
        let outcome: String = row["outcome"] ?? "removed"
        if outcome.hasPrefix("failed") {
            return head + "were partly removed by retention (bis gc): the removal failed at \(at) (\(outcome); "
                + "the next pass tries again)" + tail
        }
        return head + "were removed by retention (bis gc) at \(at)" + tail
    }
}

/// Runs blocking file work (tree walks, flock, removals) on a thread of its
/// own and resumes the caller after (STYLE: blocking calls never run on the
/// cooperative pool, where they would hold back intake, dispatch and HTTP).
private func onRetentionThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { (cont: CheckedContinuation<T, Error>) in
        let thread = Thread {
            do { cont.resume(returning: try body()) } catch { cont.resume(throwing: error) }
        }
        thread.name = "bis-retention"
        thread.start()
    }
}
