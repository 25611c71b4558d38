import Foundation
import Testing
import TestSupport
@testable import Columnar

/// `ParquetSourceReader`: the types other systems write, every value
/// compared with pyarrow's reading of the same file
/// (`python/write_source_types.py`).
@Suite(.enabled(if: PythonEnvironment.enabled, "no Python with pyarrow and duckdb (set BIS_PYTHON or create .venv)"))
struct SourceReaderTests {
    static func text(_ column: SourceColumn, _ row: Int) -> String? {
        if column.isNull(row) { return nil }
        switch column {
        case .wide(let v, _): return String(v[row])
        case .typed(let c): return c.scalar(at: row).map { CrossCheckTests.canonical($0) }
        }
    }

    @Test func wideTypesReadAsPyarrowReadsThem() throws {
        _ = try PythonEnvironment.python()
        let dir = try TempDir()
        defer { dir.cleanup() }
        let w = try PythonEnvironment.script("write_source_types.py", [dir.path])
        try #require(w.status == 0, "\(w.output)")
        let manifest = try JSONSerialization.jsonObject(
            with: Data(contentsOf: URL(fileURLWithPath: dir.file("manifest.json")))) as! [String: Any]
        let files = manifest["files"] as! [[String: Any]]
        #expect(files.count == 5)
        for file in files {
            let path = file["path"] as! String
            let name = (path as NSString).lastPathComponent
            let reader = try ParquetSourceReader(path: path)
            for col in file["columns"] as! [[String: Any]] {
                let colName = col["name"] as! String
                let i = try #require(reader.fieldIndex(colName), "\(name): no column \(colName)")
                let field = reader.fields[i]
                #expect(field.kind?.description == col["kind"] as? String, "\(name) \(colName): \(field)")
                let want = col["values"] as! [Any]
                var got = [String?]()
                for g in reader.rowGroupRows.indices {
                    let column = try reader.read(field: i, rowGroup: g)
                    #expect(column.count == Int(reader.rowGroupRows[g]))
                    got += (0..<column.count).map { Self.text(column, $0) }
                }
                #expect(got.count == want.count, "\(name) \(colName)")
                for (r, (g, w)) in zip(got, want).enumerated() where g != (w as? String) {
                    Issue.record("\(name) \(colName) row \(r): got \(g ?? "null"), expected \(w)")
                    break
                }
            }
            // The chunk reader still refuses these types, naming them.
            #expect(throws: ColumnarError.self) { _ = try ParquetReader(path: path).read() }
        }
        // Unsupported columns: the file opens; reading one names file, column and feature.
        let unsupported = manifest["unsupported"] as! [String: Any]
        let path = unsupported["path"] as! String
        let reader = try ParquetSourceReader(path: path)
        #expect(reader.fields.map(\.name) == ["id", "tags", "point", "at", "key"])
        let id = try reader.read(field: 0, rowGroup: 0)
        #expect(Self.text(id, 0) == "1" && Self.text(id, 1) == "2")
        for (column, word) in unsupported["refusals"] as! [String: String] {
            let i = try #require(reader.fieldIndex(column))
            #expect(reader.fields[i].kind == nil)
            do {
                _ = try reader.read(field: i, rowGroup: 0)
                Issue.record("\(column): read, expected a refusal naming \(word)")
            } catch let error as ColumnarError {
                guard case .unsupported = error else { Issue.record("\(column): \(error)"); continue }
                for part in [path, "'\(column)'", word] { #expect("\(error)".contains(part), "\(error)") }
            }
        }
    }

    /// Damaged copies of the wide-type files fail with ColumnarError or
    /// read; they never trap.
    @Test func damagedSourceFilesNeverTrap() throws {
        _ = try PythonEnvironment.python()
        let dir = try TempDir()
        defer { dir.cleanup() }
        let w = try PythonEnvironment.script("write_source_types.py", [dir.path])
        try #require(w.status == 0, "\(w.output)")
        var rng = SplitMix(seed: 2026)
        let damagedPath = dir.file("damaged.parquet")
        for name in ["source_zstd_int96.parquet", "source_none_v2_plain.parquet", "unsupported.parquet"] {
            let good = [UInt8](try Data(contentsOf: URL(fileURLWithPath: dir.file(name))))
            for _ in 0..<60 {
                var damaged = good
                for _ in 0..<Int.random(in: 1...3, using: &rng) {
                    damaged[Int.random(in: 4..<damaged.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
                }
                try Data(damaged).write(to: URL(fileURLWithPath: damagedPath))
                do {
                    let reader = try ParquetSourceReader(path: damagedPath)
                    for f in reader.fields.indices where reader.fields[f].kind != nil {
                        for g in reader.rowGroupRows.indices { _ = try reader.read(field: f, rowGroup: g) }
                    }
                } catch is ColumnarError {
                } catch {
                    Issue.record("unexpected error type: \(error)")
                }
            }
        }
    }
}
