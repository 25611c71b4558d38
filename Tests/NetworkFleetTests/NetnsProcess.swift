import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A long-running process of the test (relay, coordinator, worker) with its
/// stdout and stderr in one log file, so that a failure can show what it said.
final class NetnsProcess: @unchecked Sendable {
    let name: String
    let logPath: String
    private let process: Process

    private init(name: String, logPath: String, process: Process) {
        self.name = name
        self.logPath = logPath
        self.process = process
    }

    /// Starts `executable` with `arguments`; `environment` is added to this
    /// process's environment.
    static func start(_ name: String, _ executable: String, _ arguments: [String],
                      environment: [String: String] = [:], logDirectory: String) throws -> NetnsProcess {
        let logPath = logDirectory + "/\(name).log"
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        let p = Process()
        p.executableURL = URL(fileURLWithPath: executable)
        p.arguments = arguments
        p.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
        p.standardInput = FileHandle.nullDevice
        p.standardOutput = log
        p.standardError = log
        try p.run()
        try? log.close()
        return NetnsProcess(name: name, logPath: logPath, process: p)
    }

    var pid: Int32 { process.processIdentifier }
    var isRunning: Bool { process.isRunning }

    var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    /// The last `lines` lines of the log, headed by the process's name and state.
    func tail(_ lines: Int = 40) -> String {
        let all = log.split(separator: "\n", omittingEmptySubsequences: false)
        let state = process.isRunning ? "running" : "exited with \(process.terminationStatus)"
        return "--- \(name) (pid \(pid), \(state)), \(logPath):\n" + all.suffix(lines).joined(separator: "\n")
    }

    /// SIGTERM, then SIGKILL if it has not exited after `grace` seconds.
    /// Returns once it has exited. Safe to call more than once.
    func stop(grace: Double = 10) {
        guard process.isRunning else { return }
        kill(pid, SIGTERM)
        let deadline = Date().addingTimeInterval(grace)
        while process.isRunning, Date() < deadline { usleep(50_000) }
        if process.isRunning {
            kill(pid, SIGKILL)
            while process.isRunning { usleep(20_000) }
        }
    }
}

/// A short command's outcome.
struct NetnsOutput: CustomStringConvertible {
    let command: String
    let status: Int32
    let stdout: String
    let stderr: String
    var description: String { "`\(command)` exited \(status)\nstdout: \(stdout)\nstderr: \(stderr)" }
}

enum NetnsCommand {
    /// Runs a short command to completion; stdout and stderr apart (through
    /// files, so neither pipe can fill up and block it).
    static func run(_ executable: String, _ arguments: [String], environment: [String: String] = [:]) throws -> NetnsOutput {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("bis-netns-cmd-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        _ = FileManager.default.createFile(atPath: dir + "/out", contents: nil)
        _ = FileManager.default.createFile(atPath: dir + "/err", contents: nil)
        let out = try FileHandle(forWritingTo: URL(fileURLWithPath: dir + "/out"))
        let err = try FileHandle(forWritingTo: URL(fileURLWithPath: dir + "/err"))
        let p = Process()
        p.executableURL = URL(fileURLWithPath: executable)
        p.arguments = arguments
        p.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
        p.standardInput = FileHandle.nullDevice
        p.standardOutput = out
        p.standardError = err
        try p.run()
        p.waitUntilExit()
        try? out.close()
        try? err.close()
        return NetnsOutput(command: ([executable] + arguments).joined(separator: " "), status: p.terminationStatus,
                           stdout: (try? String(contentsOfFile: dir + "/out", encoding: .utf8)) ?? "",
                           stderr: (try? String(contentsOfFile: dir + "/err", encoding: .utf8)) ?? "")
    }

    /// A TCP port on 127.0.0.1 that nothing listens on right now.
    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw NetnsFailure("socket() failed: errno \(errno)") }
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = 0
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &addr) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) }
        }
        guard bound == 0 else { throw NetnsFailure("bind() failed: errno \(errno)") }
        let named = withUnsafeMutablePointer(to: &addr) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
        }
        guard named == 0 else { throw NetnsFailure("getsockname() failed: errno \(errno)") }
        return Int(UInt16(bigEndian: addr.sin_port))
    }
}

struct NetnsFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Polls `body` every `interval` seconds until it returns a value; after
/// `timeout` seconds (a safety net, never a measurement) throws a failure
/// naming `what`, with `diagnostics()` appended.
func netnsPoll<T>(_ what: String, timeout: Double, interval: Double = 0.5,
                  diagnostics: () -> String, _ body: () throws -> T?) async throws -> T {
    let deadline = Date().addingTimeInterval(timeout)
    var lastError: (any Error)?
    while true {
        do {
            if let value = try body() { return value }
            lastError = nil
        } catch {
            lastError = error
        }
        if Date() >= deadline { break }
        try await Task.sleep(for: .milliseconds(Int(interval * 1000)))
    }
    throw NetnsFailure("timed out after \(Int(timeout)) s waiting for \(what)"
                       + (lastError.map { "; last error: \($0)" } ?? "") + "\n" + diagnostics())
}
