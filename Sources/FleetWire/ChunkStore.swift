import Foundation

/// The chunk store: one root folder every host mounts at the same path.
/// Executions write under `runs/<run>/<stage>/<index>/<execution>/`; nothing
/// there is ever overwritten. Messages name chunks relative to the root.
public struct ChunkStore: Sendable, Hashable {
    /// Absolute, without a trailing slash.
    public let root: String

    public init(root: String) {
        let absolute = root.hasPrefix("/") ? root : FileManager.default.currentDirectoryPath + "/" + root
        self.root = URL(fileURLWithPath: absolute).standardizedFileURL.path
    }

    /// `runs/<run>/<stage>/<index>/<execution>`, relative to the root.
    public func executionDirectory(run: String, stage: Stage, index: Int, execution: String) -> String {
        "runs/\(run)/\(stage.rawValue)/\(index)/\(execution)"
    }

    public func runDirectory(run: String) -> String { "runs/\(run)" }

    /// `runs/<run>/CANCELLED`: the coordinator writes it when a run is
    /// cancelled, so workers skip the run's tasks still queued in the broker
    /// instead of computing results that would be discarded.
    public func cancelMarker(run: String) -> String { "runs/\(run)/CANCELLED" }

    public func isCancelled(run: String) -> Bool {
        FileManager.default.fileExists(atPath: root + "/" + cancelMarker(run: run))
    }

    /// Writes the cancel marker (best effort: without it, workers still run
    /// the queued tasks and the coordinator discards their results).
    public func markCancelled(run: String) {
        let path = root + "/" + cancelMarker(run: run)
        try? FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        // Written whole or not at all (a temporary file renamed over it): a
        // worker never reads a half-written marker.
        try? Data("cancelled\n".utf8).write(to: URL(fileURLWithPath: path), options: .atomic)
    }

    /// The absolute path of a chunk path from a message. Relative paths must
    /// stay inside the root (no `..` out of it); absolute ones (sources) are
    /// returned as they are.
    public func absolute(_ path: String) throws -> String {
        if path.hasPrefix("/") { return path }
        let joined = URL(fileURLWithPath: root + "/" + path).standardizedFileURL.path
        guard joined == root || joined.hasPrefix(root + "/") else {
            throw TaskFailure(.permanent, "chunk path '\(path)' leaves the chunk store \(root)")
        }
        return joined
    }

    /// `path` relative to the root, or nil when it is outside.
    public func relative(_ path: String) -> String? {
        let p = URL(fileURLWithPath: path).standardizedFileURL.path
        guard p.hasPrefix(root + "/") else { return nil }
        return String(p.dropFirst(root.count + 1))
    }
}
