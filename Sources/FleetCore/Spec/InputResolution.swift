#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

extension PipelineSpec {
    /// Most folder entries the globs of one spec may look at: a glob over a
    /// huge tree fails with a clear error instead of stalling its caller (the
    /// coordinator resolves globs inside `POST /api/runs`).
    public static let defaultGlobEntryLimit = 200_000

    /// Expands every source's `files:` globs into `resolvedFiles`: absolute
    /// paths with symlinks resolved, sorted, without repeats. A glob is a
    /// path under one of `allowedRoots` (relative ones start at `directory`);
    /// a glob that matches no file is an error. Throws every problem at once.
    ///
    /// Globs: `*`, `?` and `[...]` match within one path segment (and, as in
    /// a shell, not a leading `.`); `**` as a whole segment matches any
    /// number of folders, including none. Only regular files (or symlinks to
    /// them) are matched.
    ///
    /// Confinement: the search never looks at a path outside the roots. A
    /// glob whose folders before the first wildcard lie outside every root
    /// (`../x/*.csv`, `/**`) fails before any folder is read; `..` is applied
    /// to the text first. A symlink the search reaches is followed by its
    /// target's text only when that lies under a root (else it is an error
    /// naming the link, never its target); `**` does not descend into
    /// symlinked folders. Errors name the glob and the roots, and at most
    /// files under the roots, so they tell nothing about the rest of the
    /// file system. At most `entryLimit` folder entries are looked at in all.
    public mutating func resolveInputs(entryLimit: Int = PipelineSpec.defaultGlobEntryLimit) throws(SpecErrors) {
        var sink = ErrorSink(file: file)
        let roots = allowedRoots
        let shownRoots = PathResolver.describe(roots)
        // Relative globs start at the folder as resolved; an absolute glob
        // spelled through the spec's folder as named is read the same way.
        let base = PathResolver.canonical(directory)
        var walk = GlobWalk(roots: roots, limit: entryLimit)
        var outsideRoots = false
        for s in sources.indices {
            var found = Set<String>()
            let source = sources[s].name
            for pattern in sources[s].files {
                var full = PathResolver.absolute(pattern.pattern, relativeTo: base)
                let spelled = PathResolver.absolute(directory, relativeTo: "/")
                if spelled != base, !roots.contains(where: { PathResolver.isUnder(full, root: $0) }),
                   PathResolver.isUnder(full, root: spelled) {
                    full = base + full.dropFirst(spelled.count)
                }
                let outcome = walk.expand(full)
                switch outcome {
                case .outside:
                    outsideRoots = true
                    sink.add(pattern.location, "'\(pattern.pattern)' in source '\(source)' is outside the allowed input "
                             + "\(shownRoots): a glob must lie under one of them (relative globs start at \(directory))")
                case .tooLarge:
                    sink.add(pattern.location, "'\(pattern.pattern)' in source '\(source)' looks at more than \(entryLimit) "
                             + "folder entries under the allowed input \(shownRoots); name the folders before '**' "
                             + "or split the source")
                case .searched(let matches, let escapes):
                    if !escapes.isEmpty {
                        outsideRoots = true
                        let shown = escapes.prefix(3).joined(separator: ", ")
                            + (escapes.count > 3 ? " and \(escapes.count - 3) more" : "")
                        sink.add(pattern.location, "'\(pattern.pattern)' in source '\(source)' reaches \(shown), "
                                 + "\(escapes.count == 1 ? "a symlink that leads" : "symlinks that lead") outside the allowed "
                                 + "input \(shownRoots); move the file under the spec's folder or allow its folder as an input root")
                    } else if matches.isEmpty {
                        sink.add(pattern.location, "no file matches '\(pattern.pattern)' in source '\(source)' under the "
                                 + "allowed input \(shownRoots) (relative globs start at \(directory))")
                    }
                    found.formUnion(matches)
                }
            }
            sources[s].resolvedFiles = found.sorted()
        }
        let errors = sink.sorted()
        if !errors.isEmpty {
            var thrown = SpecErrors(errors)
            thrown.outsideRoots = outsideRoots
            throw thrown
        }
    }
}

extension PipelineSpec {
    /// A file named outside the spec (on a command line) as an input: its
    /// canonical path when it lies under the allowed input roots, else an
    /// error naming the file and the roots.
    public func confinedInput(_ path: String) throws(SpecErrors) -> String {
        let resolved = PathResolver.canonical(path)
        guard allowedRoots.contains(where: { PathResolver.isUnder(resolved, root: $0) }) else {
            let shown = path == resolved ? path : "\(path) (which resolves to \(resolved))"
            throw SpecErrors([SpecError(file: file, location: nil, message: "input file \(shown) is outside the allowed input "
                + "\(allowedRoots.count == 1 ? "root" : "roots") \(allowedRoots.joined(separator: ", "))")])
        }
        return resolved
    }
}

/// File system paths: absolute and canonical forms, and glob expansion.
public enum PathResolver {
    /// `path` made absolute against `base`, with `.` and `..` segments
    /// removed lexically.
    static func absolute(_ path: String, relativeTo base: String) -> String {
        let joined = path.hasPrefix("/") ? path : base + "/" + path
        var parts: [Substring] = []
        for segment in joined.split(separator: "/") {
            if segment == "." { continue }
            if segment == ".." { if !parts.isEmpty { parts.removeLast() }; continue }
            parts.append(segment)
        }
        return "/" + parts.joined(separator: "/")
    }

    /// The real path (symlinks resolved) when it exists, else the lexical
    /// absolute form.
    public static func canonical(_ path: String) -> String {
        guard let resolved = realpath(path, nil) else {
            return absolute(path, relativeTo: FileManager.default.currentDirectoryPath)
        }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    static func isUnder(_ path: String, root: String) -> Bool {
        root == "/" || path == root || path.hasPrefix(root.hasSuffix("/") ? root : root + "/")
    }

    static func isDirectory(_ path: String) -> Bool {
        var isDir: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &isDir) && isDir.boolValue
    }

    /// A directory that is not a symlink: `**` does not follow links, so it
    /// cannot loop.
    static func isRealDirectory(_ path: String) -> Bool {
        var info = stat()
        return lstat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR
    }

    static func isRegularFile(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFREG
    }
}
