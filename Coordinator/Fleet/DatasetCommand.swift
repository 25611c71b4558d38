import ArgumentParser
import CoordinatorAPI
import Foundation

/// `bis datasets`: every published dataset with its CURRENT version.
struct DatasetsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "datasets",
        abstract: "List the published datasets: versions, CURRENT's run, rows, bytes, schema hash, published at.",
        discussion: """
            One line per dataset and per summary under the coordinator's data root (published/<name>/). \
            SCHEMA is the start of the SHA-256 of CURRENT's schema (--json has it whole). Needs any role (viewer up).
            Exit codes: 0 listed, 3 the coordinator cannot be reached, 4 refused.
            """
    )
    @OptionGroup var options: CoordinatorOptions

    func run() async throws {
        let client = try options.client()
        let list: [DatasetView]
        do { list = try await client.datasets() } catch { throw options.exit(for: error) }
        if options.json { try options.printJSON(list); return }
        if list.isEmpty { print("nothing is published yet"); return }
        print(DatasetText.list(list))
    }
}

/// `bis dataset show|rollback`.
struct DatasetCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dataset",
        abstract: "Show a published dataset's versions, or point its CURRENT at another version.",
        subcommands: [DatasetShowCommand.self, DatasetRollbackCommand.self]
    )
}

struct DatasetShowCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show",
        abstract: "List a dataset's versions (run, rows, bytes, schema hash, published at) and which is CURRENT.",
        discussion: """
            Newest first; CURRENT's line is marked with '*', and CURRENT's columns follow. Needs any role (viewer up).
            Exit codes: 0 shown, 2 no such dataset, 3 the coordinator cannot be reached, 4 refused.
            """
    )
    @Argument(help: "The dataset's name (publish.dataset in the spec, or a summary's name).")
    var name: String
    @OptionGroup var options: CoordinatorOptions

    func run() async throws {
        let client = try options.client()
        let detail: DatasetDetail
        do { detail = try await client.dataset(name) } catch { throw options.exit(for: error) }
        if options.json { try options.printJSON(detail); return }
        print(DatasetText.show(detail))
    }
}

struct DatasetRollbackCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rollback",
        abstract: "Point a dataset's CURRENT (and view.sql) at the version of another run; rolling forward is the same.",
        discussion: """
            The version's files are checked against its manifest first; CURRENT and view.sql are then each \
            replaced atomically (temp file, fsync, rename). A crash between the two leaves view.sql on the old \
            version until the coordinator restarts or the dataset is rolled back or published again; \
            `bis datasets` flags it. Summaries of the dataset with a version of RUN move along. \
            The audit log records who asked (dataset.rollback_requested) and what happened \
            (dataset.rolled_back, dataset.rollback_unchanged or dataset.rollback_refused). \
            Needs the operator or admin role. A later duplicate of a rolled-away run's publish leaves CURRENT \
            alone; a new run's publish moves CURRENT to its new version as usual (and checks the schema \
            contract against the version CURRENT names then).
            Exit codes: 0 moved (or CURRENT already named RUN), 1 the version is damaged or a publish holds \
            the dataset (nothing moved), \
            2 no such dataset or no version of RUN, 3 the coordinator cannot be reached, 4 refused.
            """
    )
    @Argument(help: "The dataset's name.")
    var name: String
    @Option(name: .customLong("to"), help: "The run whose version becomes CURRENT (`bis dataset show NAME` lists them).")
    var run: String
    @OptionGroup var options: CoordinatorOptions

    func validate() throws {
        guard !run.trimmingCharacters(in: .whitespaces).isEmpty else { throw ValidationError("--to needs a run id") }
    }

    func run() async throws {
        let client = try options.client()
        let result: RollbackResult
        do { result = try await client.rollback(name, to: run, by: actorName()) } catch { throw options.exit(for: error) }
        if options.json { try options.printJSON(result); return }
        print(result.moved
              ? "dataset \(result.dataset): CURRENT moved from \(result.from ?? "(none)") to \(result.to)"
              : "dataset \(result.dataset): CURRENT already names \(result.to); nothing moved")
        if let old = result.fromSchemaSHA256, let new = result.detail.dataset.schemaSHA256, old != new {
            FileHandle.standardError.write(Data(("note: readers now see another schema: sha256 \(old.prefix(12)) → \(new.prefix(12)) "
                                                 + "(`bis dataset show \(name)` lists its columns)\n").utf8))
        }
        if let moved = result.summaries, !moved.isEmpty { print("summaries moved along: " + moved.joined(separator: ", ")) }
        if let left = result.summariesLeft, !left.isEmpty {
            print("summaries without a version of \(result.to), left on their CURRENT: " + left.joined(separator: ", "))
        }
    }
}

/// Text of the dataset commands.
enum DatasetText {
    static func list(_ list: [DatasetView]) -> String {
        let time = ISO8601DateFormatter()
        return table(["NAME", "KIND", "VERSIONS", "CURRENT", "ROWS", "BYTES", "SCHEMA", "PUBLISHED"], list.map { d in
            [d.name, d.kind, "\(d.versions)", d.current ?? "-", d.rows.map(String.init) ?? "-", d.bytes.map(String.init) ?? "-",
             d.schemaSHA256.map { String($0.prefix(12)) } ?? "-", d.publishedAt.map { time.string(from: $0) } ?? "-"]
        }, rightAligned: [2, 4, 5]).joined(separator: "\n")
            + list.compactMap { d in d.problem.map { "\n! \(d.name): \($0)" } }.joined()
    }

    static func show(_ detail: DatasetDetail) -> String {
        let time = ISO8601DateFormatter()
        let d = detail.dataset
        var lines = ["dataset \(d.name) (\(d.kind)\(d.summaryOf.map { " of \($0)" } ?? "")): \(d.versions) "
                     + "version\(d.versions == 1 ? "" : "s"), CURRENT \(d.current ?? "names none")"]
        if let hash = d.schemaSHA256 { lines.append("schema sha256 \(hash)") }
        if let problem = d.problem { lines.append("! " + problem) }
        lines.append("")
        lines += table(["", "RUN", "ROWS", "BYTES", "SCHEMA", "PUBLISHED"], detail.versions.map { v in
            [v.current ? "*" : "", v.run, "\(v.rows)", "\(v.bytes)", String(v.schemaSHA256.prefix(12)), time.string(from: v.publishedAt)]
        }, rightAligned: [2, 3])
        if !detail.columns.isEmpty {
            lines.append("")
            lines.append("columns of CURRENT:")
            lines += detail.columns.map { "  \($0.name) \($0.type)\($0.nullable ? "" : " not null")" }
        }
        return lines.joined(separator: "\n")
    }
}
