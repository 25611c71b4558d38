import FleetWire
import Foundation

/// A worker that executed some of a run's tasks, from the store's
/// executions: what the dashboard's run page lists under Workers once the
/// run's workers no longer report it as running.
public struct RunWorkerView: Codable, Sendable, Hashable {
    /// The worker's id (nil for executions that never started on one).
    public var worker: String
    public var host: String?
    public var pid: Int?
    /// Executions it ran for the run, and how many succeeded.
    public var executions: Int
    public var succeeded: Int
    /// The stages of those executions, in run order.
    public var stages: [Stage]
    public var lastFinished: Date?

    public init(worker: String, host: String?, pid: Int?, executions: Int, succeeded: Int, stages: [Stage], lastFinished: Date?) {
        self.worker = worker
        self.host = host
        self.pid = pid
        self.executions = executions
        self.succeeded = succeeded
        self.stages = stages
        self.lastFinished = lastFinished
    }
}

extension CoordinatorService {
    public func runWorkers(_ run: String) async throws -> [RunWorkerView] { [] }
}
