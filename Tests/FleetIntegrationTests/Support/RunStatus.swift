import Foundation

/// `bis status RUN --json` as the tests read it: the fields of the
/// coordinator's RunView they look at (dates are left out).
struct RunStatus: Decodable, Sendable, CustomStringConvertible {
    struct StageStatus: Decodable, Sendable {
        var stage: String
        var total: Int
        var queued: Int
        var running: Int
        var succeeded: Int
        var failed: Int
        var cancelled: Int
        var retried: Int
        var duplicates: Int
        var rowsIn: Int64
        var rowsOut: Int64
        var rowsQuarantined: Int64
        var lastError: String?
    }

    var id: String
    var pipeline: String
    var state: String
    var message: String?
    var approvalRequired: Bool?
    var approvedBy: String?
    var submittedBy: String?
    var stages: [StageStatus]
    var published: [String: String]
    /// Dataset → schema sha256 of the versions published.
    var publishedSchemas: [String: String]?
    var reportDirectory: String?
    var receipt: String?

    static let stageNames = ["ingest", "normalize", "consolidate", "validate", "publish", "report", "deliver"]

    func stage(_ name: String) -> StageStatus? { stages.first { $0.stage == name } }

    var isSettled: Bool { ["succeeded", "failed", "cancelled", "awaiting_approval"].contains(state) }

    /// Stages that are missing or did not end with every task succeeded.
    var unfinishedStages: [String] {
        Self.stageNames.filter { name in
            guard let s = stage(name) else { return true }
            return s.total == 0 || s.succeeded != s.total || s.failed != 0
        }
    }

    var description: String {
        var lines = ["run \(id): \(state)" + (message.map { " — \($0)" } ?? "")]
        for s in stages {
            lines.append("  \(s.stage): \(s.succeeded)/\(s.total) succeeded, \(s.running) running, \(s.queued) queued, "
                         + "\(s.failed) failed, \(s.cancelled) cancelled, retried \(s.retried), duplicates \(s.duplicates), "
                         + "rows in \(s.rowsIn) out \(s.rowsOut) quarantined \(s.rowsQuarantined)"
                         + (s.lastError.map { "; last error: \($0)" } ?? ""))
        }
        if !published.isEmpty { lines.append("  published: \(published.sorted { $0.key < $1.key })") }
        if let r = receipt { lines.append("  receipt: \(r)") }
        return lines.joined(separator: "\n")
    }
}

/// What `check_fleet.py published` found.
struct PublishedCheck: Decodable, Sendable {
    var ok: Bool
    var rows: Int
    var groups: Int
    var version: String?
    var mismatches: [String]
    var ingest_quarantined: Int
    var validate_quarantined: Int
}

/// What `check_fleet.py executions` found: per task, its executions by state.
struct LineageCheck: Decodable, Sendable {
    struct TaskExecutions: Decodable, Sendable {
        var stage: String
        var index: Int
        var state: String
        var winner: String?
        var executions: [String: Int]
    }
    var tasks: [TaskExecutions]

    func tasks(of stage: String) -> [TaskExecutions] { tasks.filter { $0.stage == stage } }
}
