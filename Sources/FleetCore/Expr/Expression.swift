import Columnar

/// An expression of the pipeline language, parsed but not yet checked.
///
/// ```swift
/// let revenue = try Expression.parse("l_extendedprice * (1 - l_discount)").check(schema)
/// revenue.type      // decimal(18,4)
/// let column = try revenue.evaluate(batch)
/// let kept = try Expression.parse("l_shipdate <= date '1998-09-02'").check(schema).filter(batch)
/// ```
///
/// The language: integer (`42`, int64), decimal (`0.10`, exact) and double
/// (`1e3`) literals; `'strings'` with `''` for a quote; `date 'YYYY-MM-DD'`;
/// `timestamp 'YYYY-MM-DDTHH:MM:SS[.ffffff][Z|±HH:MM]'` (stored as UTC µs;
/// no offset means UTC); `true`, `false`, `null`; columns by name or
/// `"double quoted"`; `+ - * / // %`, unary `-`, `||` (string concat);
/// `= != <> < <= > >=`; `and or not`; `is [not] null`; `[not] in (…)`;
/// `[not] between a and b`; `case when … then … [else …] end`;
/// `cast(x as type)` (int64/bigint, int32/int/integer, double, bool,
/// string/varchar, date, timestamp, decimal(p,s); rules in `Cast`); and the
/// functions in `Functions.swift`. Keywords are case-insensitive; a bare
/// column name matches case-insensitively when only one column fits, a
/// quoted one exactly. Nesting is limited to 200 levels.
///
/// Semantics, chosen to match DuckDB (which the tests compare against):
/// - `/` is always double division, as DuckDB's `/`: `7 / 2` is 3.5, and
///   division by zero gives IEEE results (`1/0` is inf, `0/0` NaN), not an
///   error and not null. `//` (integer division, truncating) and `%` take
///   integers only; their division by zero is an error, as in DuckDB.
/// - `+ -` on decimals align scales: scale max(s1, s2), precision
///   max(p1 - s1, p2 - s2) + scale + 1, capped at 18. `*` adds scales
///   (s1 + s2, an error past 18) with precision p1 + p2 capped at 18. Ints
///   take part as decimal(18,0) (int32: decimal(10,0), literals: their digits).
///   Results are exact (0.1 + 0.2 = 0.3); a value beyond the result's
///   precision or Int64 is a runtime error naming the row, never a wrap.
/// - int32 arithmetic is done in int64. int64 overflow is an error.
/// - Nulls propagate through operators and functions; `and`/`or`/`not` use
///   SQL three-valued logic; a filter keeps rows whose predicate is true.
/// - Comparing values of different kinds (date with string) is a type
///   error: write `date '…'` for date literals. Strings compare by bytes
///   (code point order); NaN sorts above every number and equals itself.
/// - `case` evaluates each branch only over the rows that take it, so
///   `case when j = 0 then null else 100 // j end` never divides by zero;
///   `coalesce` evaluates all of its arguments.
/// - `date ± integer` adds days (a date); `date - date` is the days between
///   them (int64), as in DuckDB.
/// - Where DuckDB differs on purpose: integer literals are int64 (DuckDB:
///   INTEGER), int32 sums do not overflow at 2^31, and a timestamp literal's
///   offset is applied (DuckDB's TIMESTAMP ignores it).
public struct Expression: Sendable {
    public let text: String
    let syntax: ExprSyntax

    /// Parses `text`; errors carry the byte offset and length of the problem.
    public static func parse(_ text: String) throws(ExpressionError) -> Expression {
        Expression(text: text, syntax: try ExprParser.parse(text))
    }

    /// Resolves column names against `schema` and types every node.
    public func check(_ schema: Schema) throws(ExpressionError) -> TypedExpression {
        let bound = try ExprTypeChecker(schema: schema, text: text).check(syntax)
        var names = [String]()
        collectColumns(bound, into: &names)
        var fields = [Field]()
        for name in names where !fields.contains(where: { $0.name == name }) {
            // Safe: the checker only binds names found in the schema.
            fields.append(schema.fields.first { $0.name == name }!)
        }
        return TypedExpression(text: text, root: bound, inputs: fields)
    }

    /// Parses and checks an expression that reads no column (a literal such
    /// as `0.10` or `date '2026-01-01'`) and computes its value.
    public static func constant(_ text: String) throws(ExpressionError) -> (value: Scalar?, type: ColumnType) {
        let typed = try parse(text).check(Schema([]))
        return (try typed.evaluateConstant(), typed.type)
    }

    /// A constant converted to a column's type, for `fill_null` and rule
    /// bounds: `constant("0", as: .decimal(precision: 15, scale: 2))` is
    /// `.int(0)`. The conversion must be exact: `0.125` for a decimal(15,2)
    /// or `1.5` for an int64 is an error rather than a silent rounding.
    public static func constant(_ text: String, as type: ColumnType) throws(ExpressionError) -> Scalar? {
        let (value, valueType) = try constant(text)
        guard let value else { return nil }
        let length = text.utf8.count
        guard Cast.isSupported(from: valueType, to: type) else {
            throw ExpressionError("cannot use \(text) (\(valueType)) as \(type)", offset: 0, length: length)
        }
        // Safe: a scalar of the literal's own type always builds a column.
        let column = try! Column(valueType, scalars: [value])
        var failures = [CastFailure]()
        guard let converted = Cast.convert(column, to: type, failures: &failures, limit: 1), failures.isEmpty,
              let result = converted.scalar(at: 0) else {
            let reason = failures.first.map { ": \($0.reason)" } ?? ""
            throw ExpressionError("cannot use '\(text)' as \(type)\(reason)", offset: 0, length: length)
        }
        var back = [CastFailure]()
        let roundTrip = Cast.convert(converted, to: valueType, failures: &back, limit: 1)?.scalar(at: 0)
        guard roundTrip == value else {
            throw ExpressionError("'\(text)' does not fit \(type) exactly", offset: 0, length: length)
        }
        return result
    }
}

/// A checked expression, ready to evaluate over batches of its schema.
public struct TypedExpression: Sendable {
    public let text: String
    let root: BoundExpr
    /// The columns the expression reads, in first-use order.
    public let inputs: [Field]

    /// The type of the result column.
    public var type: ColumnType { root.type }
    /// Whether the result can hold nulls.
    public var nullable: Bool { root.nullable }
    /// True when the expression reads no column.
    public var isConstant: Bool { inputs.isEmpty }

    /// The result as a schema field called `name` (for a `derive`).
    public func field(named name: String) -> Field {
        Field(name, type, nullable: nullable)
    }

    /// The result for every row of `batch`. Throws for runtime errors
    /// (overflow, bad conversion, integer division by zero) naming the row,
    /// and when `batch` lacks an input column or has it with another type.
    public func evaluate(_ batch: ColumnBatch) throws(ExpressionError) -> Column {
        var columns = [String: Column]()
        for field in inputs {
            guard let index = batch.schema.index(of: field.name) else {
                throw ExpressionError("the batch has no column '\(field.name)'", offset: 0, length: text.utf8.count)
            }
            guard batch.schema.fields[index].type == field.type else {
                throw ExpressionError(
                    "column '\(field.name)' is \(batch.schema.fields[index].type) in the batch but was checked as \(field.type)",
                    offset: 0, length: text.utf8.count)
            }
            guard field.nullable || batch.columns[index].nullCount == 0 else {
                throw ExpressionError(
                    "column '\(field.name)' was checked as not nullable but the batch has nulls in it",
                    offset: 0, length: text.utf8.count)
            }
            columns[field.name] = batch.columns[index]
        }
        return try ExprEvaluator(columns: columns, rows: batch.rowCount, rowIDs: nil, text: text).eval(root)
    }

    /// The value of an expression that reads no column; nil is null.
    public func evaluateConstant() throws(ExpressionError) -> Scalar? {
        guard isConstant else {
            throw ExpressionError("expected a constant but the expression reads column '\(inputs[0].name)'",
                                  offset: 0, length: text.utf8.count)
        }
        return try ExprEvaluator(columns: [:], rows: 1, rowIDs: nil, text: text).eval(root).scalar(at: 0)
    }

    /// Indices of the rows where this bool predicate is true (null and
    /// false rows are dropped), ascending.
    public func selection(_ batch: ColumnBatch) throws(ExpressionError) -> [Int] {
        guard type == .bool else {
            throw ExpressionError("a filter must be a bool expression, this one is \(type)",
                                  offset: 0, length: text.utf8.count)
        }
        let result = try evaluate(batch)
        guard case .bool(let v) = result.values else { return [] }
        var rows = [Int]()
        rows.reserveCapacity(v.count)
        if let validity = result.validity {
            for i in 0..<v.count where v[i] && validity[i] { rows.append(i) }
        } else {
            for i in 0..<v.count where v[i] { rows.append(i) }
        }
        return rows
    }

    /// The rows of `batch` where this predicate is true.
    public func filter(_ batch: ColumnBatch) throws(ExpressionError) -> ColumnBatch {
        let rows = try selection(batch)
        // The selection ascends without repeats, so keeping every row keeps the batch.
        return rows.count == batch.rowCount ? batch : batch.taking(rows)
    }
}

extension ColumnBatch {
    /// Rows `indices` of every column, in that order.
    public func taking(_ indices: [Int]) -> ColumnBatch {
        // Safe: taking rows keeps each column's type, and nulls only where they were.
        return try! ColumnBatch(schema: schema, columns: columns.map { Kernel.take($0, indices) })
    }
}

private func collectColumns(_ b: BoundExpr, into names: inout [String]) {
    switch b.kind {
    case .literal: break
    case .column(let name): names.append(name)
    case .cast(let x), .negate(let x), .not(let x), .isNull(let x, _): collectColumns(x, into: &names)
    case .arithmetic(_, let x, let y), .compare(_, let x, let y), .and(let x, let y), .or(let x, let y),
         .concat(let x, let y):
        collectColumns(x, into: &names)
        collectColumns(y, into: &names)
    case .caseWhen(let whens, let otherwise):
        for w in whens {
            collectColumns(w.condition, into: &names)
            collectColumns(w.result, into: &names)
        }
        if let otherwise { collectColumns(otherwise, into: &names) }
    case .call(_, let args): for a in args { collectColumns(a, into: &names) }
    }
}
