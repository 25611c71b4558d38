#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// The folders a coordinator reads specs and input files from
/// (`bis coordinator --input-root DIR`, repeatable). What a client submits is
/// checked against them before anything is read:
/// - the spec's folder (named by `specPath`, whether or not the text is sent
///   inline) must be a folder under a root;
/// - without inline text, the spec file itself must be a regular file under
///   a root (and is read from its resolved path);
/// - the client's allowed roots may only narrow them: each must be a folder
///   under a root. The run's roots are the spec's folder and those, so none
///   given means the spec's folder alone.
///
/// Paths are resolved one name at a time below the root they lie under,
/// following symlinks only by their target's text and only while it stays
/// under a root (`PathResolver.confine`): a refusal reads nothing outside
/// the roots and names only the client's own path and the roots.
public struct InputRoots: Sendable, Hashable {
    /// Existing folders with their symlinks resolved.
    public let paths: [String]
    /// Each root as the operator spelled it (absolute), where that differs
    /// from its resolved path: a client's path spelled the same way (a mount
    /// reached through a symlink, say) is read as under the root.
    let spellings: [String: String]

    /// Resolves `folders` (relative ones against `base`) with their symlinks;
    /// each must be an existing folder. Throws a message naming the first one
    /// that is not.
    public init(resolving folders: [String], relativeTo base: String) throws(InputRootsError) {
        var paths: [String] = []
        var spellings: [String: String] = [:]
        for folder in folders {
            let absolute = PathResolver.absolute(folder, relativeTo: base)
            guard let resolved = realpath(absolute, nil) else {
                throw InputRootsError(message: "the input root \(folder) does not exist")
            }
            let canonical = String(cString: resolved)
            free(resolved)
            guard PathResolver.isDirectory(canonical) else {
                throw InputRootsError(message: "the input root \(folder) is not a folder")
            }
            if !paths.contains(canonical) { paths.append(canonical) }
            if absolute != canonical { spellings[absolute] = canonical }
        }
        guard !paths.isEmpty else { throw InputRootsError(message: "at least one input root is needed") }
        self.paths = paths
        self.spellings = spellings
    }

    /// `path` (absolute, lexical) resolved below the roots; a path under a
    /// root as the operator spelled it is read under the resolved root.
    func confine(_ path: String) -> Confinement {
        if !paths.contains(where: { PathResolver.isUnder(path, root: $0) }),
           let (spelled, canonical) = spellings.filter({ PathResolver.isUnder(path, root: $0.key) }).max(by: { $0.key.count < $1.key.count }) {
            return PathResolver.confine(canonical + path.dropFirst(spelled.count), roots: paths)
        }
        return PathResolver.confine(path, roots: paths)
    }

    /// Whether `path` (resolved) lies under a root.
    public func contains(_ path: String) -> Bool {
        paths.contains { PathResolver.isUnder(path, root: $0) }
    }

    /// The policy in a sentence, for refusals.
    public var policy: String {
        "this coordinator reads specs and input files only under its input \(PathResolver.describe(paths)) "
            + "(bis coordinator --input-root)"
    }

    /// What a submit may read, once admitted.
    public struct Admitted: Sendable, Hashable {
        /// The spec file as named (absolute); errors name it.
        public var file: String
        /// The spec's folder, resolved: relative globs start here.
        public var directory: String
        /// The spec's text: the inline text, or the file's as read here.
        public var text: String
        /// The client's allowed roots, resolved; each under an input root.
        public var allowedRoots: [String]
    }

    /// Checks a submit against the roots and reads the spec when no text
    /// came with it. `specPath` and `allowedRoots` are made absolute against
    /// `base` (the coordinator's working directory).
    public func admit(specPath: String, specText: String?, allowedRoots: [String], base: String,
                      maxSpecBytes: Int = 4 << 20) throws(InputRefusal) -> Admitted {
        let file = PathResolver.absolute(specPath, relativeTo: base)
        let folder = (file as NSString).deletingLastPathComponent
        guard case .inside(let directory) = confine(folder), PathResolver.isDirectory(directory) else {
            throw .forbidden("the spec's folder \(folder) is not a folder under the coordinator's input roots: \(policy)")
        }
        var narrowed: [String] = []
        for root in allowedRoots {
            let absolute = PathResolver.absolute(root, relativeTo: base)
            guard case .inside(let resolved) = confine(absolute), PathResolver.isDirectory(resolved) else {
                throw .forbidden("the allowed root \(root) is not a folder under the coordinator's input roots "
                                 + "(a client may only narrow them): \(policy)")
            }
            if !narrowed.contains(resolved) { narrowed.append(resolved) }
        }
        let text: String
        if let specText {
            text = specText
        } else {
            switch confine(file) {
            case .outside:
                throw .forbidden("the spec \(file) is not under the coordinator's input roots: \(policy)")
            case .missing:
                throw .unreadable("cannot read the spec \(file): no such file")
            case .inside(let resolved):
                guard PathResolver.isRegularFile(resolved) else {
                    throw .unreadable("cannot read the spec \(file): not a regular file")
                }
                text = try Self.read(resolved, shown: file, max: maxSpecBytes)
            }
        }
        return Admitted(file: file, directory: directory, text: text, allowedRoots: narrowed)
    }

    private static func read(_ path: String, shown: String, max: Int) throws(InputRefusal) -> String {
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw .unreadable("cannot read the spec \(shown)")
        }
        defer { try? handle.close() }
        let data: Data
        do { data = try handle.read(upToCount: max + 1) ?? Data() } catch {
            throw .unreadable("cannot read the spec \(shown): \(error.localizedDescription)")
        }
        guard data.count <= max else {
            throw .unreadable("the spec \(shown) is larger than \(max) bytes; a pipeline spec is a few kilobytes")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw .unreadable("cannot read the spec \(shown): it is not UTF-8 text")
        }
        return text
    }
}

public struct InputRootsError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}

/// Why a submit was refused before its spec was parsed.
public enum InputRefusal: Error, Sendable, CustomStringConvertible, Equatable {
    /// A path outside the coordinator's input roots (HTTP 403).
    case forbidden(String)
    /// The spec file under a root cannot be read (HTTP 400).
    case unreadable(String)

    public var description: String {
        switch self {
        case .forbidden(let m), .unreadable(let m): return m
        }
    }
}
