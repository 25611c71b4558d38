import CoordinatorAPI
import Foundation
import GRDB
import Stages

extension CoordinatorEngine {
    /// Every published dataset and summary under the data root, by name, with
    /// `CURRENT`'s run, rows, bytes, schema hash and publication time.
    public func datasets() async throws -> [DatasetView] {
        try DatasetCatalog.list(root: chunkStore.root).map(Self.view)
    }

    /// One dataset's versions, newest first; 404 when there is none.
    public func dataset(_ name: String) async throws -> DatasetDetail {
        guard let entry = try DatasetCatalog.dataset(name, root: chunkStore.root) else {
            throw ServiceError.notFound(DatasetCatalog.RefusalError.unknownDataset(
                name, known: (try? DatasetCatalog.list(root: chunkStore.root))?.map(\.name) ?? []).description)
        }
        return Self.detail(entry)
    }

    /// Moves `CURRENT` of dataset `name` (and of its summaries with a
    /// version of the run) to the version of run `run`
    /// (`DatasetCatalog.rollback`, on a thread of its own: it may wait up to
    /// 2 s for the lock and hashes every file). The audit log gets
    /// `dataset.rollback_requested` (who, from, to) before anything moves,
    /// then `dataset.rolled_back`, `dataset.rollback_unchanged` (CURRENT
    /// already named the run) or `dataset.rollback_refused`. 404 for an
    /// unknown dataset or a run without a version of it; 409 for a damaged
    /// version or a publish holding the lock (nothing moves).
    public func rollbackDataset(_ name: String, to run: String, as caller: Caller) async throws -> RollbackResult {
        let root = chunkStore.root
        guard let before = try await Self.offThread({ try DatasetCatalog.dataset(name, root: root) }) else {
            throw ServiceError.notFound(DatasetCatalog.RefusalError.unknownDataset(
                name, known: (try? DatasetCatalog.list(root: root))?.map(\.name) ?? []).description)
        }
        let fromHash = before.currentVersion?.schemaSHA256
        let toHash = before.versions.first { $0.run == run }?.schemaSHA256
        let schemaNote = fromHash != nil && toHash != nil && fromHash != toHash
            ? " (readers' schema changes: sha256 \(fromHash!.prefix(12)) → \(toHash!.prefix(12)))" : ""
        try await audit(caller, "dataset.rollback_requested",
                        "dataset \(name): rollback to \(run) requested; CURRENT names \(before.current ?? "(none)")" + schemaNote)
        let move: DatasetCatalog.Move
        do {
            move = try await Self.offThread { try DatasetCatalog.rollback(name, to: run, root: root) }
        } catch {
            try? await audit(caller, "dataset.rollback_refused", "dataset \(name): rollback to \(run) refused: \(error)")
            switch error {
            case let refusal as DatasetCatalog.RefusalError:
                if case .busy = refusal { throw ServiceError.conflict(refusal.description) }
                throw ServiceError.notFound(refusal.description)
            case PublishError.damagedVersion:
                throw ServiceError.conflict("\(error); CURRENT was not moved")
            default:
                throw error
            }
        }
        var detail = "dataset \(name): CURRENT " + (move.moved ? "moved from \(move.from ?? "(none)") to \(move.to)"
                                                     : "already named \(move.to); view.sql checked")
        if !move.summaries.isEmpty { detail += "; summaries moved along: " + move.summaries.joined(separator: ", ") }
        if !move.summariesLeft.isEmpty {
            detail += "; summaries without a version of \(run), left as they were: " + move.summariesLeft.joined(separator: ", ")
        }
        try await store.write { [clock, detail] db in
            try db.audit(actor: caller.name, action: move.moved ? "dataset.rolled_back" : "dataset.rollback_unchanged", run: run,
                         detail: detail, at: clock.seconds, caller: caller)
        }
        logger.notice("dataset rolled back", metadata: [
            "dataset": "\(name)", "run.id": "\(run)", "from": "\(move.from ?? "-")", "principal": "\(caller.principalName)"])
        var result = RollbackResult(dataset: name, from: move.from, to: move.to, moved: move.moved, detail: Self.detail(move.entry))
        result.fromSchemaSHA256 = fromHash
        result.summaries = move.summaries
        result.summariesLeft = move.summariesLeft
        return result
    }

    /// A dataset audit row without a run.
    private func audit(_ caller: Caller, _ action: String, _ detail: String) async throws {
        try await store.write { [clock] db in
            try db.audit(actor: caller.name, action: action, run: nil, detail: detail, at: clock.seconds, caller: caller)
        }
    }

    /// Rewrites every `view.sql` that does not read its `CURRENT`
    /// (`DatasetCatalog.repairViews`): a crash between a rollback's or a
    /// publish's two files leaves one behind. Run when the coordinator starts.
    public func repairDatasetViews() async {
        let root = chunkStore.root
        do {
            let repaired = try await Self.offThread { try DatasetCatalog.repairViews(root: root) }
            if !repaired.isEmpty {
                logger.notice("view.sql rewritten to follow CURRENT", metadata: ["datasets": "\(repaired.joined(separator: ","))"])
            }
        } catch {
            logger.warning("cannot check the datasets' view.sql", metadata: ["error": "\(error)"])
        }
    }

    /// Runs blocking file work on a Dispatch thread, not on one of the
    /// concurrency pool's few threads.
    static func offThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global().async { continuation.resume(with: Result { try body() }) }
        }
    }

    static func view(_ e: DatasetCatalog.Entry) -> DatasetView {
        let c = e.currentVersion
        let any = c ?? e.versions.first
        var v = DatasetView(name: e.name, kind: any?.kind ?? "dataset", summaryOf: any?.summaryOf, versions: e.versions.count,
                            current: e.current, rows: c?.rows, bytes: c?.bytes, schemaSHA256: c?.schemaSHA256,
                            publishedAt: c.flatMap { Self.date($0.created) })
        v.problem = DatasetCatalog.problem(e)
        return v
    }

    static func detail(_ e: DatasetCatalog.Entry) -> DatasetDetail {
        let versions = e.versions.map { m in
            DatasetVersionView(run: m.run, rows: m.rows, bytes: m.bytes, schemaSHA256: m.schemaSHA256,
                               publishedAt: Self.date(m.created) ?? Date(timeIntervalSince1970: 0), current: m.run == e.current,
                               path: "published/\(e.name)/\(m.run)")
        }
        let columns = (e.currentVersion?.schema ?? []).map { DatasetColumn(name: $0.name, type: $0.type, nullable: $0.nullable) }
        return DatasetDetail(dataset: view(e), versions: versions, columns: columns)
    }

    /// A manifest's `created` (ISO 8601 with or without milliseconds).
    static func date(_ text: String) -> Date? {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if let d = f.date(from: text) { return d }
        f.formatOptions = [.withInternetDateTime]
        return f.date(from: text)
    }
}
