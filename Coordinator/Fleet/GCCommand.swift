import ArgumentParser
import CoordinatorAPI
import Foundation

/// `bis gc [--dry-run] [--json]`: a retention pass through the coordinator.
struct GCCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gc",
        abstract: "Remove what retention allows: finished runs' intermediate chunks, old published versions, old lineage rows.",
        discussion: """
            The coordinator decides from its --keep-intermediate, --keep-delivered and --keep-lineage and each \
            spec's publish.keep; it also runs this pass by itself every --gc-interval. Prints each folder removed \
            (or, with --dry-run, that would be), its bytes and files, and why. A real pass needs the operator or \
            admin role and is written to the audit log; --dry-run needs any role and changes nothing.
            Exit codes: 0 done, 3 the coordinator cannot be reached, 4 refused (not authenticated, or your role).
            """
    )
    @Flag(help: "Only list what would be removed.") var dryRun = false
    @OptionGroup var options: CoordinatorOptions

    func run() async throws {
        let client = try options.client()
        let report: GCReport
        do { report = try await client.gc(dryRun: dryRun, by: actorName()) } catch { throw options.exit(for: error) }
        if options.json { try options.printJSON(report); return }
        print(GCText.render(report))
    }
}

enum GCText {
    static func render(_ r: GCReport) -> String {
        var lines: [String] = []
        if r.items.isEmpty {
            lines.append(r.dryRun ? "nothing to remove" : "nothing removed")
        } else {
            lines += table(["OUTCOME", "KIND", "PATH", "BYTES", "FILES", "WHY"], r.items.map { i in
                [r.dryRun ? "would remove" : i.outcome, i.kind, i.path, "\(i.bytes)", "\(i.files)", i.reason]
            }, rightAligned: [3, 4])
        }
        let pruned = "lineage of \(r.lineageExecutionsPruned) executions (\(r.lineageEdgesPruned) edges)"
        lines.append(r.dryRun ? "would reclaim \(r.bytes) bytes in \(r.files) files; \(pruned) would be pruned"
                     : "reclaimed \(r.bytes) bytes in \(r.files) files; \(pruned) pruned")
        lines.append("retention: --keep-intermediate \(RetentionDuration.text(r.keepIntermediateSeconds)), "
                     + "--keep-delivered \(RetentionDuration.text(r.keepDeliveredSeconds)), "
                     + "--keep-lineage \(RetentionDuration.text(r.keepLineageSeconds))")
        return lines.joined(separator: "\n")
    }
}
