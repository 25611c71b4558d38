import Columnar
import Foundation
import Testing
@testable import FleetCore

/// Seeded random token soup: every text must either fail with an
/// ExpressionError or check and evaluate (possibly to a runtime
/// ExpressionError) without crashing, and a checked result must have the
/// type and nullability the checker promised.
struct ExprFuzzTests {
    static let vocabulary = [
        "i", "j", "d", "e", "f", "s", "day", "ts", "b", "l_shipdate", "\"odd name\"", "nosuch",
        "0", "1", "-1", "7", "9223372036854775807", "0.5", "0.10", "1e3", "'x'", "'Hello'", "''", "null", "true", "false",
        "date '1998-09-02'", "timestamp '2026-01-02T03:04:05Z'",
        "+", "-", "*", "/", "//", "%", "||", "=", "<>", "<", ">=", "and", "or", "not", "is", "null", "in", "between",
        "(", ")", ",", "case", "when", "then", "else", "end", "cast", "as", "int64", "string", "decimal(9,2)",
        "lower(", "upper(", "trim(", "length(", "substr(", "coalesce(", "abs(", "round(", "year(", "month(", "day(",
        "date_trunc('month',", "@", "'unterminated",
    ]

    /// Well-formed shapes with random operands, so that many texts get past the parser.
    static let shapes = [
        "A + B", "A * B", "A / B", "A // B", "A = B", "A < B", "A and B", "A or not B", "A is null", "A in (B, C)",
        "A between B and C", "case when A then B else C end", "coalesce(A, B)", "abs(A)", "round(A, 1)", "-A",
        "A || B", "length(A)", "substr(A, B, C)", "year(A)", "date_trunc('day', A)", "cast(A as string)",
        "cast(A as decimal(9,2))", "upper(A)", "A - B", "A % B", "A <> B",
    ]

    static let operands = ["i", "j", "d", "e", "f", "s", "day", "ts", "b", "l_shipdate", "0", "1", "-1", "2.5",
                           "0.10", "1e3", "'x'", "null", "true", "date '1998-09-02'", "9223372036854775807", "(i + j)"]

    @Test func randomTextNeverCrashes() {
        var state: UInt64 = 42
        func next(_ n: Int) -> Int {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Int((state >> 33) % UInt64(n))
        }
        var checked = 0
        for round in 0..<8000 {
            let text: String
            if round % 2 == 0 {
                text = (0..<(1 + next(8))).map { _ in Self.vocabulary[next(Self.vocabulary.count)] }.joined(separator: " ")
            } else {
                var shape = Self.shapes[next(Self.shapes.count)]
                for placeholder in ["A", "B", "C"] {
                    shape = shape.replacingOccurrences(of: placeholder, with: Self.operands[next(Self.operands.count)])
                }
                text = shape
            }
            let typed: TypedExpression
            do {
                typed = try Expression.parse(text).check(ExprFixture.schema)
            } catch {
                #expect(error.offset >= 0 && error.offset + error.length <= text.utf8.count, "\(text): \(error)")
                continue
            }
            checked += 1
            do {
                let column = try typed.evaluate(ExprFixture.batch)
                #expect(column.type == typed.type, "\(text)")
                #expect(column.count == ExprFixture.batch.rowCount, "\(text)")
                #expect(typed.nullable || column.nullCount == 0, "\(text) is declared not nullable")
            } catch {
                #expect(error.row != nil, "\(text): \(error)")
            }
        }
        #expect(checked > 1500)
    }
}
