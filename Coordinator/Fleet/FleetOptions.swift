import ArgumentParser
import CoordinatorAPI
import Foundation

/// What every command that talks to the coordinator shares: where it is, and
/// whether to print JSON.
struct CoordinatorOptions: ParsableArguments {
    @Option(name: .customLong("coordinator"), help: ArgumentHelp(
        "The coordinator's HTTP address.",
        discussion: "Defaults to $BIS_COORDINATOR, else \(CoordinatorClient.defaultAddress). "
            + "Requests carry $BIS_TOKEN as a bearer token when it is set; https:// addresses are verified "
            + "with the CA certificates of $BIS_CA_FILE when it is set (else the system's).",
        valueName: "url"))
    var coordinator: String?

    @Flag(help: "Print JSON (ISO-8601 dates, sorted keys) instead of text.")
    var json = false

    func client() throws -> CoordinatorClient {
        let env = ProcessInfo.processInfo.environment
        let address = coordinator ?? env["BIS_COORDINATOR"].flatMap { $0.isEmpty ? nil : $0 } ?? CoordinatorClient.defaultAddress
        do {
            return try CoordinatorClient(address: address, token: env["BIS_TOKEN"],
                                         caFile: env["BIS_CA_FILE"].flatMap { $0.isEmpty ? nil : $0 })
        } catch {
            throw exit(for: error)
        }
    }

    /// Prints `error` the way a person can act on it and gives the exit code
    /// DESIGN.md assigns it. `run` names the run the call was about, so a 404
    /// reads "no run RUN".
    func exit(for error: ClientError, run: String? = nil) -> ExitCode {
        switch error {
        case .unreachable(let address):
            printError("cannot reach the coordinator at \(address): is `bis coordinator` running? "
                       + "(set BIS_COORDINATOR to its address)")
            return ExitCode(3)
        case .tls(let address, let reason):
            printError("TLS verification of the coordinator at \(address) failed: \(reason) "
                       + "(BIS_CA_FILE names the CA that signed its certificate)")
            return ExitCode(3)
        case .usage(let message):
            printError(message)
            return ExitCode(2)
        case .status(404, let message):
            printError(run.map { "no run \($0)" } ?? message)
            return ExitCode(2)
        case .status(401, let message):
            printError("refused: not authenticated: \(message)")
            return ExitCode(4)
        case .status(403, let message):
            printError("refused: not allowed: \(message)")
            return ExitCode(4)
        case .status(400, let message):
            printError(message)
            return ExitCode(2)
        case .status(409, let message):
            printError(message)
            return ExitCode(1)
        case .status(let code, let message):
            printError("the coordinator answered \(code): \(message)")
            return ExitCode(1)
        case .badResponse(let message):
            printError(message)
            return ExitCode(1)
        }
    }

    /// Prints `value` as JSON on stdout.
    func printJSON<T: Encodable>(_ value: T) throws {
        let data = try APICoding.encoder(pretty: true).encode(value)
        print(String(decoding: data, as: UTF8.self))
    }
}

/// Who acts, for the audit log: `$USER@hostname`.
func actorName() -> String {
    let env = ProcessInfo.processInfo.environment
    let user = env["USER"] ?? env["LOGNAME"] ?? NSUserName()
    var buffer = [CChar](repeating: 0, count: 256)
    let host = gethostname(&buffer, buffer.count) == 0
        ? String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        : ProcessInfo.processInfo.hostName
    return "\(user)@\(host)"
}

/// Human times for tables: "45s", "3m12s", "2h05m", "3d04h".
func humanDuration(_ seconds: TimeInterval) -> String {
    let s = max(0, Int(seconds.rounded(.down)))
    if s < 60 { return "\(s)s" }
    if s < 3600 { return "\(s / 60)m" + String(format: "%02ds", s % 60) }
    if s < 86400 { return "\(s / 3600)h" + String(format: "%02dm", (s % 3600) / 60) }
    return "\(s / 86400)d" + String(format: "%02dh", (s % 86400) / 3600)
}

/// Columns padded to their widest cell; numbers (cells in `rightAligned`
/// columns) flush right. The last column is not padded.
func table(_ header: [String], _ rows: [[String]], rightAligned: Set<Int> = []) -> [String] {
    let all = [header] + rows
    let widths = header.indices.map { i in all.map { i < $0.count ? $0[i].count : 0 }.max() ?? 0 }
    return all.map { row in
        row.enumerated().map { i, cell in
            let pad = String(repeating: " ", count: max(0, widths[i] - cell.count))
            if rightAligned.contains(i) { return pad + cell }
            return i == row.count - 1 ? cell : cell + pad
        }.joined(separator: "  ")
    }
}
