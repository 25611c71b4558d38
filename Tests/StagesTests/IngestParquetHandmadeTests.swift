import Foundation
import Testing
import Columnar
import TestSupport
@testable import Stages

/// `format: parquet` sources against footers made by hand
/// (`HandmadeParquet`): counts that lie, row groups that claim more rows
/// than any file holds. No Python needed.
@Suite struct IngestParquetHandmadeTests {
    static func onlyB() -> IngestSource {
        IngestSource(format: .parquet, columns: [Field("b", .int64)], missingColumns: .fillNull, extraColumns: .ignore)
    }

    /// A 1 KB file claiming 2^40 rows, none of whose columns is declared:
    /// the null column for `b` was sized from the footer and trapped the
    /// worker. Now the row group is refused before anything is allocated.
    @Test func rowGroupAboveTheLimitIsRefusedBeforeAllocating() throws {
        let dir = try IngestTempDir()
        defer { dir.cleanup() }
        let path = try dir.write("huge.parquet", HandmadeParquet.file(columns: [.init("a")], rowGroups: [1 << 40]))
        let shards = try planParquetShards(path: path, source: Self.onlyB())
        #expect(shards.count == 1)
        do {
            _ = try ingest(shard: shards[0], source: Self.onlyB(), outputDir: dir.file("out"))
            Issue.record("ingested a row group of 2^40 rows")
        } catch let error as IngestError {
            #expect("\(error)".contains("row group 0 claims 1099511627776 rows"), "\(error)")
            #expect("\(error)".contains("more than 2147483648 rows are refused"), "\(error)")
        }
    }

    /// Below the limit, a row group of which no declared column is in the
    /// file is written as nulls in bounded slices, numbered from its first row.
    @Test func rowGroupWithoutDeclaredColumnsIsWrittenInSlices() throws {
        let dir = try IngestTempDir()
        defer { dir.cleanup() }
        let rows = Int64(ParquetIngest.nullSliceRows) * 2 + 5
        let path = try dir.write("nulls.parquet", HandmadeParquet.file(columns: [.init("a")], rowGroups: [3, rows]))
        let shards = try planParquetShards(path: path, source: Self.onlyB())
        let got = try ingestFile(path, Self.onlyB(), shard: shards[1], dir: dir)
        #expect(got.batch.rowCount == Int(rows))
        #expect(got.values("b").allSatisfy { $0 == nil })
        let lines = got.values("_source_line")
        #expect(lines.first == .int(4))
        #expect(lines.last == .int(3 + rows))
    }

    /// The limit is an option: lowered, a small row group is refused too.
    @Test func rowGroupLimitIsConfigurable() throws {
        let dir = try IngestTempDir()
        defer { dir.cleanup() }
        let path = try dir.write("small.parquet", HandmadeParquet.file(columns: [.init("a")], rowGroups: [10]))
        var options = IngestOptions()
        options.maxParquetRowGroupRows = 9
        #expect(throws: IngestError.self) {
            _ = try ingest(shard: Shard(path: path, rowGroup: 0), source: Self.onlyB(), outputDir: dir.file("out"), options: options)
        }
    }

    /// The codec and the chunks' physical type are in the footer: a declared
    /// column no shard could read is refused when the run is planned.
    @Test func unreadableChunksAreRefusedWhenPlanned() throws {
        let dir = try IngestTempDir()
        defer { dir.cleanup() }
        let source = IngestSource(format: .parquet, columns: [Field("a", .int64)])
        let lz4 = try dir.write("lz4.parquet", HandmadeParquet.file(columns: [.init("a", codec: 5)], rowGroups: [3, 4]))
        do {
            _ = try planParquetShards(path: lz4, source: source)
            Issue.record("planned an LZ4 file")
        } catch {
            #expect("\(error)".contains("codec LZ4"), "\(error)")
            #expect("\(error)".contains("column 'a'"), "\(error)")
        }
        let mixed = try dir.write("mixed.parquet", HandmadeParquet.file(columns: [.init("a", type: 1, chunkType: 2)], rowGroups: [3]))
        do {
            _ = try planParquetShards(path: mixed, source: source)
            Issue.record("planned a file whose chunk type differs from its schema")
        } catch {
            #expect("\(error)".contains("physical type #2, the schema says INT32"), "\(error)")
        }
        // An undeclared LZ4 column stays fine when ignored.
        let ignored = IngestSource(format: .parquet, columns: [Field("b", .int64)], missingColumns: .fillNull, extraColumns: .ignore)
        #expect(try planParquetShards(path: lz4, source: ignored).count == 2)
    }

    /// Each row group of `bytes` ingested as `columns`: the declared
    /// columns' values as text, and the quarantine.
    static func ingestAll(_ bytes: [UInt8], _ columns: [Field], dir: IngestTempDir, name: String)
        throws -> (rows: [[String?]], quarantine: [QuarantineRow])
    {
        let path = try dir.write(name, bytes)
        let source = IngestSource(format: .parquet, columns: columns)
        var rows = [[String?]]()
        var quarantine = [QuarantineRow]()
        for (i, shard) in try planParquetShards(path: path, source: source).enumerated() {
            let got = try ingestFile(path, source, shard: shard, dir: dir, out: "\(name)-\(i)")
            for r in 0..<got.batch.rowCount {
                rows.append(zip(got.batch.schema.fields, got.batch.columns).prefix(columns.count).map { field, column in
                    column.scalar(at: r).map { ValueText.format($0, as: field.type) }
                })
            }
            quarantine += got.quarantine
        }
        return (rows, quarantine)
    }

    static func decimalBytes(_ v: Int128, width: Int) -> [UInt8] {
        (0..<width).reversed().map { UInt8(truncatingIfNeeded: v >> (8 * $0)) }
    }

    /// A FLOAT converts from the float's shortest text: 0.1f is 0.10 in
    /// decimal(9,2) (it was quarantined as 0.10000000149011612).
    @Test func floatColumnsConvertFromTheFloatsDigits() throws {
        let dir = try IngestTempDir()
        defer { dir.cleanup() }
        let file = HandmadeParquet.file(columns: [.init("f", type: 4, plain: HandmadeParquet.le([Float(0.1), 2.5, 0.125, 3]))],
                                        rowGroups: [4])
        let dec = try Self.ingestAll(file, [Field("f", .decimal(precision: 9, scale: 2))], dir: dir, name: "dec.parquet")
        #expect(dec.rows == [["0.10"], ["2.50"], ["3.00"]])
        #expect(dec.quarantine.map(\.line) == [3])
        #expect(dec.quarantine.first?.reason == "row group 0, row 3, column f: '0.125' has more than 2 digits after the point for decimal(9,2)")
        #expect(dec.quarantine.first?.raw == "{\"f\": 0.125}")
        let text = try Self.ingestAll(file, [Field("f", .string)], dir: dir, name: "text.parquet")
        #expect(text.rows == [["0.1"], ["2.5"], ["0.125"], ["3.0"]])
        let int = try Self.ingestAll(file, [Field("f", .int64)], dir: dir, name: "int.parquet")
        #expect(int.rows == [["3"]])
        #expect(int.quarantine.map(\.line) == [1, 2, 3])
    }

    /// A column of the declared decimal type was passed through untouched:
    /// an INT64 decimal(5,2) value of 7 digits reached the dataset.
    @Test func sameTypeDecimalsAreCheckedForPrecision() throws {
        let dir = try IngestTempDir()
        defer { dir.cleanup() }
        let file = HandmadeParquet.file(columns: [.init("d", type: 2, plain: HandmadeParquet.le([Int64(12_345), 1_234_567, -99_999, -100_000]),
                                                          convertedType: 5, scale: 2, precision: 5)], rowGroups: [4])
        let got = try Self.ingestAll(file, [Field("d", .decimal(precision: 5, scale: 2))], dir: dir, name: "d.parquet")
        #expect(got.rows == [["123.45"], ["-999.99"]])
        #expect(got.quarantine.map(\.reason) == [
            "row group 0, row 2, column d: '12345.67' overflows decimal(5,2) (at most 3 digits before the point)",
            "row group 0, row 4, column d: '-1000.00' overflows decimal(5,2) (at most 3 digits before the point)",
        ])
        #expect(got.quarantine.map(\.raw) == ["{\"d\": 12345.67}", "{\"d\": -1000.00}"])
    }

    /// A millisecond timestamp beyond the microsecond range (and, below, a
    /// FIXED_LEN_BYTE_ARRAY decimal(9,2) wider than 64 bits) failed the
    /// whole shard with no row named; each is now one quarantined row.
    @Test func millisecondsBeyondTheMicrosecondRangeAreBadRows() throws {
        let dir = try IngestTempDir()
        defer { dir.cleanup() }
        let ms = HandmadeParquet.file(columns: [.init("t", type: 2, plain: HandmadeParquet.le([Int64(1_000), Int64.max / 10, -86_400_000]),
                                                      convertedType: 9)], rowGroups: [3])
        let t = try Self.ingestAll(ms, [Field("t", .timestamp)], dir: dir, name: "ms.parquet")
        #expect(t.rows == [["1970-01-01T00:00:01Z"], ["1969-12-31T00:00:00Z"]])
        #expect(t.quarantine.map(\.line) == [2])
        #expect(t.quarantine.first?.reason.contains("is out of the timestamp range") == true, "\(t.quarantine)")
    }

    @Test func fixedDecimalsWiderThan64BitsAreBadRows() throws {
        let dir = try IngestTempDir()
        defer { dir.cleanup() }
        let wide = Int128(1) << 70
        let fixed = HandmadeParquet.file(columns: [.init("d", type: 7, plain: Self.decimalBytes(100, width: 9) + Self.decimalBytes(wide, width: 9)
                                                         + Self.decimalBytes(-12_345, width: 9),
                                                         typeLength: 9, convertedType: 5, scale: 2, precision: 9)], rowGroups: [3])
        let d = try Self.ingestAll(fixed, [Field("d", .decimal(precision: 9, scale: 2))], dir: dir, name: "fixed.parquet")
        #expect(d.rows == [["1.00"], ["-123.45"]])
        #expect(d.quarantine.map(\.reason) == ["row group 0, row 2, column d: '\(ParquetConversion.decimalText(wide, scale: 2))' overflows decimal(9,2) (at most 7 digits before the point)"])
    }

    /// rows × bytes per value above the memory limit: refused before a
    /// page is read (the file holds none), as a permanent failure.
    @Test func rowGroupsAboveTheMemoryLimitAreRefused() throws {
        let dir = try IngestTempDir()
        defer { dir.cleanup() }
        let path = try dir.write("wide.parquet", HandmadeParquet.file(columns: [.init("a", type: 2)], rowGroups: [1 << 28]))
        let source = IngestSource(format: .parquet, columns: [Field("a", .int64)])
        do {
            _ = try ingest(shard: Shard(path: path, rowGroup: 0), source: source, outputDir: dir.file("out"))
            Issue.record("ingested 2^28 rows without data")
        } catch let error as IngestError {
            #expect("\(error)".contains("row group 0: 268435456 rows of 1 declared columns need about 6442450944 bytes of memory, "
                                        + "more than the limit of 2147483648"), "\(error)")
        }
    }

    /// A file without row groups is one empty shard; empty row groups in
    /// the middle keep the row numbering (`_source_line`, quarantine
    /// lines and reasons) of the groups after them.
    @Test func emptyFilesAndEmptyRowGroupsKeepRowNumbers() throws {
        let dir = try IngestTempDir()
        defer { dir.cleanup() }
        let source = IngestSource(format: .parquet, columns: [Field("a", .int32)])
        let none = try dir.write("none.parquet", HandmadeParquet.file(columns: [.init("a", type: 2, plain: [])], rowGroups: []))
        let shards = try planParquetShards(path: none, source: source)
        #expect(shards == [Shard(path: none)])
        let empty = try ingestFile(none, source, shard: shards[0], dir: dir, out: "none")
        #expect(empty.batch.rowCount == 0 && empty.quarantine.isEmpty)

        let page = HandmadeParquet.le([Int64(10), 3_000_000_000])
        let gaps = try dir.write("gaps.parquet", HandmadeParquet.file(columns: [.init("a", type: 2, plain: page)], rowGroups: [2, 0, 0, 2]))
        let planned = try planParquetShards(path: gaps, source: source)
        #expect(planned.map(\.firstLine) == [1, 3, 3, 3])
        var lines = [Scalar?]()
        var quarantine = [QuarantineRow]()
        for (i, shard) in planned.enumerated() {
            let got = try ingestFile(gaps, source, shard: shard, dir: dir, out: "gaps-\(i)")
            lines += got.values("_source_line")
            quarantine += got.quarantine
        }
        #expect(lines == [.int(1), .int(3)])
        #expect(quarantine.map(\.line) == [2, 4])
        #expect(quarantine.map(\.reason) == [
            "row group 0, row 2, column a: '3000000000' does not fit int32",
            "row group 3, row 2, column a: '3000000000' does not fit int32",
        ])
        #expect(quarantine.map(\.raw) == ["{\"a\": 3000000000}", "{\"a\": 3000000000}"])
        // The whole file as one shard numbers the same way.
        let whole = try ingestFile(gaps, source, shard: Shard(path: gaps), dir: dir, out: "gaps-whole")
        #expect(whole.values("_source_line") == [.int(1), .int(3)])
        #expect(whole.quarantine.map(\.line) == [2, 4])
    }

    /// A planned shard's first row must agree with the footer's counts: a
    /// file rewritten to the same size after planning numbered rows wrong.
    @Test func shardFirstLineMustAgreeWithTheFooter() throws {
        let dir = try IngestTempDir()
        defer { dir.cleanup() }
        let page = HandmadeParquet.le([Int64(1), 2])
        let path = try dir.write("two.parquet", HandmadeParquet.file(columns: [.init("a", type: 2, plain: page)], rowGroups: [2, 2]))
        let source = IngestSource(format: .parquet, columns: [Field("a", .int64)])
        let planned = try planParquetShards(path: path, source: source)
        #expect(try ingestFile(path, source, shard: planned[1], dir: dir, out: "ok").values("_source_line") == [.int(3), .int(4)])
        do {
            _ = try ingest(shard: Shard(path: path, firstLine: 5, rowGroup: 1), source: source, outputDir: dir.file("moved"))
            Issue.record("a shard planned at row 5 read row group 1, which starts at row 3")
        } catch {
            #expect("\(error)".contains("row group 1 starts at row 3, the shard planned it at row 5"), "\(error)")
        }
    }

    /// Every byte of a footer replaced by 0x00, 0x7F and 0xFF in turn (row
    /// counts, value counts, offsets, sizes, types, codecs, names, list
    /// lengths): the planner and the ingest of every shard it plans fail
    /// with an error or read the file, never trap, and never allocate for
    /// counts the data does not hold (the limits above). Random flips of
    /// whole files rarely hit these fields.
    @Test func everyFooterByteMutatedNeverTraps() throws {
        let dir = try IngestTempDir()
        defer { dir.cleanup() }
        let page = HandmadeParquet.le([Int64(7), -3])
        let good = HandmadeParquet.file(columns: [.init("a", type: 2, plain: page), .init("c")], rowGroups: [2, 2])
        let footerLength = Int(good[good.count - 8]) | Int(good[good.count - 7]) << 8
        let footerStart = good.count - 8 - footerLength
        let source = IngestSource(format: .parquet, columns: [Field("a", .int64), Field("b", .int32)],
                                  missingColumns: .fillNull, extraColumns: .ignore)
        var options = IngestOptions()
        options.maxParquetRowGroupRows = 1 << 24
        let unchanged = try dir.write("good.parquet", good)
        for (i, shard) in try planParquetShards(path: unchanged, source: source).enumerated() {
            #expect(try ingestFile(unchanged, source, shard: shard, dir: dir, out: "good-\(i)").batch.rowCount == 2)
        }
        var read = 0, refused = 0
        for at in footerStart..<(good.count - 8) {
            for byte: UInt8 in [0x00, 0x7F, 0xFF] where good[at] != byte {
                var bytes = good
                bytes[at] = byte
                let path = try dir.write("m.parquet", bytes)
                do {
                    for (i, shard) in try planParquetShards(path: path, source: source).enumerated() {
                        _ = try ingest(shard: shard, source: source, outputDir: dir.file("m-\(at)-\(byte)-\(i)"), options: options)
                    }
                    read += 1
                } catch {
                    refused += 1
                }
                try? FileManager.default.removeItem(atPath: dir.file("m-\(at)-\(byte)-0"))
                try? FileManager.default.removeItem(atPath: dir.file("m-\(at)-\(byte)-1"))
            }
        }
        #expect(read + refused > 3 * (footerLength - 10))
        #expect(refused > 0)
    }
}
