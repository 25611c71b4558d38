import ArgumentParser
import CoordinatorAPI
import FleetCore
import Foundation

/// `bis submit SPEC.yml [--wait]`: checks the spec here, sends it to the
/// coordinator, prints the run id.
struct SubmitCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "submit",
        abstract: "Submit a pipeline spec to the coordinator as a new run; print the run id.",
        discussion: """
            The spec is checked here first (as `bis spec check` does), so its \
            problems show with line and column before anything is sent. Without \
            --json only the run id goes to stdout: run=$(bis submit p.yml).
            With --wait, bis follows the run until it settles; when it awaits \
            approval it says so on stderr once and keeps waiting for \
            `bis approve RUN`.
            Exit codes: 0 submitted (with --wait: the run succeeded), 1 the run \
            failed or was cancelled (with --wait), 2 the spec has problems or \
            bad usage, 3 the coordinator cannot be reached, 4 refused: not \
            authenticated (set BIS_TOKEN) or not allowed (the role).
            """
    )

    @Argument(help: "The pipeline spec (YAML). The coordinator reads inputs from the same paths, so they must be on a file system both see.")
    var spec: String

    @Flag(help: "Wait until the run settles; exit 0 only if it succeeded.")
    var wait = false

    @Option(help: "A folder inputs may come from besides the spec's folder (repeatable); the coordinator admits only folders under its --input-root.")
    var allowRoot: [String] = []

    @Option(help: .hidden)
    var pollSeconds: Double = 1

    @Option(help: "With --wait: how long to keep trying a coordinator that stopped answering before exiting 3.")
    var reconnectSeconds: Double = 60

    @OptionGroup var options: CoordinatorOptions

    func validate() throws {
        guard pollSeconds > 0 else { throw ValidationError("--poll-seconds must be more than 0") }
        guard reconnectSeconds >= 0 else { throw ValidationError("--reconnect-seconds must be 0 or more") }
    }

    func run() async throws {
        let cwd = URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
        let path = URL(fileURLWithPath: spec, relativeTo: cwd).standardizedFileURL.path
        let roots = allowRoot.map { URL(fileURLWithPath: $0, relativeTo: cwd).standardizedFileURL.path }
        // The user's mistakes first, with their lines, before any network call.
        let text: String
        do {
            _ = try PipelineSpec.load(path: path, allowedRoots: roots)
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch let errors as SpecErrors {
            printError(errors.description)
            throw ExitCode(2)
        } catch {
            printError("cannot read the spec \(spec): \(error.localizedDescription)")
            throw ExitCode(2)
        }

        let client = try options.client()
        var view: RunView
        do {
            view = try await client.submit(SubmitRequest(specPath: path, specText: text, allowedRoots: roots, submittedBy: actorName()))
        } catch {
            throw options.exit(for: error)
        }
        guard wait else {
            if options.json { try options.printJSON(view) } else { print(view.id) }
            return
        }
        if !options.json {
            // Straight to the descriptor: a script reading the pipe sees the id while the run goes on.
            writeAll(1, Array((view.id + "\n").utf8))
        }
        view = try await follow(view, client: client)
        if options.json { try options.printJSON(view) }
        switch view.state {
        case .succeeded:
            printNote("run \(view.id) succeeded")
        default:
            printNote("run \(view.id) \(view.state.rawValue)" + (view.message.map { ": \($0)" } ?? ""))
            throw ExitCode(1)
        }
    }

    /// Polls until the run succeeded, failed or was cancelled; says once when
    /// it awaits approval. A coordinator that stops answering (restarted, say)
    /// is tried again for `--reconnect-seconds` before giving up with exit 3:
    /// the run goes on without bis.
    private func follow(_ submitted: RunView, client: CoordinatorClient) async throws -> RunView {
        var view = submitted
        var announced = false
        var poller = RunPoller(client: client, options: options, reconnectSeconds: reconnectSeconds, pollSeconds: pollSeconds)
        while true {
            switch view.state {
            case .succeeded, .failed, .cancelled:
                return view
            case .awaitingApproval where !announced:
                printNote("run \(view.id) awaits approval: bis approve \(view.id)")
                announced = true
            default:
                break
            }
            view = try await poller.next(view)
        }
    }
}

/// A line on stderr that is not an error: progress and outcomes.
func printNote(_ message: String) {
    var err = StandardError()
    print(message, to: &err)
}
