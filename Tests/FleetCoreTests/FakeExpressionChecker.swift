import Columnar
@testable import FleetCore

/// An error with a place inside the expression, as the real checker's will be.
struct FakeDiagnostic: ExpressionDiagnostic {
    var message: String
    var utf8Offset: Int
}

/// Stands in for the expression language's checker: finds identifiers,
/// refuses unknown ones at their byte offset, and guesses a result type
/// (comparisons are bool, `*` gives decimal(18,4), a lone column its type,
/// `upper(...)` a string, anything else int64).
struct FakeChecker: ExpressionChecker {
    static let keywords: Set<String> = ["date", "and", "or", "not", "true", "false", "upper", "lower"]

    func check(_ text: String, schema: Schema) throws -> ColumnType {
        let bytes = Array(text.utf8)
        var i = 0
        var identifiers: [String] = []
        while i < bytes.count {
            let b = bytes[i]
            if b == UInt8(ascii: "'") {
                i += 1
                while i < bytes.count, bytes[i] != UInt8(ascii: "'") { i += 1 }
                i += 1
            } else if isIdentifierStart(b) {
                let start = i
                while i < bytes.count, isIdentifierStart(bytes[i]) || (bytes[i] >= 48 && bytes[i] <= 57) { i += 1 }
                let name = String(decoding: bytes[start..<i], as: UTF8.self)
                if !Self.keywords.contains(name) {
                    guard schema.index(of: name) != nil else {
                        throw FakeDiagnostic(message: "unknown column '\(name)'", utf8Offset: start)
                    }
                    identifiers.append(name)
                }
            } else {
                i += 1
            }
        }
        if ["<", ">", "=", " and ", " or "].contains(where: text.contains) { return .bool }
        if text.contains("*") { return .decimal(precision: 18, scale: 4) }
        if text.hasPrefix("upper(") { return .string }
        if identifiers.count == 1, text == identifiers[0], let i = schema.index(of: text) { return schema.fields[i].type }
        return .int64
    }

    private func isIdentifierStart(_ b: UInt8) -> Bool {
        (b >= 65 && b <= 90) || (b >= 97 && b <= 122) || b == 95
    }
}
