import AMQP
import Foundation
import Glibc
import Testing

/// The private RabbitMQ node started by `ops/broker` (through `ops/test`).
///
/// Tests run when `BIS_TEST_AMQP_URL` is set. With `BIS_REQUIRE_BROKER=1`
/// (as `ops/test` and CI set it) a missing URL fails them instead of skipping.
enum TestBroker {
    static let environment = ProcessInfo.processInfo.environment
    static var urlString: String? { environment["BIS_TEST_AMQP_URL"] }
    static var required: Bool { environment["BIS_REQUIRE_BROKER"] == "1" }
    static var enabled: Bool { urlString != nil || required }

    struct Missing: Error, CustomStringConvertible {
        let variable: String
        var description: String { "\(variable) is not set: run the tests with ops/test, which starts the private broker" }
    }

    static func configuration(heartbeat: Int = 10) throws -> AMQPConfiguration {
        guard let urlString else { throw Missing(variable: "BIS_TEST_AMQP_URL") }
        var config = try AMQPConfiguration(url: urlString)
        config.heartbeat = heartbeat
        config.reconnect = ReconnectPolicy(initialDelay: 0.2, maxDelay: 1, maxAttempts: 120)
        return config
    }

    static func connect(heartbeat: Int = 10) async throws -> AMQPConnection {
        try await AMQPConnection.connect(try configuration(heartbeat: heartbeat))
    }

    /// A queue name no other test or run uses.
    static func uniqueName(_ prefix: String) -> String {
        "test.\(prefix).\(UInt32.random(in: 0...UInt32.max))"
    }

    /// Runs `ops/broker ARGS` and returns its output; fails on non-zero exit.
    @discardableResult
    static func control(_ arguments: [String]) async throws -> String {
        guard let script = environment["BIS_TEST_BROKER_CTL"] else { throw Missing(variable: "BIS_TEST_BROKER_CTL") }
        return try await runTool(script, arguments)
    }

    struct CommandFailed: Error, CustomStringConvertible {
        let command: String
        let output: String
        var description: String { "\(command) failed:\n\(output)" }
    }
}

struct TimedOut: Error, CustomStringConvertible {
    let what: String
    var description: String { "timed out: \(what)" }
}

/// Runs `body`, failing with `TimedOut` after `seconds`, so a broken broker
/// interaction fails the test instead of hanging the suite.
func withTimeout<T: Sendable>(_ seconds: Double, _ what: String,
                              _ body: @escaping @Sendable () async throws -> T) async throws -> T {
    try await withThrowingTaskGroup(of: T.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(for: .seconds(seconds))
            throw TimedOut(what: what)
        }
        let result = try await group.next()!
        group.cancelAll()
        return result
    }
}

/// Takes the next `count` deliveries of a consumer.
func take(_ count: Int, from consumer: Consumer, within seconds: Double = 30) async throws -> [Delivery] {
    try await withTimeout(seconds, "waiting for \(count) deliveries") {
        var out: [Delivery] = []
        for try await d in consumer {
            out.append(d)
            if out.count == count { break }
        }
        return out
    }
}

func monotonicSeconds() -> Double {
    Double(DispatchTime.now().uptimeNanoseconds) / 1e9
}

/// Runs a program to completion without blocking a concurrency thread.
///
/// Not Foundation's `Process`: on Linux it notices a child's exit through a
/// socket the child inherits, and `ops/broker start` leaves a daemon behind
/// that inherits it too, so `waitUntilExit` never returns. Here the child gets
/// no descriptor beyond 0–2 and we poll `waitpid`.
@discardableResult
func runTool(_ path: String, _ arguments: [String]) async throws -> String {
    let log = FileManager.default.temporaryDirectory.appendingPathComponent("bis-tool-\(UUID().uuidString).log").path
    defer { unlink(log) }
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 1, log, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
    posix_spawn_file_actions_adddup2(&actions, 1, 2)
    // closefrom isn't visible from Swift: close what /proc says is open.
    let open = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
    for fd in open.compactMap(Int32.init) where fd > 2 {
        posix_spawn_file_actions_addclose(&actions, fd)
    }
    let argv = ([path] + arguments).map { strdup($0) } + [nil]
    defer { argv.forEach { free($0) } }
    var pid = pid_t()
    let rc = posix_spawn(&pid, path, &actions, nil, argv, environ)
    guard rc == 0 else {
        throw TestBroker.CommandFailed(command: path, output: "cannot start: \(String(cString: strerror(rc)))")
    }
    var status: Int32 = 0
    while waitpid(pid, &status, WNOHANG) == 0 {
        try await Task.sleep(for: .milliseconds(50))
    }
    let output = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
    // WIFEXITED && WEXITSTATUS == 0, spelled out (they are C macros).
    guard status & 0x7f == 0, (status >> 8) & 0xff == 0 else {
        throw TestBroker.CommandFailed(command: ([path] + arguments).joined(separator: " "), output: output)
    }
    return output
}
