import Foundation
import Testing
@testable import Columnar

@Suite struct RoundTripTests {
    /// Property: any schema and table, written with any layout options, reads
    /// back identical (bit-exact doubles, same nulls), and the footer
    /// statistics agree with the data. A seeded generator loop stands in for
    /// a property-testing library; the seed in a failure message reproduces it.
    @Test(arguments: 0..<8)
    func randomTablesRoundTrip(shard: Int) throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        for iteration in 0..<40 {
            let seed = UInt64(shard * 1000 + iteration)
            var gen = TableGenerator(seed: seed)
            let schema = gen.schema()
            var options = WriterOptions()
            options.rowGroupRows = gen.int(1...120)
            options.pageBytes = gen.int(16...2000)
            options.compression = gen.chance(0.7) ? .zstd(level: Int32(gen.int(1...5))) : .uncompressed
            options.dictionary = gen.chance(0.8)
            options.keyValueMetadata = [KeyValue("seed", String(seed))]
            var batches = [ColumnBatch]()
            for _ in 0..<gen.int(0...4) {
                batches.append(try gen.batch(schema, rows: gen.int(0...150)))
            }
            let expected = try concatenate(batches, schema: schema)
            let path = dir.file("t\(seed).parquet")
            let writer = try ParquetWriter(path: path, schema: schema, options: options)
            for b in batches { try writer.append(b) }
            let result = try writer.finish()
            #expect(result.rows == Int64(expected.rowCount))

            let reader = try ParquetReader(path: path)
            #expect(reader.schema == schema, "seed \(seed)")
            #expect(reader.rowCount == Int64(expected.rowCount))
            #expect(reader.keyValueMetadata == [KeyValue("seed", String(seed))])
            let back = try reader.read()
            #expect(back.isIdentical(to: expected), "seed \(seed)")
            try checkStatistics(reader, expected, seed: seed)
        }
    }

    /// Min, max and null count in the footer equal those of the rows.
    func checkStatistics(_ reader: ParquetReader, _ table: ColumnBatch, seed: UInt64) throws {
        var row = 0
        for group in reader.rowGroups {
            let rows = row..<(row + Int(group.rowCount))
            row += Int(group.rowCount)
            for (c, field) in table.schema.fields.enumerated() {
                let column = table.columns[c].slice(rows)
                let stats = try #require(group.columns[c].statistics)
                #expect(stats.nullCount == Int64(column.nullCount), "seed \(seed) \(field.name)")
                var values = (0..<column.count).compactMap { column.scalar(at: $0) }
                if case .double = field.type {
                    values = values.filter { if case .double(let d) = $0 { return !d.isNaN }; return true }
                }
                let sorted = values.sorted { Scalar.compare($0, $1)! < 0 }
                if case .double = field.type {
                    // ±0.0 compare equal; the writer widens zero extremes to -0.0 / +0.0.
                    if let lo = sorted.first, case .double(let x) = lo, case .double(let m)? = stats.min {
                        #expect(x == m && (x != 0 || m.sign == .minus), "seed \(seed)")
                    } else {
                        #expect(stats.min == nil)
                    }
                    if let hi = sorted.last, case .double(let x) = hi, case .double(let m)? = stats.max {
                        #expect(x == m && (x != 0 || m.sign == .plus), "seed \(seed)")
                    } else {
                        #expect(stats.max == nil)
                    }
                } else {
                    #expect(stats.min == sorted.first, "seed \(seed) \(field.name)")
                    #expect(stats.max == sorted.last, "seed \(seed) \(field.name)")
                }
            }
        }
    }

    func sampleTable(rows: Int) throws -> ColumnBatch {
        let schema = Schema([
            Field("id", .int64, nullable: false),
            Field("name", .string),
            Field("price", .decimal(precision: 15, scale: 2)),
        ])
        var ids = [Int64](), names = StringColumn(), prices = [Int64](), valid = [Bool]()
        for i in 0..<rows {
            ids.append(Int64(i))
            names.append(["alpha", "beta", "gamma"][i % 3])
            prices.append(Int64(i * 7 - 500))
            valid.append(i % 5 != 0)
        }
        return try ColumnBatch(schema: schema, columns: [
            try Column(.int64, .int64(ids)),
            try Column(.string, .bytes(names)),
            try Column(.decimal(precision: 15, scale: 2), .int64(prices), validity: valid),
        ])
    }

    @Test func resultNamesPathChecksumRowsAndBytes() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let path = dir.file("out.parquet")
        let writer = try ParquetWriter(path: path, schema: try sampleTable(rows: 1).schema)
        try writer.append(try sampleTable(rows: 5000))
        #expect(!FileManager.default.fileExists(atPath: path), "the final name appears only at finish")
        let result = try writer.finish()
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        #expect(result.path == path)
        #expect(result.rows == 5000)
        #expect(result.bytes == Int64(data.count))
        #expect(result.sha256 == Checksum.sha256([UInt8](data)))
        #expect(try sha256(ofFile: path) == result.sha256)
        #expect(dir.entries() == ["out.parquet"], "no temp file is left behind")
    }

    /// A scratch file (a sort's spilled run) reads back the same rows, with
    /// no digest and no statistics, so a predicate skips none of its groups.
    @Test func scratchFileReadsBackWithoutDigestOrStatistics() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let table = try sampleTable(rows: 3000)
        var options = WriterOptions()
        options.scratch = true
        options.compression = .uncompressed
        options.rowGroupRows = 1000
        let path = dir.file("run.parquet")
        let writer = try ParquetWriter(path: path, schema: table.schema, options: options)
        try writer.append(table)
        let result = try writer.finish()
        #expect(result.sha256 == "")
        #expect(result.rows == 3000)
        #expect(dir.entries() == ["run.parquet"], "no temp file is left behind")
        let reader = try ParquetReader(path: path)
        #expect(try reader.read().isIdentical(to: table))
        #expect(reader.rowGroups.count == 3)
        #expect(reader.rowGroups.allSatisfy { $0.columns.allSatisfy { $0.statistics?.min == nil && $0.statistics?.max == nil } })
        #expect(reader.rowGroups(matching: .overlaps("id", .int(-5), .int(-1))) == [0, 1, 2])
    }

    @Test func abandonedWriterLeavesNothing() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let writer = try ParquetWriter(path: dir.file("x.parquet"), schema: try sampleTable(rows: 1).schema)
        try writer.append(try sampleTable(rows: 100))
        writer.abandon()
        #expect(dir.entries().isEmpty)
    }

    @Test func failedFinishReportsIOAndRefusesReuse() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let sub = dir.file("gone")
        try FileManager.default.createDirectory(atPath: sub, withIntermediateDirectories: false)
        let writer = try ParquetWriter(path: sub + "/x.parquet", schema: try sampleTable(rows: 1).schema)
        try writer.append(try sampleTable(rows: 100))
        try FileManager.default.removeItem(atPath: sub)
        do {
            _ = try writer.finish()
            Issue.record("finish succeeded into a removed directory")
        } catch let error as ColumnarError {
            if case .io = error {
                #expect("\(error)".contains("rename"))
            } else {
                Issue.record("expected an I/O error, got \(error)")
            }
        }
        #expect(throws: ColumnarError.self) { try writer.append(try sampleTable(rows: 1)) }
        #expect(!FileManager.default.fileExists(atPath: sub))
    }

    @Test func rowGroupsFlushBySizeAndPredicateSkipsThem() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        var options = WriterOptions()
        options.rowGroupRows = 1000
        let path = dir.file("groups.parquet")
        let writer = try ParquetWriter(path: path, schema: try sampleTable(rows: 1).schema, options: options)
        try writer.append(try sampleTable(rows: 2500))
        try writer.append(try sampleTable(rows: 2500))
        _ = try writer.finish()
        let reader = try ParquetReader(path: path)
        #expect(reader.rowGroups.map(\.rowCount) == [1000, 1000, 1000, 1000, 1000])
        // ids restart at 0 in the second batch: groups 0 (0..999) and 2 (2000..2499, 0..499) and 3 hold id 600.
        let pick = RowGroupPredicate.overlaps("id", .int(600), .int(600))
        #expect(reader.rowGroups(matching: pick) == [0, 2, 3])
        let rows = try reader.read(columns: ["id"], where: pick)
        #expect(rows.rowCount == 3000)
        #expect(rows.schema.fields.map(\.name) == ["id"])
        var streamed = [Int]()
        try reader.forEachRowGroup(columns: ["name", "id"], where: pick) { batch in
            #expect(batch.schema.fields.map(\.name) == ["name", "id"])
            streamed.append(batch.rowCount)
        }
        #expect(streamed == [1000, 1000, 1000])
        let none = RowGroupPredicate.overlaps("id", .int(10_000), nil)
        #expect(reader.rowGroups(matching: none).isEmpty)
        let strings = RowGroupPredicate.overlaps("name", .string("b"), .string("c"))
        #expect(reader.rowGroups(matching: strings).count == 5)
        #expect(reader.rowGroups(matching: .overlaps("name", .string("h"), nil)).isEmpty)
    }

    @Test func rowGroupsFlushByBytesWithinOneLargeBatch() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        var options = WriterOptions()
        options.rowGroupBytes = 64 * 1024
        let path = dir.file("bytes.parquet")
        let table = try sampleTable(rows: 20_000)
        let writer = try ParquetWriter(path: path, schema: table.schema, options: options)
        try writer.append(table)
        _ = try writer.finish()
        let reader = try ParquetReader(path: path)
        // About 25 bytes a row buffered: groups of roughly 2,600 rows, not one of 20,000.
        #expect(reader.rowGroups.count >= 5)
        #expect(reader.rowGroups.allSatisfy { $0.rowCount <= 4000 })
        #expect(try reader.read().isIdentical(to: table))
    }

    @Test func lowCardinalityStringsUseADictionary() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let path = dir.file("dict.parquet")
        let writer = try ParquetWriter(path: path, schema: try sampleTable(rows: 1).schema)
        try writer.append(try sampleTable(rows: 10_000))
        _ = try writer.finish()
        let reader = try ParquetReader(path: path)
        let name = try #require(reader.rowGroups.first?.column("name"))
        #expect(name.encodings.contains("RLE_DICTIONARY"))
        #expect(name.dictionaryPageOffset != nil)
        let id = try #require(reader.rowGroups.first?.column("id"))
        #expect(!id.encodings.contains("RLE_DICTIONARY"), "unique ids stay PLAIN")
        #expect(try reader.read().isIdentical(to: try sampleTable(rows: 10_000)))
    }

    /// Past the cardinality checkpoints: unique values stay PLAIN, a
    /// thousand distinct values (ints, doubles, strings) get a dictionary,
    /// and both read back exactly.
    @Test func dictionaryDecisionOnLargeColumns() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let n = 60_000
        var rng = SplitMix(seed: 5)
        let pool = (0..<1000).map { _ in Int64.random(in: .min ... .max, using: &rng) }
        var names = StringColumn()
        var few = [Int64](), unique = [Int64](), doubles = [Double]()
        for i in 0..<n {
            let k = Int.random(in: 0..<1000, using: &rng)
            few.append(pool[k])
            unique.append(Int64(i) &* 7_919)
            doubles.append(Double(pool[k]) / 3)
            names.append("name-\(k)-日本")
        }
        let schema = Schema([Field("few", .int64), Field("unique", .int64), Field("d", .double), Field("s", .string)])
        let table = try ColumnBatch(schema: schema, columns: [
            try Column(.int64, .int64(few)), try Column(.int64, .int64(unique)),
            try Column(.double, .double(doubles)), try Column(.string, .bytes(names)),
        ])
        let path = dir.file("large.parquet")
        let writer = try ParquetWriter(path: path, schema: schema)
        try writer.append(table)
        _ = try writer.finish()
        let reader = try ParquetReader(path: path)
        let group = try #require(reader.rowGroups.first)
        #expect(group.column("few")?.encodings.contains("RLE_DICTIONARY") == true)
        #expect(group.column("d")?.encodings.contains("RLE_DICTIONARY") == true)
        #expect(group.column("s")?.encodings.contains("RLE_DICTIONARY") == true)
        #expect(group.column("unique")?.encodings.contains("RLE_DICTIONARY") == false)
        #expect(try reader.read().isIdentical(to: table))
    }

    @Test func rejectsDecimalsWiderThanTheirPrecision() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let schema = Schema([Field("amount", .decimal(precision: 3, scale: 1))])
        let ok = try ColumnBatch(schema: schema, columns: [try Column(.decimal(precision: 3, scale: 1), scalars: [.int(999), .int(-999), nil])])
        let writer = try ParquetWriter(path: dir.file("ok.parquet"), schema: schema)
        try writer.append(ok)
        _ = try writer.finish()
        let bad = try ColumnBatch(schema: schema, columns: [try Column(.decimal(precision: 3, scale: 1), scalars: [.int(5), .int(-1000)])])
        let failing = try ParquetWriter(path: dir.file("bad.parquet"), schema: schema)
        try failing.append(bad)
        do {
            _ = try failing.finish()
            Issue.record("a 4-digit value was written as decimal(3,1)")
        } catch let error as ColumnarError {
            #expect("\(error)".contains("amount") && "\(error)".contains("-1000"), "\(error)")
        }
        #expect(dir.entries() == ["ok.parquet"])
    }

    @Test func rejectsNullsInARequiredColumn() throws {
        let schema = Schema([Field("x", .int64, nullable: false)])
        let column = try Column(.int64, scalars: [.int(1), nil])
        #expect(throws: ColumnarError.self) { try ColumnBatch(schema: schema, columns: [column]) }
    }

    @Test func rejectsBadDecimalAndUnknownProjection() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        #expect(throws: ColumnarError.self) {
            try ParquetWriter(path: dir.file("d.parquet"), schema: Schema([Field("d", .decimal(precision: 19, scale: 2))]))
        }
        let path = dir.file("p.parquet")
        let writer = try ParquetWriter(path: path, schema: try sampleTable(rows: 1).schema)
        try writer.append(try sampleTable(rows: 10))
        _ = try writer.finish()
        let reader = try ParquetReader(path: path)
        #expect(throws: ColumnarError.self) { try reader.read(columns: ["nope"]) }
    }

    /// Truncated or damaged files raise ColumnarError; they never crash the
    /// process or hang.
    @Test func damagedFilesFailCleanly() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let path = dir.file("good.parquet")
        var options = WriterOptions()
        options.rowGroupRows = 300
        let writer = try ParquetWriter(path: path, schema: try sampleTable(rows: 1).schema, options: options)
        try writer.append(try sampleTable(rows: 1000))
        _ = try writer.finish()
        let good = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        let bad = dir.file("bad.parquet")

        // Every truncation fails.
        for cut in stride(from: 0, to: good.count, by: max(1, good.count / 97)) {
            try Data(good.prefix(cut)).write(to: URL(fileURLWithPath: bad))
            #expect(throws: ColumnarError.self) { _ = try ParquetReader(path: bad).read() }
        }
        // Random byte damage either fails with ColumnarError or reads something.
        var rng = SplitMix(seed: 99)
        for _ in 0..<300 {
            var damaged = good
            for _ in 0..<Int.random(in: 1...4, using: &rng) {
                let at = Int.random(in: 0..<damaged.count, using: &rng)
                damaged[at] = UInt8.random(in: 0...255, using: &rng)
            }
            try Data(damaged).write(to: URL(fileURLWithPath: bad))
            do {
                _ = try ParquetReader(path: bad).read()
            } catch is ColumnarError {
            } catch {
                Issue.record("unexpected error type: \(error)")
            }
        }
    }
}
