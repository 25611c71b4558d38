#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// Where a path lands when it is resolved below a set of roots.
enum Confinement: Equatable {
    /// Under a root; the path with every symlink resolved.
    case inside(String)
    /// Outside every root: lexically, or through a symlink whose target's
    /// text leaves them (or a loop of links). Nothing outside was looked at.
    case outside
    /// Under a root, but no such entry there (a missing name, or a name
    /// below a file).
    case missing
}

extension PathResolver {
    /// Most symlinks followed in resolving one path (as the kernel's 40).
    static let maxLinkHops = 40

    /// "root R" or "roots R1, R2", for messages.
    static func describe(_ roots: [String]) -> String {
        (roots.count == 1 ? "root " : "roots ") + roots.joined(separator: ", ")
    }

    /// Resolves `path` (absolute, without `.` or `..`) below `roots`
    /// (canonical folders), one name at a time from the root it lies under,
    /// following symlinks by the text of their target and never looking at
    /// a path outside the roots: a target whose text lies outside every
    /// root makes the answer `.outside` whether or not it exists, so the
    /// answer tells nothing about the file system beyond the roots.
    static func confine(_ path: String, roots: [String]) -> Confinement {
        var hops = 0
        return confine(path, roots: roots, hops: &hops)
    }

    private static func confine(_ path: String, roots: [String], hops: inout Int) -> Confinement {
        guard let root = roots.filter({ isUnder(path, root: $0) }).max(by: { $0.count < $1.count }) else { return .outside }
        var physical = root
        let rest = root == "/" ? path.dropFirst() : path.dropFirst(root.count)
        for name in rest.split(separator: "/") {
            switch step(physical, String(name), roots: roots, hops: &hops) {
            case .inside(let next): physical = next
            case let other: return other
            }
        }
        return .inside(physical)
    }

    /// The entry `name` of `directory` (a resolved folder under a root).
    static func step(_ directory: String, _ name: String, roots: [String], hops: inout Int) -> Confinement {
        let path = join(directory, name)
        var info = stat()
        guard lstat(path, &info) == 0 else { return .missing }
        guard (info.st_mode & S_IFMT) == S_IFLNK else { return .inside(path) }
        hops += 1
        guard hops <= maxLinkHops, let text = readLink(path) else { return .outside }
        return confine(absolute(text, relativeTo: directory), roots: roots, hops: &hops)
    }

    static func join(_ directory: String, _ name: String) -> String {
        directory == "/" ? "/" + name : directory + "/" + name
    }

    private static func readLink(_ path: String) -> String? {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let n = readlink(path, &buffer, buffer.count - 1)
        guard n > 0 else { return nil }
        return String(decoding: buffer[..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// The names in `directory`, sorted; at most `budget` of them are read
    /// (`nil` when there were more).
    static func children(of directory: String, budget: Int) -> [String]? {
        guard let dir = opendir(directory) else { return [] }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafePointer(to: entry.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: Int(NAME_MAX) + 1) { String(cString: $0) }
            }
            if name == "." || name == ".." { continue }
            if names.count >= budget { return nil }
            names.append(name)
        }
        return names.sorted()
    }
}

/// Expands globs below a set of roots (see `PipelineSpec.resolveInputs`),
/// counting the folder entries it looks at across every glob of a spec.
struct GlobWalk {
    enum Outcome: Equatable {
        /// The glob's folders before its first wildcard are outside every root.
        case outside
        /// The search looked at more than the limit of entries.
        case tooLarge
        /// The regular files matched (resolved), and the symlinks reached
        /// whose targets leave the roots (as paths under a root, sorted).
        case searched(matches: [String], escapes: [String])
    }

    let roots: [String]
    let limit: Int
    private(set) var visited = 0
    private var matches = Set<String>()
    private var escapes = Set<String>()
    private var exhausted = false
    /// Folders listed for the current glob: `**` and the segment after it
    /// read the same folder once.
    private var listed: [String: [String]] = [:]

    init(roots: [String], limit: Int) {
        self.roots = roots
        self.limit = limit
    }

    /// Expands `pattern` (absolute, with `.` and `..` already applied).
    mutating func expand(_ pattern: String) -> Outcome {
        let segments = pattern.split(separator: "/").map(String.init)
        let fixed = segments.prefix { !Self.isWildcard($0) }
        let prefix = "/" + fixed.joined(separator: "/")
        // Decided on the text alone: nothing outside the roots is touched.
        guard let root = roots.filter({ PathResolver.isUnder(prefix, root: $0) }).max(by: { $0.count < $1.count }) else {
            return .outside
        }
        matches = []
        escapes = []
        listed = [:]
        let rootDepth = root == "/" ? 0 : root.split(separator: "/").count
        expand(shown: root, physical: root, segments: segments.dropFirst(rootDepth))
        if exhausted { return .tooLarge }
        return .searched(matches: matches.sorted(), escapes: escapes.sorted())
    }

    static func isWildcard(_ segment: String) -> Bool {
        segment.contains(where: { $0 == "*" || $0 == "?" || $0 == "[" })
    }

    /// `shown` is the folder as the glob reaches it (under a root), `physical`
    /// the same folder with its symlinks resolved (under a root too).
    private mutating func expand(shown: String, physical: String, segments: ArraySlice<String>) {
        guard !exhausted else { return }
        guard let segment = segments.first else {
            if PathResolver.isRegularFile(physical) { matches.insert(physical) }
            return
        }
        let rest = segments.dropFirst()
        if segment == "**" {
            expand(shown: shown, physical: physical, segments: rest)
            for name in names(in: physical) where !name.hasPrefix(".") {
                guard !exhausted else { return }
                let child = PathResolver.join(physical, name)
                // Not through symlinks: `**` cannot loop or leave by a link.
                if PathResolver.isRealDirectory(child) {
                    expand(shown: PathResolver.join(shown, name), physical: child, segments: segments)
                }
            }
        } else if Self.isWildcard(segment) {
            for name in names(in: physical) where fnmatch(segment, name, FNM_PERIOD) == 0 {
                visit(shown: shown, physical: physical, name: name, rest: rest)
            }
        } else {
            visit(shown: shown, physical: physical, name: segment, rest: rest)
        }
    }

    private mutating func visit(shown: String, physical: String, name: String, rest: ArraySlice<String>) {
        guard !exhausted else { return }
        visited += 1
        if visited > limit { exhausted = true; return }
        var hops = 0
        switch PathResolver.step(physical, name, roots: roots, hops: &hops) {
        case .missing:
            return
        case .outside:
            escapes.insert(PathResolver.join(shown, name))
        case .inside(let next):
            if rest.isEmpty {
                if PathResolver.isRegularFile(next) { matches.insert(next) }
            } else if PathResolver.isDirectory(next) {
                expand(shown: PathResolver.join(shown, name), physical: next, segments: rest)
            }
        }
    }

    /// The names in `folder`, counted against the limit the first time.
    private mutating func names(in folder: String) -> [String] {
        if let names = listed[folder] { return names }
        guard let names = PathResolver.children(of: folder, budget: limit - visited + 1) else {
            exhausted = true
            return []
        }
        visited += names.count
        if visited > limit { exhausted = true; return [] }
        listed[folder] = names
        return names
    }
}
