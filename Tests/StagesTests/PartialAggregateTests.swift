import Columnar
import Foundation
import Testing
@testable import Stages

@Suite struct PartialAggregateTests {
    static let specs: [AggregateColumn] = [
        AggregateColumn("rows", .count),
        AggregateColumn("qty_n", .countNonNull("qty")),
        AggregateColumn("names", .countDistinct("name")),
        AggregateColumn("sum_qty", .sum("qty")),
        AggregateColumn("sum_n", .sum("n")),
        AggregateColumn("min_name", .min("name")),
        AggregateColumn("max_qty", .max("qty")),
        AggregateColumn("min_day", .min("day")),
        AggregateColumn("avg_qty", .avg("qty")),
        AggregateColumn("avg_n", .avg("n")),
    ]

    static func table(rows: Int, seed: UInt64) throws -> ColumnBatch {
        var rng = OpRandom(seed: seed)
        return try opBatch([
            ("flag", .string, (0..<rows).map { _ in rng.chance(0.1) ? nil : .string(["A", "N", "R"][rng.int(0...2)]) }),
            ("status", .bool, (0..<rows).map { _ in rng.chance(0.05) ? nil : .bool(rng.chance(0.5)) }),
            ("qty", .decimal(precision: 15, scale: 2), (0..<rows).map { _ in rng.chance(0.1) ? nil : .int(Int64(rng.int(-100_000...100_000))) }),
            ("n", .int32, (0..<rows).map { _ in rng.chance(0.1) ? nil : .int(Int64(rng.int(-50...50))) }),
            ("name", .string, (0..<rows).map { _ in rng.chance(0.1) ? nil : .string("c\(rng.int(0...30))") }),
            ("day", .date, (0..<rows).map { _ in rng.chance(0.1) ? nil : .int(Int64(rng.int(0...20_000))) }),
        ])
    }

    static func partial(_ b: ColumnBatch) throws -> PartialAggregate {
        var p = try PartialAggregate(groupBy: ["flag", "status"], aggregates: specs, schema: b.schema)
        try p.add(b)
        return p
    }

    @Test func exactValuesWithNullGroups() throws {
        let b = try opBatch([
            ("g", .string, [.string("x"), nil, .string("x"), nil, .string("y")]),
            ("v", .decimal(precision: 5, scale: 2), [.int(150), .int(-25), nil, .int(1), nil]),
            ("s", .string, [.string("b"), .string("a"), .string("b"), nil, nil]),
        ])
        var p = try PartialAggregate(groupBy: ["g"], aggregates: [
            AggregateColumn("rows", .count), AggregateColumn("vs", .countNonNull("v")), AggregateColumn("total", .sum("v")),
            AggregateColumn("lo", .min("v")), AggregateColumn("hi", .max("s")), AggregateColumn("mean", .avg("v")),
            AggregateColumn("d", .countDistinct("s")),
        ], schema: b.schema)
        try p.add(b)
        let r = try p.result()
        #expect(r.schema.fields.map(\.name) == ["g", "rows", "vs", "total", "lo", "hi", "mean", "d"])
        #expect(r.schema.fields[3].type == .decimal(precision: 18, scale: 2))
        #expect(r.schema.fields[6].type == .double)
        #expect(opStrings(r["g"]) == [nil, "x", "y"])  // null group first
        #expect(opInts(r["rows"]) == [2, 2, 1])
        #expect(opInts(r["vs"]) == [2, 1, 0])
        #expect(opInts(r["total"]) == [-24, 150, nil])
        #expect(opInts(r["lo"]) == [-25, 150, nil])
        #expect(opStrings(r["hi"]) == ["a", "b", nil])
        #expect(r["mean"]!.scalar(at: 0) == .double(-0.12) && r["mean"]!.scalar(at: 1) == .double(1.5) && r["mean"]!.isNull(2))
        #expect(opInts(r["d"]) == [1, 1, 0])
    }

    @Test func mergingPartialsOfRandomSplitsEqualsTheWhole() throws {
        for seed in UInt64(1)...8 {
            let whole = try Self.table(rows: 1500, seed: seed)
            let all = try Self.partial(whole)
            var rng = OpRandom(seed: seed * 77)
            var cuts = (0..<rng.int(1...6)).map { _ in rng.int(0...whole.rowCount) }
            cuts = ([0] + cuts + [whole.rowCount]).sorted()
            var parts = try zip(cuts, cuts.dropFirst()).map { try Self.partial(whole.slice($0..<$1)) }
            // Merge in a random order: merging is commutative too.
            parts.shuffle(using: &rng)
            var merged = parts[0]
            for p in parts.dropFirst() { try merged.merge(p) }
            #expect(merged == all)
            #expect(try merged.result().isIdentical(to: try all.result()))
            #expect(try merged.jsonBytes() == (try all.jsonBytes()))
        }
    }

    @Test func mergeIsAssociative() throws {
        let t = try Self.table(rows: 900, seed: 99)
        let a = try Self.partial(t.slice(0..<200)), b = try Self.partial(t.slice(200..<650)), c = try Self.partial(t.slice(650..<900))
        let left = try a.merging(b).merging(c)
        let right = try a.merging(try b.merging(c))
        #expect(left == right)
        #expect(try left.result().isIdentical(to: try right.result()))
    }

    @Test func jsonRoundTrip() throws {
        let p = try Self.partial(try Self.table(rows: 600, seed: 5))
        let bytes = try p.jsonBytes()
        let back = try PartialAggregate(json: bytes)
        #expect(back == p)
        #expect(try back.jsonBytes() == bytes)
        #expect(try back.result().isIdentical(to: try p.result()))
        // Merging and adding after a round trip still find the groups (the indexes are rebuilt).
        #expect(try back.merging(p).groupCount == p.groupCount)
        let more = try Self.table(rows: 300, seed: 6)
        var p2 = p, back2 = back
        try p2.add(more)
        try back2.add(more)
        #expect(p2 == back2 && p2.groupCount == p.groupCount)
    }

    @Test func noGroupByGivesOneRow() throws {
        let t = try Self.table(rows: 500, seed: 8)
        var p = try PartialAggregate(groupBy: [], aggregates: Self.specs, schema: t.schema)
        try p.add(t.slice(0..<100))
        try p.add(t.slice(100..<500))
        let r = try p.result()
        #expect(r.rowCount == 1)
        #expect(opInts(r["rows"]) == [500])
        let qty = t["qty"]!
        #expect(opInts(r["qty_n"]) == [Int64(500 - qty.nullCount)])
        let total: Int64 = opInts(qty).compactMap { $0 }.reduce(0, +)
        #expect(opInts(r["sum_qty"]) == [total])
    }

    @Test func emptyInputGivesNoGroups() throws {
        let schema = try Self.table(rows: 1, seed: 1).schema
        var p = try PartialAggregate(groupBy: ["flag"], aggregates: Self.specs, schema: schema)
        try p.add(ColumnBatch.empty(schema))
        #expect(p.groupCount == 0)
        #expect(try p.result().rowCount == 0)
        let q = try Self.partial(try Self.table(rows: 50, seed: 2))
        let r = try PartialAggregate(groupBy: ["flag", "status"], aggregates: Self.specs, schema: schema)
        #expect(try r.merging(q) == q)
    }

    @Test func decimalSumOverflowIsAnErrorNamingTheColumn() throws {
        let big: Int64 = 600_000_000_000_000_000
        let b = try opBatch([("g", .int64, [.int(1), .int(1)]), ("v", .decimal(precision: 18, scale: 2), [.int(big), .int(big)])])
        var p = try PartialAggregate(groupBy: ["g"], aggregates: [AggregateColumn("total", .sum("v"))], schema: b.schema)
        let text = opErrorText { try p.add(b) }
        #expect(text.contains("'v'") && text.contains("overflow"))
        // Int64 sums refuse to wrap too, also when the overflow happens in a merge.
        let i = try opBatch([("g", .int64, [.int(1)]), ("v", .int64, [.int(Int64.max)])])
        let q = try PartialAggregate(groupBy: ["g"], aggregates: [AggregateColumn("total", .sum("v"))], schema: i.schema)
        var q1 = q, q2 = q
        try q1.add(i)
        try q2.add(i)
        #expect(opErrorText { _ = try q1.merging(q2) }.contains("'v'"))
    }

    @Test func settingErrorsNameTheColumn() throws {
        let schema = try Self.table(rows: 1, seed: 1).schema
        #expect(opErrorText { _ = try PartialAggregate(groupBy: ["flg"], aggregates: [], schema: schema) }.contains("'flg'"))
        let sumText = opErrorText { _ = try PartialAggregate(groupBy: [], aggregates: [AggregateColumn("x", .sum("name"))], schema: schema) }
        #expect(sumText.contains("'name'") && sumText.contains("string"))
        #expect(opErrorText { _ = try PartialAggregate(groupBy: [], aggregates: [AggregateColumn("x", .max("nope"))], schema: schema) }.contains("'nope'"))
        let p = try PartialAggregate(groupBy: ["flag"], aggregates: [AggregateColumn("c", .count)], schema: schema)
        let other = try PartialAggregate(groupBy: ["status"], aggregates: [AggregateColumn("c", .count)], schema: schema)
        #expect(opErrorText { _ = try p.merging(other) }.contains("cannot merge"))
    }

    @Test func partialFromChunks() throws {
        let dir = try OpTempDir()
        defer { dir.cleanup() }
        let t = try Self.table(rows: 1000, seed: 3)
        let a = try opWriteChunk(dir.file("a.parquet"), [t.slice(0..<400)], rowGroupRows: 128)
        let b = try opWriteChunk(dir.file("b.parquet"), [t.slice(400..<1000)], rowGroupRows: 128)
        let p = try #require(try partialAggregate(chunks: [a.path, b.path], groupBy: ["flag", "status"], aggregates: Self.specs))
        #expect(p == (try Self.partial(t)))
        #expect(try partialAggregate(chunks: [], groupBy: ["flag"], aggregates: Self.specs) == nil)
    }

    @Test func doubleGroupsAndNaN() throws {
        let b = try opBatch([("d", .double, [.double(0.0), .double(-0.0), .double(.nan), .double(.nan), nil, .double(1)])])
        var p = try PartialAggregate(groupBy: ["d"], aggregates: [AggregateColumn("c", .count), AggregateColumn("hi", .max("d"))], schema: b.schema)
        try p.add(b)
        let r = try p.result()
        #expect(opInts(r["c"]) == [1, 2, 1, 2])  // null, 0 (both zeros), 1, NaN last
        #expect(r["hi"]!.scalar(at: 3).map { if case .double(let x) = $0 { return x.isNaN } else { return false } } == true)
    }

    /// Doubles (NaN, ±inf, -0.0 keys) and 64-bit extremes survive the JSON exactly.
    @Test func jsonKeepsDoublesAndExtremesExactly() throws {
        let b = try opBatch([
            ("d", .double, [.double(.nan), .double(-0.0), .double(.infinity), .double(0.1), nil, .double(-.infinity)]),
            ("i", .int64, [.int(Int64.max), .int(Int64.min), .int(-1), .int(1 << 60), nil, .int(3)]),
            ("s", .string, [.string("日本"), .string("\u{0}\""), nil, .string(""), .string("x"), .string("y")]),
        ])
        var p = try PartialAggregate(groupBy: ["d"], aggregates: [
            AggregateColumn("sd", .sum("d")), AggregateColumn("ad", .avg("d")), AggregateColumn("mi", .min("i")),
            AggregateColumn("ma", .max("s")), AggregateColumn("cd", .countDistinct("i")),
        ], schema: b.schema)
        try p.add(b)
        var q = try PartialAggregate(groupBy: ["i"], aggregates: [AggregateColumn("c", .count), AggregateColumn("x", .max("d"))], schema: b.schema)
        try q.add(b)
        for partial in [p, q] {
            let back = try PartialAggregate(json: try partial.jsonBytes())
            #expect(back == partial)
            #expect(try back.result().isIdentical(to: try partial.result()))
        }
    }
}
