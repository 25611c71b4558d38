import Columnar
import FleetCore

/// An expression evaluated over a whole batch at once, giving one value per
/// row. The expression language (FleetCore/Expr) is adapted to this.
public protocol BatchExpression: Sendable {
    /// One value per row of `batch`, of type `type`.
    func evaluate(_ batch: ColumnBatch) throws -> Column
    /// The type of the values `evaluate` returns.
    var type: ColumnType { get }
}

/// Converts a column to another type (the expression language's cast helper
/// is adapted to this). `name` is for error messages.
public protocol ColumnCaster: Sendable {
    func cast(_ column: Column, to type: ColumnType, name: String) throws -> Column
}

/// A caster from a closure.
public struct ClosureCaster: ColumnCaster {
    let body: @Sendable (Column, ColumnType, String) throws -> Column

    public init(_ body: @escaping @Sendable (Column, ColumnType, String) throws -> Column) {
        self.body = body
    }

    public func cast(_ column: Column, to type: ColumnType, name: String) throws -> Column {
        try body(column, type, name)
    }
}

/// One step of the normalize stage, applied in spec order.
public enum NormalizeOp: Sendable {
    /// Renames columns in place (`from`, `to`).
    case rename([(from: String, to: String)])
    /// Keeps only these columns, in this order.
    case select([String])
    case drop([String])
    /// ASCII whitespace off both ends (see `ColumnOperations.trim`).
    case trim([String])
    /// Unicode upper case (see `ColumnOperations.upper`).
    case upper([String])
    case lower([String])
    /// Replaces nulls of a column with a value of its type.
    case fillNull(column: String, value: Scalar)
    /// Adds (or, when the name exists, replaces in place) a nullable column
    /// computed from the batch.
    case derive(name: String, BatchExpression)
    /// Keeps the rows where the boolean expression is true; false and null drop the row.
    case filter(BatchExpression)
    /// Converts a column with the normalizer's `ColumnCaster`; the column
    /// becomes nullable.
    case cast(column: String, to: ColumnType)
}

/// Applies normalize steps to each batch in order.
///
/// The provenance columns (`_source_file`, `_source_line`, see `Provenance`)
/// are not the steps' to touch: they are set aside before the first step
/// and put back after the last, after the steps' columns, with the rows the
/// filters kept. So whatever the steps rename, select or drop, every row
/// leaves with the file and line it came from.
public struct Normalizer: Sendable {
    public let steps: [NormalizeOp]
    public let caster: (any ColumnCaster)?

    public init(steps: [NormalizeOp], caster: (any ColumnCaster)? = nil) {
        self.steps = steps
        self.caster = caster
    }

    public func apply(_ input: ColumnBatch) throws -> ColumnBatch {
        let carried = input.schema.fields.indices.filter { Provenance.isReserved(input.schema.fields[$0].name) }
        var batch = input
        if !carried.isEmpty {
            let keep = input.schema.fields.indices.filter { !carried.contains($0) }
            batch = try ColumnBatch(schema: Schema(keep.map { input.schema.fields[$0] }), columns: keep.map { input.columns[$0] })
        }
        // The input rows still in `batch`, when a filter dropped some.
        var rows: [Int]?
        for (n, step) in steps.enumerated() {
            if case .filter(let expression) = step {
                let kept = try filterRows(expression, number: n + 1, batch)
                rows = rows.map { r in kept.map { r[$0] } } ?? kept
                batch = Gather.batch(batch, kept)
            } else {
                batch = try apply(step, number: n + 1, to: batch)
            }
        }
        guard !carried.isEmpty else { return batch }
        return try ColumnBatch(
            schema: Schema(batch.schema.fields + carried.map { input.schema.fields[$0] }),
            columns: batch.columns + carried.map { c in rows.map { Gather.column(input.columns[c], $0) } ?? input.columns[c] })
    }

    /// The rows where the filter is true.
    private func filterRows(_ expression: BatchExpression, number: Int, _ batch: ColumnBatch) throws -> [Int] {
        let column = try expression.evaluate(batch)
        try check(column, rows: batch.rowCount, type: .bool, what: "filter (step \(number))")
        guard case .bool(let keep) = column.values else {
            throw OperatorError.invalidSetting("filter (step \(number)) must give bool values, got \(column.type)")
        }
        var rows = [Int]()
        rows.reserveCapacity(keep.count)
        if let validity = column.validity {
            for i in keep.indices where keep[i] && validity[i] { rows.append(i) }
        } else {
            for i in keep.indices where keep[i] { rows.append(i) }
        }
        return rows
    }

    private func apply(_ step: NormalizeOp, number: Int, to batch: ColumnBatch) throws -> ColumnBatch {
        switch step {
        case .rename(let pairs): return try ColumnOperations.rename(batch, pairs)
        case .select(let c): return try ColumnOperations.select(batch, c)
        case .drop(let c): return try ColumnOperations.drop(batch, c)
        case .trim(let c): return try ColumnOperations.trim(batch, c)
        case .upper(let c): return try ColumnOperations.upper(batch, c)
        case .lower(let c): return try ColumnOperations.lower(batch, c)
        case .fillNull(let c, let v): return try ColumnOperations.fillNull(batch, column: c, with: v)
        case .derive(let name, let expression):
            let column = try expression.evaluate(batch)
            try check(column, rows: batch.rowCount, type: expression.type, what: "derive '\(name)'")
            var fields = batch.schema.fields
            var columns = batch.columns
            let field = Field(name, column.type, nullable: true)
            if let i = batch.schema.index(of: name) {
                fields[i] = field
                columns[i] = column
            } else {
                fields.append(field)
                columns.append(column)
            }
            return try ColumnBatch(schema: Schema(fields), columns: columns)
        case .filter(let expression):
            return Gather.batch(batch, try filterRows(expression, number: number, batch))
        case .cast(let name, let type):
            let i = try batch.requireColumn(name, "cast")
            guard let caster else {
                throw OperatorError.invalidSetting("cast '\(name)' to \(type): the normalizer has no caster")
            }
            let column = try caster.cast(batch.columns[i], to: type, name: name)
            try check(column, rows: batch.rowCount, type: type, what: "cast '\(name)'")
            var fields = batch.schema.fields
            fields[i].type = type
            // Always nullable, like derive: the schema must not depend on
            // whether this batch happened to produce a null.
            fields[i].nullable = true
            var columns = batch.columns
            columns[i] = column
            return try ColumnBatch(schema: Schema(fields), columns: columns)
        }
    }

    private func check(_ column: Column, rows: Int, type: ColumnType, what: String) throws {
        guard column.count == rows else {
            throw OperatorError.invalidSetting("\(what): gave \(column.count) values for \(rows) rows")
        }
        guard column.type == type else {
            throw OperatorError.invalidSetting("\(what): gave \(column.type) values, declared \(type)")
        }
    }
}
