import Foundation
import Synchronization

/// A stage timeout's cancellation flag (spec `timeouts:`, docs/alerts.md).
/// The worker sets it when an execution runs past its stage's timeout; the
/// operators check it between batches and row groups (`check()`) and stop
/// with the transient failure it carries ("timed out after 10m"), which the
/// coordinator retries as any transient failure. An operator that does not
/// return within the worker's grace period makes the worker process exit.
public final class ExecutionCancellation: Sendable {
    private let reason = Mutex<String?>(nil)

    public init() {}

    /// Asks the execution to stop, with the failure message it reports.
    public func cancel(_ message: String) {
        reason.withLock { if $0 == nil { $0 = message } }
    }

    /// The message, once cancelled.
    public var cancelled: String? { reason.withLock { $0 } }

    /// The message a timed-out execution reports (its failure also carries
    /// `timedOut`, by which the coordinator records it `timed_out`).
    public static let timeoutPrefix = "timed out after "

    public static func timeoutMessage(seconds: Double) -> String { timeoutPrefix + SpecDuration.text(seconds) }

    private static let key = "bis.execution.cancellation"

    /// The flag of the execution on this thread (the worker runs each
    /// execution on a thread of its own), nil outside one.
    public static var current: ExecutionCancellation? {
        Thread.current.threadDictionary[key] as? ExecutionCancellation
    }

    /// Runs `body` with `flag` as this thread's `current`.
    public static func with<T>(_ flag: ExecutionCancellation?, _ body: () throws -> T) rethrows -> T {
        guard let flag else { return try body() }
        Thread.current.threadDictionary[key] = flag
        defer { Thread.current.threadDictionary[key] = nil }
        return try body()
    }

    /// Throws the transient failure when this thread's execution was asked to stop.
    public static func check() throws(TaskFailure) {
        if let message = current?.cancelled { throw TaskFailure(.transient, message, timedOut: true) }
    }
}
