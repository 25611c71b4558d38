/// `deliver:` where a run's report and dataset manifest go once the run is
/// done (and approved, when the spec asks for approval).
///
/// ```yaml
/// deliver: {to: outbox/finance, approval: required}
/// deliver:
///   to: {url: "https://finance.example.com/bis/receipts", token_env: FINANCE_TOKEN}
///   approval: none
/// ```
///
/// The spec keeps `deliver:` as a `SpecValue`; this type reads it:
/// `try DeliverSpec(spec.deliver!, file: spec.file)` or `try spec.deliverSpec()`.
public struct DeliverSpec: Sendable, Hashable {
    /// Where the files go.
    public enum Target: Sendable, Hashable {
        /// A folder under the data root, written relative to it with `.`
        /// segments removed (`outbox/finance`); never escapes it with `..`.
        /// An absolute path is kept as written and must lie under the data
        /// root, which is checked when delivering (the spec does not know
        /// the data root).
        case directory(String)
        /// An HTTP(S) endpoint that receives the receipt as a POST. The
        /// bearer token, if any, is read from the environment variable
        /// `tokenEnv` when delivering; it is never part of the spec.
        case http(url: String, tokenEnv: String?)
    }

    /// Whether a run waits for `bis approve RUN` before it is delivered.
    public enum Approval: String, Sendable, Hashable, CaseIterable {
        case required
        case none
    }

    public var target: Target
    /// `none` when not given.
    public var approval: Approval
    public var location: SpecLocation

    public init(target: Target, approval: Approval = .none, location: SpecLocation = SpecLocation(line: 1, column: 1)) {
        self.target = target
        self.approval = approval
        self.location = location
    }

    static let keys = ["to", "approval"]
    static let httpKeys = ["url", "token_env"]

    /// Reads a `deliver:` value. `file` names the spec in errors. Throws every
    /// problem found, each at its place in the YAML.
    public init(_ value: SpecValue, file: String = "spec.yml") throws(SpecErrors) {
        var sink = ErrorSink(file: file)
        let decoded = Self.decode(value, into: &sink)
        let errors = sink.sorted()
        guard errors.isEmpty, let decoded else { throw SpecErrors(errors) }
        self = decoded
    }

    static func decode(_ value: SpecValue, into sink: inout ErrorSink) -> DeliverSpec? {
        guard case .mapping(let entries, let at) = value else {
            sink.add(value.location, "deliver must be a mapping such as {to: outbox/finance, approval: required}, not \(kindName(value))")
            return nil
        }
        for entry in entries where !keys.contains(entry.key) {
            sink.add(entry.keyLocation, "unknown key '\(entry.key)' in deliver"
                     + (suggestion(for: entry.key, among: keys).map { "; did you mean '\($0)'?" } ?? "; expected one of to, approval"))
        }
        var approval = Approval.none
        if let node = value["approval"] {
            if case .scalar(let text, _, _) = node, let a = Approval(rawValue: text) {
                approval = a
            } else {
                sink.add(node.location, "deliver approval must be required or none, not \(node.text.map { "'\($0)'" } ?? kindName(node))")
            }
        }
        guard let to = value["to"] else {
            if !entries.contains(where: { !keys.contains($0.key) && suggestion(for: $0.key, among: keys) == "to" }) {
                sink.add(at, "deliver needs 'to': a folder under the data root (to: outbox/finance) "
                         + "or an endpoint (to: {url: https://…, token_env: NAME})")
            }
            return nil
        }
        guard let target = decodeTarget(to, into: &sink) else { return nil }
        return DeliverSpec(target: target, approval: approval, location: at)
    }

    static func decodeTarget(_ to: SpecValue, into sink: inout ErrorSink) -> Target? {
        switch to {
        case .scalar(let text, _, let at):
            if text.contains("://") {
                sink.add(at, "deliver to '\(text)' looks like a URL; write it as to: {url: \(text)}")
                return nil
            }
            guard let path = confinedDirectory(text) else {
                sink.add(at, "deliver to must be a folder under the data root such as outbox/finance, not '\(text)'"
                         + (text.isEmpty ? "" : " (no '..' that leaves the data root, and not the data root itself)"))
                return nil
            }
            return .directory(path)
        case .mapping(let entries, let at):
            for entry in entries where !httpKeys.contains(entry.key) {
                sink.add(entry.keyLocation, "unknown key '\(entry.key)' in deliver to"
                         + (suggestion(for: entry.key, among: httpKeys).map { "; did you mean '\($0)'?" } ?? "; expected url, token_env"))
            }
            var tokenEnv: String?
            if let node = to["token_env"] {
                if case .scalar(let name, _, _) = node, isEnvironmentName(name) {
                    tokenEnv = name
                } else {
                    sink.add(node.location, "token_env must name an environment variable (letters, digits and _, "
                             + "not starting with a digit), not \(node.text.map { "'\($0)'" } ?? kindName(node))")
                }
            }
            guard let urlNode = to["url"] else {
                sink.add(at, "deliver to needs 'url' (to: {url: https://…, token_env: NAME}), or write a folder: to: outbox/finance")
                return nil
            }
            guard case .scalar(let url, _, let urlAt) = urlNode else {
                sink.add(urlNode.location, "deliver url must be a single value, not \(kindName(urlNode))")
                return nil
            }
            guard let parts = URLParts(url) else {
                sink.add(urlAt, "deliver url must be http:// or https:// with a host, not '\(url)'")
                return nil
            }
            if parts.hasUserInfo {
                sink.add(urlAt, "deliver url must not carry a user or password; put a token in an environment variable and name it with token_env")
                return nil
            }
            if tokenEnv != nil, parts.scheme == "http", !parts.isLoopback {
                sink.add(urlAt, "deliver url is plain http to \(parts.host) but a token_env is set: the token would cross "
                         + "the network unencrypted; use https:// (plain http is only allowed to localhost)")
                return nil
            }
            return .http(url: url, tokenEnv: tokenEnv)
        case .sequence(_, let at):
            sink.add(at, "deliver to must be a folder (outbox/finance) or {url: https://…}, not a list")
            return nil
        }
    }

    /// `path` with `.` segments and empty segments removed, when it stays
    /// inside the folder it starts from (an absolute path is kept, lexically
    /// normalized); nil when it leaves it, or names no folder at all.
    public static func confinedDirectory(_ path: String) -> String? {
        let absolute = path.hasPrefix("/")
        var parts: [Substring] = []
        for segment in path.split(separator: "/") {
            if segment == "." { continue }
            if segment == ".." {
                guard !parts.isEmpty else { return nil }
                parts.removeLast()
                continue
            }
            parts.append(segment)
        }
        guard !parts.isEmpty else { return nil }
        return (absolute ? "/" : "") + parts.joined(separator: "/")
    }

    static func isEnvironmentName(_ name: String) -> Bool {
        guard let first = name.unicodeScalars.first, !("0"..."9").contains(first) else { return false }
        return name.unicodeScalars.allSatisfy {
            ("a"..."z").contains($0) || ("A"..."Z").contains($0) || ("0"..."9").contains($0) || $0 == "_"
        }
    }

    static func kindName(_ value: SpecValue) -> String {
        switch value {
        case .scalar(let text, _, _): return text.isEmpty ? "nothing" : "'\(text)'"
        case .sequence: return "a list"
        case .mapping: return "a mapping"
        }
    }
}

/// Just enough of a URL to check a deliver endpoint (no Foundation here).
struct URLParts {
    var scheme: String
    var host: String
    var hasUserInfo: Bool

    init?(_ text: String) {
        guard let range = text.range(of: "://") else { return nil }
        let scheme = text[..<range.lowerBound].lowercased()
        guard scheme == "http" || scheme == "https" else { return nil }
        let rest = text[range.upperBound...]
        let authority = rest.prefix { $0 != "/" && $0 != "?" && $0 != "#" }
        guard !authority.isEmpty, !text.contains(where: { $0 == " " || $0.isNewline }) else { return nil }
        hasUserInfo = authority.contains("@")
        var host = authority.split(separator: "@").last.map(String.init) ?? ""
        if host.hasPrefix("[") {
            host = String(host.dropFirst().prefix { $0 != "]" })
        } else if let colon = host.lastIndex(of: ":") {
            let port = host[host.index(after: colon)...]
            guard port.allSatisfy(\.isNumber) else { return nil }
            host = String(host[..<colon])
        }
        guard !host.isEmpty else { return nil }
        self.scheme = scheme
        self.host = host.lowercased()
    }

    var isLoopback: Bool {
        host == "localhost" || host == "::1" || host.hasPrefix("127.")
    }
}

extension PipelineSpec {
    /// The typed `deliver:` section, or nil when the spec has none.
    public func deliverSpec() throws(SpecErrors) -> DeliverSpec? {
        guard let deliver else { return nil }
        return try DeliverSpec(deliver, file: file)
    }
}
