import ArgumentParser
import FleetCore
import Foundation
import Stages

extension StageCommand {
    /// `bis stage gate`: the run-level quality gate decided over every
    /// partition's `validate-result.json`, as the coordinator decides it
    /// before planning publish.
    struct Gate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Decide the spec's quality gates over the validate results of every partition.",
            discussion: "Exit codes: 0 the gates pass, 1 a gate failed (the message names the rule, count, rate and examples), 2 usage or spec error."
        )

        @Option(help: "The pipeline spec (YAML).")
        var spec: String

        @Option(name: .customLong("input"), parsing: .upToNextOption,
                help: "validate-result.json files, or directories holding them.")
        var inputs: [String]

        @Flag(help: "Print the decision as JSON.")
        var json = false

        func run() async throws {
            let pipeline: PipelineSpec
            do {
                pipeline = try PipelineSpec.load(path: spec, resolvingInputs: false)
            } catch {
                printError(error.description)
                throw ExitCode(2)
            }
            var results: [ValidateResult] = []
            for input in inputs {
                var isDir: ObjCBool = false
                guard FileManager.default.fileExists(atPath: input, isDirectory: &isDir) else {
                    printError("--input \(input): no such file or directory")
                    throw ExitCode(2)
                }
                let files = isDir.boolValue
                    ? (FileManager.default.subpaths(atPath: input) ?? []).sorted()
                        .filter { ($0 as NSString).lastPathComponent == "validate-result.json" }.map { input + "/" + $0 }
                    : [input]
                for file in files {
                    do {
                        results.append(try ValidateResult(json: Array(try Data(contentsOf: URL(fileURLWithPath: file)))))
                    } catch {
                        printError("\(file) is not a validate result: \(error)")
                        throw ExitCode(2)
                    }
                }
            }
            guard !results.isEmpty else {
                printError("no validate-result.json among the inputs")
                throw ExitCode(2)
            }
            let decision = GateDecision.decide(results: results, gates: pipeline.validate.gates)
            let passed: Bool, message: String
            switch decision {
            case .pass(let summary): (passed, message) = (true, summary.description)
            case .fail(let text): (passed, message) = (false, text)
            }
            if json {
                let body = try JSONSerialization.data(withJSONObject: ["passed": passed, "message": message, "partitions": results.count],
                                                      options: [.sortedKeys])
                print(String(decoding: body, as: UTF8.self))
            } else {
                print(message)
            }
            if !passed { throw ExitCode(1) }
        }
    }
}
