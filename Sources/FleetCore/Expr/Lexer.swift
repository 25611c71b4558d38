/// One token of expression text, with its byte range.
struct ExprToken: Sendable, Hashable {
    enum Kind: Sendable, Hashable {
        /// A bare word: a column name, function name or keyword (compared
        /// case-insensitively by the parser).
        case word(String)
        /// A "double quoted" name: always a column, never a keyword.
        case quotedName(String)
        case integer(String)
        /// Digits with a point (`0.10`): an exact decimal.
        case decimal(String)
        /// Digits with an exponent (`1e3`, `2.5E-2`): a double.
        case float(String)
        case string(String)
        case symbol(String)
        case end
    }

    let kind: Kind
    let span: ExprSpan

    /// How the token reads in an error message.
    var display: String {
        switch kind {
        case .word(let w): return "'\(w)'"
        case .quotedName(let n): return "\"\(n)\""
        case .integer(let t), .decimal(let t), .float(let t): return t
        case .string: return "a string"
        case .symbol(let s): return "'\(s)'"
        case .end: return "the end"
        }
    }
}

/// Splits expression text into tokens. Offsets are UTF-8 byte offsets.
struct ExprLexer {
    private let bytes: [UInt8]
    private var i = 0

    init(_ text: String) {
        bytes = Array(text.utf8)
    }

    static func tokenize(_ text: String) throws(ExpressionError) -> [ExprToken] {
        var lexer = ExprLexer(text)
        var tokens = [ExprToken]()
        while true {
            let t = try lexer.next()
            tokens.append(t)
            if t.kind == .end { return tokens }
        }
    }

    private static func isWordStart(_ b: UInt8) -> Bool {
        (b >= 0x61 && b <= 0x7A) || (b >= 0x41 && b <= 0x5A) || b == 0x5F || b >= 0x80
    }

    private static func isDigit(_ b: UInt8) -> Bool { b >= 0x30 && b <= 0x39 }

    private func text(_ start: Int, _ end: Int) -> String {
        String(decoding: bytes[start..<end], as: UTF8.self)
    }

    mutating func next() throws(ExpressionError) -> ExprToken {
        while i < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[i]) { i += 1 }
        guard i < bytes.count else { return ExprToken(kind: .end, span: ExprSpan(bytes.count, 0)) }
        let start = i
        let b = bytes[i]
        if Self.isWordStart(b) {
            while i < bytes.count, Self.isWordStart(bytes[i]) || Self.isDigit(bytes[i]) { i += 1 }
            return ExprToken(kind: .word(text(start, i)), span: ExprSpan(start, i - start))
        }
        if Self.isDigit(b) || (b == 0x2E && i + 1 < bytes.count && Self.isDigit(bytes[i + 1])) {
            return try number(start)
        }
        if b == 0x27 || b == 0x22 {
            let value = try quoted(start, quote: b)
            let kind: ExprToken.Kind = b == 0x27 ? .string(value) : .quotedName(value)
            if b == 0x22, value.isEmpty {
                throw ExpressionError("empty quoted name", ExprSpan(start, i - start))
            }
            return ExprToken(kind: kind, span: ExprSpan(start, i - start))
        }
        let two = i + 1 < bytes.count ? text(i, i + 2) : ""
        if ["<=", ">=", "<>", "!=", "//", "||"].contains(two) {
            i += 2
            return ExprToken(kind: .symbol(two), span: ExprSpan(start, 2))
        }
        if "+-*/%=<>(),".utf8.contains(b) {
            i += 1
            return ExprToken(kind: .symbol(text(start, i)), span: ExprSpan(start, 1))
        }
        // One whole character, however many bytes it takes.
        var end = i + 1
        while end < bytes.count, bytes[end] & 0xC0 == 0x80 { end += 1 }
        throw ExpressionError("unexpected character '\(text(start, end))'", ExprSpan(start, end - start))
    }

    private mutating func number(_ start: Int) throws(ExpressionError) -> ExprToken {
        var sawPoint = false, sawExponent = false
        while i < bytes.count {
            let c = bytes[i]
            if Self.isDigit(c) {
                i += 1
            } else if c == 0x2E, !sawPoint, !sawExponent {
                sawPoint = true
                i += 1
            } else if c == 0x65 || c == 0x45, !sawExponent {
                var j = i + 1
                if j < bytes.count, bytes[j] == 0x2B || bytes[j] == 0x2D { j += 1 }
                guard j < bytes.count, Self.isDigit(bytes[j]) else {
                    throw ExpressionError("malformed number '\(text(start, j))'", ExprSpan(start, j - start))
                }
                sawExponent = true
                i = j
            } else {
                break
            }
        }
        if i < bytes.count, Self.isWordStart(bytes[i]) {
            throw ExpressionError("malformed number '\(text(start, i + 1))'", ExprSpan(start, i + 1 - start))
        }
        let t = text(start, i)
        let kind: ExprToken.Kind = sawExponent ? .float(t) : sawPoint ? .decimal(t) : .integer(t)
        return ExprToken(kind: kind, span: ExprSpan(start, i - start))
    }

    /// Reads a quoted string or name; a doubled quote stands for one.
    private mutating func quoted(_ start: Int, quote: UInt8) throws(ExpressionError) -> String {
        var value = [UInt8]()
        i += 1
        while i < bytes.count {
            if bytes[i] == quote {
                if i + 1 < bytes.count, bytes[i + 1] == quote {
                    value.append(quote)
                    i += 2
                    continue
                }
                i += 1
                return String(decoding: value, as: UTF8.self)
            }
            value.append(bytes[i])
            i += 1
        }
        let what = quote == 0x27 ? "string" : "quoted name"
        throw ExpressionError("unterminated \(what): missing closing \(quote == 0x27 ? "'" : "\"")",
                              ExprSpan(start, bytes.count - start))
    }
}
