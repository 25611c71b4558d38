import Columnar

/// Evaluates a bound expression a column at a time: each operator is one
/// tight loop over the operands' arrays, with validity masks combined per
/// operator. Constant sub-expressions are computed once and broadcast.
struct Evaluator {
    /// The columns the expression reads, by name.
    var columns: [String: Column]
    var rows: Int
    /// Row numbers in the caller's batch when evaluating a subset (the rows
    /// a `case` branch applies to), so errors name the caller's row.
    var rowIDs: [Int]?
    let text: String

    func callerRow(_ i: Int) -> Int { rowIDs?[i] ?? i }

    func snippet(_ span: Span) -> String {
        let bytes = Array(text.utf8)
        let end = Swift.min(span.end, bytes.count)
        guard span.offset < end else { return text }
        return String(decoding: bytes[span.offset..<end], as: UTF8.self)
    }

    func failure(_ what: String, _ node: Bound, row i: Int) -> ExpressionError {
        ExpressionError("\(what) in '\(snippet(node.span))'", node.span, row: callerRow(i))
    }

    /// Only the rows `indices` (ascending) of this context.
    func subset(_ indices: [Int]) -> Evaluator {
        var sub = self
        sub.columns = columns.mapValues { take($0, indices) }
        sub.rows = indices.count
        sub.rowIDs = rowIDs.map { ids in indices.map { ids[$0] } } ?? indices
        return sub
    }

    func eval(_ node: Bound) throws(ExpressionError) -> Column {
        if node.isConstant {
            if case .literal(let value) = node.kind { return broadcast(value, node.type, rows) }
            if rows == 0 { return broadcast(nil, node.type, 0) }
            if rows != 1 {
                var one = self
                one.rows = 1
                one.rowIDs = [callerRow(0)]
                let value = try one.eval(node)
                return broadcast(value.scalar(at: 0), node.type, rows)
            }
        }
        switch node.kind {
        case .literal(let value):
            return broadcast(value, node.type, rows)
        case .column(let name):
            // Safe: Expression.evaluate checks every referenced column first.
            return columns[name]!
        case .cast(let operand):
            let c = try eval(operand)
            var failures = [CastFailure]()
            guard let converted = Cast.convert(c, to: node.type, failures: &failures, limit: 1) else {
                throw ExpressionError("cannot convert \(c.type) to \(node.type)", node.span)
            }
            if let f = failures.first {
                throw failure("cannot convert \(c.type) value \(f.value) to \(node.type): \(f.reason)", node, row: f.row)
            }
            return converted
        case .negate(let operand):
            return try negate(node, try eval(operand))
        case .arithmetic(let op, let l, let r):
            return try arithmetic(node, op, try eval(l), try eval(r))
        case .concat(let l, let r):
            return concat(try eval(l), try eval(r))
        case .compare(let op, let l, let r):
            return compare(op, try eval(l), try eval(r))
        case .and(let l, let r):
            return logical(and: true, try eval(l), try eval(r))
        case .or(let l, let r):
            return logical(and: false, try eval(l), try eval(r))
        case .not(let operand):
            let c = try eval(operand)
            guard case .bool(let v) = c.values else { preconditionFailure("not over \(c.type)") }
            return makeColumn(.bool, .bool(v.map { !$0 }), c.validity)
        case .isNull(let operand, let negated):
            let c = try eval(operand)
            let out = (0..<rows).map { i in c.isNull(i) != negated }
            return makeColumn(.bool, .bool(out), nil)
        case .caseWhen(let whens, let otherwise):
            return try caseWhen(node, whens, otherwise)
        case .call(let function, let args):
            var values = [Column]()
            for a in args { values.append(try eval(a)) }
            return try call(node, function, values)
        }
    }

    // MARK: - Arithmetic

    private func negate(_ node: Bound, _ c: Column) throws(ExpressionError) -> Column {
        switch c.values {
        case .double(let v):
            return makeColumn(node.type, .double(v.map { -$0 }), c.validity)
        case .int64(let v):
            var out = [Int64](repeating: 0, count: v.count)
            for i in v.indices {
                let (r, overflow) = Int64(0).subtractingReportingOverflow(v[i])
                if overflow { throw failure("overflow: -(\(v[i])) does not fit \(node.type)", node, row: i) }
                out[i] = r
            }
            return makeColumn(node.type, .int64(out), c.validity)
        default:
            preconditionFailure("negate over \(c.type)")
        }
    }

    private func arithmetic(_ node: Bound, _ op: BinaryOperator, _ a: Column, _ b: Column) throws(ExpressionError) -> Column {
        let validity = combine(a.validity, b.validity)
        let n = rows
        switch (a.values, b.values) {
        case (.double(let x), .double(let y)):
            var out = [Double](repeating: 0, count: n)
            switch op {
            case .add: for i in 0..<n { out[i] = x[i] + y[i] }
            case .subtract: for i in 0..<n { out[i] = x[i] - y[i] }
            case .multiply: for i in 0..<n { out[i] = x[i] * y[i] }
            case .divide: for i in 0..<n { out[i] = x[i] / y[i] }
            default: preconditionFailure("\(op) over doubles")
            }
            return makeColumn(.double, .double(out), validity)
        case (.int64(let x), .int64(let y)):
            var out = [Int64](repeating: 0, count: n)
            if case .decimal(let p, let s) = node.type {
                try decimalArithmetic(node, op, x, numericScale(a.type), y, numericScale(b.type), p, s, validity, &out)
                return makeColumn(node.type, .int64(out), validity)
            }
            // One loop per operator; the overflow branch (rare) checks
            // whether the row is null before calling it an error.
            func run(_ f: (Int64, Int64) -> (partialValue: Int64, overflow: Bool)) throws(ExpressionError) {
                for i in 0..<n {
                    let (r, overflow) = f(x[i], y[i])
                    if _slowPath(overflow) {
                        guard validity?[i] ?? true else { continue }
                        if (op == .integerDivide || op == .remainder) && y[i] == 0 {
                            throw failure("division by zero", node, row: i)
                        }
                        throw failure("overflow: \(x[i]) \(op.rawValue) \(y[i]) does not fit int64", node, row: i)
                    }
                    out[i] = r
                }
            }
            switch op {
            case .add: try run { $0.addingReportingOverflow($1) }
            case .subtract: try run { $0.subtractingReportingOverflow($1) }
            case .multiply: try run { $0.multipliedReportingOverflow(by: $1) }
            case .integerDivide: try run { $0.dividedReportingOverflow(by: $1) }
            case .remainder: try run { $0.remainderReportingOverflow(dividingBy: $1) }
            default: preconditionFailure("\(op) over int64")
            }
            return makeColumn(.int64, .int64(out), validity)
        default:
            preconditionFailure("\(op) over \(a.type) and \(b.type)")
        }
    }

    /// Exact decimal + - *: operands at their own scales, computed in Int128,
    /// then checked against the result's precision.
    private func decimalArithmetic(
        _ node: Bound, _ op: BinaryOperator, _ x: [Int64], _ sa: Int, _ y: [Int64], _ sb: Int,
        _ p: Int, _ s: Int, _ validity: [Bool]?, _ out: inout [Int64]
    ) throws(ExpressionError) {
        let limit = Int128(DecimalMath.maxUnscaled(precision: p))
        let n = rows
        func fail(_ i: Int, _ r: Int128) -> ExpressionError {
            let l = ValueText.decimal(unscaled: x[i], scale: sa), rr = ValueText.decimal(unscaled: y[i], scale: sb)
            return failure("overflow: \(l) \(op.rawValue) \(rr) does not fit decimal(\(p),\(s))", node, row: i)
        }
        if op == .multiply {
            for i in 0..<n {
                let r = Int128(x[i]) * Int128(y[i])
                if r > limit || r < -limit {
                    if validity?[i] ?? true { throw fail(i, r) }
                    continue
                }
                out[i] = Int64(r)
            }
            return
        }
        let mx = Int128(DecimalMath.pow10[s - sa]), my = Int128(DecimalMath.pow10[s - sb])
        let sign: Int128 = op == .subtract ? -1 : 1
        for i in 0..<n {
            let r = Int128(x[i]) * mx + sign * Int128(y[i]) * my
            if r > limit || r < -limit {
                if validity?[i] ?? true { throw fail(i, r) }
                continue
            }
            out[i] = Int64(r)
        }
    }

    private func concat(_ a: Column, _ b: Column) -> Column {
        guard case .bytes(let x) = a.values, case .bytes(let y) = b.values else { preconditionFailure("concat") }
        var out = StringColumn()
        out.reserveCapacity(values: rows, bytes: x.bytes.count + y.bytes.count)
        for i in 0..<rows {
            out.append(bytes: x.bytes(at: i) + y.bytes(at: i))
        }
        return makeColumn(.string, .bytes(out), combine(a.validity, b.validity))
    }

    // MARK: - Comparison and logic

    private func compare(_ op: BinaryOperator, _ a: Column, _ b: Column) -> Column {
        let n = rows
        let out: [Bool]
        switch (a.values, b.values) {
        case (.int64(let x), .int64(let y)):
            let sa = numericScale(a.type), sb = numericScale(b.type)
            if sa == sb {
                out = compareArrays(op, x, y, n)
            } else {
                let s = Swift.max(sa, sb)
                let mx = Int128(DecimalMath.pow10[s - sa]), my = Int128(DecimalMath.pow10[s - sb])
                out = compareArrays(op, x.map { Int128($0) * mx }, y.map { Int128($0) * my }, n)
            }
        case (.int32(let x), .int32(let y)): out = compareArrays(op, x, y, n)
        case (.double(let x), .double(let y)):
            if x.contains(where: \.isNaN) || y.contains(where: \.isNaN) {
                // DuckDB orders NaN above every number and equal to itself.
                var r = [Bool](repeating: false, count: n)
                for i in 0..<n {
                    let a = x[i], b = y[i]
                    let c = a.isNaN ? (b.isNaN ? 0 : 1) : b.isNaN ? -1 : (a < b ? -1 : (a == b ? 0 : 1))
                    r[i] = test(op, c)
                }
                out = r
            } else {
                out = compareArrays(op, x, y, n)
            }
        case (.bool(let x), .bool(let y)): out = compareArrays(op, x.map { $0 ? 1 : 0 }, y.map { $0 ? 1 : 0 }, n)
        case (.bytes(let x), .bytes(let y)):
            var r = [Bool](repeating: false, count: n)
            for i in 0..<n {
                let c = compareBytes(x.bytes(at: i), y.bytes(at: i))
                r[i] = test(op, c)
            }
            out = r
        default:
            preconditionFailure("compare \(a.type) with \(b.type)")
        }
        return makeColumn(.bool, .bool(out), combine(a.validity, b.validity))
    }

    /// SQL three-valued logic: false and null = false, true or null = true,
    /// otherwise null wins.
    private func logical(and: Bool, _ a: Column, _ b: Column) -> Column {
        guard case .bool(let x) = a.values, case .bool(let y) = b.values else { preconditionFailure("and/or") }
        let n = rows
        var out = [Bool](repeating: false, count: n)
        if and {
            for i in 0..<n { out[i] = x[i] && y[i] }
        } else {
            for i in 0..<n { out[i] = x[i] || y[i] }
        }
        guard a.validity != nil || b.validity != nil else { return makeColumn(.bool, .bool(out), nil) }
        var valid = [Bool](repeating: true, count: n)
        for i in 0..<n {
            let va = a.validity?[i] ?? true, vb = b.validity?[i] ?? true
            // A known false decides `and`, a known true decides `or`.
            valid[i] = (va && vb) || (va && x[i] != and) || (vb && y[i] != and)
        }
        return makeColumn(.bool, .bool(out), valid)
    }

    // MARK: - case

    private func caseWhen(_ node: Bound, _ whens: [Bound.When], _ otherwise: Bound?) throws(ExpressionError) -> Column {
        // Each branch is evaluated only over the rows it applies to, so an
        // error in a branch not taken (1 // 0 guarded by a when) is no error.
        var remaining = Array(0..<rows)
        var sources = [Column]()
        var choice = [Int](repeating: -1, count: rows)
        var local = [Int](repeating: 0, count: rows)
        for when in whens where !remaining.isEmpty {
            let context = remaining.count == rows ? self : subset(remaining)
            let condition = try context.eval(when.condition)
            guard case .bool(let v) = condition.values else { preconditionFailure("when over \(condition.type)") }
            var taken = [Int](), rest = [Int]()
            for (j, row) in remaining.enumerated() {
                if v[j] && !condition.isNull(j) { taken.append(row) } else { rest.append(row) }
            }
            if !taken.isEmpty {
                let branch = taken.count == rows ? self : subset(taken)
                let result = try branch.eval(when.result)
                for (j, row) in taken.enumerated() {
                    choice[row] = sources.count
                    local[row] = j
                }
                sources.append(result)
            }
            remaining = rest
        }
        if let otherwise, !remaining.isEmpty {
            let context = remaining.count == rows ? self : subset(remaining)
            let result = try context.eval(otherwise)
            for (j, row) in remaining.enumerated() {
                choice[row] = sources.count
                local[row] = j
            }
            sources.append(result)
        }
        return pick(node.type, sources, choice, local)
    }
}

/// Both masks combined: a row is valid when it is valid in both.
func combine(_ a: [Bool]?, _ b: [Bool]?) -> [Bool]? {
    guard let a else { return b }
    guard let b else { return a }
    var out = a
    for i in out.indices where !b[i] { out[i] = false }
    return out
}

@inline(__always)
func test(_ op: BinaryOperator, _ c: Int) -> Bool {
    switch op {
    case .equal: return c == 0
    case .notEqual: return c != 0
    case .less: return c < 0
    case .lessOrEqual: return c <= 0
    case .greater: return c > 0
    case .greaterOrEqual: return c >= 0
    default: preconditionFailure("\(op) is not a comparison")
    }
}

func compareArrays<T: Comparable>(_ op: BinaryOperator, _ x: [T], _ y: [T], _ n: Int) -> [Bool] {
    var out = [Bool](repeating: false, count: n)
    x.withUnsafeBufferPointer { x in
        y.withUnsafeBufferPointer { y in
            switch op {
            case .equal: for i in 0..<n { out[i] = x[i] == y[i] }
            case .notEqual: for i in 0..<n { out[i] = x[i] != y[i] }
            case .less: for i in 0..<n { out[i] = x[i] < y[i] }
            case .lessOrEqual: for i in 0..<n { out[i] = x[i] <= y[i] }
            case .greater: for i in 0..<n { out[i] = x[i] > y[i] }
            case .greaterOrEqual: for i in 0..<n { out[i] = x[i] >= y[i] }
            default: preconditionFailure("\(op) is not a comparison")
            }
        }
    }
    return out
}

/// Unsigned lexicographic byte order (UTF-8 code point order), as DuckDB
/// compares strings without a collation.
func compareBytes(_ x: ArraySlice<UInt8>, _ y: ArraySlice<UInt8>) -> Int {
    let n = Swift.min(x.count, y.count)
    var i = x.startIndex, j = y.startIndex
    for _ in 0..<n {
        if x[i] != y[j] { return x[i] < y[j] ? -1 : 1 }
        i += 1
        j += 1
    }
    return x.count < y.count ? -1 : (x.count == y.count ? 0 : 1)
}

/// A column of `n` copies of one value (nil: all null).
func broadcast(_ value: Scalar?, _ type: ColumnType, _ n: Int) -> Column {
    let validity: [Bool]? = value == nil && n > 0 ? [Bool](repeating: false, count: n) : nil
    let values: ColumnValues
    switch (type.storage, value) {
    case (.int64, .int(let v)?): values = .int64([Int64](repeating: v, count: n))
    case (.int32, .int(let v)?): values = .int32([Int32](repeating: Int32(truncatingIfNeeded: v), count: n))
    case (.double, .double(let v)?): values = .double([Double](repeating: v, count: n))
    case (.bool, .bool(let v)?): values = .bool([Bool](repeating: v, count: n))
    case (.bytes, .bytes(let b)?):
        var s = StringColumn()
        s.reserveCapacity(values: n, bytes: n * b.count)
        for _ in 0..<n { s.append(bytes: b) }
        values = .bytes(s)
    case (.int64, _): values = .int64([Int64](repeating: 0, count: n))
    case (.int32, _): values = .int32([Int32](repeating: 0, count: n))
    case (.double, _): values = .double([Double](repeating: 0, count: n))
    case (.bool, _): values = .bool([Bool](repeating: false, count: n))
    case (.bytes, _):
        var s = StringColumn()
        for _ in 0..<n { s.append(bytes: EmptyCollection()) }
        values = .bytes(s)
    }
    return makeColumn(type, values, validity)
}

/// Rows `indices` of `column`, in that order.
func take(_ column: Column, _ indices: [Int]) -> Column {
    let validity = column.validity.map { v in indices.map { v[$0] } }
    let values: ColumnValues
    switch column.values {
    case .int64(let v): values = .int64(indices.map { v[$0] })
    case .int32(let v): values = .int32(indices.map { v[$0] })
    case .double(let v): values = .double(indices.map { v[$0] })
    case .bool(let v): values = .bool(indices.map { v[$0] })
    case .bytes(let s):
        var out = StringColumn()
        out.reserveCapacity(values: indices.count, bytes: 0)
        for i in indices { out.append(bytes: s.bytes(at: i)) }
        values = .bytes(out)
    }
    return makeColumn(column.type, values, validity)
}

/// Row `i` of the result is row `local[i]` of `sources[choice[i]]`, or null
/// when `choice[i]` is -1. All sources have `type`.
func pick(_ type: ColumnType, _ sources: [Column], _ choice: [Int], _ local: [Int]) -> Column {
    let n = choice.count
    var validity = [Bool](repeating: false, count: n)
    for i in 0..<n where choice[i] >= 0 {
        validity[i] = !sources[choice[i]].isNull(local[i])
    }
    func gather<T>(_ zero: T, _ arrays: [[T]]) -> [T] {
        var out = [T](repeating: zero, count: n)
        for i in 0..<n where validity[i] { out[i] = arrays[choice[i]][local[i]] }
        return out
    }
    let values: ColumnValues
    switch type.storage {
    case .int64:
        values = .int64(gather(0, sources.map { if case .int64(let v) = $0.values { return v } else { return [] } }))
    case .int32:
        values = .int32(gather(0, sources.map { if case .int32(let v) = $0.values { return v } else { return [] } }))
    case .double:
        values = .double(gather(0, sources.map { if case .double(let v) = $0.values { return v } else { return [] } }))
    case .bool:
        values = .bool(gather(false, sources.map { if case .bool(let v) = $0.values { return v } else { return [] } }))
    case .bytes:
        let strings = sources.map { if case .bytes(let s) = $0.values { return s } else { return StringColumn() } }
        var out = StringColumn()
        for i in 0..<n {
            if validity[i] { out.append(bytes: strings[choice[i]].bytes(at: local[i])) } else { out.append(bytes: EmptyCollection()) }
        }
        values = .bytes(out)
    }
    return makeColumn(type, values, validity)
}
