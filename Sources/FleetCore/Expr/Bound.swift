import Columnar

/// A type-checked expression tree: names resolved against a schema, every
/// node typed, implicit conversions made explicit as `cast` nodes, `in` and
/// `between` rewritten to comparisons.
struct BoundExpr: Sendable {
    indirect enum Kind: Sendable {
        /// A value of the node's type (`Scalar` as Columnar stores it); nil is null.
        case literal(Scalar?)
        case column(String)
        /// Implicit conversion of the operand to the node's type.
        case cast(BoundExpr)
        case negate(BoundExpr)
        /// `+ - * / // %`. Operands are already int64, double or (for decimal
        /// results) int64 or decimal with their own scales.
        case arithmetic(ExprOperator, BoundExpr, BoundExpr)
        case concat(BoundExpr, BoundExpr)
        /// Operands share a storage: both int64-backed (scales may differ),
        /// both int32-backed, both double, both bool or both string.
        case compare(ExprOperator, BoundExpr, BoundExpr)
        case and(BoundExpr, BoundExpr)
        case or(BoundExpr, BoundExpr)
        case not(BoundExpr)
        case isNull(BoundExpr, negated: Bool)
        case caseWhen([When], otherwise: BoundExpr?)
        case call(ExprFunction, [BoundExpr])
    }

    struct When: Sendable {
        var condition: BoundExpr
        var result: BoundExpr
    }

    var kind: Kind
    var type: ColumnType
    var nullable: Bool
    var span: ExprSpan
    /// True for a bare `null` whose type is not decided yet (checking only).
    var untypedNull = false
    /// No column is read: the value is the same for every row.
    var isConstant: Bool

    init(_ kind: Kind, _ type: ColumnType, nullable: Bool, span: ExprSpan, constant: Bool) {
        self.kind = kind
        self.type = type
        self.nullable = nullable
        self.span = span
        self.isConstant = constant
    }
}

/// The built-in functions.
enum ExprFunction: String, Sendable, CaseIterable {
    case lower, upper, trim, length, substr, coalesce, abs, round, year, month, day
    case dateTrunc = "date_trunc"
}
