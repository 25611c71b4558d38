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
    /// Every value converted; throws when one cannot be.
    func cast(_ column: Column, to type: ColumnType, name: String) throws -> Column
    /// What converts; the values that cannot are null in the column and
    /// listed, for normalize to quarantine their rows. Throws only when the
    /// cast is not possible at all. The default lists nothing: it is `cast`.
    func castCollecting(_ column: Column, to type: ColumnType, name: String) throws -> (column: Column, rejected: [CastRejection])
}

extension ColumnCaster {
    public func castCollecting(_ column: Column, to type: ColumnType, name: String) throws -> (column: Column, rejected: [CastRejection]) {
        (try cast(column, to: type, name: name), [])
    }
}

/// A value a cast could not convert.
public struct CastRejection: Sendable, Equatable {
    /// Row index in the batch.
    public var row: Int
    /// The value as text.
    public var value: String
    /// Why, e.g. "is not a number".
    public var reason: String

    public init(row: Int, value: String, reason: String) {
        self.row = row
        self.value = value
        self.reason = reason
    }
}

/// A row a normalize step could not use: it leaves the batch for the
/// shard's quarantine chunk, named by the input file and line it came from.
public struct RejectedRow: Sendable, Equatable {
    /// The input file, from the row's provenance (`_source_file`); the
    /// chunk's path when the chunk carries none.
    public var file: String
    /// The record's line in `file`; 0 when the chunk carries no provenance.
    public var line: Int64
    public var column: String
    /// The step that rejected it: `cast`.
    public var rule: String
    public var reason: String
    /// The value that did not fit, as text.
    public var value: String
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

    /// The steps over one batch; rows a step cannot use (a value a `cast`
    /// cannot convert) leave the batch and are appended to `rejected`,
    /// named by their provenance.
    public func apply(_ input: ColumnBatch, rejected: inout [RejectedRow]) throws -> ColumnBatch {
        let carried = input.schema.fields.indices.filter { Provenance.isReserved(input.schema.fields[$0].name) }
        var batch = input
        if !carried.isEmpty {
            let keep = input.schema.fields.indices.filter { !carried.contains($0) }
            batch = try ColumnBatch(schema: Schema(keep.map { input.schema.fields[$0] }), columns: keep.map { input.columns[$0] })
        }
        let origin = RowOrigin(input)
        // The input rows still in `batch`, when a filter or a cast dropped some.
        var rows: [Int]?
        for (n, step) in steps.enumerated() {
            let out = try apply(step, number: n + 1, to: batch)
            batch = out.batch
            for (row, r) in out.rejected {
                var r = r
                (r.file, r.line) = origin.at(rows?[row] ?? row)
                rejected.append(r)
            }
            if let kept = out.kept {
                rows = rows.map { r in kept.map { r[$0] } } ?? kept
            }
        }
        guard !carried.isEmpty else { return batch }
        return try ColumnBatch(
            schema: Schema(batch.schema.fields + carried.map { input.schema.fields[$0] }),
            columns: batch.columns + carried.map { c in rows.map { Gather.column(input.columns[c], $0) } ?? input.columns[c] })
    }

    /// The steps over one batch, where every row must fit: a rejected row
    /// is an error naming it.
    public func apply(_ input: ColumnBatch) throws -> ColumnBatch {
        var rejected: [RejectedRow] = []
        let out = try apply(input, rejected: &rejected)
        if let r = rejected.first {
            throw OperatorError.invalidSetting("\(r.rule) '\(r.column)': '\(r.value)' \(r.reason)"
                                               + (rejected.count > 1 ? " (and \(rejected.count - 1) more rows)" : ""))
        }
        return out
    }

    /// What one step made of a batch: the new batch; which of the old
    /// batch's rows it kept, when it dropped some; the rows it rejected
    /// (by their index in the old batch, file and line still unknown).
    private struct StepOutput {
        var batch: ColumnBatch
        var kept: [Int]? = nil
        var rejected: [(row: Int, RejectedRow)] = []
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

    private func apply(_ step: NormalizeOp, number: Int, to batch: ColumnBatch) throws -> StepOutput {
        switch step {
        case .rename(let pairs): return StepOutput(batch: try ColumnOperations.rename(batch, pairs))
        case .select(let c): return StepOutput(batch: try ColumnOperations.select(batch, c))
        case .drop(let c): return StepOutput(batch: try ColumnOperations.drop(batch, c))
        case .trim(let c): return StepOutput(batch: try ColumnOperations.trim(batch, c))
        case .upper(let c): return StepOutput(batch: try ColumnOperations.upper(batch, c))
        case .lower(let c): return StepOutput(batch: try ColumnOperations.lower(batch, c))
        case .fillNull(let c, let v): return StepOutput(batch: try ColumnOperations.fillNull(batch, column: c, with: v))
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
            return StepOutput(batch: try ColumnBatch(schema: Schema(fields), columns: columns))
        case .filter(let expression):
            let kept = try filterRows(expression, number: number, batch)
            return StepOutput(batch: Gather.batch(batch, kept), kept: kept)
        case .cast(let name, let type):
            let i = try batch.requireColumn(name, "cast")
            guard let caster else {
                throw OperatorError.invalidSetting("cast '\(name)' to \(type): the normalizer has no caster")
            }
            let (column, rejections) = try caster.castCollecting(batch.columns[i], to: type, name: name)
            try check(column, rows: batch.rowCount, type: type, what: "cast '\(name)'")
            var fields = batch.schema.fields
            fields[i].type = type
            // Always nullable, like derive: the schema must not depend on
            // whether this batch happened to produce a null.
            fields[i].nullable = true
            var columns = batch.columns
            columns[i] = column
            let out = try ColumnBatch(schema: Schema(fields), columns: columns)
            guard !rejections.isEmpty else { return StepOutput(batch: out) }
            // A value that does not convert is bad data, not a bad spec: its
            // row is quarantined with where it came from, the rest go on.
            var keep = [Bool](repeating: true, count: batch.rowCount)
            var rejected: [(row: Int, RejectedRow)] = []
            for r in rejections where keep[r.row] {
                keep[r.row] = false
                rejected.append((r.row, RejectedRow(file: "", line: 0, column: name, rule: "cast",
                                                    reason: "'\(r.value)' \(r.reason) (cast to \(type))", value: r.value)))
            }
            let kept = keep.indices.filter { keep[$0] }
            return StepOutput(batch: Gather.batch(out, kept), kept: kept, rejected: rejected)
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
