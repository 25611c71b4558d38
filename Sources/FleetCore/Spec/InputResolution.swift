#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

extension PipelineSpec {
    /// Expands every source's `files:` globs into `resolvedFiles`: absolute
    /// paths with symlinks resolved, sorted, without repeats. Every file
    /// must lie under one of `allowedRoots`; a glob that matches no file is
    /// an error. Throws every problem at once.
    ///
    /// Globs: `*`, `?` and `[...]` match within one path segment (and, as in
    /// a shell, not a leading `.`); `**` as a whole segment matches any
    /// number of folders, including none. Relative globs start at
    /// `directory`. Only regular files (or symlinks to them) are matched.
    public mutating func resolveInputs() throws(SpecErrors) {
        var sink = ErrorSink(file: file)
        let roots = allowedRoots
        for s in sources.indices {
            var found = Set<String>()
            for pattern in sources[s].files {
                let matches = PathResolver.glob(pattern.pattern, base: directory)
                if matches.isEmpty {
                    sink.add(pattern.location, "no file matches '\(pattern.pattern)' in source '\(sources[s].name)' "
                             + "(relative globs start at \(directory))")
                    continue
                }
                for match in matches {
                    let resolved = PathResolver.canonical(match)
                    guard roots.contains(where: { PathResolver.isUnder(resolved, root: $0) }) else {
                        let shown = match == resolved ? match : "\(match) (which resolves to \(resolved))"
                        sink.add(pattern.location, "input file \(shown) is outside the allowed input "
                                 + "\(roots.count == 1 ? "root" : "roots") \(roots.joined(separator: ", ")); "
                                 + "move it under the spec's folder or allow its folder as an input root")
                        continue
                    }
                    found.insert(resolved)
                }
            }
            sources[s].resolvedFiles = found.sorted()
        }
        let errors = sink.sorted()
        if !errors.isEmpty { throw SpecErrors(errors) }
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
enum PathResolver {
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
    static func canonical(_ path: String) -> String {
        guard let resolved = realpath(path, nil) else {
            return absolute(path, relativeTo: FileManager.default.currentDirectoryPath)
        }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    static func isUnder(_ path: String, root: String) -> Bool {
        root == "/" || path == root || path.hasPrefix(root.hasSuffix("/") ? root : root + "/")
    }

    /// The regular files `pattern` matches, sorted; paths are absolute but
    /// not yet canonical (a `..` in the pattern stays visible to the caller).
    static func glob(_ pattern: String, base: String) -> [String] {
        let full = pattern.hasPrefix("/") ? pattern : base + "/" + pattern
        let segments = full.split(separator: "/").map(String.init)
        var results = Set<String>()
        expand(directory: "", segments: segments[...], into: &results)
        return results.filter(isRegularFile).sorted()
    }

    private static func expand(directory: String, segments: ArraySlice<String>, into results: inout Set<String>) {
        guard let segment = segments.first else {
            results.insert(directory.isEmpty ? "/" : directory)
            return
        }
        let rest = segments.dropFirst()
        let here = directory.isEmpty ? "/" : directory
        if segment == "**" {
            expand(directory: directory, segments: rest, into: &results)
            for name in children(of: here) where !name.hasPrefix(".") {
                let child = directory + "/" + name
                if isRealDirectory(child) {
                    expand(directory: child, segments: segments, into: &results)
                }
            }
        } else if segment.contains(where: { $0 == "*" || $0 == "?" || $0 == "[" }) {
            for name in children(of: here) where fnmatch(segment, name, FNM_PERIOD) == 0 {
                expand(directory: directory + "/" + name, segments: rest, into: &results)
            }
        } else {
            let path = directory + "/" + segment
            if rest.isEmpty {
                if FileManager.default.fileExists(atPath: path) { results.insert(path) }
            } else if isDirectory(path) {
                expand(directory: path, segments: rest, into: &results)
            }
        }
    }

    private static func children(of directory: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).sorted()
    }

    private static func isDirectory(_ path: String) -> Bool {
        var isDir: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &isDir) && isDir.boolValue
    }

    /// A directory that is not a symlink: `**` does not follow links, so it
    /// cannot loop.
    private static func isRealDirectory(_ path: String) -> Bool {
        var info = stat()
        return lstat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR
    }

    private static func isRegularFile(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFREG
    }
}
