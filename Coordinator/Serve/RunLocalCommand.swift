import ArgumentParser
import Coordination
import FleetCore
import Foundation
import Logging
import ServiceLifecycle
import WorkerRuntime

/// `bis run --local SPEC.yml`: the embedded fleet — the same planner, lineage
/// store and operators, with the in-memory transport and worker threads in
/// this process. No broker, no coordinator to start.
struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run a pipeline in this process: same planner, lineage store and operators as the fleet, no broker.",
        discussion: """
            The lineage store is <data root>/bis.db; outputs go under the data root (runs/, published/, the \
            delivery folder). A spec that asks for approval stops at awaiting_approval unless --approve-as NAME \
            approves it (there is no coordinator left to approve it later).
            Exit codes: 0 the run succeeded (or awaits approval), 1 it failed, 2 usage or spec error.
            """
    )

    @Flag(help: "Run embedded in this process (the only mode of `bis run`; use `bis submit` for the fleet).")
    var local = false

    @Argument(help: "The pipeline spec (YAML).")
    var spec: String

    @Option(help: "The data root; default $BIS_DATA_ROOT or .bis/local.")
    var dataRoot: String?

    @Option(help: "Tasks run at once (worker threads).")
    var concurrency: Int = ProcessInfo.processInfo.activeProcessorCount

    @Option(help: "Approve the delivery as this person when the spec asks for approval.")
    var approveAs: String?

    @Option(help: "A folder inputs may come from besides the spec's folder (repeatable).")
    var allowRoot: [String] = []

    @Flag(help: "Print the final run as JSON.")
    var json = false

    @Option(help: ArgumentHelp("How stderr logs are written: text, or json (one object per line, for log shippers; "
                               + "default $BIS_LOG_FORMAT, else text).", valueName: "text|json"))
    var logFormat: String?

    func validate() throws {
        guard local else {
            throw ValidationError("`bis run` runs a pipeline embedded: say --local (for the fleet, `bis submit SPEC.yml`)")
        }
        guard concurrency >= 1 else { throw ValidationError("--concurrency must be at least 1") }
        _ = try resolvedLogFormat()
    }

    /// --log-format, else $BIS_LOG_FORMAT, else text; a bad name is a usage error (exit 2).
    func resolvedLogFormat() throws -> LogFormat {
        do {
            return try LogFormat.resolve(flag: logFormat, environment: ProcessInfo.processInfo.environment)
        } catch {
            throw ValidationError(error.description)
        }
    }

    func run() async throws {
        ProcessResources.boundHeapRetention()
        try resolvedLogFormat().bootstrap(level: .warning)
        let env = ProcessInfo.processInfo.environment
        let root = ChunkStore(root: dataRoot ?? env["BIS_DATA_ROOT"] ?? ".bis/local")
        try FileManager.default.createDirectory(atPath: root.root, withIntermediateDirectories: true)
        let store = try LineageStore(path: root.root + "/bis.db")
        let transport = InMemoryTransport()
        let engine = CoordinatorEngine(store: store, transport: transport, chunkStore: root)
        let worker = FleetWorker(transport: transport, chunkStore: root, concurrency: concurrency,
                                 logger: Logger(label: "bis.worker"))
        // The coordinator's services and the worker in one group, as the
        // fleet's processes run them; this command's flow below drives it.
        let group = ServiceGroup(configuration: .init(services: try await engine.services() + [worker],
                                                      logger: Logger(label: "bis.local")))
        let running = Task { try await group.run() }

        let path = spec.hasPrefix("/") ? spec : FileManager.default.currentDirectoryPath + "/" + spec
        let submitted: RunView
        do {
            let text = try String(contentsOfFile: path, encoding: .utf8)
            submitted = try await engine.submit(SubmitRequest(specPath: path, specText: text, allowedRoots: allowRoot,
                                                              submittedBy: currentUser()))
        } catch let error as ServiceError {
            printError(error.description)
            throw ExitCode(2)
        } catch {
            printError("cannot read the spec \(path): \(error.localizedDescription)")
            throw ExitCode(2)
        }
        FileHandle.standardError.write(Data("run \(submitted.id): \(root.root)\n".utf8))
        var view = try await engine.waitUntilSettled(submitted.id, poll: .milliseconds(100))
        if view.state == .awaitingApproval, let approver = approveAs {
            _ = try await engine.approve(view.id, by: approver)
            view = try await engine.waitUntilSettled(view.id, poll: .milliseconds(100))
        }
        // The first quarantined rows, shown as `bis quarantine` shows them:
        // with no coordinator left afterwards, this is where a local run's are seen.
        let quarantined = json ? [] : ((try? await engine.quarantine(view.id, rule: nil, limit: Self.quarantineShown)) ?? [])
        // Retention, as the fleet's coordinator applies it (publish keeps
        // every version in the fleet and leaves `publish.keep` to it): with
        // no coordinator staying up, a local run ends with one pass.
        do {
            _ = try await engine.gc(dryRun: false, caller: nil)
        } catch {
            FileHandle.standardError.write(Data("warning: the retention pass after the run failed: \(error)\n".utf8))
        }
        await group.triggerGracefulShutdown()
        _ = await running.result
        await transport.close()

        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            encoder.dateEncodingStrategy = .iso8601
            print(String(decoding: try encoder.encode(view), as: UTF8.self))
        } else {
            print(localSummary(view, root: root, quarantined: quarantined))
        }
        if view.state == .failed || view.state == .cancelled { throw ExitCode(1) }
    }

    static let quarantineShown = 10

    private func localSummary(_ view: RunView, root: ChunkStore, quarantined: [QuarantinedRow]) -> String {
        var lines = ["run \(view.id): \(view.state.rawValue)" + (view.message.map { " — \($0)" } ?? "")]
        for s in view.stages {
            lines.append("  \(s.stage.rawValue.padding(toLength: 12, withPad: " ", startingAt: 0))\(s.succeeded)/\(s.total) tasks"
                         + "  rows in \(s.rowsIn) out \(s.rowsOut) quarantined \(s.rowsQuarantined)"
                         + (s.retried > 0 ? "  retried \(s.retried)" : "")
                         + (s.lastError.map { "\n      \($0)" } ?? ""))
        }
        for (dataset, dir) in view.published.sorted(by: { $0.key < $1.key }) { lines.append("  published \(dataset): \(root.root)/\(dir)") }
        if let r = view.reportDirectory { lines.append("  report: \(root.root)/\(r)/report.html") }
        if let r = view.receipt { lines.append("  receipt: \(r.hasPrefix("/") ? r : root.root + "/" + r)") }
        if !quarantined.isEmpty {
            let total = view.stages.reduce(Int64(0)) { $0 + $1.rowsQuarantined }
            lines.append("  quarantined rows" + (total > Int64(quarantined.count) ? " (first \(quarantined.count) of \(total))" : "") + ":")
            let table = QuarantineCommand.text(quarantined, run: view.id, rule: nil, limit: Int.max, width: 60)
            lines += table.split(separator: "\n").map { "    " + $0 }
        }
        return lines.joined(separator: "\n")
    }
}

/// `user@host`, the audit log's actor for commands run here.
func currentUser() -> String {
    let env = ProcessInfo.processInfo.environment
    return "\(env["USER"] ?? env["LOGNAME"] ?? "unknown")@\(ProcessInfo.processInfo.hostName)"
}
