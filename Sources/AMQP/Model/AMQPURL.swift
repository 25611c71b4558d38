/// Where and how to reach a broker, parsed from `amqp://` or `amqps://` URLs.
///
/// `amqp://user:pass@host:port/vhost` — user, password and vhost are
/// percent-decoded; the vhost defaults to `/` when the path is empty (as in
/// RabbitMQ's URI spec, `amqp://host/` names the vhost `""`, which nobody
/// means, so an empty path is taken as `/`; write `%2F` to be explicit).
/// The password never appears in `description`: log the URL freely.
public struct AMQPURL: Sendable, Equatable, CustomStringConvertible {
    public var tls: Bool
    public var host: String
    public var port: Int
    public var user: String
    public var password: String
    public var vhost: String

    public init(tls: Bool = false, host: String = "127.0.0.1", port: Int? = nil,
                user: String = "guest", password: String = "guest", vhost: String = "/") {
        self.tls = tls
        self.host = host
        self.port = port ?? (tls ? 5671 : 5672)
        self.user = user
        self.password = password
        self.vhost = vhost
    }

    public init(_ string: String) throws(AMQPError) {
        let scheme: Bool
        var rest: Substring
        if string.hasPrefix("amqp://") {
            scheme = false
            rest = string.dropFirst("amqp://".count)
        } else if string.hasPrefix("amqps://") {
            scheme = true
            rest = string.dropFirst("amqps://".count)
        } else {
            throw AMQPError.invalidURL(reason: "the scheme must be amqp:// or amqps://",
                                       url: AMQPURL.redact(string))
        }
        // The user information ends at the last `@`: a password may hold
        // `/`, `:` or `@` unencoded (a vhost must encode `@` as %40).
        var user = "guest", password = "guest"
        var userinfo: Substring?
        if let at = AMQPURL.userinfoEnd(rest) {
            userinfo = rest[..<at]
            rest = rest[rest.index(after: at)...]
        }
        var path: Substring = ""
        if let slash = rest.firstIndex(of: "/") {
            path = rest[rest.index(after: slash)...]
            rest = rest[..<slash]
        }
        if let query = path.firstIndex(of: "?") { path = path[..<query] }
        if let userinfo {
            if let colon = userinfo.firstIndex(of: ":") {
                user = try AMQPURL.percentDecode(userinfo[..<colon], in: string)
                password = try AMQPURL.percentDecode(userinfo[userinfo.index(after: colon)...], in: string)
            } else {
                user = try AMQPURL.percentDecode(userinfo, in: string)
                password = ""
            }
        }
        var host = String(rest)
        var port: Int? = nil
        if rest.hasPrefix("[") {  // IPv6 literal
            guard let close = rest.firstIndex(of: "]") else {
                throw AMQPError.invalidURL(reason: "unterminated IPv6 address", url: AMQPURL.redact(string))
            }
            host = String(rest[rest.index(after: rest.startIndex)..<close])
            let after = rest[rest.index(after: close)...]
            if after.hasPrefix(":") { port = Int(after.dropFirst()) ?? -1 }
        } else if let colon = rest.lastIndex(of: ":") {
            host = String(rest[..<colon])
            port = Int(rest[rest.index(after: colon)...]) ?? -1
        }
        if let p = port, !(1...65535).contains(p) {
            throw AMQPError.invalidURL(reason: "the port must be a number from 1 to 65535", url: AMQPURL.redact(string))
        }
        if host.isEmpty { host = "127.0.0.1" }
        let vhost = path.isEmpty ? "/" : try AMQPURL.percentDecode(path, in: string)
        self.init(tls: scheme, host: host, port: port, user: user, password: password, vhost: vhost)
    }

    /// A comma-separated list of URLs (the nodes of a cluster), or one URL.
    /// A comma splits only where `amqp://` or `amqps://` follows, since a
    /// password may hold one. Spaces around the entries are ignored.
    public static func list(_ string: String) throws(AMQPError) -> [AMQPURL] {
        var urls: [AMQPURL] = []
        for part in listEntries(string) {
            let trimmed = String(part.drop { $0 == " " }.reversed().drop { $0 == " " }.reversed())
            urls.append(try AMQPURL(trimmed))
        }
        return urls
    }

    /// The entries of a comma-separated list, untrimmed: a comma splits only
    /// where `amqp://` or `amqps://` follows it, after any spaces. The one
    /// splitter `list`, `redact` and `carriesPassword` share, so that what is
    /// connected to is what is redacted and checked.
    public static func listEntries(_ string: String) -> [Substring] {
        var parts: [Substring] = []
        var start = string.startIndex
        for comma in string.indices where string[comma] == "," {
            let after = string[string.index(after: comma)...].drop { $0 == " " }
            if after.hasPrefix("amqp://") || after.hasPrefix("amqps://") {
                parts.append(string[start..<comma])
                start = string.index(after: comma)
            }
        }
        parts.append(string[start...])
        return parts
    }

    /// `host:port`: which node of a list this is, for logs and `bis workers`.
    public var node: String {
        host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
    }

    /// The URL with the password replaced by `***`.
    public var description: String {
        let vh = vhost == "/" ? "%2F" : AMQPURL.percentEncode(vhost)
        let h = host.contains(":") ? "[\(host)]" : host
        return "\(tls ? "amqps" : "amqp")://\(AMQPURL.percentEncode(user)):***@\(h):\(port)/\(vh)"
    }

    /// Hides the password of a URL string that may not even parse: whatever
    /// follows the user name up to the last `@` (so a password with `/`, `:`
    /// or `@` in it is hidden whole), or the whole string when it has no
    /// scheme. A comma-separated list is redacted URL by URL.
    public static func redact(_ string: String) -> String {
        // A list: URL by URL, split as `list` splits it.
        let entries = listEntries(string)
        if entries.count > 1 { return entries.map { redact(String($0)) }.joined(separator: ",") }
        guard let colon = string.firstIndex(of: ":"), string[colon...].hasPrefix("://") else {
            return string.contains("@") ? "<url>" : string
        }
        let schemeEnd = string.index(colon, offsetBy: 3)
        let afterScheme = string[schemeEnd...]
        guard let at = userinfoEnd(afterScheme) else { return string }
        let userinfo = afterScheme[..<at]
        let user = userinfo.firstIndex(of: ":").map { userinfo[..<$0] } ?? userinfo
        return String(string[..<schemeEnd]) + user + ":***" + String(afterScheme[at...])
    }

    /// Whether a URL string carries a password (user information with a
    /// `:`, even an empty password): what `ps` would show.
    public static func carriesPassword(_ string: String) -> Bool {
        // A list: any of its URLs (split as `list` splits it).
        let entries = listEntries(string)
        if entries.count > 1 { return entries.contains { carriesPassword(String($0)) } }
        guard let colon = string.firstIndex(of: ":"), string[colon...].hasPrefix("://") else { return string.contains("@") }
        let afterScheme = string[string.index(colon, offsetBy: 3)...]
        guard let at = userinfoEnd(afterScheme) else { return false }
        return afterScheme[..<at].contains(":")
    }

    /// The `@` that ends the user information of what follows the scheme:
    /// the last one before the query (`?…`). Nil when there is none.
    static func userinfoEnd(_ afterScheme: Substring) -> Substring.Index? {
        let beforeQuery = afterScheme.firstIndex(of: "?").map { afterScheme[..<$0] } ?? afterScheme
        return beforeQuery.lastIndex(of: "@")
    }

    static func percentDecode(_ s: Substring, in url: String) throws(AMQPError) -> String {
        guard s.contains("%") else { return String(s) }
        var bytes: [UInt8] = []
        var it = Array(s.utf8)[...]
        while let b = it.popFirst() {
            if b == UInt8(ascii: "%") {
                guard it.count >= 2,
                      let v = UInt8(String(decoding: it.prefix(2), as: UTF8.self), radix: 16) else {
                    throw AMQPError.invalidURL(reason: "bad percent escape", url: redact(url))
                }
                bytes.append(v)
                it = it.dropFirst(2)
            } else {
                bytes.append(b)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    static func percentEncode(_ s: String) -> String {
        var out = ""
        for b in s.utf8 {
            switch b {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                 UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "_"),
                 UInt8(ascii: "."), UInt8(ascii: "~"):
                out.unicodeScalars.append(Unicode.Scalar(b))
            default:
                out += "%" + String(b, radix: 16, uppercase: true).leftPad(2)
            }
        }
        return out
    }
}

extension String {
    fileprivate func leftPad(_ n: Int) -> String {
        count >= n ? self : String(repeating: "0", count: n - count) + self
    }
}
