import ArgumentParser
import CoordinatorAPI
import Foundation

/// `bis quarantine RUN [--rule R] [--limit N]`: the rows a run set aside, and why.
struct QuarantineCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "quarantine",
        abstract: "List a run's quarantined rows: file, line, rule, reason and the row itself.",
        discussion: """
            Ingest's rows come first (values that did not parse: rule `parse`), \
            then normalize's (values a `cast` could not convert: rule `cast`, with \
            the value), then validate's (rows that failed a rule: the rule's name, \
            the reason, and the row's values as JSON). All name the input file and \
            the line where the row's record starts. Fix the input at file:line, or \
            the spec, and submit again.
            --rule keeps the rows of one rule, by its full name as shown \
            ("not_null l_orderkey") or its kind ("not_null", "range", "parse", "cast").
            Exit codes: 0 listed (also when there are none), 2 no such run or \
            bad usage, 3 the coordinator cannot be reached.
            """
    )

    @Argument(help: "The run id.")
    var run: String

    @Option(help: ArgumentHelp("Only the rows that failed this rule (full name or kind).", valueName: "rule"))
    var rule: String?

    @Option(help: "At most this many rows (1 to 10000).")
    var limit = 100

    @Option(help: "Cut the row text to this many characters in the table (not in --json).")
    var width = 60

    @OptionGroup var options: CoordinatorOptions

    func validate() throws {
        guard (1...10_000).contains(limit) else { throw ValidationError("--limit must be from 1 to 10000") }
        guard width >= 8 else { throw ValidationError("--width must be 8 or more") }
    }

    func run() async throws {
        let client = try options.client()
        let rows: [QuarantinedRow]
        do { rows = try await client.quarantine(run, rule: rule, limit: limit) } catch { throw options.exit(for: error, run: run) }
        if options.json { try options.printJSON(rows); return }
        print(Self.text(rows, run: run, rule: rule, limit: limit, width: width))
    }

    static func text(_ rows: [QuarantinedRow], run: String, rule: String?, limit: Int, width: Int) -> String {
        guard !rows.isEmpty else {
            return "no quarantined rows in run \(run)" + (rule.map { " for rule '\($0)'" } ?? "")
        }
        let cells = rows.map { q in
            [q.file ?? q.chunk, q.line.map(String.init) ?? "-", q.rule,
             // The column, unless the reason names it already (ingest's do: "line 7, column price: …").
             RunText.oneLine(q.reason) + (q.column.map { q.reason.contains("column \($0)") ? "" : " (column \($0))" } ?? ""),
             truncate(RunText.oneLine(q.row), width)]
        }
        var lines = table(["file", "line", "rule", "reason", "row"], cells, rightAligned: [1])
        if rows.count >= limit {
            lines.append("(first \(limit) rows; more may be quarantined: raise --limit)")
        }
        return lines.joined(separator: "\n")
    }

    static func truncate(_ text: String, _ width: Int) -> String {
        text.count <= width ? text : String(text.prefix(width - 1)) + "…"
    }
}
