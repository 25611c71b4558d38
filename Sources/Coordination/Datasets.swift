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

    /// Moves `CURRENT` of dataset `name` to the version of run `run`
    /// (`DatasetCatalog.rollback`) and writes `dataset.rolled_back` to the
    /// audit log with who asked. 404 for an unknown dataset or a run
    /// without a version of it; 409 for a damaged version (nothing moves).
    public func rollbackDataset(_ name: String, to run: String, as caller: Caller) async throws -> RollbackResult {
        let move: DatasetCatalog.Move
        do {
            move = try DatasetCatalog.rollback(name, to: run, root: chunkStore.root)
        } catch let refusal as DatasetCatalog.RefusalError {
            throw ServiceError.notFound(refusal.description)
        } catch let error as PublishError {
            if case .damagedVersion = error {
                throw ServiceError.conflict("\(error); CURRENT was not moved")
            }
            throw error
        }
        let detail = "dataset \(name): CURRENT " + (move.moved ? "moved from \(move.from ?? "(none)") to \(move.to)"
                                                    : "already named \(move.to); view.sql checked")
        try await store.write { [clock] db in
            try db.audit(actor: caller.name, action: "dataset.rolled_back", run: run, detail: detail, at: clock.seconds,
                         caller: caller)
        }
        logger.notice("dataset rolled back", metadata: [
            "dataset": "\(name)", "run.id": "\(run)", "from": "\(move.from ?? "-")", "principal": "\(caller.principalName)"])
        return RollbackResult(dataset: name, from: move.from, to: move.to, moved: move.moved, detail: Self.detail(move.entry))
    }

    static func view(_ e: DatasetCatalog.Entry) -> DatasetView {
        let c = e.currentVersion
        let any = c ?? e.versions.first
        return DatasetView(name: e.name, kind: any?.kind ?? "dataset", summaryOf: any?.summaryOf, versions: e.versions.count,
                           current: c?.run, rows: c?.rows, bytes: c?.bytes, schemaSHA256: c?.schemaSHA256,
                           publishedAt: c.flatMap { Self.date($0.created) })
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
