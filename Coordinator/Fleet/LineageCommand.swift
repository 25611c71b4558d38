import ArgumentParser
import CoordinatorAPI
import Foundation

/// `bis lineage trace|impact|export`: where output rows came from, what an
/// input file fed, and the lineage in OpenLineage's form.
struct LineageCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lineage",
        abstract: "Trace outputs back to their input files, find what an input fed, export OpenLineage events.",
        subcommands: [LineageTraceCommand.self, LineageImpactCommand.self, LineageExportCommand.self]
    )
}

struct LineageTraceCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "trace",
        abstract: "Show the tree from a run, dataset version, chunk or checksum back to the input files.",
        discussion: """
            TARGET is a run id (its published datasets, else its latest \
            stage's outputs), DATASET/RUN (a published version), a chunk path \
            (absolute, or relative to the data root) or a sha256. Each node \
            shows its path, rows and sha256, and the stage, task and execution \
            that wrote it; the leaves are the input files with their sha256, \
            to compare with `sha256sum FILE`. A chunk that feeds several others \
            is shown once, then referred to.
            Exit codes: 0 shown, 2 nothing matches TARGET or bad usage, 3 the \
            coordinator cannot be reached.
            """
    )

    @Argument(help: "A run id, DATASET/RUN, a chunk path or a sha256.")
    var target: String

    @OptionGroup var options: CoordinatorOptions

    func run() async throws {
        let client = try options.client()
        // A path to a file here is sent absolute: the coordinator has another working directory.
        var sent = target
        if !target.hasPrefix("/"), FileManager.default.fileExists(atPath: target) {
            sent = URL(fileURLWithPath: target).standardizedFileURL.path
        }
        let node: LineageNode
        do { node = try await client.lineageTrace(sent) } catch { throw options.exit(for: error) }
        if options.json { try options.printJSON(node); return }
        print(LineageText.tree(node))
    }
}

struct LineageImpactCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "impact",
        abstract: "List every run, dataset version and delivery that used an input file.",
        discussion: """
            FILE is the input file's path (as the spec matched it; a relative \
            path is taken from here) or its sha256: a file that changed since \
            is still found by the checksum the runs recorded.
            Exit codes: 0 listed (also when no run used it), 2 bad usage, 3 the \
            coordinator cannot be reached.
            """
    )

    @Argument(help: "An input file's path or sha256.")
    var file: String

    @OptionGroup var options: CoordinatorOptions

    func run() async throws {
        let client = try options.client()
        let isChecksum = file.count == 64 && file.allSatisfy(\.isHexDigit)
        let sent = isChecksum || file.hasPrefix("/") ? file : URL(fileURLWithPath: file).standardizedFileURL.path
        let report: ImpactReport
        do { report = try await client.lineageImpact(sent) } catch { throw options.exit(for: error) }
        if options.json { try options.printJSON(report); return }
        print(LineageText.impact(report))
    }
}

struct LineageExportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Print a run's lineage as OpenLineage RunEvents, one JSON event a line.",
        discussion: """
            Every execution of every task is an OpenLineage run (job \
            PIPELINE.STAGE in namespace `bis`) with a START event and a \
            COMPLETE or FAIL one, its input and output files as datasets \
            (namespace `file`), and the BIS run as its parent run. Send them on \
            to a lineage server, e.g. \
            `bis lineage export RUN --openlineage | while read -r e; do curl -s -H 'Content-Type: application/json' -d "$e" http://marquez:5000/api/v1/lineage; done`.
            With --json: one JSON array instead of lines.
            Exit codes: 0 exported, 2 no such run or bad usage, 3 the \
            coordinator cannot be reached.
            """
    )

    @Argument(help: "The run id.")
    var run: String

    @Flag(help: "OpenLineage RunEvents (spec 2-0-2); the one format there is, and required so that scripts say what they read.")
    var openlineage = false

    @OptionGroup var options: CoordinatorOptions

    func validate() throws {
        guard openlineage else { throw ValidationError("say which format: --openlineage (the only one so far)") }
    }

    func run() async throws {
        let client = try options.client()
        let events: [OpenLineageEvent]
        do { events = try await client.openLineage(run) } catch { throw options.exit(for: error, run: run) }
        if options.json { try options.printJSON(events); return }
        let encoder = APICoding.encoder()
        var out: [UInt8] = []
        for e in events {
            out += Array(try encoder.encode(e))
            out.append(UInt8(ascii: "\n"))
        }
        writeAll(1, out)
    }
}

/// The text `bis lineage` prints: pure functions of the answers.
enum LineageText {
    /// An indented tree; a node already shown (shared by several parents) is
    /// shown again by path only.
    static func tree(_ root: LineageNode) -> String {
        var lines: [String] = []
        var shown = Set<String>()
        func walk(_ n: LineageNode, prefix: String, childPrefix: String) {
            let key = n.path + "@" + n.sha256
            let repeated = !n.inputs.isEmpty && shown.contains(key)
            lines.append(prefix + describe(n) + (repeated ? "  (inputs shown above)" : ""))
            guard !repeated else { return }
            shown.insert(key)
            for (i, child) in n.inputs.enumerated() {
                let last = i == n.inputs.count - 1
                walk(child, prefix: childPrefix + (last ? "└─ " : "├─ "), childPrefix: childPrefix + (last ? "   " : "│  "))
            }
        }
        walk(root, prefix: "", childPrefix: "")
        return lines.joined(separator: "\n")
    }

    static func describe(_ n: LineageNode) -> String {
        guard let removed = n.removedAt else { return describeChunk(n) }
        return describeChunk(n) + "  [removed \(removed.formatted(.iso8601)) by retention]"
    }

    static func describeChunk(_ n: LineageNode) -> String {
        guard let p = n.producedBy else {
            if n.kind == .source {
                return "input \(n.path)  sha256 \(n.sha256)" + (n.name.map { "  source \($0)" } ?? "")
            }
            // The root over a run's several outputs (no chunk of its own), or a chunk whose writer is not recorded.
            if n.sha256.isEmpty { return "\(n.name ?? n.path): \(n.inputs.count) outputs, \(n.rows) rows" }
            return "\(n.path)  rows \(n.rows)  sha256 \(n.sha256)"
        }
        var text = "\(p.stage.rawValue) \(n.path)  rows \(n.rows)  sha256 \(n.sha256.prefix(16))"
        text += "  task \(p.task)  execution \(p.execution)"
        if p.attempt > 1 { text += "  attempt \(p.attempt)" }
        return text
    }

    static func impact(_ r: ImpactReport) -> String {
        guard !r.runs.isEmpty else { return "no run has read \(r.query)" }
        var lines: [String] = []
        for use in r.runs {
            lines.append("run \(use.run)  pipeline \(use.pipeline)  \(use.state.rawValue)")
            lines.append("  read \(use.file)  sha256 \(use.sha256)")
            for (dataset, version) in use.datasets.sorted(by: { $0.key < $1.key }) {
                lines.append("  published \(dataset): \(version)")
            }
            for d in use.deliveries { lines.append("  delivered: \(d)") }
            if use.datasets.isEmpty && use.deliveries.isEmpty { lines.append("  (nothing published or delivered)") }
        }
        return lines.joined(separator: "\n")
    }
}
