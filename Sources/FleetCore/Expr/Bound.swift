import Columnar

/// A type-checked expression tree: names resolved against a schema, every
/// node typed, implicit conversions made explicit as `cast` nodes, `in` and
/// `between` rewritten to comparisons.
struct Bound: Sendable {
    indirect enum Kind: Sendable {
        /// A value of the node's type (`Scalar` as Columnar stores it); nil is null.
        case literal(Scalar?)
        case column(String)
        /// Implicit conversion of the operand to the node's type.
        case cast(Bound)
        case negate(Bound)
        /// `+ - * / // %`. Operands are already int64, double or (for decimal
        /// results) int64 or decimal with their own scales.
        case arithmetic(BinaryOperator, Bound, Bound)
        case concat(Bound, Bound)
        /// Operands share a storage: both int64-backed (scales may differ),
        /// both int32-backed, both double, both bool or both string.
        case compare(BinaryOperator, Bound, Bound)
        case and(Bound, Bound)
        case or(Bound, Bound)
        case not(Bound)
        case isNull(Bound, negated: Bool)
        case caseWhen([When], otherwise: Bound?)
        case call(Function, [Bound])
    }

    struct When: Sendable {
        var condition: Bound
        var result: Bound
    }

    var kind: Kind
    var type: ColumnType
    var nullable: Bool
    var span: Span
    /// True for a bare `null` whose type is not decided yet (checking only).
    var untypedNull = false
    /// No column is read: the value is the same for every row.
    var isConstant: Bool

    init(_ kind: Kind, _ type: ColumnType, nullable: Bool, span: Span, constant: Bool) {
        self.kind = kind
        self.type = type
        self.nullable = nullable
        self.span = span
        self.isConstant = constant
    }
}

/// The built-in functions.
enum Function: String, Sendable, CaseIterable {
    case lower, upper, trim, length, substr, coalesce, abs, round, year, month, day
    case dateTrunc = "date_trunc"
}

/// Scale of an int64-backed numeric operand: a decimal's scale, 0 for ints.
func numericScale(_ t: ColumnType) -> Int {
    if case .decimal(_, let s) = t { return s }
    return 0
}
