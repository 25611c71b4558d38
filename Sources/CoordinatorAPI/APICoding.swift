import Foundation

/// The one JSON form of the coordinator's HTTP API, shared by the server and
/// the `bis` client: ISO-8601 dates in UTC with milliseconds
/// (`2026-11-26T18:15:00.000Z`), sorted keys so that output diffs and greps
/// well. Decoding also accepts dates without fractions.
public enum APICoding {
    public static func encoder(pretty: Bool = false) -> JSONEncoder {
        let e = JSONEncoder()
        e.outputFormatting = pretty ? [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes] : [.sortedKeys, .withoutEscapingSlashes]
        e.dateEncodingStrategy = .custom { date, encoder in
            var c = encoder.singleValueContainer()
            try c.encode(date.formatted(withFractions))
        }
        return e
    }

    public static func decoder() -> JSONDecoder {
        let d = JSONDecoder()
        d.dateDecodingStrategy = .custom { decoder in
            let c = try decoder.singleValueContainer()
            let text = try c.decode(String.self)
            if let date = try? withFractions.parse(text) { return date }
            if let date = try? wholeSeconds.parse(text) { return date }
            throw DecodingError.dataCorruptedError(in: c, debugDescription: "'\(text)' is not an ISO-8601 date such as 2026-11-26T18:15:00Z")
        }
        return d
    }

    private static let withFractions = Date.ISO8601FormatStyle(includingFractionalSeconds: true)
    private static let wholeSeconds = Date.ISO8601FormatStyle()

    /// The body of every error response: `{"error": "..."}`.
    public struct ErrorBody: Codable, Sendable, Equatable {
        public var error: String
        public init(error: String) { self.error = error }
    }

    /// Says in words what is wrong with a JSON body, naming the field.
    public static func explain(_ error: any Error, decoding type: String) -> String {
        guard let error = error as? DecodingError else { return "the \(type) body is not valid JSON: \(error)" }
        func field(_ path: [any CodingKey], _ key: (any CodingKey)? = nil) -> String {
            let names = (path + (key.map { [$0] } ?? [])).map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }
            return names.isEmpty ? "the body" : "'" + names.joined(separator: ".").replacingOccurrences(of: ".[", with: "[") + "'"
        }
        switch error {
        case .keyNotFound(let key, let ctx):
            return "the \(type) body lacks the field \(field(ctx.codingPath, key))"
        case .typeMismatch(let expected, let ctx):
            return "in the \(type) body, \(field(ctx.codingPath)) should be \(describe(expected))"
        case .valueNotFound(let expected, let ctx):
            return "in the \(type) body, \(field(ctx.codingPath)) is null; it should be \(describe(expected))"
        case .dataCorrupted(let ctx):
            if ctx.codingPath.isEmpty {
                return "the \(type) body is not valid JSON"
                    + ((ctx.underlyingError.map { ": \($0.localizedDescription)" }) ?? "")
            }
            return "in the \(type) body, \(field(ctx.codingPath)): \(ctx.debugDescription)"
        @unknown default:
            return "the \(type) body is not valid: \(error)"
        }
    }

    private static func describe(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: return "a string"
        case is Int.Type, is Int32.Type, is Int64.Type: return "a whole number"
        case is Double.Type: return "a number"
        case is Bool.Type: return "true or false"
        case is [String].Type: return "a list of strings"
        default:
            let name = "\(type)"
            if name.hasPrefix("Array") { return "a list" }
            if name.hasPrefix("Dictionary") { return "an object" }
            return "a \(name)"
        }
    }
}
