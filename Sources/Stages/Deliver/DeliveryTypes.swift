import Columnar
import FleetCore
import Foundation

/// One file to deliver: a report file or a dataset manifest.
public struct DeliveryFile: Sendable, Hashable {
    /// Where it is now.
    public var path: String
    /// Its name on the target (default: the last component of `path`);
    /// a plain name, no `/`.
    public var name: String
    /// The checksum the file must have (lowercase hex), as a manifest or a
    /// task message names it; nil to take the file as it is. A file whose
    /// bytes do not match is refused before anything is delivered.
    public var sha256: String?

    public init(path: String, name: String? = nil, sha256: String? = nil) {
        self.path = path
        self.name = name ?? (path as NSString).lastPathComponent
        self.sha256 = sha256?.lowercased()
    }
}

/// Who approved a run, and when (`bis approve RUN`).
/// In JSON its time is ISO 8601 text in UTC, whole seconds.
public struct Approval: Sendable, Hashable, Codable {
    public var approver: String
    public var approvedAt: Date

    public init(approver: String, approvedAt: Date) {
        self.approver = approver
        self.approvedAt = Date(timeIntervalSince1970: approvedAt.timeIntervalSince1970.rounded(.down))
    }

    enum CodingKeys: String, CodingKey { case approver, approvedAt }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        approver = try c.decode(String.self, forKey: .approver)
        approvedAt = try decodeTime(c, .approvedAt)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(approver, forKey: .approver)
        try c.encode(approvedAt.formatted(.iso8601), forKey: .approvedAt)
    }
}

/// ISO 8601 text, whatever date strategy the coder has.
func decodeTime<K: CodingKey>(_ c: KeyedDecodingContainer<K>, _ key: K) throws -> Date {
    let text = try c.decode(String.self, forKey: key)
    do {
        return try Date(text, strategy: .iso8601)
    } catch {
        throw DecodingError.dataCorruptedError(forKey: key, in: c, debugDescription: "'\(text)' is not an ISO 8601 time")
    }
}

/// Where a run is delivered.
public enum DeliveryTarget: Sendable, Hashable {
    /// A folder under the data root (relative to it, or absolute inside it):
    /// files land in `<folder>/<run>/` beside a `receipt.json`.
    case directory(String)
    /// An endpoint that receives the receipt as a JSON POST. The bearer
    /// token is read from the environment variable `tokenEnv` when
    /// delivering; it never appears in a receipt, an error or a log.
    case http(url: URL, tokenEnv: String?)

    /// The target a spec's `deliver:` names.
    public init(_ spec: DeliverSpec) throws(DeliveryError) {
        switch spec.target {
        case .directory(let path):
            self = .directory(path)
        case .http(let url, let tokenEnv):
            guard let u = URL(string: url) else { throw .invalidTarget("deliver url '\(url)' is not a URL") }
            self = .http(url: u, tokenEnv: tokenEnv)
        }
    }

    /// What a receipt and messages show: the folder, or the URL without
    /// user, password, query or fragment (they may hold secrets).
    public var description: String {
        switch self {
        case .directory(let path): return path
        case .http(let url, _): return redactedURL(url)
        }
    }
}

func redactedURL(_ url: URL) -> String {
    guard var c = URLComponents(url: url, resolvingAgainstBaseURL: false) else { return "(unparsable url)" }
    c.user = nil
    c.password = nil
    c.query = nil
    c.fragment = nil
    return c.string ?? "(unparsable url)"
}

/// What a delivery delivered, written as `receipt.json` beside the files of
/// a directory delivery, sent as the body of an HTTP delivery, and returned.
///
/// Two deliveries of the same run, dataset version and file contents have
/// the same `idempotencyKey`; the second one changes nothing and returns the
/// first one's receipt.
public struct DeliveryReceipt: Sendable, Hashable, Codable {
    public struct File: Sendable, Hashable, Codable {
        public var name: String
        public var bytes: Int64
        public var sha256: String

        public init(name: String, bytes: Int64, sha256: String) {
            self.name = name
            self.bytes = bytes
            self.sha256 = sha256
        }
    }

    /// `bis.delivery-receipt/1`.
    public var format: String
    public var run: String
    public var dataset: String
    public var version: String
    /// In the order given.
    public var files: [File]
    /// Present when the run needed approval.
    public var approval: Approval?
    /// Whole seconds, UTC.
    public var deliveredAt: Date
    /// The target's `description`: no tokens, passwords or query strings.
    public var target: String
    /// Derived from run, dataset, version and the files' names and hashes;
    /// sent as the `Idempotency-Key` header to HTTP targets.
    public var idempotencyKey: String

    public static let currentFormat = "bis.delivery-receipt/1"

    public init(run: String, dataset: String, version: String, files: [File], approval: Approval?,
                deliveredAt: Date, target: String) {
        format = Self.currentFormat
        self.run = run
        self.dataset = dataset
        self.version = version
        self.files = files
        self.approval = approval
        self.deliveredAt = Date(timeIntervalSince1970: deliveredAt.timeIntervalSince1970.rounded(.down))
        self.target = target
        idempotencyKey = Self.idempotencyKey(run: run, dataset: dataset, version: version, files: files)
    }

    /// `bis-` and the SHA-256 of run, dataset, version and each file's name
    /// and hash (sorted by name, so the order files were given in does not
    /// matter). Times and approver are left out: a retry made later, or
    /// approved again, is the same delivery.
    public static func idempotencyKey(run: String, dataset: String, version: String, files: [File]) -> String {
        var text = "bis.delivery/1\nrun \(run)\ndataset \(dataset)\nversion \(version)\n"
        for f in files.sorted(by: { $0.name < $1.name }) {
            text += "file \(f.sha256) \(f.name)\n"
        }
        return "bis-" + Checksum.sha256(utf8: text)
    }

    enum CodingKeys: String, CodingKey {
        case format, run, dataset, version, files, approval, deliveredAt, target, idempotencyKey
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        format = try c.decode(String.self, forKey: .format)
        run = try c.decode(String.self, forKey: .run)
        dataset = try c.decode(String.self, forKey: .dataset)
        version = try c.decode(String.self, forKey: .version)
        files = try c.decode([File].self, forKey: .files)
        approval = try c.decodeIfPresent(Approval.self, forKey: .approval)
        deliveredAt = try decodeTime(c, .deliveredAt)
        target = try c.decode(String.self, forKey: .target)
        idempotencyKey = try c.decode(String.self, forKey: .idempotencyKey)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(format, forKey: .format)
        try c.encode(run, forKey: .run)
        try c.encode(dataset, forKey: .dataset)
        try c.encode(version, forKey: .version)
        try c.encode(files, forKey: .files)
        try c.encodeIfPresent(approval, forKey: .approval)
        try c.encode(deliveredAt.formatted(.iso8601), forKey: .deliveredAt)
        try c.encode(target, forKey: .target)
        try c.encode(idempotencyKey, forKey: .idempotencyKey)
    }

    /// Pretty, sorted keys, ISO 8601 times in UTC: the bytes of `receipt.json`.
    public func json() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        var data = try encoder.encode(self)
        data.append(UInt8(ascii: "\n"))
        return data
    }

    public static func decode(_ data: Data) throws -> DeliveryReceipt {
        try JSONDecoder().decode(DeliveryReceipt.self, from: data)
    }
}

/// Why a delivery did not happen. Each message names the run, file or
/// endpoint and says what to do; none contains a token.
public enum DeliveryError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The spec asks for approval and the run has none.
    case needsApproval(run: String)
    /// An input file is missing, unreadable, or not what the caller expected.
    case input(String)
    /// A file on the target has other bytes than the one being delivered;
    /// nothing was overwritten.
    case targetFileDiffers(path: String, expected: String, found: String)
    /// The target already holds a receipt for this run with other contents.
    case receiptDiffers(path: String, existingKey: String, newKey: String)
    /// The target cannot be used (outside the data root, bad URL, missing token).
    case invalidTarget(String)
    /// Writing to a directory target failed.
    case io(String)
    /// The endpoint answered with a status that is neither 2xx nor 409.
    case httpStatus(url: String, status: Int, bodyExcerpt: String)
    /// The endpoint could not be reached.
    case transport(url: String, message: String)

    /// Whether trying again later may succeed (server errors, timeouts,
    /// unreachable endpoints); everything else fails the same way again.
    public var isTransient: Bool {
        switch self {
        case .httpStatus(_, let status, _): return status >= 500 || status == 408 || status == 429
        case .transport, .io: return true
        default: return false
        }
    }

    public var description: String {
        switch self {
        case .needsApproval(let run):
            return "run \(run) needs approval: run bis approve \(run)"
        case .input(let m), .invalidTarget(let m), .io(let m):
            return m
        case .targetFileDiffers(let path, let expected, let found):
            return "\(path) already exists on the target with sha256 \(found), but the file being delivered has sha256 "
                + "\(expected); it was not overwritten: check who changed it, then remove it and deliver again"
        case .receiptDiffers(let path, let existingKey, let newKey):
            return "\(path) already records a different delivery of this run (idempotency key \(existingKey), this one "
                + "\(newKey)); it was not overwritten: deliver to another target, or move the old delivery away first"
        case .httpStatus(let url, let status, let body):
            return "delivery to \(url) failed: HTTP \(status)" + (body.isEmpty ? "" : ": \(body)")
        case .transport(let url, let message):
            return "delivery to \(url) failed: \(message)"
        }
    }
}
