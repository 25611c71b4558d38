import Foundation
import PropertyBased
import Testing
@testable import Columnar

/// Round trip as a property with shrinking: the library picks the table's
/// shape (rows, row-group and page sizes, compression) and a seed for the
/// values; a failure shrinks to the smallest shape that still fails and
/// prints the seed to replay.
@Suite struct PropertyTests {
    @Test func everyTableRoundTrips() async throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        await propertyCheck(
            count: 150,
            input: Gen.int(in: 0...1_000_000), Gen.int(in: 0...400), Gen.int(in: 1...150),
            Gen.int(in: 16...4000), Gen.bool()
        ) { seed, rows, groupRows, pageBytes, compressed in
            var gen = TableGenerator(seed: UInt64(seed))
            let schema = gen.schema()
            let table = try gen.batch(schema, rows: rows)
            var options = WriterOptions()
            options.rowGroupRows = groupRows
            options.pageBytes = pageBytes
            options.compression = compressed ? .zstd(level: 3) : .uncompressed
            let path = dir.file("p\(seed)-\(rows)-\(groupRows)-\(pageBytes).parquet")
            let writer = try ParquetWriter(path: path, schema: schema, options: options)
            // Appended in uneven pieces, as a stage would.
            var start = 0
            while start < rows {
                let n = min(rows - start, gen.int(1...97))
                try writer.append(table.slice(start..<(start + n)))
                start += n
            }
            let result = try writer.finish()
            let reader = try ParquetReader(path: path)
            #expect(reader.schema == schema)
            #expect(result.rows == Int64(rows))
            #expect(reader.rowGroups.count == (rows + groupRows - 1) / groupRows)
            #expect(try reader.read().isIdentical(to: table))
            try? FileManager.default.removeItem(atPath: path)
        }
    }
}
