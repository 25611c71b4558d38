import Foundation
import TestSupport
import Testing

/// Published datasets on a fleet of real processes: `bis datasets`,
/// `bis dataset show|rollback` (read back through DuckDB with view.sql), the
/// schema contract (a changed schema fails the run and leaves CURRENT; an
/// additive one passes with `schema_change: additive`) and `bis lineage
/// trace DATASET`.
@Suite(.serialized, .usesBroker, .enabled(if: FleetEnvironment.enabled,
                             "no broker (BIS_TEST_AMQP_URL; run ops/test) or no Python with duckdb (BIS_PYTHON)"))
struct DatasetProcessTests {
    /// The fleet spec for `dataset`, with the normalize filter replaced,
    /// extra normalize steps after it and extra publish settings.
    static func spec(_ fleet: Fleet, file: String, pipeline: String, dataset: String, filter: String = "qty is null or qty > 0",
                     normalize: [String] = [], publish: [String] = []) throws -> String {
        var text = FleetData.spec(pipeline: pipeline, dataset: dataset, summary: dataset + "_by_region")
        let original = #"  - filter: "qty is null or qty > 0""#
        precondition(text.contains(original) && text.contains("publish:\n  dataset: \(dataset)\n"))
        text = text.replacingOccurrences(of: original, with: (["  - filter: \"\(filter)\""] + normalize.map { "  - " + $0 })
            .joined(separator: "\n"))
        text = text.replacingOccurrences(of: "publish:\n", with: "publish:\n" + publish.map { "  \($0)\n" }.joined())
        let path = fleet.dir + "/\(file).yml"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    struct Dataset: Decodable {
        var name: String
        var kind: String
        var versions: Int
        var current: String?
        var rows: Int64?
        var schemaSHA256: String?
    }

    struct Detail: Decodable {
        struct Version: Decodable {
            var run: String
            var rows: Int64
            var schemaSHA256: String
            var current: Bool
        }
        var dataset: Dataset
        var versions: [Version]
    }

    struct ViewCheck: Decodable {
        var rows: Int
        var equal: Bool
    }

    /// DuckDB runs `view.sql` and compares the view's rows with the files of
    /// the version folder of `run` (read directly).
    static func viewMatches(_ fleet: Fleet, dataset: String, run: String) throws -> ViewCheck {
        let code = """
            import duckdb, json, sys
            view, name, version = sys.argv[1:4]
            con = duckdb.connect()
            con.execute(open(view).read())
            a = con.execute(f'select * from "{name}" order by id').fetchall()
            b = con.execute(f"select * from read_parquet('{version}/*.parquet') order by id").fetchall()
            print(json.dumps({"rows": len(a), "equal": a == b}))
            """
        let folder = fleet.dataRoot + "/published/" + dataset
        let r = try PythonTool.run(try FleetEnvironment.python.python(), ["-c", code, folder + "/view.sql", dataset, folder + "/" + run])
        guard r.status == 0, let line = r.output.split(separator: "\n").last,
              let check = try? JSONDecoder().decode(ViewCheck.self, from: Data(line.utf8)) else {
            throw FleetError("the DuckDB view check failed (status \(r.status)):\n\(r.output)")
        }
        return check
    }

    static func current(_ fleet: Fleet, _ dataset: String) -> String? {
        (try? String(contentsOfFile: fleet.dataRoot + "/published/\(dataset)/CURRENT", encoding: .utf8))?
            .trimmingCharacters(in: .whitespacesAndNewlines)
    }

    @Test func rollbackSchemaContractAndDatasetCommands() async throws {
        try await withFleet("datasets") { fleet in
            let pipeline = FleetProcessTests.pipelineName("ds")
            let dataset = "ds_" + randomHex(6)

            // Two versions: the first keeps fewer rows.
            let first = try await fleet.bis(["submit", try Self.spec(fleet, file: "v1", pipeline: pipeline, dataset: dataset,
                                                                     filter: "qty > 5"), "--wait"])
            guard fleet.check(first.exitCode == 0, "the first run should succeed: \(first)") else { return }
            let run1 = try runID(printedBy: first)
            let second = try await fleet.bis(["submit", try Self.spec(fleet, file: "v2", pipeline: pipeline, dataset: dataset), "--wait"])
            guard fleet.check(second.exitCode == 0, "the second run should succeed: \(second)") else { return }
            let run2 = try runID(printedBy: second)

            // bis datasets and dataset show list both.
            let list = try await fleet.bis(["datasets", "--json"])
            let datasets = (try? JSONDecoder().decode([Dataset].self, from: Data(list.stdout.utf8))) ?? []
            let entry = datasets.first { $0.name == dataset }
            fleet.check(list.exitCode == 0 && entry?.versions == 2 && entry?.current == run2 && entry?.kind == "dataset"
                        && entry?.schemaSHA256?.count == 64 && (entry?.rows ?? 0) > 0,
                        "bis datasets should list \(dataset) with 2 versions, CURRENT \(run2): \(list)")
            fleet.check(datasets.contains { $0.name == dataset + "_by_region" && $0.kind == "summary" && $0.versions == 2 },
                        "bis datasets should list the summary too: \(list)")
            let text = try await fleet.bis(["datasets"])
            fleet.check(text.exitCode == 0 && text.stdout.contains(dataset) && text.stdout.contains("SCHEMA"), "bis datasets: \(text)")

            let show = try await fleet.bis(["dataset", "show", dataset, "--json"])
            let detail = try? JSONDecoder().decode(Detail.self, from: Data(show.stdout.utf8))
            fleet.check(show.exitCode == 0 && detail?.versions.map(\.run) == [run2, run1]
                        && detail?.versions.map(\.current) == [true, false]
                        && Set(detail?.versions.map(\.schemaSHA256) ?? []).count == 1
                        && (detail?.versions[1].rows ?? 0) < (detail?.versions[0].rows ?? 0),
                        "dataset show should list \(run2) (CURRENT) and \(run1) with one schema, the first with fewer rows: \(show)")

            // The run view shows the schema hash.
            let status = try await fleet.status(run2)
            fleet.check(status.publishedSchemas?[dataset] == entry?.schemaSHA256 && status.publishedSchemas?[dataset] != nil,
                        "status should show \(dataset)'s schema sha256: \(String(describing: status.publishedSchemas))")
            let statusText = try await fleet.bis(["status", run2])
            fleet.check(statusText.stdout.contains("schema sha256 \(entry?.schemaSHA256 ?? "?")"), "bis status RUN: \(statusText)")

            // Roll back to the first version; DuckDB reads it through view.sql.
            let back = try await fleet.bis(["dataset", "rollback", dataset, "--to", run1])
            fleet.check(back.exitCode == 0 && back.stdout.contains("CURRENT moved from \(run2) to \(run1)"), "rollback: \(back)")
            fleet.check(Self.current(fleet, dataset) == run1, "CURRENT should name \(run1) after the rollback")
            let v1 = try Self.viewMatches(fleet, dataset: dataset, run: run1)
            fleet.check(v1.equal && v1.rows == Int(detail?.versions.last?.rows ?? -1),
                        "view.sql after the rollback should read exactly \(run1)'s rows: \(v1)")
            let audit = try await fleet.bis(["audit", "--run", run1])
            fleet.check(audit.stdout.contains("dataset.rolled_back") && audit.stdout.contains("moved from \(run2) to \(run1)"),
                        "the audit log should record the rollback: \(audit)")

            // Refusals: an unknown dataset, a run without a version.
            let unknown = try await fleet.bis(["dataset", "rollback", "no_such_dataset", "--to", run1])
            fleet.check(unknown.exitCode == 2 && unknown.stderr.contains("no published dataset 'no_such_dataset'"), "\(unknown)")
            let noVersion = try await fleet.bis(["dataset", "rollback", dataset, "--to", "no-such-run"])
            fleet.check(noVersion.exitCode == 2 && noVersion.stderr.contains("has no version of run 'no-such-run'"), "\(noVersion)")
            fleet.check(Self.current(fleet, dataset) == run1, "a refused rollback must not move CURRENT")

            // Forward again.
            let forward = try await fleet.bis(["dataset", "rollback", dataset, "--to", run2])
            fleet.check(forward.exitCode == 0 && Self.current(fleet, dataset) == run2, "roll forward: \(forward)")
            let v2 = try Self.viewMatches(fleet, dataset: dataset, run: run2)
            fleet.check(v2.equal && v2.rows > v1.rows, "view.sql after rolling forward should read \(run2)'s rows: \(v2)")

            // A bare dataset name traces CURRENT's version.
            let trace = try await fleet.bis(["lineage", "trace", dataset])
            fleet.check(trace.exitCode == 0 && trace.stdout.contains("published/\(dataset)/\(run2)/_manifest.json")
                        && fleet.inputs.contains { trace.stdout.contains(($0 as NSString).lastPathComponent) },
                        "lineage trace \(dataset) should trace \(run2)'s version to the input files: \(trace)")

            // A changed type fails the run's quality gate; CURRENT stays.
            let changed = try await fleet.bis(["submit", try Self.spec(fleet, file: "v3", pipeline: pipeline, dataset: dataset,
                                                                       normalize: ["cast: {amount: double}"]), "--wait"])
            fleet.check(changed.exitCode == 1, "a run whose schema changed should fail: \(changed)")
            let run3 = try #require(try? runID(printedBy: changed), "submit --wait should print the run id: \(changed)")
            let s3 = try await fleet.status(run3)
            fleet.check(s3.state == "failed" && s3.message?.contains("quality gate failed") == true
                        && s3.message?.contains("column amount: decimal(12,2) → double") == true,
                        "the failed run should name the difference:\n\(s3)")
            fleet.check(!FileManager.default.fileExists(atPath: fleet.dataRoot + "/published/\(dataset)/\(run3)"),
                        "a refused version must not be in place")
            fleet.check(Self.current(fleet, dataset) == run2, "a refused schema change must leave CURRENT on \(run2)")

            // A new nullable column at the end passes with schema_change: additive.
            let additive = try await fleet.bis(["submit", try Self.spec(fleet, file: "v4", pipeline: pipeline, dataset: dataset,
                                                                        normalize: [#"derive: {remark: "note"}"#],
                                                                        publish: ["schema_change: additive"]), "--wait"])
            guard fleet.check(additive.exitCode == 0, "an additive change with schema_change: additive should pass: \(additive)")
            else { return }
            let run4 = try runID(printedBy: additive)
            fleet.check(Self.current(fleet, dataset) == run4, "CURRENT should name \(run4)")
            let after = try await fleet.bis(["dataset", "show", dataset, "--json"])
            let hashes = (try? JSONDecoder().decode(Detail.self, from: Data(after.stdout.utf8)))?.versions.map(\.schemaSHA256) ?? []
            fleet.check(hashes.count == 3 && hashes[0] != hashes[1], "the additive version has a schema hash of its own: \(after)")
        }
    }
}
