import ArgumentParser
import CoordinatorAPI
import Foundation

/// `bis status [RUN] [--watch]`: where a run stands, or the recent runs.
struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show where a run stands, stage by stage; without RUN, the recent runs.",
        discussion: """
            With RUN: the run's state and message, then one line per stage: tasks \
            done/total, running, retried and failed tasks, rows in, out and \
            quarantined, and the stage's last error under it.
            With --watch: follow the run until it settles (succeeded, failed, \
            cancelled, or awaiting approval), one line per stage with a progress \
            bar, rows out per second of the stage's time so far, and an ETA from \
            its task completion rate; the failing rule or error under a red \
            stage. On a terminal it redraws in place; when stdout is a pipe or \
            a file it prints a plain block (no escape codes) each time the run \
            changed. With --json and --watch: one RunView per line, each time \
            it changed.
            Without RUN: the recent runs, with state, age and duration.
            Exit codes: 0 shown (with --watch: the run settled without failing), \
            1 the run failed, 2 no such run or bad usage, 3 the coordinator \
            cannot be reached (with --watch: for --reconnect-seconds).
            """
    )

    @Argument(help: "A run id, as `bis submit` printed it.")
    var run: String?

    @Option(help: "How many recent runs to list (without RUN).")
    var limit = 20

    @Flag(help: "Follow RUN until it settles, redrawing as it goes.")
    var watch = false

    @Option(help: ArgumentHelp("With --watch: seconds between looks at the run.", valueName: "seconds"))
    var interval: Double = 1

    @Option(help: ArgumentHelp("With --watch: how long to keep trying a coordinator that stopped answering before exiting 3.",
                               valueName: "seconds"))
    var reconnectSeconds: Double = 60

    @OptionGroup var options: CoordinatorOptions

    func validate() throws {
        guard limit >= 1 else { throw ValidationError("--limit must be 1 or more") }
        guard interval > 0 else { throw ValidationError("--interval must be more than 0 seconds") }
        guard reconnectSeconds >= 0 else { throw ValidationError("--reconnect-seconds must be 0 or more") }
        if watch && run == nil { throw ValidationError("--watch follows one run: give its id, as in `bis status RUN --watch`") }
    }

    func run() async throws {
        let client = try options.client()
        if let run, run.hasPrefix(BackfillView.idPrefix) {   // a backfill (docs/schedules.md)
            try await BackfillCommand.show(run, client: client, options: options)
            return
        }
        if let run {
            let view: RunView
            do { view = try await client.run(run) } catch { throw options.exit(for: error, run: run) }
            if watch {
                let last = try await follow(view, client: client)
                if last.state == .failed { throw ExitCode(1) }
                return
            }
            if options.json { try options.printJSON(view) } else {
                print(RunText.detail(view))
                // The run's alerts; an older coordinator without them shows none.
                if let alerts = try? await client.alerts(run: run, limit: 100), !alerts.isEmpty {
                    print("")
                    print(AlertsCommand.render(alerts, withRun: false))
                }
            }
            if view.state == .failed { throw ExitCode(1) }
        } else {
            try await RunsCommand.list(limit: limit, client: client, options: options)
        }
    }

    /// Draws the run until it settles; returns its last view. A coordinator
    /// that stops answering is tried again for `--reconnect-seconds`.
    private func follow(_ first: RunView, client: CoordinatorClient) async throws -> RunView {
        var screen = WatchScreen(terminal: !options.json && isatty(1) == 1)
        var view = first
        var lastJSON: RunView?
        var poller = RunPoller(client: client, options: options, reconnectSeconds: reconnectSeconds, pollSeconds: interval)
        while true {
            if options.json {
                if view != lastJSON {
                    let data = try APICoding.encoder().encode(view)
                    writeAll(1, Array(data) + [UInt8(ascii: "\n")])
                    lastJSON = view
                }
            } else {
                let frame = screen.frame(view, now: Date())
                if !frame.isEmpty { writeAll(1, Array(frame.utf8)) }
            }
            if view.state.isSettled { return view }
            view = try await poller.next(view)
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
