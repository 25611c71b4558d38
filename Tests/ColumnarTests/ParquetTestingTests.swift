import Foundation
import Testing
import TestSupport
@testable import Columnar

/// The files of apache/parquet-testing in `parquet-testing/` (see its
/// README): each read exactly as pyarrow reads it, or refused with an
/// error that names the file, the column and the feature.
@Suite struct ParquetTestingTests {
    static let folder = PythonTool.packageRoot + "/Tests/ColumnarTests/parquet-testing"

    static func path(_ name: String) -> String { folder + "/" + name }

    static var files: [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? [])
            .filter { $0.hasSuffix(".parquet") }.sorted()
    }

    /// What our reader refuses: the column the error must name and words
    /// naming the feature. Every other file must read as pyarrow reads it.
    static let refused: [String: (column: String, feature: String)] = [
        // INT96 timestamps (Impala, Spark).
        "alltypes_plain.parquet": ("timestamp_col", "INT96"),
        "alltypes_plain.snappy.parquet": ("timestamp_col", "INT96"),
        "alltypes_dictionary.parquet": ("timestamp_col", "INT96"),
        "int96_from_spark.parquet": ("a", "INT96"),
        // Unsigned 64-bit integers.
        "concatenated_gzip_members.parquet": ("long_col", "INTEGER(64, unsigned)"),
        // Decimals over 18 digits, or stored as BYTE_ARRAY.
        "fixed_length_decimal.parquet": ("value", "precision above 18"),
        "byte_array_decimal.parquet": ("value", "DECIMAL stored as BYTE_ARRAY"),
        // Half floats and fixed-length binaries that are not decimals.
        "byte_stream_split_extended.gzip.parquet": ("float16_plain", "FLOAT16"),
        "float16_nonzeros_and_nans.parquet": ("x", "FLOAT16"),
        "floating_orders_nan_count.parquet": ("float16_ieee754", "FLOAT16"),
        "fixed_length_byte_array.parquet": ("flba_field", "FIXED_LEN_BYTE_ARRAY(4)"),
        // Nested columns.
        "datapage_v2.snappy.parquet": ("e", "nested"),
        "list_columns.parquet": ("int64_list", "nested"),
        "nested_lists.snappy.parquet": ("a", "nested"),
        "nulls.snappy.parquet": ("b_struct", "nested"),
        "repeated_primitive_no_list.parquet": ("Int32_list", "REPEATED"),
        // A logical type newer than the reader (pyarrow reads the bytes).
        "unknown-logical-type.parquet": ("column with unknown type", "logical type #2555"),
        // LZ4 codecs.
        "hadoop_lz4_compressed.parquet": ("c0", "codec LZ4"),
        "non_hadoop_lz4_compressed.parquet": ("c0", "codec LZ4"),
        "lz4_raw_compressed.parquet": ("c0", "codec LZ4_RAW"),
    ]

    static let python = PythonTool(importing: "pyarrow")

    /// A value as read_reference.py writes it.
    static func canonical(_ s: Scalar) -> String {
        switch s {
        case .int(let v): return String(v)
        case .double(let d): return d.description
        case .bool(let b): return b ? "true" : "false"
        case .bytes(let b): return b.map { String(format: "%02x", $0) }.joined()
        }
    }

    /// Our reading of one file, every row group and column.
    static func read(_ name: String) throws -> ColumnBatch {
        try ParquetReader(path: path(name)).read()
    }

    @Test(.enabled(if: python.enabled, "no Python with pyarrow (set BIS_PYTHON or create .venv)"))
    func everyFileReadsAsPyarrowReadsItOrIsRefusedByName() throws {
        let files = Self.files
        #expect(files.count >= 40, "fixture files missing from \(Self.folder)")
        for name in Self.refused.keys { #expect(files.contains(name), "\(name) is listed as refused but not here") }
        let dir = try TempDir()
        defer { dir.cleanup() }
        let out = dir.file("reference.json")
        let r = try Self.python.script(PythonTool.packageRoot + "/Tests/ColumnarTests/python/read_reference.py",
                                       [out] + files.map(Self.path))
        try #require(r.status == 0, "\(r.output)")
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out))) as! [String: Any]
        let reference = json["files"] as! [[String: Any]]
        #expect(reference.count == files.count)
        var read = 0
        for entry in reference {
            let name = entry["file"] as! String
            #expect(entry["error"] == nil, "pyarrow cannot read \(name): \(entry["error"] ?? "")")
            if let (column, feature) = Self.refused[name] {
                do {
                    _ = try Self.read(name)
                    Issue.record("\(name): read, but listed as refused for \(feature)")
                } catch let error as ColumnarError {
                    guard case .unsupported = error else {
                        Issue.record("\(name): \(error) is not an 'unsupported' error")
                        continue
                    }
                    let text = "\(error)"
                    #expect(text.contains(Self.path(name)), "the error names the file: \(text)")
                    #expect(text.contains("'\(column)'"), "the error names the column \(column): \(text)")
                    #expect(text.contains(feature), "the error names \(feature): \(text)")
                }
                continue
            }
            let batch: ColumnBatch
            do {
                batch = try Self.read(name)
            } catch {
                Issue.record("\(name): \(error)")
                continue
            }
            read += 1
            let columns = entry["columns"] as! [[String: Any]]
            #expect(batch.rowCount == entry["rows"] as! Int, "\(name)")
            #expect(batch.columns.count == columns.count, "\(name)")
            for (k, col) in columns.enumerated() where k < batch.columns.count {
                let colName = col["name"] as! String
                let column = batch.columns[k]
                #expect(batch.schema.fields[k].name == colName, "\(name)")
                #expect(column.type.description == col["type"] as! String,
                        "\(name) \(colName): \(column.type), pyarrow \(col["arrow"] ?? "")")
                guard let want = col["values"] as? [Any], want.count == column.count else {
                    Issue.record("\(name) \(colName): \(column.count) values, pyarrow has \((col["values"] as? [Any])?.count ?? -1)")
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
                        Issue.record("\(name) \(colName) row \(i): got \(String(describing: got)), pyarrow \(w)")
                        break
                    }
                }
            }
        }
        #expect(read + Self.refused.count == files.count)
        #expect(read >= 25)
    }

    /// A value of `ParquetSourceReader` as read_source_reference.py writes
    /// pyarrow's: timestamps in nanoseconds, decimals unscaled, unsigned
    /// integers as such; nil for a null.
    static func sourceCanonical(_ column: SourceColumn, _ row: Int) -> String? {
        if column.isNull(row) { return nil }
        switch column {
        case .wide(let values, _): return String(values[row])
        case .typed(let c):
            guard let s = c.scalar(at: row) else { return nil }
            if case .int(let v) = s, c.type == .timestamp { return String(Int128(v) * 1000) }
            return canonical(s)
        }
    }

    /// The files ParquetReader refuses (INT96, UINT_64, decimal(25,2),
    /// decimals in BYTE_ARRAY, and the flat columns of files with nested
    /// ones), read with ParquetSourceReader: every value of every column it
    /// reads equal to pyarrow's.
    @Test(.enabled(if: python.enabled, "no Python with pyarrow (set BIS_PYTHON or create .venv)"))
    func refusedFilesReadWithTheSourceReaderAsPyarrowReadsThem() throws {
        let names = Self.refused.keys.sorted()
        let dir = try TempDir()
        defer { dir.cleanup() }
        let out = dir.file("source-reference.json")
        let r = try Self.python.script(PythonTool.packageRoot + "/Tests/ColumnarTests/python/read_source_reference.py",
                                       [out] + names.map(Self.path))
        try #require(r.status == 0, "\(r.output)")
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out))) as! [String: Any]
        var compared = Set<String>()
        for entry in json["files"] as! [[String: Any]] {
            let name = entry["file"] as! String
            guard let columns = entry["columns"] as? [[String: Any]] else {
                Issue.record("pyarrow cannot read \(name): \(entry["error"] ?? "")")
                continue
            }
            let reader = try ParquetSourceReader(path: Self.path(name))
            #expect(reader.rowCount == Int64(entry["rows"] as! Int), "\(name)")
            for (f, field) in reader.fields.enumerated() where field.kind != nil {
                var got = [String?]()
                do {
                    for g in reader.rowGroupRows.indices {
                        let column = try reader.read(field: f, rowGroup: g)
                        got += (0..<column.count).map { Self.sourceCanonical(column, $0) }
                    }
                } catch let error as ColumnarError {
                    // Only the codecs no reader of ours has may stop a readable column.
                    #expect("\(error)".contains("codec LZ4"), "\(name) \(field.name): \(error)")
                    continue
                }
                guard let want = columns.first(where: { $0["name"] as? String == field.name })?["values"] as? [Any] else {
                    Issue.record("\(name) \(field.name): read as \(field.kind!), pyarrow gives no comparable values")
                    continue
                }
                #expect(got.count == want.count, "\(name) \(field.name)")
                for (i, (g, w)) in zip(got, want).enumerated() {
                    let w = w as? String
                    var ok = g == w
                    if !ok, let g, let w, let a = Double(g), let b = Double(w) { ok = a.isNaN ? b.isNaN : a.bitPattern == b.bitPattern }
                    if !ok {
                        Issue.record("\(name) \(field.name) row \(i): got \(g ?? "null"), pyarrow \(w ?? "null")")
                        break
                    }
                }
                compared.insert("\(name) \(field.name)")
            }
        }
        for must in ["alltypes_plain.parquet timestamp_col", "alltypes_plain.snappy.parquet timestamp_col",
                     "alltypes_dictionary.parquet timestamp_col", "int96_from_spark.parquet a",
                     "concatenated_gzip_members.parquet long_col", "fixed_length_decimal.parquet value",
                     "byte_array_decimal.parquet value"] {
            #expect(compared.contains(must), "\(must) was not compared")
        }
    }

    // MARK: - Without Python: the defects these files found, and the codecs

    /// A 0-row row group whose chunks say data_page_offset 0 (pyarrow
    /// writes it so) was refused as lying outside the data area.
    @Test func emptyRowGroupWithDataPageOffsetZeroReads() throws {
        let reader = try ParquetReader(path: Self.path("column_chunk_key_value_metadata.parquet"))
        #expect(reader.rowGroups.count == 1)
        #expect(reader.rowGroups[0].columns[0].dataPageOffset == 0)
        let batch = try reader.read()
        #expect(batch.rowCount == 0)
        #expect(batch.schema.fields.map(\.name) == ["column1", "column2"])
        #expect(try reader.readRowGroup(0).rowCount == 0)
    }

    /// Dictionary indices with bit width 0 (a one-entry dictionary) in
    /// bit-packed runs were refused as overrunning the page.
    @Test func bitWidthZeroIndicesRead() throws {
        let batch = try Self.read("ARROW-GH-43605.parquet")
        #expect(batch.rowCount == 21_186)
        #expect(batch.schema.fields.map(\.name) == ["min_fl"])
        #expect(batch.schema.fields[0].type == .int32)
    }

    @Test func hybridDecodesBitWidthZero() throws {
        // A bit-packed run of 3 groups (header 3 << 1 | 1 = 7) and an RLE
        // run of 5 (header 10) with zero-byte values: 29 zeros, no bytes read.
        let (values, end) = try Hybrid.decode([7, 10], 0, 2, bitWidth: 0, count: 29)
        #expect(values == [UInt32](repeating: 0, count: 29))
        #expect(end == 2)
        // A header claiming 2^62 groups takes only what is asked for.
        let huge: [UInt8] = [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F]
        #expect(try Hybrid.decode(huge, 0, huge.count, bitWidth: 0, count: 100).values.count == 100)
    }

    @Test(arguments: [("datapage_v1-snappy-compressed-checksum.parquet", 5120), ("rle-dict-snappy-checksum.parquet", 1000),
                      ("single_nan.parquet", 1), ("sort_columns.parquet", 6), ("dict-page-offset-zero.parquet", 39),
                      ("datapage_v2_empty_datapage.snappy.parquet", 1), ("nan_in_stats.parquet", 2)])
    func snappyFilesRead(name: String, rows: Int) throws {
        #expect(try Self.read(name).rowCount == rows, "\(name)")
    }

    @Test(arguments: [("rle_boolean_encoding.parquet", 68), ("data_index_bloom_encoding_stats.parquet", 14)])
    func gzipFilesRead(name: String, rows: Int) throws {
        #expect(try Self.read(name).rowCount == rows, "\(name)")
    }

    /// v2 pages of a flat column that still store repetition levels (all 0)
    /// were refused as nested data.
    @Test func flatV2PagesWithRepetitionLevelsRead() throws {
        let batch = try Self.read("rle_boolean_encoding.parquet")
        let values = (0..<batch.rowCount).map { batch.columns[0].scalar(at: $0) }
        #expect(values.prefix(6) == [.bool(true), .bool(false), nil, .bool(true), .bool(true), .bool(false)])
    }

    /// parquet-mr up to 1.2.8 did not count the dictionary page header in
    /// total_compressed_size (PARQUET-816); pyarrow reads 100 bytes more.
    @Test func oldParquetMRChunkSizesArePadded() throws {
        #expect(try Self.read("nation.dict-malformed.parquet").rowCount == 25)
        let short = ParquetReader.chunkSizesMayBeShort
        #expect(short("parquet-mr"))
        #expect(short("parquet-mr version 1.2.8 (build abc)"))
        #expect(!short("parquet-mr version 1.2.9 (build abc)"))
        #expect(!short("parquet-mr version 1.10.0 (build abc)"))
        #expect(!short("parquet-mr version 1.13.1-SNAPSHOT (build abc)"))
        #expect(!short("parquet-cpp-arrow version 17.0.0"))
        #expect(!short(nil))
    }
}
