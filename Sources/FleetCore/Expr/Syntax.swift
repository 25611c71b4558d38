import Columnar

/// The parse tree of an expression, before names and types are resolved.
struct ExprSyntax: Sendable {
    indirect enum Kind: Sendable {
        case integer(Int64)
        /// An exact decimal literal such as `0.10`: unscaled value, precision, scale.
        case decimal(Int64, precision: Int, scale: Int)
        case double(Double)
        case string(String)
        case bool(Bool)
        case null
        /// `date '1998-09-02'`: days since 1970-01-01.
        case date(Int32)
        /// `timestamp '2026-01-02T03:04:05Z'`: microseconds since the epoch, UTC.
        case timestamp(Int64)
        case column(String)
        case negate(ExprSyntax)
        case not(ExprSyntax)
        case binary(ExprOperator, ExprSyntax, ExprSyntax)
        case isNull(ExprSyntax, negated: Bool)
        case inList(ExprSyntax, [ExprSyntax], negated: Bool)
        case between(ExprSyntax, ExprSyntax, ExprSyntax, negated: Bool)
        case caseWhen([WhenClause], otherwise: ExprSyntax?)
        case call(String, nameSpan: ExprSpan, [ExprSyntax])
        /// `cast(x as type)`.
        case cast(ExprSyntax, ColumnType, typeSpan: ExprSpan)
    }

    struct WhenClause: Sendable {
        var condition: ExprSyntax
        var result: ExprSyntax
    }

    var kind: Kind
    var span: ExprSpan
}

enum ExprOperator: String, Sendable, Hashable {
    case add = "+", subtract = "-", multiply = "*", divide = "/", integerDivide = "//", remainder = "%"
    case concat = "||"
    case equal = "=", notEqual = "<>", less = "<", lessOrEqual = "<=", greater = ">", greaterOrEqual = ">="
    case and, or

    var isComparison: Bool {
        switch self {
        case .equal, .notEqual, .less, .lessOrEqual, .greater, .greaterOrEqual: return true
        default: return false
        }
    }
}
