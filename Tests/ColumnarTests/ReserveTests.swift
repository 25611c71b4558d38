import Foundation
import Synchronization
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
            // Huge hints too: the target is clamped, never computed by an
            // addition that overflows.
            let hints = batches.map { _ -> Int? in
                gen.chance(0.6) ? gen.int(0...1000) : gen.chance(0.5) ? [Int.max, Int(Int32.max), Int.max - 1].randomElement()! : nil
            }

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
            reserved.reserveCapacity(toHold: Int.min)
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
            #expect(BuilderPool.shared.bytes > 0, "the finished writer left its builders")
            for k in 0..<3 {
                let other = gen.schema()
                let w = try ParquetWriter(path: dir.file("other\(seed)-\(k).parquet"), schema: other, options: WriterOptions())
                try w.append(try gen.batch(other, rows: gen.int(0...300)))
                if k == 2 { w.abandon() } else { _ = try w.finish() }
            }
            // A builder given back full of values and nulls is cleared when taken.
            var dirty = [ColumnBuilder]()
            for (c, field) in schema.fields.enumerated() {
                var b = ColumnBuilder(field.type)
                let junk = try gen.batch(schema, rows: 50)
                b.append(junk.columns[c], range: 0..<50)
                b.appendNull()
                dirty.append(b)
            }
            BuilderPool.shared.give(dirty, fields: schema.fields)
            let reusedBefore = BuilderPool.shared.reusedCount
            #expect(try write("reused\(seed).parquet") == fresh, "seed \(9000 + seed)")
            #expect(BuilderPool.shared.reusedCount - reusedBefore == schema.fields.count,
                    "every column took a pooled builder")
        }
    }

    /// The pool keeps each column's own builder for the next writer of the
    /// same schema, and at most one writer's set: giving a second, smaller
    /// writer's builders leaves no more than the largest set given.
    @Test func poolKeepsOneWritersBuilders() throws {
        let pool = BuilderPool()
        let fields = [Field("a", .int64), Field("b", .string), Field("c", .string)]
        func builders(_ sizes: [Int]) -> [ColumnBuilder] {
            zip(fields, sizes).map { f, n in
                var b = ColumnBuilder(f.type)
                switch f.type.storage {
                case .bytes: for _ in 0..<n { try! b.append(.bytes(Array(repeating: 120, count: 16))) }
                default: for _ in 0..<n { try! b.append(.int(1)) }
                }
                b.removeAll()
                return b
            }
        }
        let first = builders([1000, 10, 5000])
        let firstBytes = first.reduce(0) { $0 + $1.capacityBytes }
        pool.give(first, fields: fields)
        #expect(pool.bytes == firstBytes)
        pool.give(first, fields: fields)   // the same set again: replaces, does not add
        #expect(pool.bytes == firstBytes)
        // Column by column: "c" gets back the big string buffer, "b" the small one.
        let taken = pool.take(fields)
        #expect(pool.reusedCount == 3)
        #expect(pool.bytes == 0)
        // (`first` still shares the buffers, so taking may copy them: compare sizes, not identity.)
        #expect(taken[2].capacityBytes > taken[1].capacityBytes * 10)
        #expect(taken[0].capacityBytes >= 8000)
        #expect(taken.allSatisfy { $0.count == 0 })
        // Another schema's spares of the same storage are used when a column has none.
        let other = [Field("x", .string)]
        pool.give(Array(first[2...]), fields: other)
        let t = pool.take([Field("y", .string)])
        #expect(pool.reusedCount == 4)
        #expect(t[0].capacityBytes == first[2].capacityBytes)
        // Never more than the largest set given, older writers' spares dropped first.
        pool.give(first, fields: fields)
        pool.give(builders([0, 3000, 0]), fields: [Field("p", .int64), Field("q", .string), Field("r", .string)])
        #expect(pool.bytes <= firstBytes)
        // The cap bounds it too, and drain empties it.
        pool.capBytes = firstBytes / 2
        #expect(pool.bytes <= firstBytes / 2)
        pool.drain()
        #expect(pool.bytes == 0)
        pool.capBytes = 0
        pool.give(first, fields: fields)
        #expect(pool.bytes == 0)
    }

    /// Writers on several threads at once share the pool: each table written
    /// concurrently (four times over) gives the bytes of a serial write.
    @Test func concurrentWritersShareThePool() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        var gen = TableGenerator(seed: 9900)
        var made = [(Schema, [ColumnBatch])]()
        for _ in 0..<6 {
            let schema = gen.schema()
            made.append((schema, try (0..<gen.int(1...3)).map { _ in try gen.batch(schema, rows: gen.int(0...300)) }))
        }
        let tables = made
        var tuned = WriterOptions()
        tuned.rowGroupRows = 97
        let options = tuned
        @Sendable func write(_ t: Int, _ path: String) throws -> Data {
            let w = try ParquetWriter(path: path, schema: tables[t].0, options: options)
            for b in tables[t].1 { try w.append(b) }
            _ = try w.finish()
            return try Data(contentsOf: URL(fileURLWithPath: path))
        }
        let serial = try tables.indices.map { try write($0, dir.file("serial\($0).parquet")) }
        let jobs = tables.count * 4
        let paths = (0..<jobs).map { dir.file("concurrent\($0).parquet") }
        let results = Mutex([Int: Data]())
        DispatchQueue.concurrentPerform(iterations: jobs) { j in
            let data = try? write(j % tables.count, paths[j])
            results.withLock { $0[j] = data }
        }
        let got = results.withLock { $0 }
        for j in 0..<jobs {
            #expect(got[j] == serial[j % tables.count], "job \(j)")
        }
    }
}
