import Foundation
import TestSupport
import Testing

/// A `format: parquet` source end to end: pyarrow files with INT96 and
/// nanosecond timestamps, a decimal(38,10), unsigned integers and an
/// undeclared column, each row group a shard, run by real `bis coordinator`
/// and `bis-worker` processes on the broker (and by `bis run --local`); the
/// published dataset, provenance included, equals DuckDB's reading of the
/// same files (python/parquet_fleet.py, EXCEPT ALL both ways), and ingest
/// quarantined exactly the rows that do not fit.
@Suite(.serialized, .usesBroker, .enabled(if: FleetEnvironment.enabled,
                             "no broker (BIS_TEST_AMQP_URL; run ops/test) or no Python with duckdb (BIS_PYTHON)"))
struct FleetParquetTests {
    static let script = PythonTool.packageRoot + "/Tests/FleetIntegrationTests/python/parquet_fleet.py"

    struct Written: Decodable { var files: [String] }
    struct Checked: Decodable {
        var ok: Bool
        var rows: Int
        var quarantined: Int
        var mismatches: [String]
    }

    /// Writes the Parquet inputs and a spec reading them; returns the spec and the files.
    static func prepare(_ fleet: Fleet, pipeline: String) throws -> (spec: String, files: [String]) {
        let w = try FleetEnvironment.python.script(script, ["write", fleet.dir])
        guard w.status == 0, let line = w.output.split(separator: "\n").last,
              let written = try? JSONDecoder().decode(Written.self, from: Data(line.utf8)) else {
            throw FleetError("parquet_fleet.py write failed (status \(w.status)):\n\(w.output)")
        }
        let spec = """
        pipeline: \(pipeline)
        sources:
          events:
            format: parquet
            files: parquet/*.parquet
            columns:
              id: {type: int64, nullable: false}
              region: string
              ts: timestamp
              amount: decimal(18,4)
              qty: int64
              small: int32
            extra_columns: ignore
        publish:
          dataset: events_\(pipeline.replacingOccurrences(of: "-", with: "_"))
          provenance: true

        """
        let path = fleet.dir + "/\(pipeline).yml"
        try spec.write(toFile: path, atomically: true, encoding: .utf8)
        return (path, written.files)
    }

    static func check(_ fleet: Fleet, files: [String], root: String, dataset: String, status s: RunStatus) throws {
        let r = try FleetEnvironment.python.script(script, ["check", files.joined(separator: ","), root, dataset])
        guard r.status == 0, let line = r.output.split(separator: "\n").last,
              let c = try? JSONDecoder().decode(Checked.self, from: Data(line.utf8)) else {
            throw FleetError("parquet_fleet.py check failed (status \(r.status)):\n\(r.output)")
        }
        fleet.check(s.state == "succeeded", "run \(s.id) should have succeeded:\n\(s)")
        fleet.check(c.ok, "published \(dataset) differs from DuckDB's reading of the files:\n\(c.mismatches.joined(separator: "\n"))")
        fleet.check(c.rows > 3000 && c.quarantined > 20, "suspicious counts: \(c.rows) rows, \(c.quarantined) quarantined")
        let ingest = s.stage("ingest")
        // 1037, 1074 and 1111 rows in row groups of 300: 4 + 4 + 4 shards.
        fleet.check(ingest?.total == 12, "each row group should be one ingest task:\n\(s)")
        fleet.check(ingest?.rowsQuarantined == Int64(c.quarantined),
                    "ingest should quarantine DuckDB's \(c.quarantined) rows that do not fit:\n\(s)")
    }

    @Test func parquetSourceOnTheFleetMatchesDuckDB() async throws {
        let pipeline = "pq-\(randomHex(6))"
        try await withFleet("parquet") { fleet in
            let (spec, files) = try Self.prepare(fleet, pipeline: pipeline)
            let r = try await fleet.bis(["submit", spec, "--wait"])
            fleet.check(r.exitCode == 0, "submit --wait should exit 0 when the run succeeds: \(r)")
            let run = try runID(printedBy: r)
            let s = try await fleet.status(run)
            try Self.check(fleet, files: files, root: fleet.dataRoot,
                           dataset: "events_\(pipeline.replacingOccurrences(of: "-", with: "_"))", status: s)
            _ = try fleet.checkOneWinnerPerTask(run)
        }
    }

    @Test func parquetSourceRunLocalMatchesDuckDB() async throws {
        let pipeline = "pql-\(randomHex(6))"
        let fleet = try Fleet(label: "parquet-local", options: FleetOptions(workers: []))
        do {
            let (spec, files) = try Self.prepare(fleet, pipeline: pipeline)
            let root = fleet.dir + "/local-root"
            let r = try await fleet.bis(["run", "--local", spec, "--data-root", root, "--json"], timeout: 300)
            fleet.check(r.exitCode == 0, "bis run --local should exit 0 when the run succeeds: \(r)")
            let s = try JSONDecoder().decode(RunStatus.self, from: Data(r.stdout.utf8))
            try Self.check(fleet, files: files, root: root,
                           dataset: "events_\(pipeline.replacingOccurrences(of: "-", with: "_"))", status: s)
            // A declared column the files lack is refused before anything runs, naming file and column.
            let text = try String(contentsOfFile: spec, encoding: .utf8).replacingOccurrences(of: "small: int32", with: "nope: int32")
            try text.write(toFile: spec, atomically: true, encoding: .utf8)
            let bad = try await fleet.bis(["run", "--local", spec, "--data-root", root + "-bad"], timeout: 300)
            fleet.check(bad.exitCode != 0 && bad.stderr.contains("'nope'") && bad.stderr.contains("events-1.parquet"),
                        "a missing declared column should be refused naming it and the file: \(bad)")
        } catch {
            fleet.record("\(error)")
        }
        await fleet.stop()
        fleet.cleanUp()
    }
}
