import ArgumentParser
import Columnar
import Foundation

extension ChunkCommand {
    struct Inspect: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show a chunk's schema, row groups, sizes, encodings and statistics.")

        @Argument(help: "The Parquet file.")
        var file: String

        @Flag(help: "Print JSON instead of text.")
        var json = false

        struct Report: Codable {
            struct Column: Codable {
                var name: String
                var type: String
                var nullable: Bool
            }
            struct Chunk: Codable {
                var column: String
                var physicalType: String
                var codec: String
                var encodings: [String]
                var values: Int64
                var compressedBytes: Int64
                var uncompressedBytes: Int64
                var nullCount: Int64?
                var min: String?
                var max: String?
            }
            struct RowGroup: Codable {
                var index: Int
                var rows: Int64
                var compressedBytes: Int64
                var uncompressedBytes: Int64
                var columns: [Chunk]
            }
            var file: String
            var bytes: Int64
            var rows: Int64
            var createdBy: String?
            var keyValueMetadata: [String: String]
            var schema: [Column]
            var rowGroups: [RowGroup]
        }

        func run() async throws {
            let report = try failing { try makeReport() }
            if json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
                print(String(decoding: try encoder.encode(report), as: UTF8.self))
                return
            }
            print("file: \(report.file)")
            print("bytes: \(report.bytes)  rows: \(report.rows)  row groups: \(report.rowGroups.count)")
            if let c = report.createdBy { print("created by: \(c)") }
            for (k, v) in report.keyValueMetadata.sorted(by: { $0.key < $1.key }) {
                print("metadata: \(k) = \(v)")
            }
            print("schema:")
            for c in report.schema {
                print("  \(c.name): \(c.type)\(c.nullable ? "" : " not null")")
            }
            for g in report.rowGroups {
                print("row group \(g.index): \(g.rows) rows, \(g.compressedBytes) bytes (\(g.uncompressedBytes) uncompressed)")
                for c in g.columns {
                    let nulls = c.nullCount.map(String.init) ?? "?"
                    let range = c.min == nil ? "no min/max" : "min \(c.min!) max \(c.max!)"
                    print("  \(c.column): \(c.physicalType) \(c.codec) \(c.encodings.joined(separator: ",")) "
                        + "\(c.compressedBytes)/\(c.uncompressedBytes) bytes, nulls \(nulls), \(range)")
                }
            }
        }

        func makeReport() throws -> Report {
            let reader = try ParquetReader(path: file)
            let size = (try? FileManager.default.attributesOfItem(atPath: file)[.size] as? Int64) ?? nil
            var kv = [String: String]()
            for e in reader.keyValueMetadata { kv[e.key] = e.value }
            // By position: a file may name two columns alike (pyarrow and DuckDB write such files).
            let types = reader.schema.fields.map(\.type)
            return Report(
                file: file, bytes: size ?? 0, rows: reader.rowCount, createdBy: reader.createdBy,
                keyValueMetadata: kv,
                schema: reader.schema.fields.map { .init(name: $0.name, type: $0.type.description, nullable: $0.nullable) },
                rowGroups: reader.rowGroups.map { g in
                    .init(index: g.index, rows: g.rowCount, compressedBytes: g.compressedBytes,
                          uncompressedBytes: g.uncompressedBytes, columns: g.columns.enumerated().map { i, c in
                        let t = types[i]
                        return .init(
                            column: c.name, physicalType: c.physicalType, codec: c.codec, encodings: c.encodings,
                            values: c.numValues, compressedBytes: c.compressedBytes, uncompressedBytes: c.uncompressedBytes,
                            nullCount: c.statistics?.nullCount,
                            min: c.statistics?.min.map { ValueText.format($0, as: t) },
                            max: c.statistics?.max.map { ValueText.format($0, as: t) })
                    })
                })
        }
    }
}
