import Foundation
import Testing
@testable import Columnar

@Suite struct ReserveTests {
    /// `ParquetWriter.reserve(rows:)` is only a hint about memory: random
    /// tables written with hints of any size (too small, too large, after
    /// any batch, with row groups cut by rows or by bytes) give the same
    /// bytes as without them.
    @Test func reserveLeavesTheFileUnchanged() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        for seed in UInt64(0)..<60 {
            var gen = TableGenerator(seed: 7000 + seed)
            let schema = gen.schema()
            var options = WriterOptions()
            options.rowGroupRows = gen.int(1...300)
            options.rowGroupBytes = gen.chance(0.5) ? gen.int(64...4000) : 128 << 20
            options.pageBytes = gen.int(16...2000)
            options.dictionary = gen.chance(0.8)
            var batches = [ColumnBatch]()
            for _ in 0..<gen.int(1...5) {
                batches.append(try gen.batch(schema, rows: gen.int(0...200)))
            }
            let hints = batches.map { _ in gen.chance(0.6) ? gen.int(0...1000) : nil }

            let plain = dir.file("plain\(seed).parquet")
            let w1 = try ParquetWriter(path: plain, schema: schema, options: options)
            for b in batches { try w1.append(b) }
            _ = try w1.finish()

            let hinted = dir.file("hinted\(seed).parquet")
            let w2 = try ParquetWriter(path: hinted, schema: schema, options: options)
            w2.reserve(rows: 50)   // before any row: ignored
            for (b, hint) in zip(batches, hints) {
                try w2.append(b)
                if let hint { w2.reserve(rows: hint) }
            }
            _ = try w2.finish()

            let a = try Data(contentsOf: URL(fileURLWithPath: plain))
            let b = try Data(contentsOf: URL(fileURLWithPath: hinted))
            #expect(a == b, "seed \(7000 + seed)")
        }
    }

    @Test func builderReserveKeepsValues() throws {
        var gen = TableGenerator(seed: 42)
        let schema = gen.schema()
        let batch = try gen.batch(schema, rows: 100)
        for (c, field) in schema.fields.enumerated() {
            var plain = ColumnBuilder(field.type)
            var reserved = ColumnBuilder(field.type)
            plain.append(batch.columns[c], range: 0..<10)
            reserved.append(batch.columns[c], range: 0..<10)
            reserved.reserveCapacity(toHold: 1000)
            reserved.reserveCapacity(toHold: 5)
            plain.append(batch.columns[c], range: 10..<100)
            reserved.append(batch.columns[c], range: 10..<100)
            #expect(plain.build().isIdentical(to: reserved.build()), "\(field.name)")
        }
    }

    /// Writers take the emptied builders of finished ones (`BuilderPool`):
    /// a table written with fresh builders and again after writers of other
    /// schemas (and an abandoned one) left theirs gives the same bytes.
    @Test func reusedBuildersLeaveTheFileUnchanged() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        for seed in UInt64(0)..<20 {
            var gen = TableGenerator(seed: 9000 + seed)
            let schema = gen.schema()
            var options = WriterOptions()
            options.rowGroupRows = gen.int(1...300)
            options.pageBytes = gen.int(16...2000)
            let batches = try (0..<gen.int(1...4)).map { _ in try gen.batch(schema, rows: gen.int(0...200)) }
            func write(_ name: String) throws -> Data {
                let path = dir.file(name)
                let w = try ParquetWriter(path: path, schema: schema, options: options)
                for b in batches { try w.append(b) }
                _ = try w.finish()
                return try Data(contentsOf: URL(fileURLWithPath: path))
            }
            BuilderPool.shared.drain()
            let fresh = try write("fresh\(seed).parquet")
            for k in 0..<3 {
                let other = gen.schema()
                let w = try ParquetWriter(path: dir.file("other\(seed)-\(k).parquet"), schema: other, options: WriterOptions())
                try w.append(try gen.batch(other, rows: gen.int(0...300)))
                if k == 2 { w.abandon() } else { _ = try w.finish() }
            }
            #expect(try write("reused\(seed).parquet") == fresh, "seed \(9000 + seed)")
        }
    }
}
