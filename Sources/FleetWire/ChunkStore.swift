#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
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

    /// The absolute path of a chunk path from a message (`field` names it in
    /// errors). Only relative paths inside the root are accepted: an
    /// absolute path, a `..` segment, or a symlink on the way that leads out
    /// of the root is refused (a permanent failure naming the field and the
    /// value). Source files are not chunk paths: they are confined to the
    /// spec's allowed roots where they are read.
    public func absolute(_ path: String, field: String = "chunk path") throws(TaskFailure) -> String {
        do {
            try Self.checkRelative(path, field: field)
        } catch {
            throw TaskFailure(.permanent, "\(error) (data root \(root))")
        }
        let joined = root + "/" + path
        // Symlinks: the deepest part of the path that exists, resolved, must
        // still lie under the root (resolved too).
        let realRoot = Self.realPath(root) ?? root
        var probe = joined
        while probe.count > root.count {
            if let real = Self.realPath(probe) {
                guard real == realRoot || real.hasPrefix(realRoot + "/") else {
                    throw TaskFailure(.permanent, "field \(field) '\(MessageFieldError.shown(path))' leads out of the data root "
                                      + "\(root) through a symlink (to \(real))")
                }
                break
            }
            probe = (probe as NSString).deletingLastPathComponent
        }
        return joined
    }

    static func realPath(_ path: String) -> String? {
        guard let p = realpath(path, nil) else { return nil }
        defer { free(p) }
        return String(cString: p)
    }

    /// `path` relative to the root, or nil when it is outside.
    public func relative(_ path: String) -> String? {
        let p = URL(fileURLWithPath: path).standardizedFileURL.path
        guard p.hasPrefix(root + "/") else { return nil }
        return String(p.dropFirst(root.count + 1))
    }
}
