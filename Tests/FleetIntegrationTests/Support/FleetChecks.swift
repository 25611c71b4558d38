import Foundation
import Testing

extension Fleet {
    /// A run that succeeded as a user would check it: every stage's tasks
    /// all succeeded, ingest quarantined exactly the rows that do not type,
    /// validate quarantined exactly DuckDB's 'high' rows, the published
    /// dataset and summary equal DuckDB's and are this run's, the receipt
    /// exists.
    func checkSucceeded(_ s: RunStatus, dataset: String, summary: String, root: String? = nil,
                        sourceLocation: SourceLocation = #_sourceLocation) throws {
        let root = root ?? dataRoot
        check(s.state == "succeeded", "run \(s.id) should have succeeded:\n\(s)", sourceLocation: sourceLocation)
        check(s.unfinishedStages.isEmpty, "stages without every task succeeded: \(s.unfinishedStages)\n\(s)",
              sourceLocation: sourceLocation)
        let ingest = s.stage("ingest")
        check((ingest?.total ?? 0) > 6, "2 KiB shards should make many ingest tasks:\n\(s)", sourceLocation: sourceLocation)
        check(ingest?.rowsQuarantined == Int64(dirty),
              "ingest should quarantine the \(dirty) rows with values that do not type:\n\(s)", sourceLocation: sourceLocation)
        check(s.published[dataset] == "published/\(dataset)/\(s.id)" && s.published[summary] == "published/\(summary)/\(s.id)",
              "status should name the published versions of \(dataset) and \(summary): \(s.published)", sourceLocation: sourceLocation)
        if let receipt = s.receipt {
            let path = receipt.hasPrefix("/") ? receipt : root + "/" + receipt
            check(FileManager.default.fileExists(atPath: path), "the receipt \(path) named by status does not exist",
                  sourceLocation: sourceLocation)
        } else {
            check(false, "a delivered run should have a receipt:\n\(s)", sourceLocation: sourceLocation)
        }

        let c = try checkPublished(dataset: dataset, summary: summary, root: root)
        check(c.ok, "published \(dataset)/\(summary) differs from DuckDB's:\n\(c.mismatches.joined(separator: "\n"))",
              sourceLocation: sourceLocation)
        check(c.version == s.id, "\(dataset)'s CURRENT names \(c.version ?? "nothing"), not run \(s.id)", sourceLocation: sourceLocation)
        check(c.rows > 100 && c.groups > 3, "suspiciously little data: \(c.rows) rows, \(c.groups) groups", sourceLocation: sourceLocation)
        check(c.ingest_quarantined == dirty,
              "DuckDB and the generator disagree on the rows ingest must quarantine: \(c.ingest_quarantined) vs \(dirty)",
              sourceLocation: sourceLocation)
        let validate = s.stage("validate")?.rowsQuarantined ?? -1
        check(c.validate_quarantined > 0 && validate == Int64(c.validate_quarantined),
              "validate should quarantine DuckDB's \(c.validate_quarantined) 'high' rows, status says \(validate):\n\(s)",
              sourceLocation: sourceLocation)
    }

    /// Every task of the run has exactly one winning execution.
    func checkOneWinnerPerTask(_ run: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> LineageCheck {
        let lineage = try self.lineage(run)
        let bad = lineage.tasks.filter { $0.executions["succeeded", default: 0] != 1 || $0.winner == nil }
        check(!lineage.tasks.isEmpty && bad.isEmpty,
              "every task should have exactly one succeeded execution (its winner); not so: "
              + bad.map { "\($0.stage)/\($0.index) \($0.executions)" }.joined(separator: ", "),
              sourceLocation: sourceLocation)
        return lineage
    }

    /// An execution of `stage` in `run` that the lineage store records as
    /// running on one of this fleet's live workers, started at most
    /// `maxAge` seconds ago (so it is still running when the caller acts on
    /// it); polls up to `timeout` seconds. The store, not a heartbeat: a
    /// worker's heartbeat lists a task from the moment it takes it, before
    /// its `started` event reaches the coordinator, and an execution killed
    /// in that window leaves no trace in the lineage.
    func runningExecution(run: String, stage: String, maxAge: Double,
                          timeout: Double = 60) async throws -> (worker: Int, index: Int, execution: String)? {
        struct Running: Decodable { var index: Int; var execution: String; var pid: Int?; var age: Double }
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            let r = try FleetEnvironment.python.script(FleetEnvironment.checker, ["running", db, run, stage])
            if r.status == 0, let line = r.output.split(separator: "\n").last,
               let list = try? JSONDecoder().decode([Running].self, from: Data(line.utf8)) {
                for x in list where x.age <= maxAge {
                    for i in 0..<workerCount where worker(i)?.pid == x.pid.map(Int32.init) && worker(i)?.isRunning == true {
                        return (i, x.index, x.execution)
                    }
                }
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        return nil
    }

    /// Waits until a running `bis submit --wait` has printed the run id.
    func runID(of started: (ChildProcess, [String]), timeout: Double = 60) async throws -> String {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            let out = started.0.stdout
            if let line = out.split(separator: "\n").first, out.contains("\n") {
                return line.trimmingCharacters(in: .whitespaces)
            }
            if let t = started.0.termination {
                throw FleetError("`bis \(started.1.joined(separator: " "))` ended (\(t)) without printing a run id\n\(started.0.stderr)")
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw FleetError("`bis \(started.1.joined(separator: " "))` printed no run id within \(Int(timeout)) s")
    }
}
