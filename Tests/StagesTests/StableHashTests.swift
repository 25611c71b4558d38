import Columnar
import Testing
@testable import Stages

/// Pins the partitioning hash. These numbers were computed by an independent
/// Python implementation of the definition in StableHash.swift; if one
/// changes, rows of old and new workers no longer meet in one partition.
@Suite struct StableHashTests {
    @Test(arguments: [
        ([(ColumnType.int64, Scalar.int(42))], 0x0640_467e_21fb_54bb as UInt64),
        ([(.int64, .int(-1))], 0x9ff8_1161_8b11_c6f3),
        ([(.string, .string("hello"))], 0xe267_1050_75cf_0d2f),
        ([(.string, .string(""))], 0xac88_dece_8b4e_17b3),
        ([(.decimal(precision: 15, scale: 2), .int(1234))], 0x98ab_a6dc_cbfb_4dff),
        ([(.decimal(precision: 15, scale: 2), .int(150))], 0x8fee_ef28_0bf7_9376),
        ([(.double, .double(1.5))], 0x88d1_67c7_433f_8b47),
        ([(.bool, .bool(true))], 0x7fdb_a882_4e8c_e82a),
        ([(.string, .string("日本"))], 0x4ce3_5488_9f52_fa51),
    ] as [([(ColumnType, Scalar)], UInt64)])
    func goldenValues(key: [(ColumnType, Scalar)], expected: UInt64) throws {
        #expect(try StableHash.hash(key.map { ($0.0, $0.1) }) == expected)
    }

    @Test func goldenNullAndMultiColumn() throws {
        #expect(try StableHash.hash([(.int64, nil)]) == 0xb903_4ad3_7056_f5fb)
        #expect(try StableHash.hash([(.int64, .int(7)), (.string, .string("x")), (.double, nil)]) == 0x007c_667b_4873_ea5e)
    }

    @Test func equalValuesHashEquallyAcrossWidthsAndScales() throws {
        // 1.5 as decimal(9,1) and 1.50 as decimal(15,2) are the same number.
        #expect(try StableHash.hash([(.decimal(precision: 9, scale: 1), .int(15))])
                == StableHash.hash([(.decimal(precision: 15, scale: 2), .int(150))]))
        #expect(try StableHash.hash([(.int32, .int(42))]) == StableHash.hash([(.int64, .int(42))]))
        #expect(try StableHash.hash([(.double, .double(-0.0))]) == StableHash.hash([(.double, .double(0.0))]))
        // Column boundaries matter: ("ab", "c") is not ("a", "bc").
        #expect(try StableHash.hash([(.string, .string("ab")), (.string, .string("c"))])
                != StableHash.hash([(.string, .string("a")), (.string, .string("bc"))]))
    }

    @Test func rowHashesMatchTheScalarDefinition() throws {
        let b = try opBatch([
            ("k", .int64, [.int(42), nil, .int(-1)]),
            ("s", .string, [.string("hello"), .string(""), nil]),
            ("t", .timestamp, [nil, .int(1_700_000_000_000_000), .int(0)]),
            ("m", .decimal(precision: 9, scale: 3), [.int(1500), nil, .int(-7)]),
            ("d", .date, [.int(19_000), .int(-1), nil]),
            ("f", .double, [.double(-0.0), nil, .double(.nan)]),
            ("b", .bool, [.bool(false), .bool(true), nil]),
        ])
        let names = b.schema.fields.map(\.name)
        let rows = try StableHash.rowHashes(b, columns: names)
        for r in 0..<3 {
            #expect(rows[r] == (try StableHash.hash(b.columns.map { ($0.type, $0.scalar(at: r)) })))
        }
        // Column by column: each column's fast or generic path alone.
        for (i, name) in names.enumerated() {
            let one = try StableHash.rowHashes(b, columns: [name])
            for r in 0..<3 { #expect(one[r] == (try StableHash.hash([(b.columns[i].type, b.columns[i].scalar(at: r))]))) }
        }
        #expect(try StableHash.partitions(b, columns: ["k"], count: 4)[0] == Int(0x0640_467e_21fb_54bb as UInt64 % 4))
        #expect(opErrorText { _ = try StableHash.rowHashes(b, columns: ["nope"]) }.contains("'nope'"))
    }

    @Test func partitionsSpreadEvenly() throws {
        let n = 40_000
        let b = try ColumnBatch(schema: Schema([Field("k", .int64)]),
                                columns: [try Column(.int64, .int64((0..<Int64(n)).map { $0 }))])
        var counts = [Int](repeating: 0, count: 8)
        for p in try StableHash.partitions(b, columns: ["k"], count: 8) { counts[p] += 1 }
        // Each partition within 10% of n/8 (a loose check against a broken mix).
        #expect(counts.allSatisfy { abs($0 - n / 8) < n / 80 })
    }
}
