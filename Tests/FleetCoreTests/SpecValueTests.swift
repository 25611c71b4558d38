import Columnar
import Testing
@testable import FleetCore

/// The small parsers under the spec: type names, sizes, literals, suggestions.
@Suite struct SpecValueTests {
    @Test func typeNamesMapToColumnTypes() throws {
        let cases: [(String, ColumnType)] = [
            ("int64", .int64), ("int32", .int32), ("double", .double), ("bool", .bool), ("string", .string),
            ("date", .date), ("timestamp", .timestamp), ("decimal(15,2)", .decimal(precision: 15, scale: 2)),
            ("decimal( 18 , 0 )", .decimal(precision: 18, scale: 0)),
        ]
        for (text, type) in cases {
            #expect(try ColumnTypeName.parse(text).get() == type)
        }
        #expect(throws: TypeNameError.self) { try ColumnTypeName.parse("decimal(0,0)").get() }
        #expect(throws: TypeNameError.self) { try ColumnTypeName.parse("decimal(2)").get() }
        #expect(throws: TypeNameError.self) { try ColumnTypeName.parse("int").get() }
    }

    @Test func byteSizes() {
        #expect(ByteSize(parsing: "64MiB") == ByteSize(bytes: 64 << 20))
        #expect(ByteSize(parsing: "1GB") == ByteSize(bytes: 1_000_000_000))
        #expect(ByteSize(parsing: "512 kib") == ByteSize(bytes: 512 << 10))
        #expect(ByteSize(parsing: "1.5GiB") == ByteSize(bytes: 3 << 29))
        #expect(ByteSize(parsing: "4096") == ByteSize(bytes: 4096))
        #expect(ByteSize(parsing: "10B") == ByteSize(bytes: 10))
        #expect(ByteSize(parsing: "1.5") == nil)
        #expect(ByteSize(parsing: "MiB") == nil)
        #expect(ByteSize(parsing: "64 parsecs") == nil)
        #expect(ByteSize(bytes: 64 << 20).description == "64MiB")
        #expect(ByteSize(bytes: 2_000_000_000).description == "2GB")
    }

    @Test func literalsConvertToColumnarScalars() {
        #expect(SpecLiteral.scalar("12.5", as: .decimal(precision: 5, scale: 2)) == .int(1250))
        #expect(SpecLiteral.scalar("-0.05", as: .decimal(precision: 5, scale: 2)) == .int(-5))
        #expect(SpecLiteral.scalar("1234.5", as: .decimal(precision: 5, scale: 2)) == nil)
        #expect(SpecLiteral.scalar("1.234", as: .decimal(precision: 5, scale: 2)) == nil)
        #expect(SpecLiteral.scalar("1970-01-02", as: .date) == .int(1))
        #expect(SpecLiteral.scalar("1998-09-02", as: .date) == .int(10_471))
        #expect(SpecLiteral.scalar("1969-12-31", as: .date) == .int(-1))
        #expect(SpecLiteral.scalar("2023-02-29", as: .date) == nil)
        #expect(SpecLiteral.scalar("1970-01-01T00:00:01.5Z", as: .timestamp) == .int(1_500_000))
        #expect(SpecLiteral.scalar("1970-01-02 00:00:00", as: .timestamp) == .int(86_400_000_000))
        #expect(SpecLiteral.scalar("2147483648", as: .int32) == nil)
        #expect(SpecLiteral.scalar("TRUE", as: .bool) == .bool(true))
        #expect(SpecLiteral.scalar("n/a", as: .string) == .string("n/a"))
        #expect(SpecLiteral.scalar("2.5e3", as: .double) == .double(2500))
    }

    @Test func suggestionsAreWithinTwoEdits() {
        #expect(editDistance("partiton_by", "partition_by") == 1)
        #expect(editDistance("paritton_by", "partition_by") == 2)
        #expect(suggestion(for: "shardsize", among: SpecLoader.sourceKeys) == "shard_size")
        #expect(suggestion(for: "colour", among: SpecLoader.sourceKeys) == nil)
    }
}
