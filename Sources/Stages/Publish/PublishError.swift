import FleetCore

/// Why a publish failed. `io` may be transient (a full disk, a lost mount)
/// and worth a retry; every other case is permanent: the same inputs fail
/// the same way, and the message says what to fix.
public enum PublishError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A dataset, summary or run name that could become a path outside the
    /// data root (or collide with publish's own files).
    case invalidName(kind: String, name: String)
    /// A folder publish would write into is a symlink or not a folder.
    case unsafePath(String, reason: String)
    /// The run already has a published version of this dataset with other
    /// files: a run's output never changes, so publish a new run instead.
    case runAlreadyPublished(dataset: String, run: String, difference: String)
    /// A copied (or linked) file does not hash to its source's sha256.
    case checksumMismatch(path: String, expected: String, actual: String)
    /// A published version's file no longer matches its manifest.
    case damagedVersion(path: String, reason: String)
    /// The inputs cannot make a dataset (no chunks and no schema, chunks of
    /// different schemas, a summary without partials, retention below 1).
    case invalidInput(String)
    /// An operating-system call failed.
    case io(String, errno: Int32)
    /// The new version's schema differs from the one `CURRENT` names in a
    /// way the spec's `schema_change` does not allow (`SchemaContract`):
    /// the run's quality gate fails and nothing is published.
    case schemaChanged(dataset: String, current: String, currentHash: String, newHash: String, difference: String,
                       policy: PublishSpec.SchemaChange)

    public var description: String {
        switch self {
        case .invalidName(let kind, let name):
            return "\(kind) name '\(name)' is not allowed: use letters, digits, '_', '-' and '.', not starting with '.', without '..'"
        case .unsafePath(let path, let reason):
            return "\(path) \(reason)"
        case .runAlreadyPublished(let dataset, let run, let difference):
            return "dataset '\(dataset)' already has a version for run '\(run)' with other content (\(difference)); "
                + "a run's published output never changes: publish under a new run id"
        case .checksumMismatch(let path, let expected, let actual):
            return "\(path): sha256 \(actual) after copying, expected \(expected) (the source changed or the copy is damaged)"
        case .damagedVersion(let path, let reason):
            return "published version \(path) is damaged: \(reason)"
        case .invalidInput(let message):
            return message
        case .schemaChanged(let dataset, let current, let currentHash, let newHash, let difference, let policy):
            let allowed = policy == .additive
                ? "schema_change: additive allows only new nullable columns after the existing ones; "
                    + "to accept this change set publish: {schema_change: any}"
                : "if the change is intended, set publish: {schema_change: additive} (new nullable columns at the end) "
                    + "or {schema_change: any}"
            return "quality gate failed: the schema of dataset '\(dataset)' differs from CURRENT's (run \(current)): "
                + "\(difference). Nothing was published; CURRENT stays on \(current) "
                + "(schema sha256 \(currentHash), this version's \(newHash)); \(allowed)"
        case .io(let message, let e):
            return e == 0 ? "I/O error: \(message)" : "I/O error: \(message) (errno \(e))"
        }
    }
}
