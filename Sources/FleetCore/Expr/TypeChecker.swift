import Columnar

/// Resolves names against a schema and types every node.
///
/// Implicit widening: int32 → int64 → decimal → double. int with decimal is
/// decimal (an int64 column counts as decimal(18,0), an int32 one as
/// decimal(10,0), an integer literal as just its digits); anything with a
/// double is double; date with timestamp is timestamp. Nothing else mixes:
/// comparing a date with a string is an error, not a silent cast.
struct ExprTypeChecker {
    let schema: Schema
    let text: String

    func check(_ node: ExprSyntax) throws(ExpressionError) -> BoundExpr {
        var bound = try bind(node)
        if bound.untypedNull { bound = coerce(bound, to: .int32) }
        return bound
    }

    // MARK: - Nodes

    private func bind(_ node: ExprSyntax) throws(ExpressionError) -> BoundExpr {
        let span = node.span
        switch node.kind {
        case .integer(let v): return literal(.int(v), .int64, span)
        case .decimal(let v, let p, let s): return literal(.int(v), .decimal(precision: p, scale: s), span)
        case .double(let v): return literal(.double(v), .double, span)
        case .string(let s): return literal(.string(s), .string, span)
        case .bool(let b): return literal(.bool(b), .bool, span)
        case .date(let d): return literal(.int(Int64(d)), .date, span)
        case .timestamp(let t): return literal(.int(t), .timestamp, span)
        case .null:
            var b = BoundExpr(.literal(nil), .int32, nullable: true, span: span, constant: true)
            b.untypedNull = true
            return b
        case .column(let name):
            return try column(name, span)
        case .negate(let operand):
            return try negate(try bind(operand), span)
        case .not(let operand):
            let b = try boolean(try bind(operand), "not")
            return BoundExpr(.not(b), .bool, nullable: b.nullable, span: span, constant: b.isConstant)
        case .binary(let op, let l, let r):
            let a = try bind(l), b = try bind(r)
            switch op {
            case .and, .or:
                let x = try boolean(a, op.rawValue), y = try boolean(b, op.rawValue)
                let kind: BoundExpr.Kind = op == .and ? .and(x, y) : .or(x, y)
                return BoundExpr(kind, .bool, nullable: x.nullable || y.nullable, span: span,
                             constant: x.isConstant && y.isConstant)
            case .concat:
                let x = try string(a, "||"), y = try string(b, "||")
                return BoundExpr(.concat(x, y), .string, nullable: x.nullable || y.nullable, span: span,
                             constant: x.isConstant && y.isConstant)
            case _ where op.isComparison:
                return try compare(op, a, b, span)
            default:
                return try arithmetic(op, a, b, span)
            }
        case .isNull(let operand, let negated):
            let b = try bind(operand)
            return BoundExpr(.isNull(b, negated: negated), .bool, nullable: false, span: span, constant: b.isConstant)
        case .inList(let operand, let items, let negated):
            let x = try bind(operand)
            var level: [BoundExpr] = []
            level.reserveCapacity(items.count)
            for item in items {
                let y = try bind(item)
                level.append(try compare(.equal, x, y, x.span.to(y.span)))
            }
            // The comparisons joined by `or` as a balanced tree, not a chain:
            // a list of 10,000 values is 14 levels deep, not 10,000 (the
            // evaluator and the tree's release recurse over it).
            while level.count > 1 {
                var next: [BoundExpr] = []
                next.reserveCapacity((level.count + 1) / 2)
                var i = 0
                while i + 1 < level.count {
                    let a = level[i], b = level[i + 1]
                    next.append(BoundExpr(.or(a, b), .bool, nullable: a.nullable || b.nullable, span: span,
                                          constant: a.isConstant && b.isConstant))
                    i += 2
                }
                if i < level.count { next.append(level[i]) }
                level = next
            }
            // Safe: the parser requires at least one item.
            var r = level[0]
            r.span = span
            return negated ? BoundExpr(.not(r), .bool, nullable: r.nullable, span: span, constant: r.isConstant) : r
        case .between(let operand, let low, let high, let negated):
            let x = try bind(operand), lo = try bind(low), hi = try bind(high)
            let ge = try compare(.greaterOrEqual, x, lo, x.span.to(lo.span))
            let le = try compare(.lessOrEqual, x, hi, x.span.to(hi.span))
            let both = BoundExpr(.and(ge, le), .bool, nullable: ge.nullable || le.nullable, span: span,
                             constant: ge.isConstant && le.isConstant)
            return negated ? BoundExpr(.not(both), .bool, nullable: both.nullable, span: span, constant: both.isConstant) : both
        case .caseWhen(let clauses, let otherwise):
            return try caseWhen(clauses, otherwise, span)
        case .call(let name, let nameSpan, let args):
            return try call(name, nameSpan, args, span)
        case .cast(let operand, let type, let typeSpan):
            return try explicitCast(try bind(operand), type, typeSpan, span)
        }
    }

    /// `cast(x as type)`: any pair `Cast` supports. A literal that cannot
    /// convert is an error now rather than on every row later.
    private func explicitCast(_ b: BoundExpr, _ type: ColumnType, _ typeSpan: ExprSpan, _ span: ExprSpan) throws(ExpressionError) -> BoundExpr {
        if b.untypedNull { return coerce(b, to: type) }
        guard Cast.isSupported(from: b.type, to: type) else {
            throw ExpressionError("cannot cast \(b.type) to \(type)", span)
        }
        if b.type == type { return b }
        if case .literal(let value?) = b.kind, let column = try? Column(b.type, scalars: [value]) {
            var failures = [CastFailure]()
            _ = Cast.convert(column, to: type, failures: &failures, limit: 1)
            if let f = failures.first {
                throw ExpressionError("cannot cast \(b.type) '\(f.value)' to \(type): \(f.reason)", span)
            }
        }
        var cast = coerce(b, to: type)
        cast.span = span
        return cast
    }

    private func literal(_ value: Scalar, _ type: ColumnType, _ span: ExprSpan) -> BoundExpr {
        BoundExpr(.literal(value), type, nullable: false, span: span, constant: true)
    }

    private func column(_ name: String, _ span: ExprSpan) throws(ExpressionError) -> BoundExpr {
        var field = schema.fields.first { $0.name == name }
        if field == nil {
            let folded = schema.fields.filter { $0.name.lowercased() == name.lowercased() }
            if folded.count == 1 { field = folded[0] }
        }
        guard let field else {
            let hint = ExpressionError.closest(to: name, among: schema.fields.map(\.name)).map { "; did you mean '\($0)'?" } ?? ""
            throw ExpressionError("unknown column '\(name)'\(hint)", span)
        }
        return BoundExpr(.column(field.name), field.type, nullable: field.nullable, span: span, constant: false)
    }

    // MARK: - Conversions

    /// `b` converted to `type`: a null literal takes the type, a literal is
    /// converted now, anything else gets a cast node.
    func coerce(_ b: BoundExpr, to type: ColumnType) -> BoundExpr {
        if b.untypedNull {
            return BoundExpr(.literal(nil), type, nullable: true, span: b.span, constant: true)
        }
        if b.type == type { return b }
        if case .literal(let value?) = b.kind, let column = try? Column(b.type, scalars: [value]) {
            var failures = [CastFailure]()
            if let converted = Cast.convert(column, to: type, failures: &failures, limit: 1), failures.isEmpty,
               let scalar = converted.scalar(at: 0) {
                return BoundExpr(.literal(scalar), type, nullable: false, span: b.span, constant: true)
            }
        }
        return BoundExpr(.cast(b), type, nullable: b.nullable, span: b.span, constant: b.isConstant)
    }

    private static func isInteger(_ t: ColumnType) -> Bool { t == .int64 || t == .int32 }

    private static func isNumeric(_ t: ColumnType) -> Bool {
        switch t {
        case .int64, .int32, .double, .decimal: return true
        default: return false
        }
    }

    /// (precision, scale) of a numeric operand taken as a decimal.
    private static func decimalShape(_ b: BoundExpr) -> (Int, Int) {
        switch b.type {
        case .decimal(let p, let s): return (p, s)
        case .int32: return (10, 0)
        default:
            if case .literal(.int(let v)?) = b.kind { return (Swift.max(1, String(v.magnitude).count), 0) }
            return (18, 0)
        }
    }

    /// The type two values of these types both convert to, if any.
    private static func supertype(_ a: BoundExpr, _ b: BoundExpr) -> ColumnType? {
        if a.untypedNull { return b.untypedNull ? nil : (b.type == .int32 ? .int64 : b.type) }
        if b.untypedNull { return a.type }
        let x = a.type, y = b.type
        if x == y { return x }
        if isNumeric(x), isNumeric(y) {
            if x == .double || y == .double { return .double }
            if isInteger(x), isInteger(y) { return .int64 }
            let (pa, sa) = decimalShape(a), (pb, sb) = decimalShape(b)
            let s = Swift.max(sa, sb)
            return .decimal(precision: Swift.min(18, Swift.max(pa - sa, pb - sb) + s), scale: s)
        }
        if (x == .date && y == .timestamp) || (x == .timestamp && y == .date) { return .timestamp }
        return nil
    }

    private func boolean(_ b: BoundExpr, _ what: String) throws(ExpressionError) -> BoundExpr {
        if b.untypedNull { return coerce(b, to: .bool) }
        guard b.type == .bool else {
            throw ExpressionError("'\(what)' needs a bool operand, got \(b.type)", b.span)
        }
        return b
    }

    private func string(_ b: BoundExpr, _ what: String) throws(ExpressionError) -> BoundExpr {
        if b.untypedNull { return coerce(b, to: .string) }
        guard b.type == .string else {
            throw ExpressionError("'\(what)' needs a string, got \(b.type)", b.span)
        }
        return b
    }

    private func typeName(_ b: BoundExpr) -> String { b.untypedNull ? "null" : b.type.description }

    // MARK: - Operators

    private func compare(_ op: ExprOperator, _ a: BoundExpr, _ b: BoundExpr, _ span: ExprSpan) throws(ExpressionError) -> BoundExpr {
        let nullable = a.nullable || b.nullable
        let constant = a.isConstant && b.isConstant
        if a.untypedNull && b.untypedNull {
            return BoundExpr(.literal(nil), .bool, nullable: true, span: span, constant: true)
        }
        guard let common = Self.supertype(a, b) else {
            throw ExpressionError("cannot compare \(typeName(a)) with \(typeName(b))", span)
        }
        func operand(_ b: BoundExpr) -> BoundExpr {
            if b.untypedNull { return coerce(b, to: common) }
            // Decimals (and ints beside them) are compared exactly at the
            // larger scale inside the kernel, so no cast can overflow.
            if case .decimal = common { return Self.isInteger(b.type) ? coerce(b, to: .int64) : b }
            return coerce(b, to: common)
        }
        let x = operand(a), y = operand(b)
        return BoundExpr(.compare(op, x, y), .bool, nullable: nullable, span: span, constant: constant)
    }

    private func negate(_ b: BoundExpr, _ span: ExprSpan) throws(ExpressionError) -> BoundExpr {
        if b.untypedNull { return coerce(b, to: .int64) }
        guard Self.isNumeric(b.type) else {
            throw ExpressionError("cannot negate \(b.type)", span)
        }
        let x = b.type == .int32 ? coerce(b, to: .int64) : b
        return BoundExpr(.negate(x), x.type, nullable: x.nullable, span: span, constant: x.isConstant)
    }

    private func arithmetic(_ op: ExprOperator, _ a0: BoundExpr, _ b0: BoundExpr, _ span: ExprSpan) throws(ExpressionError) -> BoundExpr {
        var a = a0, b = b0
        if a.untypedNull { a = coerce(a, to: b.untypedNull || b.type == .int32 ? .int64 : b.type) }
        if b.untypedNull { b = coerce(b, to: a.type == .int32 || a.type == .date ? .int64 : a.type) }
        let nullable = a.nullable || b.nullable
        let constant = a.isConstant && b.isConstant
        func node(_ type: ColumnType, _ x: BoundExpr, _ y: BoundExpr) -> BoundExpr {
            BoundExpr(.arithmetic(op, x, y), type, nullable: nullable, span: span, constant: constant)
        }
        // Dates as DuckDB: date ± integer days is a date, date - date the
        // days between them (int64).
        if a.type == .date, Self.isInteger(b.type), op == .add || op == .subtract {
            return node(.date, a, coerce(b, to: .int64))
        }
        if Self.isInteger(a.type), b.type == .date, op == .add {
            return node(.date, coerce(a, to: .int64), b)
        }
        if a.type == .date, b.type == .date, op == .subtract {
            return node(.int64, a, b)
        }
        guard Self.isNumeric(a.type), Self.isNumeric(b.type) else {
            throw ExpressionError("cannot apply '\(op.rawValue)' to \(typeName(a0)) and \(typeName(b0))", span)
        }
        switch op {
        case .divide:
            // As DuckDB: `/` is always a double division (1/0 is inf, 0/0 NaN).
            return node(.double, coerce(a, to: .double), coerce(b, to: .double))
        case .integerDivide, .remainder:
            guard Self.isInteger(a.type), Self.isInteger(b.type) else {
                throw ExpressionError(
                    "'\(op.rawValue)' needs integers, got \(typeName(a0)) and \(typeName(b0))", span)
            }
            return node(.int64, coerce(a, to: .int64), coerce(b, to: .int64))
        default:
            break
        }
        if a.type == .double || b.type == .double {
            return node(.double, coerce(a, to: .double), coerce(b, to: .double))
        }
        let x = a.type == .int32 ? coerce(a, to: .int64) : a
        let y = b.type == .int32 ? coerce(b, to: .int64) : b
        if Self.isInteger(a.type), Self.isInteger(b.type) {
            return node(.int64, x, y)
        }
        let (pa, sa) = Self.decimalShape(a), (pb, sb) = Self.decimalShape(b)
        if op == .multiply {
            guard sa + sb <= 18 else {
                throw ExpressionError(
                    "product of decimal scales \(sa) and \(sb) exceeds 18 digits after the point; round an operand first",
                    span)
            }
            return node(.decimal(precision: Swift.min(18, Swift.max(pa + pb, sa + sb)), scale: sa + sb), x, y)
        }
        let s = Swift.max(sa, sb)
        return node(.decimal(precision: Swift.min(18, Swift.max(pa - sa, pb - sb) + s + 1), scale: s), x, y)
    }

    private func caseWhen(_ clauses: [ExprSyntax.WhenClause], _ otherwise: ExprSyntax?, _ span: ExprSpan) throws(ExpressionError) -> BoundExpr {
        var conditions = [BoundExpr](), results = [BoundExpr]()
        for clause in clauses {
            conditions.append(try boolean(try bind(clause.condition), "when"))
            results.append(try bind(clause.result))
        }
        if let otherwise { results.append(try bind(otherwise)) }
        let type = try unify(results, what: "case branches")
        let typed = results.map { coerce($0, to: type) }
        var whens = [BoundExpr.When]()
        for (i, condition) in conditions.enumerated() {
            whens.append(BoundExpr.When(condition: condition, result: typed[i]))
        }
        let elseBranch = otherwise == nil ? nil : typed.last
        let nullable = elseBranch == nil || typed.contains { $0.nullable }
        let constant = conditions.allSatisfy(\.isConstant) && typed.allSatisfy(\.isConstant)
        return BoundExpr(.caseWhen(whens, otherwise: elseBranch), type, nullable: nullable, span: span, constant: constant)
    }

    /// The common type of several values (case branches, coalesce arguments).
    private func unify(_ items: [BoundExpr], what: String) throws(ExpressionError) -> ColumnType {
        var acc: BoundExpr?
        for item in items where !item.untypedNull {
            guard let current = acc else {
                acc = item
                continue
            }
            guard let t = Self.supertype(current, item) else {
                throw ExpressionError("\(what) mix \(current.type) and \(item.type)", current.span.to(item.span))
            }
            // Carry the widened shape forward as a typed placeholder.
            acc = BoundExpr(.literal(nil), t, nullable: true, span: current.span.to(item.span), constant: false)
        }
        guard let acc else { return .int32 }
        return acc.type
    }

    // MARK: - Functions

    private func call(_ name: String, _ nameSpan: ExprSpan, _ syntaxArgs: [ExprSyntax], _ span: ExprSpan) throws(ExpressionError) -> BoundExpr {
        guard let function = ExprFunction(rawValue: name) else {
            let hint = ExpressionError.closest(to: name, among: ExprFunction.allCases.map(\.rawValue)).map { "; did you mean '\($0)'?" } ?? ""
            throw ExpressionError("unknown function '\(name)'\(hint)", nameSpan)
        }
        var args = [BoundExpr]()
        for a in syntaxArgs { args.append(try bind(a)) }
        let arity: ClosedRange<Int>
        switch function {
        case .lower, .upper, .trim, .length, .abs, .year, .month, .day: arity = 1...1
        case .substr: arity = 2...3
        case .round: arity = 1...2
        case .dateTrunc: arity = 2...2
        case .coalesce: arity = 1...Int.max
        }
        guard arity.contains(args.count) else {
            let expected = arity.upperBound == Int.max ? "at least \(arity.lowerBound)"
                : arity.count == 1 ? "\(arity.lowerBound)" : "\(arity.lowerBound) or \(arity.upperBound)"
            throw ExpressionError("\(name) takes \(expected) argument\(expected == "1" ? "" : "s"), got \(args.count)", span)
        }
        let nullable = args.contains { $0.nullable }
        let constant = args.allSatisfy(\.isConstant)
        func result(_ type: ColumnType, _ args: [BoundExpr], nullable: Bool = nullable) -> BoundExpr {
            BoundExpr(.call(function, args), type, nullable: nullable, span: span, constant: constant)
        }
        func need(_ b: BoundExpr, _ ok: (ColumnType) -> Bool, _ expected: String) throws(ExpressionError) -> BoundExpr {
            guard b.untypedNull || ok(b.type) else {
                throw ExpressionError("\(name) needs \(expected), got \(b.type)", b.span)
            }
            return b
        }
        switch function {
        case .lower, .upper, .trim:
            return result(.string, [try string(args[0], name)])
        case .length:
            return result(.int64, [try string(args[0], name)])
        case .substr:
            var typed = [try string(args[0], name)]
            for a in args.dropFirst() {
                typed.append(coerce(try need(a, Self.isInteger, "an integer position or length"), to: .int64))
            }
            return result(.string, typed)
        case .coalesce:
            let type = try unify(args, what: "coalesce arguments")
            return result(type, args.map { coerce($0, to: type) }, nullable: args.allSatisfy(\.nullable))
        case .abs:
            let x = try need(args[0], Self.isNumeric, "a number")
            let t = x.untypedNull || x.type == .int32 ? ColumnType.int64 : x.type
            return result(t, [coerce(x, to: t)])
        case .round:
            let x = try need(args[0], Self.isNumeric, "a number")
            var digits: Int64 = 0
            if args.count == 2 {
                guard case .literal(.int(let d)?) = args[1].kind, args[1].type == .int64 else {
                    throw ExpressionError("round's digits must be an integer literal", args[1].span)
                }
                guard (-18...18).contains(d) else {
                    throw ExpressionError("round's digits must be within -18...18", args[1].span)
                }
                digits = d
            }
            let digitsArg = literal(.int(digits), .int64, args.count == 2 ? args[1].span : span)
            let t: ColumnType
            switch x.type {
            case .decimal(let p, let s) where !x.untypedNull:
                t = digits >= Int64(s) ? x.type : .decimal(precision: p, scale: Swift.max(0, Int(digits)))
            case .int32 where !x.untypedNull: t = .int64
            default: t = x.untypedNull ? .int64 : x.type
            }
            let operand = Self.isInteger(x.type) || x.untypedNull ? coerce(x, to: .int64) : x
            return result(t, [operand, digitsArg])
        case .year, .month, .day:
            let x = try need(args[0], { $0 == .date || $0 == .timestamp }, "a date or timestamp")
            return result(.int64, [x.untypedNull ? coerce(x, to: .date) : x])
        case .dateTrunc:
            guard case .literal(.bytes(let bytes)?) = args[0].kind, args[0].type == .string else {
                throw ExpressionError("date_trunc's first argument must be 'year', 'month' or 'day'", args[0].span)
            }
            let part = String(decoding: bytes, as: UTF8.self).lowercased()
            guard ["year", "month", "day"].contains(part) else {
                throw ExpressionError("date_trunc supports 'year', 'month' and 'day', not '\(part)'", args[0].span)
            }
            let x = try need(args[1], { $0 == .date || $0 == .timestamp }, "a date or timestamp")
            // DuckDB's date_trunc returns a timestamp, for dates too.
            return result(.timestamp, [literal(.string(part), .string, args[0].span),
                                       x.untypedNull ? coerce(x, to: .timestamp) : x],
                          nullable: x.nullable)
        }
    }
}
