import Foundation
import TestSupport
import Testing

/// `--log-format json` on real `bis coordinator` and `bis-worker` processes:
/// every stderr line is a JSON object a log shipper can take, and a
/// submitted run's lines carry its run.id (the workers' also task.id,
/// task.stage and execution.id).
@Suite(.serialized, .usesBroker, .enabled(if: FleetEnvironment.enabled,
                             "no broker (BIS_TEST_AMQP_URL; run ops/test) or no Python with duckdb (BIS_PYTHON)"))
struct LogFormatProcessTests {
    /// The complete lines of a log file parsed as JSON objects; a last line
    /// without its newline (being written) is left out. Lines that are not
    /// JSON objects come back in `bad`.
    static func entries(_ path: String) -> (objects: [[String: Any]], bad: [String]) {
        let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
        var lines = text.components(separatedBy: "\n")
        lines.removeLast()   // "" after the last newline, or a partial line
        var objects: [[String: Any]] = []
        var bad: [String] = []
        for line in lines {
            if let o = (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any],
               o["level"] is String, o["message"] is String, o["ts"] is String, o["logger"] is String {
                objects.append(o)
            } else {
                bad.append(line)
            }
        }
        return (objects, bad)
    }

    @Test func coordinatorAndWorkersWriteJSONLines() async throws {
        let options = FleetOptions(coordinatorArguments: ["--log-format", "json"], workerArguments: ["--log-format", "json"])
        try await withFleet("json-logs", options) { fleet in
            let spec = try fleet.writeSpec(pipeline: "jsonlogs-\(randomHex(6))", dataset: "orders", summary: "orders_by_region")
            let r = try await fleet.bis(["submit", spec, "--wait"])
            fleet.check(r.exitCode == 0, "submit --wait should exit 0 when the run succeeds: \(r)")
            let run = try runID(printedBy: r)

            let coordinator = Self.entries(fleet.logs + "/coordinator.log")
            fleet.check(coordinator.bad.isEmpty, "every coordinator stderr line should be a JSON object: \(coordinator.bad.prefix(5))")
            fleet.check(coordinator.objects.contains { $0["message"] as? String == "run submitted" && $0["run.id"] as? String == run },
                        "the coordinator should log `run submitted` with run.id \(run)")
            fleet.check(coordinator.objects.contains { $0["message"] as? String == "run succeeded" && $0["run.id"] as? String == run },
                        "the coordinator should log `run succeeded` with run.id \(run)")

            var taskLines = 0
            for i in 0..<options.workers.count {
                let worker = Self.entries(fleet.logs + "/worker\(i).log")
                fleet.check(worker.bad.isEmpty, "every worker\(i) stderr line should be a JSON object: \(worker.bad.prefix(5))")
                for o in worker.objects where o["run.id"] as? String == run {
                    taskLines += 1
                    fleet.check((o["task.id"] as? String)?.hasPrefix(run + "/") == true && o["task.stage"] is String
                                    && o["execution.id"] is String,
                                "a worker's task line should carry task.id, task.stage and execution.id: \(o)")
                }
            }
            fleet.check(taskLines > 0, "the workers should log task lines with run.id \(run)")

            // The broker password never shows, in either format (the URL is redacted where it is logged).
            if let password = URL(string: fleet.amqpURL)?.password, !password.isEmpty {
                for name in ["coordinator.log"] + options.workers.indices.map({ "worker\($0).log" }) {
                    let text = (try? String(contentsOfFile: fleet.logs + "/" + name, encoding: .utf8)) ?? ""
                    fleet.check(!text.contains(":\(password)@"), "\(name) should not contain the broker password")
                    fleet.check(text.contains("amqp.url"), "\(name) should log the (redacted) broker URL")
                }
            }
        }
    }

}

/// A bad log format is a usage error for both programs, before any broker
/// is needed: no broker trait.
struct LogFormatUsageTests {
    @Test func badLogFormatExitsTwo() async throws {
        let dir = NSTemporaryDirectory() + "bis-logformat-\(randomHex(6))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var env = ProcessInfo.processInfo.environment
        env["BIS_LOG_FORMAT"] = "yaml"
        let runs: [(String, [String], String)] = [
            (try FleetEnvironment.executable("bis"), ["coordinator", "--data-root", dir + "/data"],
             "BIS_LOG_FORMAT 'yaml': the log format is text or json"),
            (try FleetEnvironment.executable("bis-worker"), ["--data-root", dir + "/data", "--amqp", "amqp://127.0.0.1:1/", "--log-format", "xml"],
             "--log-format 'xml': the log format is text or json"),
        ]
        for (i, (path, args, expected)) in runs.enumerated() {
            let p = try ChildProcess(name: "bad-\(i)", executable: path, arguments: args, environment: env,
                                     stdout: dir + "/\(i).out", stderr: dir + "/\(i).err")
            let t = await p.wait(seconds: 30)
            #expect(t?.exitCode == 2, "\(path) \(args): \(String(describing: t))\n\(p.stderr)")
            #expect(p.stderr.contains(expected), "\(p.stderr)")
        }
    }
}
