import ArgumentParser
import CoordinatorAPI
import Foundation

/// `bis approve|retry|cancel RUN`: an operator's action, recorded as
/// `$USER@hostname` in the run's audit log.
struct ApproveCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "approve",
        abstract: "Approve a run that awaits approval, so that it delivers.",
        discussion: RunActionText.discussion("the run does not await approval")
    )
    @Argument(help: "The run id.") var run: String
    @OptionGroup var options: CoordinatorOptions
    func run() async throws { try await RunActionText.perform(.approve, run: run, options: options) }
}

struct RetryCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "retry",
        abstract: "Retry a failed run: only its failed tasks run again; committed outputs are reused.",
        discussion: RunActionText.discussion("the run has not failed")
    )
    @Argument(help: "The run id.") var run: String
    @OptionGroup var options: CoordinatorOptions
    func run() async throws { try await RunActionText.perform(.retry, run: run, options: options) }
}

struct CancelCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cancel",
        abstract: "Cancel a run that has not finished: its queued tasks are dropped, running ones' results discarded.",
        discussion: RunActionText.discussion("the run has already finished")
    )
    @Argument(help: "The run id.") var run: String
    @OptionGroup var options: CoordinatorOptions
    func run() async throws {
        if run.hasPrefix(BackfillView.idPrefix) {   // a backfill, cancelled whole (docs/schedules.md)
            let client = try options.client()
            let view: BackfillView
            do { view = try await client.cancelBackfill(run, by: actorName()) } catch { throw options.exit(for: error) }
            if options.json { try options.printJSON(view) } else { print("backfill \(view.id): \(view.state)") }
            return
        }
        try await RunActionText.perform(.cancel, run: run, options: options)
    }
}

enum RunActionText {
    static func discussion(_ conflict: String) -> String {
        "Prints the run's state afterwards. Exit codes: 0 done, 1 refused (\(conflict)), "
            + "2 no such run, 3 the coordinator cannot be reached, 4 refused: not authenticated (set BIS_TOKEN) "
            + "or not allowed (your role, or approving a run you submitted)."
    }

    static func perform(_ action: RunAction, run: String, options: CoordinatorOptions) async throws {
        let client = try options.client()
        let view: RunView
        do { view = try await client.act(action, on: run, by: actorName()) } catch { throw options.exit(for: error, run: run) }
        if options.json { try options.printJSON(view) } else { print("run \(view.id): \(view.state.rawValue)") }
    }
}
