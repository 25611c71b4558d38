import GRDB

/// A row whose stored state or stage this coordinator does not know: a
/// newer version wrote it, or the file was edited by hand. Never read as some
/// other state (a run that silently became `failed` would hide the problem).
public struct StoredValueError: Error, CustomStringConvertible, Sendable {
    public let table: String
    public let row: String
    public let column: String
    public let value: String

    public var description: String {
        "the lineage store's \(table) row \(row) has \(column) '\(value)', which this coordinator does not know "
            + "(was the store written by a newer version, or edited by hand?)"
    }
}

extension Row {
    /// The column's value as `T`, or `StoredValueError` naming the row.
    func decode<T: RawRepresentable>(_: T.Type, _ column: String, table: String, row id: @autoclosure () -> String) throws -> T
    where T.RawValue == String {
        let raw: String = self[column]
        guard let value = T(rawValue: raw) else {
            throw StoredValueError(table: table, row: id(), column: column, value: raw)
        }
        return value
    }
}
