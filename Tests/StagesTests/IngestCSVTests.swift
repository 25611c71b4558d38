import Foundation
import Testing
import Columnar
import FleetCore
@testable import Stages

@Suite struct IngestCSVTests {
    static let everyType: [Field] = [
        Field("id", .int64, nullable: false), Field("small", .int32), Field("ratio", .double), Field("flag", .bool),
        Field("name", .string), Field("day", .date), Field("at", .timestamp),
        Field("price", .decimal(precision: 15, scale: 2)),
    ]

    @Test func everyTypeIsParsedExactly() throws {
        let text = """
            id,small,ratio,flag,name,day,at,price
            1,-7,2.5,true,alpha,2024-02-29,2024-02-29T12:34:56Z,12.34
            -9223372036854775808,2147483647,-1e-3,NO,日本,1969-12-31,1970-01-01 00:00:00.000001,-0.05
            9223372036854775807,-2147483648,1E10,t,"",0001-01-01,2024-01-01T00:00:00+01:30,9999999999999.99

            """
        let r = try ingestText(text, csv(Self.everyType))
        #expect(r.quarantine == [])
        #expect(r.result.rowsRead == 3)
        #expect(r.values("id") == [.int(1), .int(Int64.min), .int(Int64.max)])
        #expect(r.values("small") == [.int(-7), .int(2_147_483_647), .int(-2_147_483_648)])
        #expect(r.values("ratio") == [.double(2.5), .double(-0.001), .double(1e10)])
        #expect(r.values("flag") == [.bool(true), .bool(false), .bool(true)])
        #expect(r.strings("name") == ["alpha", "日本", ""])
        #expect(r.values("day") == [.int(19782), .int(-1), .int(-719_162)])
        #expect(r.values("at") == [.int(1_709_210_096_000_000), .int(1), .int(1_704_061_800_000_000)])
        #expect(r.values("price") == [.int(1234), .int(-5), .int(999_999_999_999_999)])
        #expect(r.schema.fields == Self.everyType + Provenance.fields)
    }

    @Test func headerColumnsMayComeInAnyOrder() throws {
        let r = try ingestText("b,a\nx,1\ny,2\n", csv([Field("a", .int64), Field("b", .string)]))
        #expect(r.values("a") == [.int(1), .int(2)])
        #expect(r.strings("b") == ["x", "y"])
        #expect(r.batch.schema.fields.map(\.name) == ["a", "b", "_source_file", "_source_line"])
    }

    @Test func withoutHeaderFieldsAreInDeclaredOrder() throws {
        let r = try ingestText("1,x\n2,y", csv([Field("a", .int64), Field("b", .string)], header: false))
        #expect(r.values("a") == [.int(1), .int(2)])
        #expect(r.strings("b") == ["x", "y"])
    }

    @Test func quotedFieldsDoubledQuotesNewlinesCRLFAndBOM() throws {
        let text = "\u{FEFF}id,text\r\n1,\"a,b\"\r\n2,\"say \"\"hi\"\"\"\r\n3,\"two\r\nlines\nthree\"\r\n4,plain\r\n5,bad\"\r\n"
        let r = try ingestText(text, csv([Field("id", .int64), Field("text", .string)]))
        #expect(r.values("id") == [.int(1), .int(2), .int(3), .int(4)])
        #expect(r.strings("text") == ["a,b", "say \"hi\"", "two\r\nlines\nthree", "plain"])
        // Record 5 starts on physical line 8: record 3 spans lines 4-6.
        #expect(r.quarantine.map(\.line) == [8])
        #expect(r.reasons == ["line 8: a quote inside unquoted field 2 (quote the whole field and double the quote)"])
        #expect(r.quarantine.first?.raw == "5,bad\"\r\n")
    }

    @Test func lineNumbersCountTheHeaderAndQuotedLineBreaks() throws {
        let text = "n\n\"a\nb\"\nx\n\"c\"\ny\n"
        let r = try ingestText(text, csv([Field("n", .int64)]))
        #expect(r.quarantine.map(\.line) == [2, 4, 5, 6])
        #expect(r.reasons[0] == "line 2, column n: 'a\nb' is not an int64")
    }

    @Test func nullMarkersAndQuotedEmptyStrings() throws {
        let text = """
            s,i,d
            ,,
            NA,NA,NA
            NULL,NULL,NULL
            "","",""
            "NA",1,2024-01-01

            """
        let r = try ingestText(text, csv([Field("s", .string), Field("i", .int64), Field("d", .date)]))
        #expect(r.quarantine == [])
        #expect(r.strings("s") == [nil, nil, nil, "", "NA"])
        #expect(r.values("i") == [nil, nil, nil, nil, .int(1)])
        #expect(r.values("d") == [nil, nil, nil, nil, .int(19723)])
    }

    @Test func customNullMarkersDelimiterAndQuote() throws {
        var source = csv([Field("s", .string), Field("i", .int64)])
        source.delimiter = UInt8(ascii: "|")
        source.quote = UInt8(ascii: "'")
        source.nullMarkers = ["-"]
        let r = try ingestText("s|i\n-|-\n'a|b'|3\n|4\n'it''s'|5\n", source)
        #expect(r.quarantine == [])
        #expect(r.strings("s") == [nil, "a|b", "", "it's"])
        #expect(r.values("i") == [nil, .int(3), .int(4), .int(5)])
    }

    @Test func blankLinesAreNotRecordsAndTheLastLineNeedsNoBreak() throws {
        let r = try ingestText("a\n1\n\n\r\n2", csv([Field("a", .int64)]))
        #expect(r.values("a") == [.int(1), .int(2)])
        #expect(r.result.rowsRead == 2)
    }

    @Test func emptyAndHeaderOnlyFilesGiveEmptyChunks() throws {
        for text in ["", "a,b\n", "\u{FEFF}"] {
            let r = try ingestText(text, csv([Field("a", .int64), Field("b", .string)]))
            #expect(r.batch.rowCount == 0)
            #expect(r.result.rowsRead == 0)
            #expect(r.result.quarantine == nil)
        }
    }

    static let bad: [Field] = [
        Field("id", .int64, nullable: false), Field("q", .decimal(precision: 15, scale: 2)), Field("n", .int32),
        Field("s", .string), Field("d", .date), Field("t", .timestamp), Field("b", .bool), Field("x", .double),
    ]

    @Test(arguments: [
        ("1,12.3x,,,,,,", "q", "line 2, column q: '12.3x' is not a decimal(15,2)"),
        ("1,12345678901234.5,,,,,,", "q", "line 2, column q: '12345678901234.5' overflows decimal(15,2) (at most 13 digits before the point)"),
        ("1,1.234,,,,,,", "q", "line 2, column q: '1.234' has more than 2 digits after the point for decimal(15,2)"),
        ("1,1.2.3,,,,,,", "q", "line 2, column q: '1.2.3' is not a decimal(15,2)"),
        ("1,-,,,,,,", "q", "line 2, column q: '-' is not a decimal(15,2)"),
        ("x1,,,,,,,", "id", "line 2, column id: 'x1' is not an int64"),
        ("9223372036854775808,,,,,,,", "id", "line 2, column id: '9223372036854775808' is not an int64"),
        (" 1,,,,,,,", "id", "line 2, column id: ' 1' is not an int64"),
        (",,,,,,,", "id", "line 2, column id: null in a non-nullable column"),
        ("NA,,,,,,,", "id", "line 2, column id: null in a non-nullable column"),
        ("1,,2147483648,,,,,", "n", "line 2, column n: '2147483648' is not an int32"),
        ("1,,,,2023-02-29,,,", "d", "line 2, column d: '2023-02-29' is not a date (YYYY-MM-DD)"),
        ("1,,,,2023-1-01,,,", "d", "line 2, column d: '2023-1-01' is not a date (YYYY-MM-DD)"),
        ("1,,,,,2024-01-01T24:00:00,,", "t", "line 2, column t: '2024-01-01T24:00:00' is not a timestamp (YYYY-MM-DD[T ]HH:MM:SS[.ffffff][Z|±HH:MM])"),
        ("1,,,,,2024-01-01T00:00:00.1234567,,", "t", "line 2, column t: '2024-01-01T00:00:00.1234567' is not a timestamp (YYYY-MM-DD[T ]HH:MM:SS[.ffffff][Z|±HH:MM])"),
        ("1,,,,,2024-01-01,,", "t", "line 2, column t: '2024-01-01' is not a timestamp (YYYY-MM-DD[T ]HH:MM:SS[.ffffff][Z|±HH:MM])"),
        ("1,,,,,,maybe,", "b", "line 2, column b: 'maybe' is not a bool (true/false/1/0/t/f/yes/no)"),
        ("1,,,,,,,1.5.5", "x", "line 2, column x: '1.5.5' is not a double"),
    ])
    func badValuesAreQuarantinedWithTheirReason(row: String, column: String, reason: String) throws {
        let r = try ingestText("id,q,n,s,d,t,b,x\n" + row + "\n2,1.50,1,ok,2024-01-01,2024-01-01T00:00:00Z,yes,0.5\n", csv(Self.bad))
        #expect(r.quarantine == [QuarantineRow(file: r.quarantine.first?.file ?? "", line: 2, column: column, reason: reason, raw: row)])
        #expect(r.quarantine.first?.file.hasSuffix("input.csv") == true)
        #expect(r.values("id") == [.int(2)])
        #expect(r.values("q") == [.int(150)])
        #expect(r.result.rowsRead == 2)
        #expect(r.result.rowsWritten == 1)
        #expect(r.result.rowsQuarantined == 1)
    }

    @Test func extraFractionZerosAreExact() throws {
        let r = try ingestText("q\n1.500\n-.5\n+3\n007.10\n", csv([Field("q", .decimal(precision: 4, scale: 2))]))
        #expect(r.quarantine == [])
        #expect(r.values("q") == [.int(150), .int(-50), .int(300), .int(710)])
    }

    @Test func wrongFieldCountsAndSyntaxErrors() throws {
        let text = "a,b\n1,2\n1\n1,2,3\n\"x\"y,2\n4,\"unterminated\n5,6\n"
        let r = try ingestText(text, csv([Field("a", .string), Field("b", .string)]))
        #expect(r.strings("a") == ["1"])
        #expect(r.reasons == [
            "line 3: 1 field, expected 2",
            "line 4: 3 fields, expected 2",
            "line 5: 'y' after the closing quote of field 1 (a quote inside a quoted field must be doubled)",
            "line 6: unterminated quoted field (the file ends inside quotes)",
        ])
        #expect(r.quarantine.map(\.raw) == ["1", "1,2,3", "\"x\"y,2", "4,\"unterminated\n5,6\n"])
        #expect(r.quarantine.map(\.column) == [nil, nil, nil, nil])
    }

    @Test func invalidUTF8IsQuarantinedAndRawIsRepaired() throws {
        var bytes = Array("s,n\nok,1\n".utf8)
        bytes += [0x61, 0xFF, 0x62] + Array(",2\n".utf8)
        bytes += [0xED, 0xA0, 0x80] + Array(",3\n".utf8)  // a UTF-16 surrogate
        bytes += [0xC3] + Array(",4\n".utf8)  // truncated sequence
        bytes += Array("é€😀,5\n".utf8)
        let r = try ingestBytes(bytes, csv([Field("s", .string), Field("n", .int64)]))
        #expect(r.strings("s") == ["ok", "é€😀"])
        #expect(r.reasons == ["line 3, column s: invalid UTF-8", "line 4, column s: invalid UTF-8", "line 5, column s: invalid UTF-8"])
        #expect(r.quarantine[0].raw == "a\u{FFFD}b,2")
    }

    @Test func rawTextIsBoundedWithAMarker() throws {
        var options = IngestOptions()
        options.quarantineRawLimit = 100
        let long = "1," + String(repeating: "é", count: 200) + ",x"
        let r = try ingestText("a,b\n" + long + "\n", csv([Field("a", .int64), Field("b", .string)]), options: options)
        let raw = try #require(r.quarantine.first?.raw)
        #expect(raw.utf8.count <= 100)
        #expect(raw.hasPrefix("1,éé"))
        #expect(raw.hasSuffix("…[cut: \(long.utf8.count) bytes in all]"))
        #expect(r.reasons == ["line 2: 3 fields, expected 2"])
    }

    @Test func failuresMidRowRollBackAcrossBatchesAndRowGroups() throws {
        var options = IngestOptions()
        options.batchRows = 7
        options.rowGroupRows = 10
        var text = "a,b,c\n"
        var expected = [Int64]()
        for i in 0..<100 {
            // Every third row fails in its last column, after a and b were appended.
            text += i % 3 == 0 ? "\(i),s\(i),bad\n" : "\(i),s\(i),\(i * 2)\n"
            if i % 3 != 0 { expected.append(Int64(i)) }
        }
        let r = try ingestText(text, csv([Field("a", .int64), Field("b", .string), Field("c", .int64)]), options: options)
        #expect(r.values("a") == expected.map { .int($0) })
        #expect(r.strings("b") == expected.map { "s\($0)" })
        #expect(r.values("c") == expected.map { .int($0 * 2) })
        #expect(r.result.rowsQuarantined == 34)
        #expect(r.rowGroupCount == 7)
    }

    @Test func recordsLongerThanTheReadBlock() throws {
        var options = IngestOptions()
        options.readBlockBytes = 4096
        var text = "a,b\n"
        var expected = [String]()
        for i in 0..<300 {
            let s = String(repeating: "x\"\"\n", count: i * 7 % 3000)
            text += "\(i),\"\(s)\"\r\n"
            expected.append(s.replacingOccurrences(of: "\"\"", with: "\""))
        }
        let r = try ingestText(text, csv([Field("a", .int64), Field("b", .string)]), options: options)
        #expect(r.quarantine == [])
        #expect(r.strings("b") == expected)
    }

    @Test func headerDriftIsAnErrorNamingFileAndColumns() throws {
        let dir = try IngestTempDir()
        defer { dir.cleanup() }
        let path = try dir.write("drift.csv", "a,c,d\n1,2,3\n")
        let source = csv([Field("a", .int64), Field("b", .int64), Field("e", .string)])
        #expect(throws: IngestError.schemaDrift(file: path, missing: ["b", "e"], extra: ["c", "d"])) {
            try ingest(shard: Shard(path: path), source: source, outputDir: dir.file("o"))
        }
        let error = IngestError.schemaDrift(file: path, missing: ["b", "e"], extra: ["c", "d"])
        #expect(error.description == "\(path): header lacks declared columns b, e and has undeclared columns c, d "
            + "(declare them, or set missing columns to fill_null / extra columns to ignore)")
        var lenient = source
        lenient.extraColumns = .ignore
        #expect(throws: IngestError.schemaDrift(file: path, missing: ["b", "e"], extra: [])) {
            try ingest(shard: Shard(path: path), source: lenient, outputDir: dir.file("o2"))
        }
        lenient.missingColumns = .fillNull
        let r = try ingestFile(path, lenient, dir: dir, out: "o3")
        #expect(r.values("a") == [.int(1)])
        #expect(r.values("b") == [nil])
        #expect(r.values("e") == [nil])
        // Extra fields are ignored but the field count still counts them.
        var strictCount = lenient
        strictCount.columns = [Field("a", .int64)]
        let p2 = try dir.write("short.csv", "a,c\n1,2\n3\n")
        let r2 = try ingestFile(p2, strictCount, dir: dir, out: "o4")
        #expect(r2.reasons == ["line 3: 1 field, expected 2"])
    }

    @Test func aMissingNonNullableColumnCannotBeFilled() throws {
        let dir = try IngestTempDir()
        defer { dir.cleanup() }
        let path = try dir.write("m.csv", "a\n1\n")
        var source = csv([Field("a", .int64), Field("b", .int64, nullable: false)])
        source.missingColumns = .fillNull
        #expect(throws: IngestError.invalidSource(file: path, message: "the header lacks column b, which is not nullable and cannot be filled with nulls")) {
            try ingest(shard: Shard(path: path), source: source, outputDir: dir.file("o"))
        }
    }

    @Test func metadataAndZstdReachTheChunk() throws {
        let dir = try IngestTempDir()
        defer { dir.cleanup() }
        let path = try dir.write("m.csv", "a\n1\nx\n")
        let result = try ingest(shard: Shard(path: path), source: csv([Field("a", .int64)]), outputDir: dir.file("deep/er"),
                                metadata: [KeyValue("bis.run", "r1")])
        #expect(try ParquetReader(path: result.chunk.path).keyValueMetadata == [KeyValue("bis.run", "r1")])
        #expect(try ParquetReader(path: result.quarantine!.path).keyValueMetadata == [KeyValue("bis.run", "r1")])
        #expect(try sha256(ofFile: result.chunk.path) == result.chunk.sha256)
        #expect(result.chunk.path == dir.file("deep/er") + "/ingest.parquet")
    }

    @Test func unreadableFilesAndBadSourcesAreShardErrors() throws {
        let dir = try IngestTempDir()
        defer { dir.cleanup() }
        let missing = dir.file("missing.csv")
        #expect(throws: IngestError.io(file: missing, message: "cannot open for reading", errno: ENOENT)) {
            try ingest(shard: Shard(path: missing), source: csv([Field("a", .int64)], header: false), outputDir: dir.file("o"))
        }
        let path = try dir.write("x.csv", "a\n1\n")
        var source = csv([Field("a", .int64), Field("a", .string)])
        #expect(throws: IngestError.invalidSource(file: path, message: "column a is declared twice")) {
            try ingest(shard: Shard(path: path), source: source, outputDir: dir.file("o"))
        }
        source = csv([Field("a", .int64)])
        source.quote = UInt8(ascii: ",")
        #expect(throws: IngestError.invalidSource(file: path, message: "delimiter and quote must differ from each other and from line breaks")) {
            try ingest(shard: Shard(path: path), source: source, outputDir: dir.file("o"))
        }
        let dup = try dir.write("dup.csv", "a,a\n1,2\n")
        #expect(throws: IngestError.invalidSource(file: dup, message: "the header names column a twice")) {
            try ingest(shard: Shard(path: dup), source: csv([Field("a", .int64)]), outputDir: dir.file("o"))
        }
    }

    @Test func recordsLongerThanTheLimitAreQuarantinedWithoutHoldingThem() throws {
        var options = IngestOptions()
        options.readBlockBytes = 4096
        options.maxRecordBytes = 5000
        options.quarantineRawLimit = 200
        let long = "2,\"" + String(repeating: "ab\n", count: 4000) + "\""
        let text = "a,b\n1,x\n" + long + "\n3,\"y\nz\"\n4,w\n"
        let r = try ingestText(text, csv([Field("a", .int64), Field("b", .string)]), options: options)
        #expect(r.values("a") == [.int(1), .int(3), .int(4)])
        #expect(r.strings("b") == ["x", "y\nz", "w"])
        #expect(r.reasons == ["line 3: the record is longer than 5000 bytes (12005 bytes; an unterminated quote?)"])
        let raw = try #require(r.quarantine.first?.raw)
        #expect(raw.hasPrefix("2,\"ab\nab"))
        #expect(raw.hasSuffix("…[cut: 12005 bytes in all]"))
        #expect(raw.utf8.count <= 200)

        var json = IngestSource(format: .jsonl, columns: [Field("a", .int64)])
        json.extraColumns = .ignore
        let line = "{\"a\": 2, \"pad\": \"" + String(repeating: "x", count: 9000) + "\"}"
        let j = try ingestText("{\"a\": 1}\n" + line + "\n{\"a\": 3}\n", json, options: options)
        #expect(j.values("a") == [.int(1), .int(3)])
        #expect(j.reasons == ["line 2: the record is longer than 5000 bytes (\(line.utf8.count + 1) bytes; an unterminated quote?)"])
        #expect(j.quarantine.map(\.line) == [2])
    }
}
