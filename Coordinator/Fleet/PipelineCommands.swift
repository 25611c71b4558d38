import ArgumentParser
import CoordinatorAPI
import FleetCore
import Foundation

// Registered pipelines and schedules (docs/schedules.md): `bis pipeline
// add|show|pause|resume|remove`, `bis pipelines`, `bis trigger`,
// `bis schedule slots`.

struct PipelineCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pipeline",
        abstract: "Register a pipeline spec (with its schedule), show, pause, resume or remove one.",
        subcommands: [PipelineAddCommand.self, PipelineShowCommand.self, PipelinePauseCommand.self,
                      PipelineResumeCommand.self, PipelineRemoveCommand.self]
    )
}

/// Reads and checks a spec file here; exit 2 with file:line:column.
func checkedSpec(_ spec: String, allowRoot: [String]) throws -> (path: String, text: String, roots: [String], parsed: PipelineSpec) {
    let cwd = URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
    let path = URL(fileURLWithPath: spec, relativeTo: cwd).standardizedFileURL.path
    let roots = allowRoot.map { URL(fileURLWithPath: $0, relativeTo: cwd).standardizedFileURL.path }
    do {
        let parsed = try PipelineSpec.load(path: path, allowedRoots: roots, resolvingInputs: false)
        return (path, try String(contentsOfFile: path, encoding: .utf8), roots, parsed)
    } catch let errors as SpecErrors {
        printError(errors.description)
        throw ExitCode(2)
    } catch {
        printError("cannot read the spec \(spec): \(error.localizedDescription)")
        throw ExitCode(2)
    }
}

struct PipelineAddCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "add",
        abstract: "Register a spec under its pipeline: name, or add a version when its text changed.",
        discussion: """
            The spec is checked here first (exit 2 with file:line:column). Its \
            inputs are not resolved: a schedule's files may not exist yet. Each \
            version is kept with its text and SHA-256; runs use the current one. \
            Needs the operator or admin role.
            """
    )
    @Argument(help: "The pipeline spec (YAML), on a file system the coordinator shares.")
    var spec: String
    @Option(help: "A folder inputs may come from besides the spec's folder (repeatable).")
    var allowRoot: [String] = []
    @OptionGroup var options: CoordinatorOptions

    func run() async throws {
        let (path, text, roots, _) = try checkedSpec(spec, allowRoot: allowRoot)
        let client = try options.client()
        let result: PipelineAddResult
        do {
            result = try await client.addPipeline(PipelineAddRequest(specPath: path, specText: text, allowedRoots: roots, by: actorName()))
        } catch {
            throw options.exit(for: error)
        }
        if options.json { try options.printJSON(result); return }
        print("\(result.pipeline.name) version \(result.pipeline.version) (\(result.outcome))")
        if let s = result.pipeline.schedule {
            printNote("schedule: \(s) (\(result.pipeline.timezone ?? "UTC")); next slot \(result.pipeline.nextSlot ?? "none")")
        }
    }
}

struct PipelineShowCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "show", abstract: "Print a registered pipeline's spec text (the current version, or --version N).")
    @Argument(help: "The pipeline's name.") var name: String
    @Option(help: "The version to print.") var version: Int?
    @OptionGroup var options: CoordinatorOptions

    func run() async throws {
        let client = try options.client()
        let detail: PipelineDetail
        do { detail = try await client.pipeline(name, version: version) } catch { throw options.exit(for: error) }
        if options.json { try options.printJSON(detail) } else {
            printNote("# \(detail.pipeline.name) version \(detail.version) of \(detail.versions.count), sha256 \(detail.specSHA256), "
                      + "from \(detail.specFile)")
            print(detail.specText, terminator: detail.specText.hasSuffix("\n") ? "" : "\n")
        }
    }
}

/// pause, resume, remove.
protocol PipelineChangeCommand: AsyncParsableCommand {
    static var change: PipelineChange { get }
    var name: String { get }
    var options: CoordinatorOptions { get }
}

extension PipelineChangeCommand {
    func run() async throws {
        let client = try options.client()
        let view: PipelineView
        do { view = try await client.changePipeline(name, Self.change, by: actorName()) } catch { throw options.exit(for: error) }
        if options.json { try options.printJSON(view) } else {
            print("\(view.name): " + ["pause": "paused", "resume": "resumed", "remove": "removed"][Self.change.rawValue]!)
        }
    }
}

struct PipelinePauseCommand: PipelineChangeCommand {
    static let configuration = CommandConfiguration(commandName: "pause", abstract: "Stop starting scheduled runs of a pipeline (runs going on go on).")
    static let change = PipelineChange.pause
    @Argument(help: "The pipeline's name.") var name: String
    @OptionGroup var options: CoordinatorOptions
}

struct PipelineResumeCommand: PipelineChangeCommand {
    static let configuration = CommandConfiguration(commandName: "resume", abstract: "Start scheduled runs again; slots missed while paused follow catchup.")
    static let change = PipelineChange.resume
    @Argument(help: "The pipeline's name.") var name: String
    @OptionGroup var options: CoordinatorOptions
}

struct PipelineRemoveCommand: PipelineChangeCommand {
    static let configuration = CommandConfiguration(commandName: "remove", abstract: "Unregister a pipeline (its runs and versions stay in the lineage).")
    static let change = PipelineChange.remove
    @Argument(help: "The pipeline's name.") var name: String
    @OptionGroup var options: CoordinatorOptions
}

struct PipelinesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pipelines",
        abstract: "List registered pipelines: version, schedule, time zone, next slot, last run, paused.")
    @OptionGroup var options: CoordinatorOptions

    func run() async throws {
        let client = try options.client()
        let list: [PipelineView]
        do { list = try await client.pipelines() } catch { throw options.exit(for: error) }
        if options.json { try options.printJSON(list); return }
        if list.isEmpty { print("no registered pipelines (bis pipeline add SPEC)"); return }
        var rows = [["PIPELINE", "VERSION", "SCHEDULE", "TIMEZONE", "NEXT SLOT", "LAST RUN", "STATE", "PAUSED"]]
        for p in list {
            rows.append([p.name, "\(p.version)", p.schedule ?? "-", p.timezone ?? "-", p.nextSlot ?? "-", p.lastRun ?? "-",
                         p.lastRunState?.rawValue ?? "-", p.paused ? "yes" : "no"])
        }
        let widths = rows[0].indices.map { i in rows.map { $0[i].count }.max()! }
        for r in rows {
            print(r.indices.map { i in i == r.count - 1 ? r[i] : r[i].padding(toLength: widths[i], withPad: " ", startingAt: 0) }
                .joined(separator: "  "))
        }
    }
}

struct TriggerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "trigger",
        abstract: "Start a run of a registered pipeline now; print the run id.",
        discussion: """
            The run's slot is --date (local midnight in the schedule's time zone), \
            else now; ${date} in the spec is that date. --param NAME=VALUE gives a \
            declared parameter (repeatable). Exit codes as bis submit.
            """
    )
    @Argument(help: "The pipeline's name.") var name: String
    @Option(help: "The slot's date, YYYY-MM-DD.") var date: String?
    @Option(name: .customLong("param"), help: "NAME=VALUE for a parameter the spec declares (repeatable).")
    var params: [String] = []
    @Flag(help: "Wait until the run settles; exit 0 only if it succeeded.") var wait = false
    @Option(help: .hidden) var pollSeconds: Double = 1
    @Option(help: "With --wait: how long to keep trying a coordinator that stopped answering before exiting 3.")
    var reconnectSeconds: Double = 60
    @OptionGroup var options: CoordinatorOptions

    func validate() throws {
        if let date, LocalDay.parse(date) == nil { throw ValidationError("--date must be YYYY-MM-DD, not '\(date)'") }
        for p in params where !p.contains("=") { throw ValidationError("--param takes NAME=VALUE, not '\(p)'") }
    }

    func run() async throws {
        var values: [String: String] = [:]
        for p in params {
            let i = p.firstIndex(of: "=")!
            values[String(p[..<i])] = String(p[p.index(after: i)...])
        }
        let client = try options.client()
        var view: RunView
        do { view = try await client.trigger(name, TriggerRequest(date: date, params: values, by: actorName())) } catch {
            throw options.exit(for: error)
        }
        guard wait else {
            if options.json { try options.printJSON(view) } else { print(view.id) }
            return
        }
        if !options.json { writeAll(1, Array((view.id + "\n").utf8)) }
        var poller = RunPoller(client: client, options: options, reconnectSeconds: reconnectSeconds, pollSeconds: pollSeconds)
        var announced = false
        while ![.succeeded, .failed, .cancelled].contains(view.state) {
            if view.state == .awaitingApproval, !announced {
                printNote("run \(view.id) awaits approval: bis approve \(view.id)")
                announced = true
            }
            view = try await poller.next(view)
        }
        if options.json { try options.printJSON(view) }
        guard view.state == .succeeded else {
            printNote("run \(view.id) \(view.state.rawValue)" + (view.message.map { ": \($0)" } ?? ""))
            throw ExitCode(1)
        }
        printNote("run \(view.id) succeeded")
    }
}

struct ScheduleCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "schedule",
        abstract: "Check a schedule before trusting it.",
        subcommands: [ScheduleSlotsCommand.self]
    )
}

/// One slot as `bis schedule slots --json` prints it.
struct SlotLine: Codable {
    var utc: String
    var local: String
    var date: String
}

struct ScheduleSlotsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "slots",
        abstract: "List the slots a schedule yields between two dates, in UTC and local time, without running anything.",
        discussion: """
            SPEC_OR_NAME is a spec file (read here) or a registered pipeline's name \
            (its current version, from the coordinator). --from and --to are local \
            dates in the schedule's time zone, both included. start and end of the \
            schedule apply.
            """
    )
    @Argument(help: "A spec file or a registered pipeline's name.") var specOrName: String
    @Option(help: "First local date, YYYY-MM-DD.") var from: String
    @Option(help: "Last local date, YYYY-MM-DD (included).") var to: String
    @OptionGroup var options: CoordinatorOptions

    func validate() throws {
        guard let a = LocalDay.parse(from) else { throw ValidationError("--from must be YYYY-MM-DD, not '\(from)'") }
        guard let b = LocalDay.parse(to) else { throw ValidationError("--to must be YYYY-MM-DD, not '\(to)'") }
        guard a <= b else { throw ValidationError("--to is before --from") }
        guard b - a <= 3660 else { throw ValidationError("at most ten years of slots at once") }
    }

    static func header(_ text: String, _ file: String) throws -> SpecHeader {
        do throws(SpecErrors) { return try SpecHeader.read(yaml: text, file: file) } catch {
            printError(error.description)
            throw ExitCode(2)
        }
    }

    func run() async throws {
        var text = "", file = ""
        if FileManager.default.fileExists(atPath: specOrName) {
            let checked = try checkedSpec(specOrName, allowRoot: [])
            text = checked.text
            file = checked.path
        } else {
            let client = try options.client()
            let detail: PipelineDetail
            do { detail = try await client.pipeline(specOrName, version: nil) } catch { throw options.exit(for: error) }
            text = detail.specText
            file = detail.specFile
        }
        let header = try Self.header(text, file)
        guard let schedule = header.schedule else {
            printError("\(file) has no schedule: (it runs only when triggered)")
            throw ExitCode(2)
        }
        let zone = schedule.timezone
        var lines: [SlotLine] = []
        for day in LocalDay.parse(from)!...LocalDay.parse(to)! {
            for s in schedule.slots(onDay: day) {
                lines.append(SlotLine(utc: SlotText.utc(s.instant), local: SlotText.local(s.instant, in: zone), date: s.localDate))
            }
        }
        if options.json { try options.printJSON(lines); return }
        printNote("\(schedule.cron.text): \(schedule.cron.inWords) (\(zone.identifier)); \(lines.count) slots")
        for l in lines { print("\(l.utc)  \(l.local)") }
    }
}

struct BackfillCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backfill",
        abstract: "Run a registered pipeline once per schedule slot between two dates; print the backfill's id.",
        discussion: """
            --from and --to are local dates in the schedule's time zone, both \
            included (the schedule's start and end do not apply). Slots that \
            already have a succeeded run are skipped unless --rerun. At most \
            --max-active of its runs go at once (default: the schedule's \
            max_active_runs). `bis status BACKFILL` shows runs done / failed / \
            waiting; `bis cancel BACKFILL` cancels it whole. With --wait: exit 0 \
            when every run succeeded, 1 otherwise.
            """
    )
    @Argument(help: "The pipeline's name.") var name: String
    @Option(help: "First local date, YYYY-MM-DD.") var from: String
    @Option(help: "Last local date, YYYY-MM-DD (included).") var to: String
    @Option(help: "Most of its runs active at once.") var maxActive: Int?
    @Flag(help: "Run slots that already succeeded too.") var rerun = false
    @Flag(help: "Wait until every run settled.") var wait = false
    @Option(help: .hidden) var pollSeconds: Double = 1
    @OptionGroup var options: CoordinatorOptions

    func validate() throws {
        guard LocalDay.parse(from) != nil, LocalDay.parse(to) != nil else { throw ValidationError("--from and --to take YYYY-MM-DD") }
        if let n = maxActive, n < 1 { throw ValidationError("--max-active must be 1 or more") }
    }

    func run() async throws {
        let client = try options.client()
        var view: BackfillView
        do {
            view = try await client.backfill(name, BackfillRequest(from: from, to: to, maxActive: maxActive, rerun: rerun, by: actorName()))
        } catch {
            throw options.exit(for: error)
        }
        guard wait else {
            if options.json { try options.printJSON(view) } else { print(view.id) }
            return
        }
        if !options.json { writeAll(1, Array((view.id + "\n").utf8)) }
        while view.state == "running" {
            try await Task.sleep(for: .milliseconds(Int(pollSeconds * 1000)))
            do { view = try await client.backfillView(view.id) } catch { throw options.exit(for: error) }
        }
        if options.json { try options.printJSON(view) } else { printNote(Self.summary(view)) }
        if view.failed > 0 || view.state == "cancelled" { throw ExitCode(1) }
    }

    static func summary(_ v: BackfillView) -> String {
        "backfill \(v.id) of \(v.pipeline) \(v.from) to \(v.to): \(v.state); \(v.slots) slots: \(v.succeeded) done, "
            + "\(v.failed) failed, \(v.running) running, \(v.waiting) waiting, \(v.skipped) skipped"
    }

    /// `bis status BACKFILL`.
    static func show(_ id: String, client: CoordinatorClient, options: CoordinatorOptions) async throws {
        let view: BackfillView
        do { view = try await client.backfillView(id) } catch { throw options.exit(for: error) }
        if options.json { try options.printJSON(view) } else {
            print(summary(view))
            for run in view.runs { print("  \(run)") }
        }
        if view.failed > 0 { throw ExitCode(1) }
    }
}
