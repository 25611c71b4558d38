import AMQP
import FleetWire
import Foundation

/// Where a command that connects to the broker finds the URL, the broker
/// password and the fleet key. Secrets never come from the command line,
/// where every user of the host sees them (`ps`):
///
/// - the URL: `--amqp URL` without a password, or `BIS_AMQP_URL` (which may
///   carry one: the environment of a process is private to its user);
/// - the password, replacing the URL's: `--amqp-password-file FILE` (its
///   first line), else `BIS_AMQP_PASSWORD`, else the one in `BIS_AMQP_URL`;
/// - the fleet key: `--fleet-key-file FILE`, else `BIS_FLEET_KEY_FILE`,
///   else `<data root>/fleet.key` (created when missing).
public enum BrokerSecrets {
    public static let urlVariable = "BIS_AMQP_URL"
    public static let passwordVariable = "BIS_AMQP_PASSWORD"
    public static let keyFileVariable = "BIS_FLEET_KEY_FILE"

    public struct Broker: Sendable {
        public let url: String
        /// Replaces the URL's password when set.
        public let password: String?
    }

    /// A refusal, with what to do instead; never holds a secret.
    public struct Refusal: Error, Sendable, CustomStringConvertible {
        public let description: String
        public init(_ description: String) { self.description = description }
    }

    /// The broker to connect to, nil when none is given. Throws for a
    /// password on the command line (`--amqp`) or an unreadable password file.
    public static func broker(flag: String?, passwordFile: String?,
                              environment: [String: String] = ProcessInfo.processInfo.environment) throws(Refusal) -> Broker? {
        if let flag, AMQPURL.carriesPassword(flag) {
            throw Refusal("--amqp \(AMQPURL.redact(flag)): a password on the command line is visible to every user (ps); "
                          + "give the URL without it (amqp://USER@HOST:PORT/VHOST) and the password in $\(passwordVariable) "
                          + "or a file named by --amqp-password-file, or the whole URL in $\(urlVariable)")
        }
        guard let url = flag ?? environment[urlVariable].flatMap({ $0.isEmpty ? nil : $0 }) else { return nil }
        if let passwordFile {
            guard let data = FileManager.default.contents(atPath: passwordFile) else {
                throw Refusal("--amqp-password-file \(passwordFile): cannot read it")
            }
            let text = String(decoding: data, as: UTF8.self)
            let line = text.split(separator: "\n", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? ""
            let password = line.hasSuffix("\r") ? String(line.dropLast()) : line
            guard !password.isEmpty else { throw Refusal("--amqp-password-file \(passwordFile): the file is empty") }
            return Broker(url: url, password: password)
        }
        if let password = environment[passwordVariable], !password.isEmpty { return Broker(url: url, password: password) }
        return Broker(url: url, password: nil)
    }

    /// The fleet key: `file` (must exist), else `$BIS_FLEET_KEY_FILE`, else
    /// `<data root>/fleet.key`, created when missing. `created` names the
    /// file this call created.
    public static func fleetKey(file: String?, dataRoot: String,
                                environment: [String: String] = ProcessInfo.processInfo.environment)
        throws(FleetKeyError) -> (key: FleetKey, path: String, created: Bool) {
        if let path = file ?? environment[keyFileVariable].flatMap({ $0.isEmpty ? nil : $0 }) {
            return (try FleetKey.load(file: path), path, false)
        }
        let path = FleetKey.defaultFile(dataRoot: dataRoot)
        let (key, created) = try FleetKey.loadOrCreate(file: path)
        return (key, path, created)
    }
}
