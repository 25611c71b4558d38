import Columnar

/// The spec checker's hook, served by the expression language: `derive` and
/// `filter` texts are parsed and type-checked against the columns the earlier
/// normalize steps left, and errors point inside the YAML string.
public struct ExpressionLanguageChecker: ExpressionChecker {
    public init() {}

    public func check(_ text: String, schema: Schema) throws -> ColumnType {
        try Expression.parse(text).check(schema).type
    }
}

extension ExpressionError: ExpressionDiagnostic {
    /// `offset` already counts UTF-8 bytes from the start of the text.
    public var utf8Offset: Int { offset }
}
