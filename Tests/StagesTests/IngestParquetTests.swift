import Foundation
import Testing
import Columnar
import FleetCore
import TestSupport
@testable import Stages

/// `format: parquet` sources: files written by pyarrow with the types other
/// systems write, each row group a shard, every value and every quarantined
/// row checked against pyarrow's own reading of the same file
/// (`python/parquet_sources.py`).
private let parquetPython = PythonTool(importing: "pyarrow")

@Suite(.enabled(if: parquetPython.enabled, "no Python with pyarrow (set BIS_PYTHON or create .venv)"))
struct IngestParquetTests {
    static let python = parquetPython
    static let script = PythonTool.packageRoot + "/Tests/StagesTests/python/parquet_sources.py"

    static func columnType(_ text: String) throws -> ColumnType {
        switch text {
        case "int64": return .int64
        case "int32": return .int32
        case "double": return .double
        case "bool": return .bool
        case "string": return .string
        case "date": return .date
        case "timestamp": return .timestamp
        default:
            let inner = text.dropFirst("decimal(".count).dropLast().split(separator: ",").map { Int($0)! }
            return .decimal(precision: inner[0], scale: inner[1])
        }
    }

    /// Every shard of `path` ingested into its own folder, outputs read back in shard order.
    static func ingestShards(_ path: String, _ source: IngestSource, dir: IngestTempDir)
        throws -> (shards: [Shard], rows: [[String?]], quarantine: [QuarantineRow], read: Int64)
    {
        let shards = try planShards(path: path, size: 0, shardSize: 1, source: source)
        var rows = [[String?]]()
        var quarantine = [QuarantineRow]()
        var read: Int64 = 0
        for (i, shard) in shards.enumerated() {
            let got = try ingestFile(path, source, shard: shard, dir: dir, out: "shard-\(i)")
            read += got.result.rowsRead
            quarantine += got.quarantine
            let b = got.batch
            for r in 0..<b.rowCount {
                rows.append(zip(b.schema.fields, b.columns).map { field, column in
                    column.scalar(at: r).map { ValueText.format($0, as: field.type) }
                })
            }
        }
        return (shards, rows, quarantine, read)
    }

    @Test func pyarrowFilesIngestExactlyAsPyarrowReadsThem() throws {
        let dir = try IngestTempDir()
        defer { dir.cleanup() }
        let w = try Self.python.script(Self.script, [dir.path])
        try #require(w.status == 0, "\(w.output)")
        let manifest = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir.file("manifest.json")))) as! [String: Any]
        let cases = manifest["cases"] as! [[String: Any]]
        #expect(cases.count >= 10)
        for c in cases {
            let name = c["name"] as! String
            let path = c["path"] as! String
            let fields = try (c["columns"] as! [[String: Any]]).map {
                Field($0["name"] as! String, try Self.columnType($0["type"] as! String), nullable: $0["nullable"] as! Bool)
            }
            let source = IngestSource(format: .parquet, columns: fields,
                                      missingColumns: c["missing_columns"] as! String == "null" ? .fillNull : .error,
                                      extraColumns: c["extra_columns"] as! String == "ignore" ? .ignore : .error)
            if let words = c["error"] as? [String] {
                // Refused when planned, and by the ingest of a shard made by hand.
                do {
                    _ = try planShards(path: path, size: 0, shardSize: 1, source: source)
                    Issue.record("\(name): planned without error, expected one naming \(words)")
                } catch {
                    for word in words { #expect("\(error)".contains(word), "\(name): \(error)") }
                }
                do {
                    _ = try ingest(shard: Shard(path: path, rowGroup: 0), source: source, outputDir: dir.file("refused-\(name)"))
                    Issue.record("\(name): ingested without error, expected one naming \(words)")
                } catch {
                    for word in words { #expect("\(error)".contains(word), "\(name): \(error)") }
                }
                continue
            }
            let got: (shards: [Shard], rows: [[String?]], quarantine: [QuarantineRow], read: Int64)
            do {
                got = try Self.ingestShards(path, source, dir: dir)
            } catch {
                Issue.record("\(name): \(error)")
                continue
            }
            // One shard per row group, each starting at its first row's number.
            let groups = c["row_groups"] as! Int
            #expect(got.shards.count == groups, "\(name)")
            #expect(got.shards.map(\.rowGroup) == (0..<groups).map { Optional($0) }, "\(name)")
            let wantRows = c["rows"] as! [[Any]]
            let wantQ = c["quarantine"] as! [[Any]]
            #expect(got.read == Int64(wantRows.count + wantQ.count), "\(name)")
            #expect(got.rows.count == wantRows.count, "\(name): \(got.rows.count) rows, expected \(wantRows.count)")
            for (i, (g, w)) in zip(got.rows, wantRows).enumerated() {
                let want: [String?] = w.map { v in
                    if let s = v as? String { return s }
                    if let n = v as? NSNumber { return n.stringValue }
                    return nil
                }
                // The declared columns, then _source_file, then _source_line.
                let mine = Array(g.prefix(fields.count)) + [g.last!]
                if mine != want {
                    Issue.record("\(name) row \(i): got \(mine), expected \(want)")
                    break
                }
                #expect(g[fields.count] == path, "\(name) row \(i): _source_file")
            }
            let gotQ = got.quarantine.map { "\($0.line) \($0.column ?? "-")" }
            let expectQ = wantQ.map { "\(($0[0] as! NSNumber).int64Value) \($0[1] as! String)" }
            #expect(gotQ == expectQ, "\(name) quarantine")
            // The reason names the row group and the row within it; raw holds the row as JSON.
            let first = got.shards.map(\.firstLine)
            for q in got.quarantine {
                let g = first.lastIndex { $0 <= q.line }!
                #expect(q.reason.hasPrefix("row group \(g), row \(q.line - first[g] + 1), column \(q.column!): "), "\(name): \(q.reason)")
                #expect(q.file == path)
                #expect(q.raw.hasPrefix("{\"") && q.raw.hasSuffix("}"), "\(name): \(q.raw)")
            }
        }
    }

    /// Reasons as users read them, one per rule.
    @Test func quarantineReasonsNameTheRule() throws {
        let dir = try IngestTempDir()
        defer { dir.cleanup() }
        let w = try Self.python.script(Self.script, [dir.path])
        try #require(w.status == 0, "\(w.output)")
        let path = dir.file("zstd_ns_int64.parquet")
        let source = IngestSource(format: .parquet, columns: [
            Field("id", .int64, nullable: false), Field("tns", .timestamp), Field("u64", .int64),
        ])
        let got = try Self.ingestShards(path, source, dir: dir)
        let reasons = got.quarantine.map(\.reason)
        #expect(reasons.contains { $0.contains("has sub-microsecond digits; a timestamp holds microseconds") })
        #expect(reasons.contains { $0.contains("'18446744073709551615' does not fit int64") })
        #expect(reasons.contains { $0.contains("'9223372036854775808' does not fit int64") })
    }
}

extension Int128 {
    func power(_ n: Int) -> Int128 { (0..<n).reduce(1) { r, _ in r * self } }
}
