import Columnar
import FleetCore
import Foundation
import Testing
@testable import Stages

/// Every data row carries `_source_file` and `_source_line` from ingest to
/// validate, and publish keeps them only when asked.
@Suite struct ProvenanceTests {
    static let columns = [Field("id", .int64, nullable: false), Field("name", .string), Field("amount", .int64)]

    /// `_source_file` and `_source_line` of an ingest (or any chunk batch).
    static func origins(_ batch: ColumnBatch) -> [String] {
        let files = opStrings(batch[Provenance.file]), lines = opInts(batch[Provenance.line])
        return zip(files, lines).map { "\($0 ?? "nil"):\($1.map(String.init) ?? "nil")" }
    }

    // MARK: ingest

    @Test func csvRowsNameTheirFileAndTheLineTheirRecordStartsOn() throws {
        let dir = try IngestTempDir()
        defer { dir.cleanup() }
        // Line 1 header; record id 2 spans lines 3-5; line 6 blank; id x is bad (line 7).
        let text = "id,name,amount\n1,plain,10\n2,\"three\nline\nname\",20\n\nx,bad,30\n3,\"a,b\",40\r\n4,last,50"
        let path = try dir.write("orders.csv", text)
        let r = try ingestFile(path, csv(Self.columns), dir: dir)
        #expect(r.schema.fields == Self.columns + Provenance.fields)
        #expect(r.values("id") == [.int(1), .int(2), .int(3), .int(4)])
        #expect(r.strings(Provenance.file) == [path, path, path, path])
        #expect(r.values(Provenance.line) == [.int(2), .int(3), .int(8), .int(9)])
        // The same file text and line numbering as ingest's own quarantine.
        #expect(r.quarantine.map(\.file) == [path])
        #expect(r.quarantine.map(\.line) == [7])
    }

    @Test func headerlessCSVCountsFromLineOne() throws {
        let r = try ingestText("1,a,1\n2,b,2\n", csv(Self.columns, header: false))
        #expect(r.values(Provenance.line) == [.int(1), .int(2)])
    }

    @Test func jsonLinesRowsNameTheirLine() throws {
        let dir = try IngestTempDir()
        defer { dir.cleanup() }
        let text = "{\"id\": 1, \"name\": \"a\"}\n\n{\"id\": \"x\"}\n{\"id\": 2, \"amount\": 5}\r\n   \n{\"id\": 3}"
        let path = try dir.write("events.jsonl", text)
        let r = try ingestFile(path, IngestSource(format: .jsonl, columns: Self.columns), dir: dir)
        #expect(r.values("id") == [.int(1), .int(2), .int(3)])
        #expect(r.strings(Provenance.file) == [path, path, path])
        #expect(r.values(Provenance.line) == [.int(1), .int(4), .int(6)])
        #expect(r.quarantine.map(\.line) == [3])
    }

    @Test func shardsKeepTheFilesLineNumbers() throws {
        let dir = try IngestTempDir()
        defer { dir.cleanup() }
        var text = "id,name,amount\n"
        for i in 1...300 { text += i % 7 == 0 ? "\(i),\"two\nlines\",\(i)\n" : "\(i),n\(i),\(i)\n" }
        let path = try dir.write("big.csv", text)
        let source = csv(Self.columns)
        let whole = try ingestFile(path, source, dir: dir, out: "whole")
        let shards = try planShards(path: path, size: Int64(text.utf8.count), shardSize: 512, source: source)
        #expect(shards.count > 3)
        var lines: [Scalar?] = []
        for (i, shard) in shards.enumerated() {
            let part = try ingestFile(path, source, shard: shard, dir: dir, out: "shard\(i)")
            #expect(Set(part.strings(Provenance.file)) == [path])
            lines += part.values(Provenance.line)
        }
        #expect(lines == whole.values(Provenance.line))
        #expect(whole.values(Provenance.line).count == 300)
    }

    @Test func aSourceMayNotDeclareAReservedColumn() throws {
        let error = opErrorText {
            _ = try ingestText("id,_source_file\n1,x\n", csv([Field("id", .int64), Field("_source_file", .string)]))
        }
        #expect(error.contains("_source_file"), "\(error)")
        #expect(error.contains("reserved"), "\(error)")
    }

    // MARK: normalize, consolidate, validate

    /// Ingests `text` as orders.csv in `dir`; returns the chunk and the file's path.
    static func ingestOrders(_ text: String, dir: OpTempDir, name: String = "orders.csv") throws -> (chunk: String, file: String) {
        let file = dir.file(name)
        try text.write(toFile: file, atomically: true, encoding: .utf8)
        let r = try ingest(shard: Shard(path: file), source: csv(columns), outputDir: try dir.sub("ingest-" + name))
        return (r.chunk.path, file)
    }

    @Test func normalizeCarriesThemThroughEveryKindOfStep() throws {
        let dir = try OpTempDir()
        defer { dir.cleanup() }
        let (chunk, file) = try Self.ingestOrders("id,name,amount\n1, a ,10\n2,b,-1\n3,c,\n4,\"d\ne\",7\n", dir: dir)
        let spec = try PipelineSpec.parse(yaml: """
            pipeline: p
            sources:
              s: {format: csv, files: x.csv, columns: {id: int64, name: string, amount: int64}}
            normalize:
              - trim: [name]
              - rename: {name: label}
              - fill_null: {amount: "0"}
              - derive: {double_amount: "amount * 2"}
              - cast: {id: string}
              - filter: "amount >= 0"
              - select: [label, id, double_amount]
              - drop: [double_amount]
              - filter: "label != 'c'"
            """, file: "p.yml", directory: dir.path)
        let compiled = try SpecOperators.normalize(spec)
        let r = try normalize(inputChunks: [chunk], steps: compiled.ops, caster: compiled.caster, partitionBy: [],
                              partitions: 1, outputDir: try dir.sub("normalize"))
        let out = try ParquetReader(path: try #require(r.partitions.first).chunk.path).read()
        #expect(out.schema.fields.map(\.name) == ["label", "id", Provenance.file, Provenance.line])
        #expect(opStrings(out["id"]) == ["1", "4"])
        #expect(Self.origins(out) == ["\(file):2", "\(file):5"])
        // What the spec says normalize writes stays the declared columns: the steps never see provenance.
        #expect(compiled.outputSchema.fields.map(\.name) == ["label", "id"])
    }

    @Test func consolidateDedupeKeepsTheWinningRowsOrigin() throws {
        let dir = try OpTempDir()
        defer { dir.cleanup() }
        let day1 = try Self.ingestOrders("id,name,amount\n1,a,10\n2,b,20\n3,c,30\n", dir: dir, name: "day1.csv")
        let day2 = try Self.ingestOrders("id,name,amount\n\n2,b2,25\n1,a2,5\n", dir: dir, name: "day2.csv")
        let latest = try consolidate(inputChunks: [day1.chunk, day2.chunk], partitionBy: ["id"], sortBy: ["id"],
                                     dedupe: DedupeRule(key: ["id"], keep: .latest(by: "amount")),
                                     outputDir: try dir.sub("latest"))
        let l = try ParquetReader(path: try #require(latest.chunks.first).path).read()
        #expect(opStrings(l["name"]) == ["a", "b2", "c"])
        #expect(Self.origins(l) == ["\(day1.file):2", "\(day2.file):3", "\(day1.file):4"])

        let first = try consolidate(inputChunks: [day2.chunk, day1.chunk], partitionBy: ["id"], sortBy: ["id"],
                                    dedupe: DedupeRule(key: ["id"], keep: .first), outputDir: try dir.sub("first"))
        let f = try ParquetReader(path: try #require(first.chunks.first).path).read()
        #expect(opStrings(f["name"]) == ["a2", "b2", "c"])
        #expect(Self.origins(f) == ["\(day2.file):4", "\(day2.file):3", "\(day1.file):4"])
    }

    @Test func validateQuarantineNamesFileAndLineAndKeepsThemOnPassingRows() throws {
        let dir = try OpTempDir()
        defer { dir.cleanup() }
        let (chunk, file) = try Self.ingestOrders("id,name,amount\n1,a,10\n2,\"b\nb\",-20\n3,,30\n4,d,40\n", dir: dir)
        let r = try validate(inputChunks: [chunk], rules: [VRule.range("amount", min: "0"), VRule.notNull("name")],
                             partition: 0, outputDir: try dir.sub("validate"))
        #expect(r.rowsFailed == 2)
        let q = try ParquetReader(path: try #require(r.quarantine).path).read()
        #expect(q.schema == validateQuarantineSchema)
        #expect(opStrings(q["file"]) == [file, file])
        #expect(opInts(q["line"]) == [3, 5])
        #expect(opStrings(q["rule"]) == ["range amount", "not_null name"])
        // The row's values, without the provenance the columns already give.
        #expect(opStrings(q["row"]) == [#"{"id":2,"name":"b\nb","amount":-20}"#, #"{"id":3,"name":null,"amount":30}"#])
        let good = try ParquetReader(path: try #require(r.chunks.first).path).read()
        #expect(good.schema.fields.map(\.name) == ["id", "name", "amount", Provenance.file, Provenance.line])
        #expect(Self.origins(good) == ["\(file):2", "\(file):6"])
    }

    /// A dataset published without provenance: validate leaves the columns
    /// out of its chunks (so publish can link them), its quarantine still
    /// names file and line.
    @Test func validateDropsThemFromItsChunksWhenTheDatasetWillNotKeepThem() throws {
        let dir = try OpTempDir()
        defer { dir.cleanup() }
        let (chunk, file) = try Self.ingestOrders("id,name,amount\n1,a,10\n2,b,-20\n3,c,30\n", dir: dir)
        let by = [SummarySpec(name: "by_id", groupBy: ["id"], aggregates: [AggregateSpec(name: "n", function: .count, column: nil)])]
        let kept = try validate(inputChunks: [chunk], rules: [VRule.range("amount", min: "0")], partition: 0,
                                outputDir: try dir.sub("kept"), summaries: by)
        let r = try validate(inputChunks: [chunk], rules: [VRule.range("amount", min: "0")], partition: 0,
                             outputDir: try dir.sub("stripped"), summaries: by, options: ValidateOptions(keepProvenance: false))
        let good = try ParquetReader(path: try #require(r.chunks.first).path).read()
        #expect(good.schema.fields == Self.columns)
        #expect(opInts(good["id"]) == [1, 3])
        let q = try ParquetReader(path: try #require(r.quarantine).path).read()
        #expect(opStrings(q["file"]) == [file] && opInts(q["line"]) == [3])
        #expect(kept.chunks.first?.sha256 != r.chunks.first?.sha256 && r.summaries.count == kept.summaries.count)

        // Publish links such chunks as they are.
        let published = try publish(dataset: "orders", run: "r1", pipeline: "p", chunks: r.chunks.map(\.path), summaries: [:],
                                    root: dir.path + "/root", retention: 3, now: Date(timeIntervalSince1970: 1_795_000_000))
        #expect(try sha256(ofFile: try #require(published.dataset.files.first)) == r.chunks.first?.sha256)
    }

    @Test func validateQuarantineOfChunksWithoutProvenanceHasNullFileAndLine() throws {
        let dir = try OpTempDir()
        defer { dir.cleanup() }
        let chunk = try opWriteChunk(dir.file("c.parquet"), [try ordersBatch([(1, -5, "x")])]).path
        let r = try validate(inputChunks: [chunk], rules: [VRule.range("amount", min: "0")], partition: 0,
                             outputDir: try dir.sub("validate"))
        let q = try ParquetReader(path: try #require(r.quarantine).path).read()
        #expect(opStrings(q["file"]) == [nil])
        #expect(opInts(q["line"]) == [nil])
    }

    // MARK: publish

    @Test func publishDropsThemByDefaultAndKeepsThemWhenAsked() throws {
        let dir = try OpTempDir()
        defer { dir.cleanup() }
        let (chunk, file) = try Self.ingestOrders("id,name,amount\n1,a,10\n2,b,20\n2,c,5\n", dir: dir)
        let v = try validate(inputChunks: [chunk], rules: [], partition: 0,
                             outputDir: try dir.sub("validate"),
                             summaries: [SummarySpec(name: "by_id", groupBy: ["id"],
                                                     aggregates: [AggregateSpec(name: "n", function: .count, column: nil)])])
        let validated = v.chunks.map(\.path)
        let partials = ["by_id": v.summaries.map(\.partial)]
        let now = Date(timeIntervalSince1970: 1_795_000_000)

        let plain = try publish(dataset: "orders", run: "r1", pipeline: "p", chunks: validated, summaries: partials,
                                root: dir.path + "/root", retention: 3, now: now)
        let plainBatch = try ParquetReader(path: try #require(plain.dataset.files.first)).read()
        #expect(plainBatch.schema.fields == Self.columns)
        #expect(plain.dataset.manifest.schema.map(\.name) == Self.columns.map(\.name))
        #expect(opInts(plainBatch["id"]) == [1, 2, 2])
        #expect(opStrings(plainBatch["name"]) == ["a", "b", "c"])
        let summary = try ParquetReader(path: try #require(plain.summaries.first?.files.first)).read()
        #expect(summary.schema.fields.map(\.name) == ["id", "n"])
        // The rewritten file is the same bytes each time: publishing again reuses the version.
        let again = try publish(dataset: "orders", run: "r1", pipeline: "p", chunks: validated, summaries: partials,
                                root: dir.path + "/root", retention: 3, now: now)
        #expect(again.dataset.reused)

        let traced = try publish(dataset: "traced", run: "r1", pipeline: "p", chunks: validated, summaries: [:],
                                 root: dir.path + "/root", retention: 3, now: now, provenance: true)
        let tracedBatch = try ParquetReader(path: try #require(traced.dataset.files.first)).read()
        #expect(tracedBatch.schema.fields == Self.columns + Provenance.fields)
        #expect(Self.origins(tracedBatch) == ["\(file):2", "\(file):3", "\(file):4"])

        // An empty dataset gets the schema it would have had.
        let empty = try publish(dataset: "empty", run: "r1", pipeline: "p", chunks: [], summaries: [:],
                                root: dir.path + "/root", retention: 3, now: now,
                                schema: Schema(Self.columns + Provenance.fields))
        #expect(empty.dataset.manifest.schema.map(\.name) == Self.columns.map(\.name))
    }

    @Test func theDatasetSchemaOfASpecFollowsItsProvenanceOption() throws {
        func spec(_ publish: String) throws -> PipelineSpec {
            try PipelineSpec.parse(yaml: """
                pipeline: p
                sources:
                  s: {format: csv, files: x.csv, columns: {id: int64}}
                publish: \(publish)
                """, file: "p.yml", directory: "/nonexistent")
        }
        #expect(SpecOperators.datasetSchema(try spec("{dataset: d}"))?.fields.map(\.name) == ["id"])
        #expect(SpecOperators.datasetSchema(try spec("{dataset: d, provenance: false}"))?.fields.map(\.name) == ["id"])
        #expect(SpecOperators.datasetSchema(try spec("{dataset: d, provenance: true}"))?.fields.map(\.name)
                == ["id", Provenance.file, Provenance.line])
    }
}
