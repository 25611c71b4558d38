import Foundation
import TestSupport

/// The `bis` executable built beside the tests (this target depends on it),
/// run as a user would, against an address given in its environment.
enum Bis {
    static let packageRoot = BuiltProduct.packageRoot
    static var executable: String { BuiltProduct.path("bis") }

    struct Result: Sendable {
        let status: Int32
        let stdout: String
        let stderr: String
    }

    /// Runs `bis` on a thread of its own, so that waiting for it never holds
    /// one of the few threads the in-process server answers it from.
    static func run(_ args: [String], in dir: String, coordinator: String?, token: String? = nil) async throws -> Result {
        var env = ProcessInfo.processInfo.environment
        env["BIS_COORDINATOR"] = coordinator
        env["BIS_TOKEN"] = token
        env["USER"] = "tester"
        let environment = env
        return try await withCheckedThrowingContinuation { continuation in
            Thread.detachNewThread {
                do {
                    let p = Process()
                    p.executableURL = URL(fileURLWithPath: executable)
                    p.arguments = args
                    p.environment = environment
                    p.currentDirectoryURL = URL(fileURLWithPath: dir)
                    let out = Pipe(), err = Pipe()
                    p.standardOutput = out
                    p.standardError = err
                    try p.run()
                    // stderr on its own thread, so that neither pipe can fill and stall the child.
                    let errData = ErrBox()
                    let reader = Thread { errData.data = err.fileHandleForReading.readDataToEndOfFile(); errData.done.signal() }
                    reader.start()
                    let o = out.fileHandleForReading.readDataToEndOfFile()
                    errData.done.wait()
                    p.waitUntilExit()
                    continuation.resume(returning: Result(status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self),
                                                          stderr: String(decoding: errData.data, as: UTF8.self)))
                } catch {
                    continuation.resume(throwing: error)
                }
            }
        }
    }

    private final class ErrBox: @unchecked Sendable {
        var data = Data()
        let done = DispatchSemaphore(value: 0)
    }
}

/// The orders spec `Workspace.withOrders()` writes (both are in TestSupport).
let ordersSpec = OrdersSpec.plain

/// A `bis` process whose stderr a test can wait on while it runs, to act at
/// the moment it reports something (not after a guessed delay).
final class RunningBis: @unchecked Sendable {
    private let process = Process()
    private let lock = NSLock()
    private var stderrText = ""
    private var stdoutData = Data()
    private var waiters: [(String, CheckedContinuation<Void, Never>)] = []
    private let finished = DispatchGroup()

    init(_ args: [String], in dir: String, coordinator: String) throws {
        var env = ProcessInfo.processInfo.environment
        env["BIS_COORDINATOR"] = coordinator
        env["BIS_TOKEN"] = nil
        process.executableURL = URL(fileURLWithPath: Bis.executable)
        process.arguments = args
        process.environment = env
        process.currentDirectoryURL = URL(fileURLWithPath: dir)
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        finished.enter()
        finished.enter()
        Thread.detachNewThread { [self] in
            stdoutData = out.fileHandleForReading.readDataToEndOfFile()
            finished.leave()
        }
        Thread.detachNewThread { [self] in
            while true {
                let chunk = err.fileHandleForReading.availableData
                if chunk.isEmpty { break }
                lock.lock()
                stderrText += String(decoding: chunk, as: UTF8.self)
                let ready = waiters.filter { stderrText.contains($0.0) }
                waiters.removeAll { stderrText.contains($0.0) }
                lock.unlock()
                for (_, c) in ready { c.resume() }
            }
            lock.lock()
            let left = waiters
            waiters = []
            lock.unlock()
            for (_, c) in left { c.resume() }
            finished.leave()
        }
    }

    /// Returns once stderr contains `text`, or the process closed stderr.
    func stderr(contains text: String) async {
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            lock.lock()
            if stderrText.contains(text) {
                lock.unlock()
                c.resume()
            } else {
                waiters.append((text, c))
                lock.unlock()
            }
        }
    }

    func result() async -> Bis.Result {
        await withCheckedContinuation { (c: CheckedContinuation<Bis.Result, Never>) in
            Thread.detachNewThread { [self] in
                finished.wait()
                process.waitUntilExit()
                lock.lock()
                let r = Bis.Result(status: process.terminationStatus, stdout: String(decoding: stdoutData, as: UTF8.self),
                                   stderr: stderrText)
                lock.unlock()
                c.resume(returning: r)
            }
        }
    }
}
