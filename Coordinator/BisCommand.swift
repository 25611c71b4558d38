import ArgumentParser
import Foundation
import FleetCore

@main
struct BisCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bis",
        abstract: "Submit, watch, approve, retry and trace BIS Fleet pipeline runs.",
        discussion: """
            Runs go to a coordinator over HTTP (`bis submit`, `status`, `runs`, \
            `workers`, `quarantine`, `lineage`, `approve`, `retry`, `cancel`, `gc`): \
            set BIS_COORDINATOR to its \
            address (default http://127.0.0.1:8470) and BIS_TOKEN when it \
            requires one. The stages also run by hand (`bis stage run`), with \
            spec checking (`bis spec check`) and chunk tools (`bis chunk`).
            Exit codes: 0 success, 1 run failed, 2 usage or spec error, \
            3 cannot reach the coordinator.
            """,
        version: FleetVersion.string,
        subcommands: [
            CoordinatorCommand.self, RunCommand.self,
            SubmitCommand.self, StatusCommand.self, RunsCommand.self, WorkersCommand.self,
            QuarantineCommand.self, LineageCommand.self, DatasetsCommand.self, DatasetCommand.self,
            ApproveCommand.self, RetryCommand.self, CancelCommand.self,
            WhoamiCommand.self, AuditCommand.self, GCCommand.self, AlertsCommand.self,
            PipelineCommand.self, PipelinesCommand.self, TriggerCommand.self, BackfillCommand.self, ScheduleCommand.self,
            SpecCommand.self, StageCommand.self, ChunkCommand.self,
        ]
    )

    /// ArgumentParser's own entry, except that usage errors (a missing or bad
    /// option, a failed `validate()`) exit with 2 as DESIGN.md's exit codes
    /// say, instead of ArgumentParser's 64.
    static func main() async {
        do {
            var command = try parseAsRoot()
            if var command = command as? AsyncParsableCommand {
                try await command.run()
            } else {
                try command.run()
            }
        } catch {
            if exitCode(for: error) == .validationFailure {
                FileHandle.standardError.write(Data((fullMessage(for: error) + "\n").utf8))
                Foundation.exit(2)
            }
            exit(withError: error)
        }
    }
}
