import Foundation
import Testing
import TestSupport
@testable import Columnar

/// Finds a Python with pyarrow and duckdb: $BIS_PYTHON, else
/// <package root>/.venv/bin/python.
enum PythonEnvironment {
    static let packageRoot = PythonTool.packageRoot
    static let scripts = packageRoot + "/Tests/ColumnarTests/python"

    static let tool = PythonTool(importing: "pyarrow, duckdb")
    static var interpreter: String? { tool.interpreter }

    static var required: Bool { PythonTool.required }

    /// Run when a Python is there, or when one is required (then the tests fail).
    static var enabled: Bool { interpreter != nil || required }

    static func python() throws -> String {
        try #require(interpreter, "BIS_REQUIRE_PYTHON=1 but no Python with pyarrow and duckdb was found: set BIS_PYTHON, or run python3 -m venv .venv && .venv/bin/pip install pyarrow duckdb")
    }

    static func run(_ executable: String, _ args: [String]) throws -> (status: Int32, output: String) {
        try PythonTool.run(executable, args)
    }

    static func script(_ name: String, _ args: [String]) throws -> (status: Int32, output: String) {
        try run(try python(), [scripts + "/" + name] + args)
    }
}

@Suite(.enabled(if: PythonEnvironment.enabled, "no Python with pyarrow and duckdb (set BIS_PYTHON or create .venv)"))
struct CrossCheckTests {
    /// The canonical text of a value, as the Python scripts write it.
    static func canonical(_ s: Scalar) -> String {
        switch s {
        case .int(let v): return String(v)
        case .double(let d): return d.description
        case .bool(let b): return b ? "true" : "false"
        case .bytes(let b): return String(decoding: b, as: UTF8.self)
        }
    }

    static func expectation(_ batch: ColumnBatch, createdBy: String) throws -> Data {
        var columns = [[String: Any]]()
        for (field, column) in zip(batch.schema.fields, batch.columns) {
            let values: [Any] = (0..<column.count).map { i in
                if let v = column.scalar(at: i) { return canonical(v) as Any }
                return NSNull() as Any
            }
            columns.append(["name": field.name, "type": field.type.description, "values": values])
        }
        return try JSONSerialization.data(withJSONObject: ["columns": columns, "created_by": createdBy])
    }

    /// A table of every type, with the edge values that break writers.
    static func everyTypeTable(rows: Int, seed: UInt64) throws -> ColumnBatch {
        var gen = TableGenerator(seed: seed)
        let schema = Schema([
            Field("i64", .int64), Field("i32", .int32, nullable: false), Field("f64", .double),
            Field("flag", .bool), Field("name", .string), Field("code", .string, nullable: false),
            Field("day", .date), Field("at", .timestamp), Field("amount", .decimal(precision: 15, scale: 2)),
            Field("small", .decimal(precision: 9, scale: 3), nullable: false), Field("seq", .int64, nullable: false),
        ])
        var columns = [Column]()
        for field in schema.fields {
            switch field.name {
            case "day":
                // Within Python's date range: years 1...9999.
                columns.append(try Column(.date, scalars: (0..<rows).map { i in
                    i % 7 == 0 ? nil : .int(Int64(gen.int(-719_162...2_932_896)))
                }))
            case "at":
                columns.append(try Column(.timestamp, scalars: (0..<rows).map { i in
                    i % 9 == 0 ? nil : .int(Int64(gen.int(-62_135_596_800_000_000...253_402_300_799_000_000)))
                }))
            case "code":
                columns.append(try Column(.string, scalars: (0..<rows).map { i in
                    .string(["", "AIR", "MAIL", "日本", "🎉", "naïve"][i % 6])
                }))
            case "seq":
                columns.append(try Column(.int64, scalars: (0..<rows).map { .int(Int64($0)) }))
            default:
                columns.append(try gen.column(field, rows: rows))
            }
        }
        return try ColumnBatch(schema: schema, columns: columns)
    }

    @Test(arguments: [WriterOptions.Compression.zstd(level: 3), .uncompressed])
    func pyarrowAndDuckDBReadOurFilesExactly(compression: WriterOptions.Compression) throws {
        _ = try PythonEnvironment.python()
        let dir = try TempDir()
        defer { dir.cleanup() }
        let table = try Self.everyTypeTable(rows: 5000, seed: compression == .uncompressed ? 1 : 2)
        var options = WriterOptions()
        options.rowGroupRows = 1500
        options.pageBytes = 4096
        options.compression = compression
        let path = dir.file("ours.parquet")
        let writer = try ParquetWriter(path: path, schema: table.schema, options: options)
        try writer.append(table)
        _ = try writer.finish()
        let expected = dir.file("expected.json")
        try Self.expectation(table, createdBy: options.createdBy).write(to: URL(fileURLWithPath: expected))
        let r = try PythonEnvironment.script("check_ours.py", [path, expected])
        #expect(r.status == 0, "\(r.output)")
    }

    /// No rows at all, and columns whose every value is null (statistics
    /// without min/max).
    @Test(arguments: ["empty", "all-null"])
    func pyarrowAndDuckDBReadEdgeFiles(kind: String) throws {
        _ = try PythonEnvironment.python()
        let dir = try TempDir()
        defer { dir.cleanup() }
        let template = try Self.everyTypeTable(rows: 1, seed: 4)
        let rows = kind == "empty" ? 0 : 300
        let columns = try template.schema.fields.map { field in
            try Column(field.type, scalars: (0..<rows).map { i -> Scalar? in
                if field.nullable { return nil }
                return field.type == .string ? .string("x") : .int(Int64(i))
            })
        }
        let table = try ColumnBatch(schema: template.schema, columns: columns)
        let path = dir.file("\(kind).parquet")
        let writer = try ParquetWriter(path: path, schema: table.schema)
        try writer.append(table)
        _ = try writer.finish()
        let expected = dir.file("expected.json")
        try Self.expectation(table, createdBy: WriterOptions().createdBy).write(to: URL(fileURLWithPath: expected))
        let r = try PythonEnvironment.script("check_ours.py", [path, expected])
        #expect(r.status == 0, "\(r.output)")
        #expect(try ParquetReader(path: path).read().isIdentical(to: table))
    }

    @Test func duckDBSkipsRowGroupsByOurStatistics() throws {
        _ = try PythonEnvironment.python()
        let dir = try TempDir()
        defer { dir.cleanup() }
        let table = try Self.everyTypeTable(rows: 4000, seed: 3)
        var options = WriterOptions()
        options.rowGroupRows = 1000
        let path = dir.file("groups.parquet")
        let writer = try ParquetWriter(path: path, schema: table.schema, options: options)
        try writer.append(table)
        _ = try writer.finish()
        // seq >= 1000 excludes row group 0 (seq 0...999), which the script damages.
        let count = 3000, sum = (1000..<4000).reduce(0, +)
        let r = try PythonEnvironment.script("duckdb_prunes.py", [path, "seq", "1000", String(count), String(sum)])
        #expect(r.status == 0, "\(r.output)")
    }

    @Test func weReadPyarrowAndDuckDBFilesExactly() throws {
        _ = try PythonEnvironment.python()
        let dir = try TempDir()
        defer { dir.cleanup() }
        let w = try PythonEnvironment.script("write_foreign.py", [dir.path])
        try #require(w.status == 0, "\(w.output)")
        let manifest = try JSONSerialization.jsonObject(
            with: Data(contentsOf: URL(fileURLWithPath: dir.file("manifest.json")))) as! [String: Any]
        let columns = manifest["columns"] as! [[String: Any]]
        let files = manifest["files"] as! [[String: Any]]
        #expect(files.count >= 10)
        for file in files {
            let path = file["path"] as! String
            let name = (path as NSString).lastPathComponent
            if let word = file["error"] as? String {
                do {
                    _ = try ParquetReader(path: path).read()
                    Issue.record("\(name): read without error, expected one naming \(word)")
                } catch let error as ColumnarError {
                    guard case .unsupported = error else {
                        Issue.record("\(name): \(error) is not an 'unsupported' error")
                        continue
                    }
                    #expect("\(error)".contains(word), "\(name): \(error)")
                }
                continue
            }
            let batch: ColumnBatch
            do {
                batch = try ParquetReader(path: path).read()
            } catch {
                Issue.record("\(name): \(error)")
                continue
            }
            let expected = (file["columns"] as? [[String: Any]]) ?? columns
            #expect(batch.rowCount == ((expected.first?["values"] as? [Any])?.count ?? -1), "\(name)")
            for col in expected {
                let colName = col["name"] as! String
                guard let column = batch[colName] else {
                    Issue.record("\(name): no column \(colName)")
                    continue
                }
                #expect(column.type.description == col["type"] as! String, "\(name) \(colName)")
                let want = col["values"] as! [Any]
                guard want.count == column.count else {
                    Issue.record("\(name) \(colName): \(column.count) rows, expected \(want.count)")
                    continue
                }
                for (i, w) in want.enumerated() {
                    let got = column.scalar(at: i)
                    let ok: Bool
                    switch (got, w as? String) {
                    case (nil, nil): ok = true
                    case (.double(let g)?, let s?):
                        let d = Double(s)!
                        ok = d.isNaN ? g.isNaN : g.bitPattern == d.bitPattern
                    case (let g?, let s?): ok = Self.canonical(g) == s
                    default: ok = false
                    }
                    if !ok {
                        Issue.record("\(name) \(colName) row \(i): got \(String(describing: got)), expected \(w)")
                        break
                    }
                }
            }
            // Statistics from other writers decode to the same domain as values.
            let reader = try ParquetReader(path: path)
            if let seq = reader.rowGroups.first?.column("seq")?.statistics {
                #expect(seq.min == .int(0), "\(name)")
            }
        }
        // Damaged copies of every readable file (v2 pages, delta and
        // byte-stream-split included) fail with ColumnarError or read; they
        // never trap.
        var rng = SplitMix(seed: 77)
        let damagedPath = dir.file("damaged.parquet")
        for file in files where file["error"] as? String == nil {
            let good = [UInt8](try Data(contentsOf: URL(fileURLWithPath: file["path"] as! String)))
            for _ in 0..<40 {
                var damaged = good
                for _ in 0..<Int.random(in: 1...3, using: &rng) {
                    damaged[Int.random(in: 4..<damaged.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
                }
                try Data(damaged).write(to: URL(fileURLWithPath: damagedPath))
                do {
                    _ = try ParquetReader(path: damagedPath).read()
                } catch is ColumnarError {
                } catch {
                    Issue.record("unexpected error type: \(error)")
                }
            }
        }
    }
}
