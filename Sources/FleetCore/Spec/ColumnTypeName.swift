import Columnar

/// The column type names a spec may use, and their spelling back.
///
/// `int64`, `int32`, `double`, `bool`, `string`, `date`, `timestamp`, and
/// `decimal(p,s)` with precision 1...18 and scale 0...p (spaces allowed
/// around the numbers).
public enum ColumnTypeName {
    /// Every simple name, for error messages and suggestions.
    public static let simpleNames = ["int64", "int32", "double", "bool", "string", "date", "timestamp"]

    /// The `ColumnType` a spec's type name stands for, or a message saying
    /// why the name is not one.
    public static func parse(_ text: String) -> Result<ColumnType, TypeNameError> {
        let name = text.trimmingSpaces()
        switch name {
        case "int64": return .success(.int64)
        case "int32": return .success(.int32)
        case "double": return .success(.double)
        case "bool": return .success(.bool)
        case "string": return .success(.string)
        case "date": return .success(.date)
        case "timestamp": return .success(.timestamp)
        default: break
        }
        if name.hasPrefix("decimal") {
            let rest = name.dropFirst("decimal".count).trimmingSpaces()
            guard rest.hasPrefix("("), rest.hasSuffix(")") else {
                return .failure(TypeNameError("decimal needs a precision and scale, as in decimal(15,2)"))
            }
            let parts = rest.dropFirst().dropLast().split(separator: ",", omittingEmptySubsequences: false)
            guard parts.count == 2,
                  let p = Int(String(parts[0]).trimmingSpaces()),
                  let s = Int(String(parts[1]).trimmingSpaces()) else {
                return .failure(TypeNameError("decimal needs a precision and scale, as in decimal(15,2)"))
            }
            guard (1...18).contains(p) else {
                return .failure(TypeNameError("decimal precision must be 1 to 18, not \(p)"))
            }
            guard (0...p).contains(s) else {
                return .failure(TypeNameError("decimal scale must be 0 to the precision \(p), not \(s)"))
            }
            return .success(.decimal(precision: p, scale: s))
        }
        var message = "unknown column type '\(name)'"
        if let near = suggestion(for: name, among: simpleNames + ["decimal"]) {
            message += "; did you mean '\(near == "decimal" ? "decimal(p,s)" : near)'?"
        } else {
            message += "; expected one of \(simpleNames.joined(separator: ", ")) or decimal(p,s)"
        }
        return .failure(TypeNameError(message))
    }
}

/// Why a type name was refused; `message` is ready to show.
public struct TypeNameError: Error, Sendable, Hashable {
    public var message: String
    public init(_ message: String) { self.message = message }
}

extension ColumnType {
    /// Whether arithmetic aggregates (sum, avg) apply.
    var isNumeric: Bool {
        switch self {
        case .int64, .int32, .double, .decimal: return true
        case .bool, .string, .date, .timestamp: return false
        }
    }
}

extension StringProtocol {
    func trimmingSpaces() -> String {
        var s = Substring(self)
        while let c = s.first, c == " " || c == "\t" { s = s.dropFirst() }
        while let c = s.last, c == " " || c == "\t" { s = s.dropLast() }
        return String(s)
    }
}
