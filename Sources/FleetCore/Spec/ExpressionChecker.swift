import Columnar

/// The hook through which the spec checker types `derive` and `filter`
/// expressions. The expression language provides the real one; without a
/// checker, expressions are kept unchecked and derived columns are untyped
/// unless the spec declares their type.
///
/// `check` returns the expression's result type over `schema` (the columns
/// as the earlier normalize steps left them), or throws. An error that
/// conforms to `ExpressionDiagnostic` is reported at its position inside
/// the YAML string; any other error at the string's start, by its
/// description.
public protocol ExpressionChecker: Sendable {
    func check(_ text: String, schema: Schema) throws -> ColumnType
}

/// An expression error that knows where in the expression it is.
public protocol ExpressionDiagnostic: Error {
    /// What is wrong, without a position (`unknown column 'x'`).
    var message: String { get }
    /// Byte offset into the expression's UTF-8 text, from 0.
    var utf8Offset: Int { get }
}

/// A checker from a closure, for tests and adapters.
public struct ClosureExpressionChecker: ExpressionChecker {
    let body: @Sendable (String, Schema) throws -> ColumnType

    public init(_ body: @escaping @Sendable (String, Schema) throws -> ColumnType) {
        self.body = body
    }

    public func check(_ text: String, schema: Schema) throws -> ColumnType {
        try body(text, schema)
    }
}
