/// A table slice: one column per schema field, all with `rowCount` rows.
public struct ColumnBatch: Sendable {
    public let schema: Schema
    public let columns: [Column]
    public let rowCount: Int

    /// Checks column count, types, lengths, and that REQUIRED columns hold no null.
    public init(schema: Schema, columns: [Column]) throws {
        guard schema.fields.count == columns.count else {
            throw ColumnarError.invalidArgument(
                "schema has \(schema.fields.count) columns, batch has \(columns.count)")
        }
        let rows = columns.first?.count ?? 0
        for (field, column) in zip(schema.fields, columns) {
            guard field.type == column.type else {
                throw ColumnarError.invalidArgument(
                    "column '\(field.name)' is \(field.type) in the schema but \(column.type) in the batch")
            }
            guard column.count == rows else {
                throw ColumnarError.invalidArgument(
                    "column '\(field.name)' has \(column.count) rows, expected \(rows)")
            }
            guard field.nullable || column.nullCount == 0 else {
                throw ColumnarError.invalidArgument(
                    "column '\(field.name)' is not nullable but has \(column.nullCount) nulls")
            }
        }
        self.schema = schema
        self.columns = columns
        self.rowCount = rows
    }

    public static func empty(_ schema: Schema) -> ColumnBatch {
        // Safe: empty columns of the schema's own types always validate.
        try! ColumnBatch(schema: schema, columns: schema.fields.map { ColumnBuilder($0.type).build() })
    }

    /// Rows `range` of every column.
    public func slice(_ range: Range<Int>) -> ColumnBatch {
        // Safe: slices of valid columns keep the schema's types and nulls.
        try! ColumnBatch(schema: schema, columns: columns.map { $0.slice(range) })
    }

    public subscript(name: String) -> Column? {
        schema.index(of: name).map { columns[$0] }
    }

    /// Same schema and identical columns (see `Column.isIdentical`).
    public func isIdentical(to other: ColumnBatch) -> Bool {
        schema == other.schema && rowCount == other.rowCount
            && zip(columns, other.columns).allSatisfy { $0.isIdentical(to: $1) }
    }
}
