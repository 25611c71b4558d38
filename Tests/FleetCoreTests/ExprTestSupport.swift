import Columnar
import Testing
@testable import FleetCore

/// A small table with every type, edge values and a row of nulls, shared by
/// the expression tests.
enum ExprFixture {
    static let schema = Schema([
        Field("i", .int64), Field("j", .int32, nullable: false),
        Field("d", .decimal(precision: 15, scale: 2)), Field("e", .decimal(precision: 15, scale: 2), nullable: false),
        Field("f", .double), Field("s", .string), Field("day", .date), Field("ts", .timestamp), Field("b", .bool),
        Field("l_shipdate", .date), Field("odd name", .string),
    ])

    static func day(_ text: String) -> Scalar { .int(Int64(CalendarMath.parseDate(text)!)) }
    static func ts(_ text: String) -> Scalar { .int(CalendarMath.parseTimestamp(text)!) }

    /// Row 0 ordinary, row 1 negatives, row 2 nulls, row 3 extremes.
    static let batch: ColumnBatch = {
        let columns: [Column] = [
            try! Column(.int64, scalars: [.int(1), .int(-7), nil, .int(Int64.max)]),
            try! Column(.int32, scalars: [.int(10), .int(2), .int(0), .int(Int64(Int32.min))]),
            try! Column(.decimal(precision: 15, scale: 2), scalars: [.int(150), .int(10000), nil, .int(999_999_999_999_999)]),
            try! Column(.decimal(precision: 15, scale: 2), scalars: [.int(5), .int(10), .int(0), .int(0)]),
            try! Column(.double, scalars: [.double(2.5), .double(-0.5), nil, .double(1e300)]),
            try! Column(.string, scalars: [.string("Hello"), .string("  pad "), nil, .string("日本語")]),
            try! Column(.date, scalars: [day("1998-09-02"), day("1998-09-03"), nil, day("2000-02-29")]),
            try! Column(.timestamp, scalars: [ts("2026-01-02T03:04:05Z"), ts("1998-09-02T23:00:00Z"), nil,
                                              ts("1969-12-31T23:59:59.5Z")]),
            try! Column(.bool, scalars: [.bool(true), .bool(false), nil, .bool(true)]),
            try! Column(.date, scalars: [day("1998-09-01"), day("1998-09-02"), day("1998-09-03"), nil]),
            try! Column(.string, scalars: [.string("a"), .string("b"), .string("c"), .string("d")]),
        ]
        return try! ColumnBatch(schema: schema, columns: columns)
    }()

    /// Every row's value as text (nil for null), plus the result type.
    static func evaluate(_ text: String, _ batch: ColumnBatch = batch) throws -> (values: [String?], type: ColumnType) {
        let typed = try Expression.parse(text).check(batch.schema)
        let column = try typed.evaluate(batch)
        #expect(column.type == typed.type)
        #expect(column.count == batch.rowCount)
        return ((0..<column.count).map { column.isNull($0) ? nil : Cast.text(column, $0) }, typed.type)
    }

    static func values(_ text: String, _ batch: ColumnBatch = batch) throws -> [String?] {
        try evaluate(text, batch).values
    }

    /// The constant's value as text.
    static func constant(_ text: String) throws -> String? {
        let (value, type) = try Expression.constant(text)
        return value.map { ValueText.format($0, as: type) }
    }

    /// The error a parse or check of `text` throws.
    static func error(_ text: String) -> ExpressionError? {
        do {
            _ = try Expression.parse(text).check(schema)
            return nil
        } catch {
            return error
        }
    }

    /// The error evaluating `text` over the fixture throws.
    static func runtimeError(_ text: String, _ batch: ColumnBatch = batch) -> ExpressionError? {
        do {
            _ = try Expression.parse(text).check(batch.schema).evaluate(batch)
            return nil
        } catch {
            return error
        }
    }
}
