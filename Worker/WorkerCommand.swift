import AMQP
import ArgumentParser
import FleetCore

@main
struct WorkerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bis-worker",
        abstract: "A stateless BIS Fleet worker: consumes stage tasks from RabbitMQ and executes them.",
        version: FleetVersion.string
    )
}
