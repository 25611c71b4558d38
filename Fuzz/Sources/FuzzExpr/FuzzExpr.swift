import Columnar
import FleetCore
#if canImport(Glibc)
import Glibc
#endif

/// BIS_FUZZ_PRINT=1: print what the checker and evaluator said (when running single inputs).
let verbose = getenv("BIS_FUZZ_PRINT") != nil

/// The expression language: the input is an expression's text (invalid
/// UTF-8 repaired). Parses it, type-checks it against a table with a column
/// of every type, and when it checks, evaluates it over five rows of edge
/// values (extremes, zero, NaN, empty text, nulls) and filters with it when
/// it is a predicate; also as a constant converted to every type. Thrown
/// `ExpressionError`s (syntax, types, overflow, bad conversion) are fine; a
/// trap, a sanitizer report, a stack overflow, a hang or a huge allocation
/// is a defect.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzExpression(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    let typed: TypedExpression
    do {
        typed = try Expression.parse(text).check(Table.batch.schema)
    } catch {
        if verbose { print(error) }
        return 0
    }
    do {
        let column = try typed.evaluate(Table.batch)
        if verbose { print("\(typed.type): \((0..<column.count).map { column.scalar(at: $0).map(\.description) ?? "null" })") }
    } catch {
        if verbose { print("\(typed.type): \(error)") }
    }
    if typed.type == .bool { _ = try? typed.filter(Table.batch) }
    if typed.isConstant {
        _ = try? typed.evaluateConstant()
        for type in Table.types { _ = try? Expression.constant(text, as: type) }
    }
    return 0
}

enum Table {
    static let types: [ColumnType] = [.int64, .int32, .double, .bool, .string, .date, .timestamp,
                                      .decimal(precision: 15, scale: 2), .decimal(precision: 18, scale: 0),
                                      .decimal(precision: 4, scale: 4)]

    /// Columns named for their type (`i64`, `i32`, `dbl`, …), plus `k`, an
    /// int64 declared not nullable, and `date`, a string column named like
    /// the keyword.
    static let batch: ColumnBatch = {
        let i64: [Scalar?] = [.int(.max), .int(.min), .int(0), .int(-1), nil]
        let i32: [Scalar?] = [.int(Int64(Int32.max)), .int(Int64(Int32.min)), .int(0), .int(7), nil]
        let dbl: [Scalar?] = [.double(.nan), .double(.infinity), .double(-0.0), .double(1e308), nil]
        let str: [Scalar?] = [.string(""), .string("  Zürich "), .string("2024-02-29"), .string("-9223372036854775808"), nil]
        let bools: [Scalar?] = [.bool(true), .bool(false), nil, .bool(true), nil]
        // 0001-01-01, 9999-12-31, the epoch, 2024-02-29.
        let dates: [Scalar?] = [.int(-719_162), .int(2_932_896), .int(0), .int(19_782), nil]
        let stamps: [Scalar?] = [.int(-62_135_596_800_000_000), .int(253_402_300_799_999_999), .int(0), .int(.max), nil]
        let dec: [Scalar?] = [.int(999_999_999_999_999), .int(-999_999_999_999_999), .int(0), .int(1), nil]
        let dec18: [Scalar?] = [.int(999_999_999_999_999_999), .int(-999_999_999_999_999_999), .int(0), .int(-1), nil]
        let k: [Scalar?] = [.int(1), .int(0), .int(-1), .int(.max), .int(.min)]
        let columns: [(String, ColumnType, [Scalar?], Bool)] = [
            ("i64", .int64, i64, true), ("i32", .int32, i32, true), ("dbl", .double, dbl, true),
            ("str", .string, str, true), ("flag", .bool, bools, true), ("day", .date, dates, true),
            ("ts", .timestamp, stamps, true), ("amount", .decimal(precision: 15, scale: 2), dec, true),
            ("big", .decimal(precision: 18, scale: 0), dec18, true), ("k", .int64, k, false),
            ("date", .string, str, true),
        ]
        // Safe: every scalar above fits its column's type.
        return try! ColumnBatch(
            schema: Schema(columns.map { Field($0.0, $0.1, nullable: $0.3) }),
            columns: columns.map { try! Column($0.1, scalars: $0.2) })
    }()
}
