import Columnar
import Foundation
import Testing
@testable import FleetCore

@Suite struct SpecExampleTests {
    @Test func designExampleLoadsWithItsInputFile() throws {
        try withTempDir { dir in
            let specPath = try dir.write("lineitem.yml", designExampleSpec)
            try dir.write("data/lineitem/a.csv", "l_orderkey,l_linenumber\n1,1\n")
            let spec = try PipelineSpec.load(path: specPath)

            #expect(spec.name == "lineitem-daily")
            #expect(spec.sources.count == 1)
            let source = spec.sources[0]
            #expect(source.name == "lineitem")
            #expect(source.format == .csv)
            #expect(source.files == [FilePattern("data/lineitem/*.csv", location: SpecLocation(line: 5, column: 12))])
            #expect(source.resolvedFiles == [PathResolver.canonical(dir.path) + "/data/lineitem/a.csv"])
            #expect(source.csv == CSVOptions(header: true, delimiter: UInt8(ascii: ","), quote: UInt8(ascii: "\""),
                                             nulls: ["", "NA", "NULL"]))
            #expect(source.missingColumns == .error)
            #expect(source.extraColumns == .error)
            #expect(source.shardSize == ByteSize(bytes: 64 << 20))
            // Declared order is the YAML mapping's order.
            #expect(source.schema.fields.map(\.name) == [
                "l_orderkey", "l_linenumber", "l_quantity", "l_extendedprice", "l_discount",
                "l_returnflag", "l_linestatus", "l_shipdate", "l_commitdate",
            ])
            #expect(source.schema.fields[2].type == .decimal(precision: 15, scale: 2))
            #expect(source.schema.fields[7].type == .date)

            #expect(spec.normalize.count == 2)
            guard case .derive(let derived) = spec.normalize[0].operation else {
                Issue.record("first step is not derive")
                return
            }
            #expect(derived == [DerivedColumn(
                name: "revenue",
                expression: SpecExpression("l_extendedprice * (1 - l_discount)", location: SpecLocation(line: 18, column: 24)),
                declaredType: nil, type: .decimal(precision: 18, scale: 4))])
            #expect(spec.normalize[1].operation
                == .filter(SpecExpression("l_shipdate <= date '1998-09-02'", location: SpecLocation(line: 19, column: 13))))
            // The expression language types it: scale 2 × scale 2 gives scale 4,
            // precision capped at 18 (as DuckDB does).
            #expect(spec.columns.last == SpecColumn(name: "revenue", type: .decimal(precision: 18, scale: 4)))
            #expect(spec.outputSchema?.fields.last?.type == .decimal(precision: 18, scale: 4))

            let consolidate = try #require(spec.consolidate)
            #expect(consolidate.partitionBy == ["l_orderkey"])
            #expect(consolidate.partitions == 4)
            #expect(consolidate.sortBy == ["l_orderkey", "l_linenumber"])
            #expect(consolidate.dedupe == DedupeSpec(key: ["l_orderkey", "l_linenumber"], keep: .latest(by: "l_commitdate")))
            #expect(consolidate.memoryBudget == ByteSize(bytes: 512 << 20))

            #expect(spec.validate.rules.map(\.name) == ["not_null l_orderkey", "unique l_orderkey, l_linenumber", "range l_discount"])
            #expect(spec.validate.gates.maxFailureRate == FailureRate(parts: 5, whole: 100))
            #expect(spec.validate.rules[2].check == .range(RangeCheck(
                column: "l_discount",
                min: RangeBound(text: "0", exclusive: false, value: .decimal(unscaled: 0, scale: 0)),
                max: RangeBound(text: "0.10", exclusive: false, value: .decimal(unscaled: 10, scale: 2)))))

            let publish = try #require(spec.publish)
            #expect(publish.dataset == "lineitem")
            #expect(publish.summaries == [SummarySpec(
                name: "lineitem_by_status", groupBy: ["l_returnflag", "l_linestatus"],
                aggregates: [
                    AggregateSpec(name: "sum_qty", function: .sum, column: "l_quantity"),
                    AggregateSpec(name: "revenue", function: .sum, column: "revenue"),
                    AggregateSpec(name: "orders", function: .count, column: nil),
                ])])
            #expect(spec.report?["title"]?.text == "Lineitem summary")
            #expect(spec.deliver?["approval"]?.text == "required")
            #expect(spec.deliver?["to"]?.text == "outbox/finance")
        }
    }

    @Test func designExampleWithACheckerTypesTheDerivedColumn() throws {
        let checker = FakeChecker()
        let spec = try parseSpec(designExampleSpec, checker: checker)
        #expect(spec.columns.last == SpecColumn(name: "revenue", type: .decimal(precision: 18, scale: 4)))
        let schema = try #require(spec.outputSchema)
        #expect(schema.fields.count == 10)
    }

    @Test func theDocumentedExampleLoads() throws {
        // docs/spec.md's complete example must stay valid.
        let docs = URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("docs/spec.md")
        let text = try String(contentsOf: docs, encoding: .utf8)
        let start = try #require(text.range(of: "```yaml\n# complete example\n"))
        let end = try #require(text.range(of: "```", range: start.upperBound..<text.endIndex))
        let yaml = String(text[start.upperBound..<end.lowerBound])
        let spec = try parseSpec(yaml, checker: FakeChecker())
        #expect(spec.sources.count == 2)
    }
}
