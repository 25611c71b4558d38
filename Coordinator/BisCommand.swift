import ArgumentParser
import FleetCore

@main
struct BisCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bis",
        abstract: "Submit, watch, approve, retry and trace BIS Fleet pipeline runs.",
        discussion: """
            The coordinator and the operator commands arrive in later releases; \
            this build carries the foundation (package, broker scripts, AMQP layer).
            """,
        version: FleetVersion.string,
        subcommands: [ChunkCommand.self]
    )
}
