import ArgumentParser
import Foundation
import FleetCore

@main
struct BisCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bis",
        abstract: "Submit, watch, approve, retry and trace BIS Fleet pipeline runs.",
        discussion: """
            This build has the data plane's first stages, runnable by hand \
            (`bis stage run`), spec checking (`bis spec check`) and chunk tools \
            (`bis chunk`); the coordinator and workers arrive in later releases.
            """,
        version: FleetVersion.string,
        subcommands: [ChunkCommand.self, StageCommand.self, SpecCommand.self]
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
