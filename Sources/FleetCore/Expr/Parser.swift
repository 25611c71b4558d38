import Columnar

/// Recursive-descent parser. Precedence, loosest first:
/// `or`; `and`; `not`; comparisons, `is [not] null`, `[not] in`,
/// `[not] between` (not chained); `+ - ||`; `* / // %`; unary `-`.
/// Keywords are case-insensitive. `date` and `timestamp` are keywords only
/// when a string literal follows, so a column may be called `date`.
struct ExprParser {
    private let tokens: [ExprToken]
    private var position = 0
    /// Nesting of parentheses, `not`, unary minus and chained binary
    /// operators (`a + a + a` is a tree two deep), bounded so that a hostile
    /// expression cannot exhaust the stack of the parser, the type checker,
    /// the evaluator or the tree's release, which all recurse over the tree.
    private var depth = 0
    static let maxDepth = 200

    static let reserved: Set<String> = [
        "and", "or", "not", "is", "null", "in", "between", "case", "when", "then", "else", "end", "true", "false",
    ]

    init(_ text: String) throws(ExpressionError) {
        tokens = try ExprLexer.tokenize(text)
    }

    static func parse(_ text: String) throws(ExpressionError) -> ExprSyntax {
        var parser = try ExprParser(text)
        if parser.current.kind == .end {
            throw ExpressionError("empty expression", ExprSpan(0, 0))
        }
        let tree = try parser.expression()
        guard parser.current.kind == .end else {
            throw ExpressionError("unexpected \(parser.current.display) after the expression", parser.current.span)
        }
        return tree
    }

    private var current: ExprToken { tokens[position] }

    private mutating func advance() -> ExprToken {
        let t = tokens[position]
        if position < tokens.count - 1 { position += 1 }
        return t
    }

    private func isKeyword(_ word: String, _ offset: Int = 0) -> Bool {
        let index = Swift.min(position + offset, tokens.count - 1)
        if case .word(let w) = tokens[index].kind { return w.lowercased() == word }
        return false
    }

    private func isSymbol(_ symbol: String) -> Bool {
        current.kind == .symbol(symbol)
    }

    private mutating func expectKeyword(_ word: String) throws(ExpressionError) -> ExprToken {
        guard isKeyword(word) else {
            throw ExpressionError("expected '\(word)' but found \(current.display)", current.span)
        }
        return advance()
    }

    private mutating func expectSymbol(_ symbol: String) throws(ExpressionError) -> ExprToken {
        guard isSymbol(symbol) else {
            let found = current.kind == .end ? "" : " but found \(current.display)"
            throw ExpressionError("expected '\(symbol)'\(found)", current.span)
        }
        return advance()
    }

    private mutating func descend() throws(ExpressionError) {
        depth += 1
        guard depth <= Self.maxDepth else {
            throw ExpressionError("expression nested more than \(Self.maxDepth) levels deep", current.span)
        }
    }

    mutating func expression() throws(ExpressionError) -> ExprSyntax {
        try descend()
        defer { depth -= 1 }
        var left = try conjunction()
        var chain = 0
        defer { depth -= chain }
        while isKeyword("or") {
            _ = advance()
            try descend()
            chain += 1
            let right = try conjunction()
            left = ExprSyntax(kind: .binary(.or, left, right), span: left.span.to(right.span))
        }
        return left
    }

    private mutating func conjunction() throws(ExpressionError) -> ExprSyntax {
        var left = try negation()
        var chain = 0
        defer { depth -= chain }
        while isKeyword("and") {
            _ = advance()
            try descend()
            chain += 1
            let right = try negation()
            left = ExprSyntax(kind: .binary(.and, left, right), span: left.span.to(right.span))
        }
        return left
    }

    private mutating func negation() throws(ExpressionError) -> ExprSyntax {
        if isKeyword("not") {
            let start = advance().span
            try descend()
            defer { depth -= 1 }
            let operand = try negation()
            return ExprSyntax(kind: .not(operand), span: start.to(operand.span))
        }
        return try comparison()
    }

    private static let comparisonSymbols: [String: ExprOperator] = [
        "=": .equal, "!=": .notEqual, "<>": .notEqual, "<": .less, "<=": .lessOrEqual,
        ">": .greater, ">=": .greaterOrEqual,
    ]

    private mutating func comparison() throws(ExpressionError) -> ExprSyntax {
        let left = try additive()
        if case .symbol(let s) = current.kind, let op = Self.comparisonSymbols[s] {
            _ = advance()
            let right = try additive()
            return ExprSyntax(kind: .binary(op, left, right), span: left.span.to(right.span))
        }
        if isKeyword("is") {
            _ = advance()
            let negated = isKeyword("not")
            if negated { _ = advance() }
            let null = try expectKeyword("null")
            return ExprSyntax(kind: .isNull(left, negated: negated), span: left.span.to(null.span))
        }
        let negated = isKeyword("not") && (isKeyword("in", 1) || isKeyword("between", 1))
        if negated { _ = advance() }
        if isKeyword("in") {
            _ = advance()
            _ = try expectSymbol("(")
            var items = [try expression()]
            while isSymbol(",") {
                _ = advance()
                items.append(try expression())
            }
            let close = try expectSymbol(")")
            return ExprSyntax(kind: .inList(left, items, negated: negated), span: left.span.to(close.span))
        }
        if isKeyword("between") {
            _ = advance()
            let low = try additive()
            _ = try expectKeyword("and")
            let high = try additive()
            return ExprSyntax(kind: .between(left, low, high, negated: negated), span: left.span.to(high.span))
        }
        return left
    }

    private mutating func additive() throws(ExpressionError) -> ExprSyntax {
        var left = try multiplicative()
        var chain = 0
        defer { depth -= chain }
        while case .symbol(let s) = current.kind, s == "+" || s == "-" || s == "||" {
            _ = advance()
            try descend()
            chain += 1
            let right = try multiplicative()
            let op: ExprOperator = s == "+" ? .add : s == "-" ? .subtract : .concat
            left = ExprSyntax(kind: .binary(op, left, right), span: left.span.to(right.span))
        }
        return left
    }

    private mutating func multiplicative() throws(ExpressionError) -> ExprSyntax {
        var left = try unary()
        var chain = 0
        defer { depth -= chain }
        while case .symbol(let s) = current.kind, let op = ExprOperator(rawValue: s),
              [.multiply, .divide, .integerDivide, .remainder].contains(op) {
            _ = advance()
            try descend()
            chain += 1
            let right = try unary()
            left = ExprSyntax(kind: .binary(op, left, right), span: left.span.to(right.span))
        }
        return left
    }

    private mutating func unary() throws(ExpressionError) -> ExprSyntax {
        if isSymbol("-") {
            let start = advance().span
            try descend()
            defer { depth -= 1 }
            // -9223372036854775808 is a valid literal though its magnitude is not.
            if case .integer("9223372036854775808") = current.kind {
                let literal = advance()
                return ExprSyntax(kind: .integer(Int64.min), span: start.to(literal.span))
            }
            let operand = try unary()
            // Fold `-literal` so that -9223372036854775808 is a valid literal.
            switch operand.kind {
            case .integer(let v) where v != Int64.min:
                return ExprSyntax(kind: .integer(-v), span: start.to(operand.span))
            case .decimal(let v, let p, let s):
                return ExprSyntax(kind: .decimal(-v, precision: p, scale: s), span: start.to(operand.span))
            case .double(let v):
                return ExprSyntax(kind: .double(-v), span: start.to(operand.span))
            default:
                return ExprSyntax(kind: .negate(operand), span: start.to(operand.span))
            }
        }
        if isSymbol("+") {
            _ = advance()
            return try unary()
        }
        return try primary()
    }

    private mutating func primary() throws(ExpressionError) -> ExprSyntax {
        let token = current
        switch token.kind {
        case .integer(let text):
            _ = advance()
            guard let value = Int64(text) else {
                throw ExpressionError("integer \(text) is out of range for int64", token.span)
            }
            return ExprSyntax(kind: .integer(value), span: token.span)
        case .decimal(let text):
            _ = advance()
            guard let d = DecimalText.parseLiteral(text) else {
                throw ExpressionError("decimal \(text) has more than 18 digits", token.span)
            }
            return ExprSyntax(kind: .decimal(d.unscaled, precision: d.precision, scale: d.scale), span: token.span)
        case .float(let text):
            _ = advance()
            guard let v = Double(text), v.isFinite else {
                throw ExpressionError("number \(text) is out of range for double", token.span)
            }
            return ExprSyntax(kind: .double(v), span: token.span)
        case .string(let s):
            _ = advance()
            return ExprSyntax(kind: .string(s), span: token.span)
        case .quotedName(let name):
            _ = advance()
            return ExprSyntax(kind: .column(name), span: token.span)
        case .symbol("("):
            _ = advance()
            let inner = try expression()
            _ = try expectSymbol(")")
            return inner
        case .word(let word):
            return try wordPrimary(token, word)
        case .end:
            throw ExpressionError("expected a value but the expression ends", token.span)
        case .symbol:
            throw ExpressionError("expected a value but found \(token.display)", token.span)
        }
    }

    private mutating func wordPrimary(_ token: ExprToken, _ word: String) throws(ExpressionError) -> ExprSyntax {
        let lower = word.lowercased()
        switch lower {
        case "true", "false":
            _ = advance()
            return ExprSyntax(kind: .bool(lower == "true"), span: token.span)
        case "null":
            _ = advance()
            return ExprSyntax(kind: .null, span: token.span)
        case "case":
            return try caseExpression()
        case "cast" where tokens[Swift.min(position + 1, tokens.count - 1)].kind == .symbol("("):
            return try castExpression()
        case "date", "timestamp":
            guard case .string(let text) = tokens[Swift.min(position + 1, tokens.count - 1)].kind else { break }
            _ = advance()
            let literal = advance()
            let span = token.span.to(literal.span)
            if lower == "date" {
                guard let days = CalendarMath.parseDate(text) else {
                    throw ExpressionError("invalid date '\(text)': expected YYYY-MM-DD", literal.span)
                }
                return ExprSyntax(kind: .date(days), span: span)
            }
            guard let micros = CalendarMath.parseTimestamp(text) else {
                throw ExpressionError(
                    "invalid timestamp '\(text)': expected YYYY-MM-DDTHH:MM:SS[.ffffff][Z|±HH:MM]", literal.span)
            }
            return ExprSyntax(kind: .timestamp(micros), span: span)
        default:
            break
        }
        if Self.reserved.contains(lower) {
            throw ExpressionError("expected a value but found keyword '\(word)'", token.span)
        }
        _ = advance()
        guard isSymbol("(") else {
            return ExprSyntax(kind: .column(word), span: token.span)
        }
        _ = advance()
        var args = [ExprSyntax]()
        if !isSymbol(")") {
            args.append(try expression())
            while isSymbol(",") {
                _ = advance()
                args.append(try expression())
            }
        }
        let close = try expectSymbol(")")
        return ExprSyntax(kind: .call(lower, nameSpan: token.span, args), span: token.span.to(close.span))
    }

    /// `cast(x as type)` with DuckDB's type names and ours.
    private mutating func castExpression() throws(ExpressionError) -> ExprSyntax {
        let start = advance().span
        _ = try expectSymbol("(")
        let operand = try expression()
        _ = try expectKeyword("as")
        let typeToken = current
        guard case .word(let word) = typeToken.kind else {
            throw ExpressionError("expected a type name but found \(typeToken.display)", typeToken.span)
        }
        _ = advance()
        let type: ColumnType
        var typeSpan = typeToken.span
        switch word.lowercased() {
        case "int64", "bigint", "long": type = .int64
        case "int32", "int", "integer": type = .int32
        case "double", "float8", "float": type = .double
        case "bool", "boolean": type = .bool
        case "string", "varchar", "text": type = .string
        case "date": type = .date
        case "timestamp": type = .timestamp
        case "decimal", "numeric":
            var precision = 18, scale = 3  // DuckDB's default DECIMAL
            if isSymbol("(") {
                _ = advance()
                precision = try smallInteger()
                scale = 0
                if isSymbol(",") {
                    _ = advance()
                    scale = try smallInteger()
                }
                typeSpan = typeSpan.to(try expectSymbol(")").span)
            }
            guard (1...18).contains(precision), (0...precision).contains(scale) else {
                throw ExpressionError("decimal(\(precision),\(scale)) needs precision 1...18 and scale 0...precision", typeSpan)
            }
            type = .decimal(precision: precision, scale: scale)
        default:
            let names = ["int64", "int32", "double", "bool", "string", "date", "timestamp", "decimal"]
            let hint = ExpressionError.closest(to: word, among: names).map { "; did you mean '\($0)'?" } ?? ""
            throw ExpressionError("unknown type '\(word)'\(hint)", typeToken.span)
        }
        let close = try expectSymbol(")")
        return ExprSyntax(kind: .cast(operand, type, typeSpan: typeSpan), span: start.to(close.span))
    }

    private mutating func smallInteger() throws(ExpressionError) -> Int {
        guard case .integer(let text) = current.kind, let v = Int(text), v < 100 else {
            throw ExpressionError("expected a small integer but found \(current.display)", current.span)
        }
        _ = advance()
        return v
    }

    private mutating func caseExpression() throws(ExpressionError) -> ExprSyntax {
        let start = advance().span
        var clauses = [ExprSyntax.WhenClause]()
        guard isKeyword("when") else {
            throw ExpressionError("expected 'when' after 'case' (only searched case is supported)", current.span)
        }
        while isKeyword("when") {
            _ = advance()
            let condition = try expression()
            _ = try expectKeyword("then")
            let result = try expression()
            clauses.append(ExprSyntax.WhenClause(condition: condition, result: result))
        }
        var otherwise: ExprSyntax?
        if isKeyword("else") {
            _ = advance()
            otherwise = try expression()
        }
        let end = try expectKeyword("end")
        return ExprSyntax(kind: .caseWhen(clauses, otherwise: otherwise), span: start.to(end.span))
    }
}
