import Foundation
import Testing
import TestSupport
import Columnar
@testable import Stages

/// A Python with pyarrow and duckdb (see TestSupport's `PythonTool`).
/// Required when BIS_REQUIRE_PYTHON=1.
enum IngestPython {
    static let packageRoot = PythonTool.packageRoot
    static let scripts = packageRoot + "/Tests/StagesTests/python"

    static let tool = PythonTool(importing: "pyarrow, duckdb")
    static var interpreter: String? { tool.interpreter }

    static var enabled: Bool { tool.enabled }

    static func run(_ executable: String, _ args: [String]) throws -> (status: Int32, output: String) {
        try PythonTool.run(executable, args)
    }
}

@Suite(.enabled(if: IngestPython.enabled, "no Python with pyarrow and duckdb (set BIS_PYTHON)"))
struct IngestCrossCheckTests {
    @Test func pyarrowAndDuckDBReadTheSameCSVAsOurIngest() throws {
        let python = try #require(IngestPython.interpreter, "BIS_REQUIRE_PYTHON=1 but no Python with pyarrow and duckdb: set BIS_PYTHON")
        let dir = try IngestTempDir()
        defer { dir.cleanup() }
        var rng = IngestShardTests.SplitMix(state: 99)
        var text = "\u{FEFF}id,qty,name,day,at,flag,ratio,small\r\n"
        let words = ["plain", "\"a,b\"", "\"say \"\"hi\"\"\"", "\"two\nlines\"", "\"crlf\r\ninside\"", "日本", "NA", "", "\"\"", "naïve 🎉"]
        for i in 0..<3000 {
            let qty = Int.random(in: -99_999_999...99_999_999, using: &rng)
            let q = i % 11 == 0 ? "" : "\(qty < 0 ? "-" : "")\(abs(qty) / 100).\(String(format: "%02d", abs(qty) % 100))"
            let day = i % 13 == 0 ? "NULL" : String(format: "%04d-%02d-%02d", Int.random(in: 1900...2100, using: &rng),
                                                   Int.random(in: 1...12, using: &rng), Int.random(in: 1...28, using: &rng))
            let at = i % 7 == 0 ? "" : String(format: "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ", Int.random(in: 1970...2099, using: &rng),
                                             Int.random(in: 1...12, using: &rng), Int.random(in: 1...28, using: &rng),
                                             Int.random(in: 0...23, using: &rng), Int.random(in: 0...59, using: &rng),
                                             Int.random(in: 0...59, using: &rng), Int.random(in: 0...999_999, using: &rng))
            let flag = ["true", "false", ""][i % 3]
            let ratio = i % 5 == 0 ? "NA" : "\(Double(Int.random(in: -1_000_000...1_000_000, using: &rng)) / 64)"
            let small = "\(Int.random(in: Int(Int32.min)...Int(Int32.max), using: &rng))"
            text += "\(i),\(q),\(words[i % words.count]),\(day),\(at),\(flag),\(ratio),\(small)\r\n"  // DuckDB wants one record-end style per file
        }
        let path = try dir.write("cross.csv", text)
        let source = IngestSource(format: .csv, columns: [
            Field("id", .int64), Field("qty", .decimal(precision: 15, scale: 2)), Field("name", .string), Field("day", .date),
            Field("at", .timestamp), Field("flag", .bool), Field("ratio", .double), Field("small", .int32),
        ])
        let r = try ingestFile(path, source, dir: dir)
        #expect(r.quarantine == [])
        #expect(r.batch.rowCount == 3000)
        let check = try IngestPython.run(python, [IngestPython.scripts + "/ingest_crosscheck.py", path, r.result.chunk.path])
        #expect(check.status == 0, "\(check.output)")
        #expect(check.output.hasPrefix("ok 3000"), "\(check.output)")
    }
}
