#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Crypto
import Foundation

/// The fleet key: the secret every process of a fleet shares, under which
/// every task message, event and heartbeat carries an HMAC-SHA256 (its MAC).
/// A message whose MAC is missing or does not verify is never executed or
/// committed (see `MessageRejection`).
///
/// The key is the content of a file (trailing white space removed), at least
/// 32 bytes: `openssl rand -hex 32 > fleet.key` makes one of 64. By default
/// it is `<data root>/fleet.key`, created (64 random hex digits, mode 0600)
/// by the first process that finds it missing, so every host mounting the
/// data root shares it; `--fleet-key-file FILE` names another one, which must
/// then be the same file on every host.
public struct FleetKey: Sendable {
    /// The key's bytes (SymmetricKey is not Sendable; making one per MAC is cheap).
    private let bytes: [UInt8]

    /// Shorter keys are refused.
    public static let minimumBytes = 32
    /// The default file under a data root.
    public static let defaultFileName = "fleet.key"

    public init(bytes: [UInt8]) throws(FleetKeyError) {
        guard bytes.count >= Self.minimumBytes else {
            throw FleetKeyError("the fleet key has \(bytes.count) bytes; it needs at least \(Self.minimumBytes) "
                                + "(make one with `openssl rand -hex 32 > fleet.key`)")
        }
        self.bytes = bytes
    }

    /// A random key, for a fleet inside one process (`bis run --local`, tests).
    public static func random() -> FleetKey {
        var g = SystemRandomNumberGenerator()
        return try! FleetKey(bytes: (0..<32).map { _ in UInt8.random(in: 0...255, using: &g) })
    }

    public static func defaultFile(dataRoot: String) -> String { dataRoot + "/" + defaultFileName }

    /// Reads the key from `file`. Never puts the key in an error.
    public static func load(file: String) throws(FleetKeyError) -> FleetKey {
        guard let data = FileManager.default.contents(atPath: file) else {
            let exists = FileManager.default.fileExists(atPath: file)
            throw FleetKeyError(exists ? "cannot read the fleet key file \(file)" : "no fleet key file \(file)")
        }
        var bytes = [UInt8](data)
        while let last = bytes.last, last == 0x0A || last == 0x0D || last == 0x20 || last == 0x09 { bytes.removeLast() }
        do {
            return try FleetKey(bytes: bytes)
        } catch {
            throw FleetKeyError("\(file): \(error.message)")
        }
    }

    /// Reads `file`, or creates it first when it is missing: 64 random hex
    /// digits, mode 0600, written to a temporary name and linked into place,
    /// so processes racing to create it all end up reading the same key.
    /// `created` says whether this call made it.
    public static func loadOrCreate(file: String) throws(FleetKeyError) -> (key: FleetKey, created: Bool) {
        if FileManager.default.fileExists(atPath: file) { return (try load(file: file), false) }
        let dir = (file as NSString).deletingLastPathComponent
        try? FileManager.default.createDirectory(atPath: dir.isEmpty ? "." : dir, withIntermediateDirectories: true)
        var g = SystemRandomNumberGenerator()
        let hex = (0..<32).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &g)) }.joined() + "\n"
        let temp = file + ".\(getpid()).\(UInt32.random(in: 0...UInt32.max)).tmp"
        let fd = open(temp, O_WRONLY | O_CREAT | O_EXCL, 0o600)
        guard fd >= 0 else { throw FleetKeyError("cannot create the fleet key file \(file): \(String(cString: strerror(errno)))") }
        let bytes = Array(hex.utf8)
        let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        let synced = fsync(fd) == 0
        close(fd)
        defer { unlink(temp) }
        guard written == bytes.count, synced else {
            throw FleetKeyError("cannot write the fleet key file \(file): \(String(cString: strerror(errno)))")
        }
        // link(2) fails with EEXIST when another process won the race: read theirs.
        if link(temp, file) == 0 { return (try load(file: file), true) }
        let e = errno
        guard e == EEXIST else { throw FleetKeyError("cannot create the fleet key file \(file): \(String(cString: strerror(e)))") }
        return (try load(file: file), false)
    }

    /// Whether `file` can be read by its group or others (worth a warning).
    public static func isShared(file: String) -> Bool {
        var st = stat()
        guard stat(file, &st) == 0 else { return false }
        return st.st_mode & 0o077 != 0
    }

    // MARK: - MACs

    /// What a MAC covers besides the body: the message's kind, so that no
    /// signed message can pass for another kind.
    public enum Purpose: String, Sendable {
        case task, event, heartbeat
    }

    /// The MAC of a message body as the wire carries it: 64 hex digits.
    public func mac(_ purpose: Purpose, _ body: [UInt8]) -> String {
        Self.hex(Array(code(purpose, body)))
    }

    /// Checks `mac` (as `mac(_:_:)` writes it) in constant time.
    public func verify(_ purpose: Purpose, _ body: [UInt8], mac: String?) -> MACCheck {
        guard let mac, !mac.isEmpty else { return .missing }
        guard let given = Self.unhex(mac), given.count == SHA256.byteCount else { return .wrong }
        let expected = Array(code(purpose, body))
        var diff: UInt8 = 0
        for i in 0..<expected.count { diff |= expected[i] ^ given[i] }
        return diff == 0 ? .valid : .wrong
    }

    private func code(_ purpose: Purpose, _ body: [UInt8]) -> HMAC<SHA256>.MAC {
        var h = HMAC<SHA256>(key: SymmetricKey(data: bytes))
        h.update(data: Array("bis-\(purpose.rawValue)-v1\n".utf8))
        h.update(data: body)
        return h.finalize()
    }

    static func hex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(bytes.count * 2)
        for b in bytes {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 0x0F)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func unhex(_ text: String) -> [UInt8]? {
        let u = Array(text.utf8)
        guard u.count % 2 == 0 else { return nil }
        func nibble(_ c: UInt8) -> UInt8? {
            switch c {
            case 0x30...0x39: return c - 0x30
            case 0x61...0x66: return c - 0x61 + 10
            case 0x41...0x46: return c - 0x41 + 10
            default: return nil
            }
        }
        var out = [UInt8]()
        out.reserveCapacity(u.count / 2)
        var i = 0
        while i < u.count {
            guard let hi = nibble(u[i]), let lo = nibble(u[i + 1]) else { return nil }
            out.append(hi << 4 | lo)
            i += 2
        }
        return out
    }
}

/// How a message's MAC checked out.
public enum MACCheck: Sendable, Equatable {
    case valid
    case missing
    case wrong

    /// The rejection reason, nil when valid.
    public var rejection: MessageRejection.Reason? {
        switch self {
        case .valid: return nil
        case .missing: return .missingMAC
        case .wrong: return .badMAC
        }
    }
}

public struct FleetKeyError: Error, Sendable, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// A message refused before anyone acted on it: its MAC is missing or wrong,
/// or a field (an id, a path) is malformed. Nothing in it is trusted.
public struct MessageRejection: Sendable, Hashable, CustomStringConvertible {
    public enum Reason: String, Sendable, CaseIterable {
        /// No MAC: not sent by a fleet process (or by one without the key).
        case missingMAC = "missing_mac"
        /// A MAC that does not verify: another key, or a changed body.
        case badMAC = "bad_mac"
        /// A signed message with a malformed id or path.
        case invalidField = "invalid_field"
    }
    public var reason: Reason
    /// What was refused and where it came from, for logs (never the body).
    public var detail: String

    public init(_ reason: Reason, _ detail: String) {
        self.reason = reason
        self.detail = detail
    }

    public var description: String { "\(reason.rawValue): \(detail)" }
}
