import ArgumentParser
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
}
