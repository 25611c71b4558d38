import ArgumentParser
import Coordination
import Foundation

/// `bis status [RUN]`: where a run stands, or the recent runs.
struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show where a run stands, stage by stage; without RUN, the recent runs.",
        discussion: """
            With RUN: the run's state and message, then one line per stage: tasks \
            done/total, running, retried and failed tasks, rows in, out and \
            quarantined, and the stage's last error under it.
            Exit codes: 0 shown, 1 the run failed, 2 no such run or bad usage, \
            3 the coordinator cannot be reached.
            """
    )

    @Argument(help: "A run id, as `bis submit` printed it.")
    var run: String?

    @Option(help: "How many recent runs to list (without RUN).")
    var limit = 20

    // `--watch` (redraw until the run settles) goes here: loop over
    // `show(run:client:)` with a poll interval, as `bis submit --wait` does.

    @OptionGroup var options: CoordinatorOptions

    func validate() throws {
        guard limit >= 1 else { throw ValidationError("--limit must be 1 or more") }
    }

    func run() async throws {
        let client = try options.client()
        if let run {
            let view: RunView
            do { view = try await client.run(run) } catch { throw options.exit(for: error, run: run) }
            if options.json { try options.printJSON(view) } else { print(RunText.detail(view)) }
            if view.state == .failed { throw ExitCode(1) }
        } else {
            try await RunsCommand.list(limit: limit, client: client, options: options)
        }
    }
}

/// `bis runs`: the recent runs.
struct RunsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "runs",
        abstract: "List recent runs, most recent first: id, state, age, duration.",
        discussion: "Exit codes: 0 listed, 2 bad usage, 3 the coordinator cannot be reached."
    )

    @Option(help: "How many runs to list.")
    var limit = 20

    @OptionGroup var options: CoordinatorOptions

    func validate() throws {
        guard limit >= 1 else { throw ValidationError("--limit must be 1 or more") }
    }

    func run() async throws {
        try await Self.list(limit: limit, client: try options.client(), options: options)
    }

    static func list(limit: Int, client: CoordinatorClient, options: CoordinatorOptions) async throws {
        let runs: [RunView]
        do { runs = try await client.runs(limit: limit) } catch { throw options.exit(for: error) }
        if options.json { try options.printJSON(runs) } else { print(RunText.list(runs)) }
    }
}

/// `bis workers`: the fleet's workers as their heartbeats tell.
struct WorkersCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "workers",
        abstract: "List the workers: host, pid, version, state, current tasks, last seen.",
        discussion: """
            A worker is marked quiet when no heartbeat came for three beat \
            intervals: its host or process may be gone, and its tasks will be \
            redelivered by the broker.
            Exit codes: 0 listed, 3 the coordinator cannot be reached.
            """
    )

    @OptionGroup var options: CoordinatorOptions

    func run() async throws {
        let client = try options.client()
        let workers: [WorkerView]
        do { workers = try await client.workers() } catch { throw options.exit(for: error) }
        if options.json { try options.printJSON(workers) } else { print(RunText.workers(workers)) }
    }
}
