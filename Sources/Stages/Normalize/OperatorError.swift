import Columnar

/// A failure of a data operator (normalize, shuffle, consolidate, aggregate).
/// Every case is permanent: the same inputs and settings fail the same way,
/// so the task fails at once rather than retrying. Messages name the column
/// and, where there is one, the chunk.
public enum OperatorError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A step or setting names a column the data does not have.
    case unknownColumn(String, available: [String], context: String)
    /// A step would give two columns the same name.
    case duplicateColumn(String, context: String)
    /// A column has a type the operation cannot work on.
    case wrongType(column: String, type: ColumnType, expected: String, context: String)
    /// The settings contradict each other (explained in the message).
    case invalidSetting(String)
    /// Input chunks disagree on their schema.
    case schemaMismatch(String)
    /// An exact sum left the Int64 range of its result type.
    case overflow(column: String, context: String)
    /// Another operator error, while processing this input chunk.
    indirect case input(path: String, OperatorError)

    public var description: String {
        switch self {
        case .unknownColumn(let c, let available, let ctx):
            return "\(ctx): no column '\(c)'; the columns are \(available.joined(separator: ", "))"
        case .duplicateColumn(let c, let ctx):
            return "\(ctx): column '\(c)' would appear twice"
        case .wrongType(let c, let t, let expected, let ctx):
            return "\(ctx): column '\(c)' is \(t), expected \(expected)"
        case .invalidSetting(let m):
            return m
        case .schemaMismatch(let m):
            return m
        case .overflow(let c, let ctx):
            return "\(ctx): sum of column '\(c)' overflows its result type (decimal(18,s) or int64)"
        case .input(let path, let inner):
            return "\(path): \(inner)"
        }
    }
}

extension ColumnBatch {
    /// The index of column `name`, or an error naming it and the columns there are.
    func requireColumn(_ name: String, _ context: @autoclosure () -> String) throws -> Int {
        guard let i = schema.index(of: name) else {
            throw OperatorError.unknownColumn(name, available: schema.fields.map(\.name), context: context())
        }
        return i
    }
}

extension Schema {
    func requireColumn(_ name: String, _ context: @autoclosure () -> String) throws -> Int {
        guard let i = index(of: name) else {
            throw OperatorError.unknownColumn(name, available: fields.map(\.name), context: context())
        }
        return i
    }
}
