import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// How a child process ended.
enum Termination: Equatable, Sendable, CustomStringConvertible {
    case exited(Int32)
    case signaled(Int32)

    /// From `waitpid`'s status (WIFEXITED, WEXITSTATUS and WTERMSIG are C macros).
    init(waitStatus s: Int32) {
        self = s & 0x7f == 0 ? .exited((s >> 8) & 0xff) : .signaled(s & 0x7f)
    }

    var exitCode: Int32? {
        if case .exited(let c) = self { return c }
        return nil
    }

    var description: String {
        switch self {
        case .exited(let c): return "exit \(c)"
        case .signaled(let s): return "killed by signal \(s)"
        }
    }
}

/// A process the tests started: stdout and stderr go to files, stdin is
/// /dev/null, no other descriptor is inherited. Not Foundation's `Process`:
/// we need to SIGKILL children and poll `waitpid` without blocking a thread
/// (see `runTool` in IntegrationTests for why Process can hang on Linux).
final class ChildProcess: @unchecked Sendable {
    let name: String
    let pid: pid_t
    let stdoutPath: String
    let stderrPath: String
    private let lock = NSLock()
    private var ended: Termination?

    struct SpawnFailed: Error, CustomStringConvertible {
        let command: String
        let reason: String
        var description: String { "cannot start \(command): \(reason)" }
    }

    /// Starts `executable` with `arguments` and exactly `environment`.
    /// `append` keeps what earlier processes wrote to the same files (a
    /// restarted worker's log continues its predecessor's).
    init(name: String, executable: String, arguments: [String], environment: [String: String],
         stdout: String, stderr: String, append: Bool = false) throws {
        self.name = name
        stdoutPath = stdout
        stderrPath = stderr
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        let mode = O_WRONLY | O_CREAT | (append ? O_APPEND : O_TRUNC)
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, stdout, mode, 0o644)
        posix_spawn_file_actions_addopen(&actions, 2, stderr, mode, 0o644)
        // closefrom is not visible from Swift: close what /proc says is open.
        let open = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
        for fd in open.compactMap(Int32.init) where fd > 2 {
            posix_spawn_file_actions_addclose(&actions, fd)
        }
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { envp.forEach { free($0) } }
        var child = pid_t()
        let rc = posix_spawn(&child, executable, &actions, nil, argv, envp)
        guard rc == 0 else {
            throw SpawnFailed(command: ([executable] + arguments).joined(separator: " "), reason: String(cString: strerror(rc)))
        }
        pid = child
    }

    /// How it ended, or nil while it runs (reaps it once it ended).
    var termination: Termination? {
        lock.withLock {
            if ended == nil {
                var status: Int32 = 0
                let r = waitpid(pid, &status, WNOHANG)
                if r == pid {
                    ended = Termination(waitStatus: status)
                } else if r < 0 && errno == ECHILD {
                    ended = .exited(-1)   // reaped elsewhere: it is gone, its status unknown
                }
            }
            return ended
        }
    }

    var isRunning: Bool { termination == nil }

    func signal(_ sig: Int32) {
        // Only while not reaped: a reaped pid may belong to someone else by now.
        lock.withLock {
            if ended == nil { _ = kill(pid, sig) }
        }
    }

    /// Waits for it to end; nil if it still runs after `seconds`.
    @discardableResult
    func wait(seconds: Double) async -> Termination? {
        let deadline = Date().addingTimeInterval(seconds)
        while true {
            if let t = termination { return t }
            if Date() >= deadline { return nil }
            try? await Task.sleep(for: .milliseconds(50))
        }
    }

    /// SIGTERM, then SIGKILL after `grace` seconds; returns how it ended.
    @discardableResult
    func stop(grace: Double) async -> Termination? {
        if let t = termination { return t }
        signal(SIGTERM)
        if let t = await wait(seconds: grace) { return t }
        signal(SIGKILL)
        return await wait(seconds: 10)
    }

    /// SIGKILL, as `kill -9` would, and reap it.
    @discardableResult
    func kill9() async -> Termination? {
        signal(SIGKILL)
        return await wait(seconds: 10)
    }

    var stdout: String { (try? String(contentsOfFile: stdoutPath, encoding: .utf8)) ?? "" }
    var stderr: String { (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? "" }
}

/// The last `lines` lines of a text.
func tail(_ text: String, lines: Int) -> String {
    let all = text.split(separator: "\n", omittingEmptySubsequences: false)
    return all.suffix(lines).joined(separator: "\n")
}

/// A TCP port nobody listens on right now (the kernel's pick for port 0).
func freePort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw ChildProcess.SpawnFailed(command: "socket", reason: String(cString: strerror(errno))) }
    defer { close(fd) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_port = 0
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    var len = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) }
    }
    guard bound == 0 else { throw ChildProcess.SpawnFailed(command: "bind", reason: String(cString: strerror(errno))) }
    let named = withUnsafeMutablePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
    }
    guard named == 0 else { throw ChildProcess.SpawnFailed(command: "getsockname", reason: String(cString: strerror(errno))) }
    return Int(UInt16(bigEndian: addr.sin_port))
}
