import Columnar

/// Evaluates a bound expression a column at a time: each operator is one
/// tight loop over the operands' arrays, with validity masks combined per
/// operator. Constant sub-expressions are computed once and broadcast.
struct ExprEvaluator {
    /// The columns the expression reads, by name.
    var columns: [String: Column]
    var rows: Int
    /// Row numbers in the caller's batch when evaluating a subset (the rows
    /// a `case` branch applies to), so errors name the caller's row.
    var rowIDs: [Int]?
    let text: String

    func callerRow(_ i: Int) -> Int { rowIDs?[i] ?? i }

    func snippet(_ span: ExprSpan) -> String {
        let bytes = Array(text.utf8)
        let end = Swift.min(span.end, bytes.count)
        guard span.offset < end else { return text }
        return String(decoding: bytes[span.offset..<end], as: UTF8.self)
    }

    func failure(_ what: String, _ node: BoundExpr, row i: Int) -> ExpressionError {
        ExpressionError("\(what) in '\(snippet(node.span))'", node.span, row: callerRow(i))
    }

    /// Only the rows `indices` (ascending) of this context.
    func subset(_ indices: [Int]) -> ExprEvaluator {
        var sub = self
        sub.columns = columns.mapValues { Kernel.take($0, indices) }
        sub.rows = indices.count
        sub.rowIDs = rowIDs.map { ids in indices.map { ids[$0] } } ?? indices
        return sub
    }

    func eval(_ node: BoundExpr) throws(ExpressionError) -> Column {
        if node.isConstant {
            if case .literal(let value) = node.kind { return Kernel.broadcast(value, node.type, rows) }
            if rows == 0 { return Kernel.broadcast(nil, node.type, 0) }
            if rows != 1 {
                var one = self
                one.rows = 1
                one.rowIDs = [callerRow(0)]
                let value = try one.eval(node)
                return Kernel.broadcast(value.scalar(at: 0), node.type, rows)
            }
        }
        switch node.kind {
        case .literal(let value):
            return Kernel.broadcast(value, node.type, rows)
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
            return Kernel.column(.bool, .bool(v.map { !$0 }), c.validity)
        case .isNull(let operand, let negated):
            let c = try eval(operand)
            let out = (0..<rows).map { i in c.isNull(i) != negated }
            return Kernel.column(.bool, .bool(out), nil)
        case .caseWhen(let whens, let otherwise):
            return try caseWhen(node, whens, otherwise)
        case .call(let function, let args):
            var values = [Column]()
            for a in args { values.append(try eval(a)) }
            return try call(node, function, values)
        }
    }

    // MARK: - Arithmetic

    private func negate(_ node: BoundExpr, _ c: Column) throws(ExpressionError) -> Column {
        switch c.values {
        case .double(let v):
            return Kernel.column(node.type, .double(v.map { -$0 }), c.validity)
        case .int64(let v):
            var out = [Int64](repeating: 0, count: v.count)
            for i in v.indices {
                let (r, overflow) = Int64(0).subtractingReportingOverflow(v[i])
                if overflow { throw failure("overflow: -(\(v[i])) does not fit \(node.type)", node, row: i) }
                out[i] = r
            }
            return Kernel.column(node.type, .int64(out), c.validity)
        default:
            preconditionFailure("negate over \(c.type)")
        }
    }

    private func arithmetic(_ node: BoundExpr, _ op: ExprOperator, _ a: Column, _ b: Column) throws(ExpressionError) -> Column {
        let validity = Kernel.combine(a.validity, b.validity)
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
            return Kernel.column(.double, .double(out), validity)
        case (.int32, _), (_, .int32):
            return try dateArithmetic(node, op, a, b, validity)
        case (.int64(let x), .int64(let y)):
            var out = [Int64](repeating: 0, count: n)
            if case .decimal(let p, let s) = node.type {
                try decimalArithmetic(node, op, x, Kernel.numericScale(a.type), y, Kernel.numericScale(b.type), p, s, validity, &out)
                return Kernel.column(node.type, .int64(out), validity)
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
            return Kernel.column(.int64, .int64(out), validity)
        default:
            preconditionFailure("\(op) over \(a.type) and \(b.type)")
        }
    }

    /// date ± days (a date, range-checked) and date - date (int64 days).
    private func dateArithmetic(
        _ node: BoundExpr, _ op: ExprOperator, _ a: Column, _ b: Column, _ validity: [Bool]?
    ) throws(ExpressionError) -> Column {
        func wide(_ c: Column) -> [Int64] {
            switch c.values {
            case .int32(let v): return v.map { Int64($0) }
            case .int64(let v): return v
            default: preconditionFailure("date arithmetic over \(c.type)")
            }
        }
        let x = wide(a), y = wide(b)
        var out = [Int64](repeating: 0, count: rows)
        for i in 0..<rows {
            // Days fit in Int32, so one of them plus an Int64 can only overflow near Int64's ends.
            let (r, overflow) = op == .add ? x[i].addingReportingOverflow(y[i]) : x[i].subtractingReportingOverflow(y[i])
            if overflow || (node.type == .date && Int32(exactly: r) == nil) {
                guard validity?[i] ?? true else { continue }
                throw failure("date out of range: \(Cast.text(a, i)) \(op.rawValue) \(Cast.text(b, i))", node, row: i)
            }
            out[i] = r
        }
        if node.type == .date {
            return Kernel.column(.date, .int32(out.map { Int32(truncatingIfNeeded: $0) }), validity)
        }
        return Kernel.column(.int64, .int64(out), validity)
    }

    /// Exact decimal + - *: operands at their own scales, computed in Int128,
    /// then checked against the result's precision.
    private func decimalArithmetic(
        _ node: BoundExpr, _ op: ExprOperator, _ x: [Int64], _ sa: Int, _ y: [Int64], _ sb: Int,
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
        return Kernel.column(.string, .bytes(out), Kernel.combine(a.validity, b.validity))
    }

    // MARK: - Comparison and logic

    private func compare(_ op: ExprOperator, _ a: Column, _ b: Column) -> Column {
        let n = rows
        let out: [Bool]
        switch (a.values, b.values) {
        case (.int64(let x), .int64(let y)):
            let sa = Kernel.numericScale(a.type), sb = Kernel.numericScale(b.type)
            if sa == sb {
                out = Kernel.compareArrays(op, x, y, n)
            } else {
                let s = Swift.max(sa, sb)
                let mx = Int128(DecimalMath.pow10[s - sa]), my = Int128(DecimalMath.pow10[s - sb])
                out = Kernel.compareArrays(op, x.map { Int128($0) * mx }, y.map { Int128($0) * my }, n)
            }
        case (.int32(let x), .int32(let y)): out = Kernel.compareArrays(op, x, y, n)
        case (.double(let x), .double(let y)):
            if x.contains(where: \.isNaN) || y.contains(where: \.isNaN) {
                // DuckDB orders NaN above every number and equal to itself.
                var r = [Bool](repeating: false, count: n)
                for i in 0..<n {
                    let a = x[i], b = y[i]
                    let c = a.isNaN ? (b.isNaN ? 0 : 1) : b.isNaN ? -1 : (a < b ? -1 : (a == b ? 0 : 1))
                    r[i] = Kernel.test(op, c)
                }
                out = r
            } else {
                out = Kernel.compareArrays(op, x, y, n)
            }
        case (.bool(let x), .bool(let y)): out = Kernel.compareArrays(op, x.map { $0 ? 1 : 0 }, y.map { $0 ? 1 : 0 }, n)
        case (.bytes(let x), .bytes(let y)):
            out = Kernel.compareStrings(op, x, y, n)
        default:
            preconditionFailure("compare \(a.type) with \(b.type)")
        }
        return Kernel.column(.bool, .bool(out), Kernel.combine(a.validity, b.validity))
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
        guard a.validity != nil || b.validity != nil else { return Kernel.column(.bool, .bool(out), nil) }
        var valid = [Bool](repeating: true, count: n)
        for i in 0..<n {
            let va = a.validity?[i] ?? true, vb = b.validity?[i] ?? true
            // A known false decides `and`, a known true decides `or`.
            valid[i] = (va && vb) || (va && x[i] != and) || (vb && y[i] != and)
        }
        return Kernel.column(.bool, .bool(out), valid)
    }

    // MARK: - case

    private func caseWhen(_ node: BoundExpr, _ whens: [BoundExpr.When], _ otherwise: BoundExpr?) throws(ExpressionError) -> Column {
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
        return Kernel.pick(node.type, sources, choice, local)
    }
}
