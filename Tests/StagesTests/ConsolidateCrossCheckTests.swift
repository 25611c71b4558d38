import Columnar
import Foundation
import Testing
import TestSupport
@testable import Stages

/// A Python with duckdb (see TestSupport's `PythonTool`). Required when BIS_REQUIRE_PYTHON=1.
enum StagesPython {
    static let packageRoot = PythonTool.packageRoot
    static let scripts = packageRoot + "/Tests/StagesTests/python"

    static let tool = PythonTool(importing: "duckdb")
    static var interpreter: String? { tool.interpreter }

    static var required: Bool { PythonTool.required }
    static var enabled: Bool { interpreter != nil || required }

    static func run(_ executable: String, _ args: [String]) throws -> (status: Int32, output: String) {
        try PythonTool.run(executable, args)
    }

    static func script(_ name: String, _ args: [String]) throws -> (status: Int32, output: String) {
        let python = try #require(interpreter, "BIS_REQUIRE_PYTHON=1 but no Python with duckdb was found: set BIS_PYTHON")
        return try run(python, [scripts + "/" + name] + args)
    }
}

@Suite(.enabled(if: StagesPython.enabled, "no Python with duckdb (set BIS_PYTHON or create .venv)"))
struct ConsolidateCrossCheckTests {
    static func shard(_ s: Int, rows: Int, seed: UInt64) throws -> ColumnBatch {
        var rng = OpRandom(seed: seed &* 31 &+ UInt64(s))
        let names = ["alpha", "Beta", "gamma", "ä", "日本", "", "zeta"]
        return try opBatch([
            ("k", .int64, (0..<rows).map { _ in rng.chance(0.02) ? nil : .int(Int64(rng.int(-40...400))) }),
            ("line", .int32, (0..<rows).map { _ in rng.chance(0.02) ? nil : .int(Int64(rng.int(1...4))) }),
            ("updated", .date, (0..<rows).map { _ in rng.chance(0.15) ? nil : .int(Int64(rng.int(19_000...19_004))) }),
            ("amount", .decimal(precision: 15, scale: 2), (0..<rows).map { _ in rng.chance(0.1) ? nil : .int(Int64(rng.int(-5_000_000...90_000_000))) }),
            ("price", .double, (0..<rows).map { _ in rng.chance(0.1) ? nil : .double(Double(rng.int(-1_000_000...1_000_000)) / 64) }),
            ("flag", .string, (0..<rows).map { _ in rng.chance(0.05) ? nil : .string(["A", "N", "R"][rng.int(0...2)]) }),
            ("status", .bool, (0..<rows).map { _ in rng.chance(0.05) ? nil : .bool(rng.chance(0.5)) }),
            ("name", .string, (0..<rows).map { _ in rng.chance(0.1) ? nil : .string(names[rng.int(0...names.count - 1)]) }),
            ("shard", .int64, (0..<rows).map { _ in .int(Int64(s)) }),
            ("seq", .int64, (0..<rows).map { .int(Int64($0)) }),
        ])
    }

    @Test(arguments: [(UInt64(1), 1 << 30, "latest"), (2, 20_000, "latest"), (3, 20_000, "first")])
    func consolidateAndAggregatesMatchDuckDB(seed: UInt64, budget: Int, keep: String) throws {
        let dir = try OpTempDir()
        defer { dir.cleanup() }
        let inputs = try (0..<4).map { s in
            try opWriteChunk(dir.file("shard-\(s).parquet"), [try Self.shard(s, rows: 2500, seed: seed)], rowGroupRows: 600).path
        }
        var options = ConsolidateOptions()
        options.memoryBudgetBytes = budget
        options.rowsPerChunk = 700
        let result = try consolidate(inputChunks: inputs, partitionBy: ["k"], sortBy: ["k", "line"],
                                     dedupe: DedupeRule(key: ["k", "line"], keep: keep == "first" ? .first : .latest(by: "updated")),
                                     outputDir: try dir.sub("out"), options: options)
        #expect(budget > 1 << 20 || result.spilledRuns > 1)

        // Partials per output chunk, merged: what validate and publish do.
        let specs: [AggregateColumn] = [
            AggregateColumn("rows", .count), AggregateColumn("amounts", .countNonNull("amount")),
            AggregateColumn("names", .countDistinct("name")), AggregateColumn("sum_amount", .sum("amount")),
            AggregateColumn("sum_line", .sum("line")), AggregateColumn("min_name", .min("name")),
            AggregateColumn("max_amount", .max("amount")), AggregateColumn("min_updated", .min("updated")),
            AggregateColumn("max_status", .max("status")), AggregateColumn("avg_amount", .avg("amount")),
            AggregateColumn("avg_price", .avg("price")), AggregateColumn("sum_price", .sum("price")),
        ]
        var merged: PartialAggregate?
        for chunk in result.chunks {
            let p = try #require(try partialAggregate(chunks: [chunk.path], groupBy: ["flag", "status"], aggregates: specs))
            merged = try merged.map { try $0.merging(p) } ?? p
        }
        let table = try #require(merged).result()
        let agg = try opWriteChunk(dir.file("agg.parquet"), [table])

        let r = try StagesPython.script("check_consolidate.py",
                                        [keep, inputs.joined(separator: ","), result.chunks.map(\.path).joined(separator: ","), agg.path])
        #expect(r.status == 0, "\(r.output)")
        let report = try JSONSerialization.jsonObject(with: Data(r.output.utf8)) as? [String: Any]
        #expect(report?["ok"] as? Bool == true, "\(r.output)")
        #expect(report?["rows"] as? Int == Int(result.rowsOut))
        #expect((report?["groups"] as? Int ?? 0) >= 9)
        #expect(result.duplicatesRemoved > 1000)
    }
}
