import ArgumentParser
import FleetCore

/// `bis spec check`: everything `submit` checks before a run, without running.
struct SpecCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "spec",
        abstract: "Check pipeline specs.",
        subcommands: [Check.self]
    )

    struct Check: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check a spec and its input files; print every problem with its line and column.",
            discussion: "Exit codes: 0 the spec is fine, 2 it has problems."
        )

        @Argument(help: "The pipeline spec (YAML).")
        var spec: String

        @Option(help: "A folder inputs may come from besides the spec's folder (repeatable).")
        var allowRoot: [String] = []

        func run() async throws {
            do {
                let p = try PipelineSpec.load(path: spec, allowedRoots: allowRoot)
                let files = p.sources.reduce(0) { $0 + $1.resolvedFiles.count }
                print("\(spec): ok — pipeline \(p.name), \(p.sources.count) source(s), \(files) input file(s), "
                      + "\(p.normalize.count) normalize step(s), \(p.columns.count) column(s) after normalize")
            } catch {
                printError(error.description)
                throw ExitCode(2)
            }
        }
    }
}
