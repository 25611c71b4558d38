import Foundation

// Published datasets as the coordinator shows them (`bis datasets`,
// `bis dataset show`, `bis dataset rollback`): read from the data root's
// `published/<dataset>/` folders, where each version's `_manifest.json` and
// the `CURRENT` pointer are the truth.

/// One column of a published version's schema.
public struct DatasetColumn: Codable, Sendable, Hashable {
    public var name: String
    /// The spec's type name: int64, double, decimal(18,4), …
    public var type: String
    public var nullable: Bool

    public init(name: String, type: String, nullable: Bool) {
        self.name = name
        self.type = type
        self.nullable = nullable
    }
}

/// One published version of a dataset.
public struct DatasetVersionView: Codable, Sendable, Hashable {
    /// The run that published it (the version's folder name).
    public var run: String
    public var rows: Int64
    public var bytes: Int64
    /// SHA-256 of the version's schema in canonical form (see docs/spec.md, `schema_change`).
    public var schemaSHA256: String
    /// The manifest's `created`.
    public var publishedAt: Date
    /// Whether `CURRENT` names it.
    public var current: Bool
    /// The version folder, relative to the data root: `published/<dataset>/<run>`.
    public var path: String

    public init(run: String, rows: Int64, bytes: Int64, schemaSHA256: String, publishedAt: Date, current: Bool, path: String) {
        self.run = run
        self.rows = rows
        self.bytes = bytes
        self.schemaSHA256 = schemaSHA256
        self.publishedAt = publishedAt
        self.current = current
        self.path = path
    }
}

/// A published dataset (or summary) and its `CURRENT` version.
public struct DatasetView: Codable, Sendable, Hashable {
    public var name: String
    /// `dataset` (a pipeline's validated rows) or `summary`.
    public var kind: String
    /// For a summary: the dataset whose rows it aggregates.
    public var summaryOf: String?
    /// How many versions are on disk.
    public var versions: Int
    /// The run `CURRENT` names, as written (`problem` says when it names a
    /// version that is gone); nil when there is no `CURRENT`.
    public var current: String?
    /// `CURRENT`'s rows, bytes, schema hash and publication time.
    public var rows: Int64?
    public var bytes: Int64?
    public var schemaSHA256: String?
    public var publishedAt: Date?
    /// What a reader would trip over, nil when nothing: `CURRENT` naming no
    /// readable version, or `view.sql` not reading `CURRENT`'s version.
    public var problem: String?

    public init(name: String, kind: String, summaryOf: String? = nil, versions: Int, current: String?,
                rows: Int64? = nil, bytes: Int64? = nil, schemaSHA256: String? = nil, publishedAt: Date? = nil) {
        self.name = name
        self.kind = kind
        self.summaryOf = summaryOf
        self.versions = versions
        self.current = current
        self.rows = rows
        self.bytes = bytes
        self.schemaSHA256 = schemaSHA256
        self.publishedAt = publishedAt
    }
}

/// `GET /api/datasets/{name}`: the dataset, its versions (newest first) and
/// `CURRENT`'s columns.
public struct DatasetDetail: Codable, Sendable, Hashable {
    public var dataset: DatasetView
    public var versions: [DatasetVersionView]
    /// `CURRENT`'s schema, in column order; empty without `CURRENT`.
    public var columns: [DatasetColumn]

    public init(dataset: DatasetView, versions: [DatasetVersionView], columns: [DatasetColumn]) {
        self.dataset = dataset
        self.versions = versions
        self.columns = columns
    }
}

/// `POST /api/datasets/{name}/rollback`: point `CURRENT` at the version of run `to`.
public struct RollbackRequest: Codable, Sendable, Hashable {
    /// The run whose version becomes `CURRENT` (older or newer: rolling forward is the same).
    public var to: String
    /// Who asks, as user@host (the audit log's actor when the coordinator has no auth).
    public var by: String

    public init(to: String, by: String) {
        self.to = to
        self.by = by
    }
}

/// What a rollback did.
public struct RollbackResult: Codable, Sendable, Hashable {
    public var dataset: String
    /// The run `CURRENT` named before; nil when it named none.
    public var from: String?
    /// The run `CURRENT` names now.
    public var to: String
    /// False when `CURRENT` already named `to` (only `view.sql` was checked).
    public var moved: Bool
    public var detail: DatasetDetail
    /// The schema hash of the version `CURRENT` named before (readers see
    /// `detail.dataset.schemaSHA256` now).
    public var fromSchemaSHA256: String?
    /// Summaries of the dataset pointed at their version of `to` as well.
    public var summaries: [String]?
    /// Summaries of the dataset without a version of `to`: left where they were.
    public var summariesLeft: [String]?

    public init(dataset: String, from: String?, to: String, moved: Bool, detail: DatasetDetail) {
        self.dataset = dataset
        self.from = from
        self.to = to
        self.moved = moved
        self.detail = detail
    }
}
