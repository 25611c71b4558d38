/// A problem with an expression: a parse or type error found before the run,
/// or a runtime error (overflow, bad cast, invalid date) found while
/// evaluating one batch.
///
/// `offset` and `length` are a 0-based UTF-8 byte range inside the
/// expression text, so a caller that knows where the text sits in a YAML
/// file can turn them into line:column. `row` is set for runtime errors: the
/// index of the offending row inside the evaluated batch.
public struct ExpressionError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What is wrong, without the position (`expected ')'`).
    public var message: String
    /// 0-based UTF-8 byte offset of the offending part of the expression.
    public var offset: Int
    /// Length in UTF-8 bytes (0 at the end of the text).
    public var length: Int
    /// The batch row that failed, for runtime errors; nil for parse and type errors.
    public var row: Int?

    public init(_ message: String, offset: Int, length: Int, row: Int? = nil) {
        self.message = message
        self.offset = offset
        self.length = length
        self.row = row
    }

    init(_ message: String, _ span: ExprSpan, row: Int? = nil) {
        self.init(message, offset: span.offset, length: span.length, row: row)
    }

    /// `expected ')' at 14`, or `cannot compare date with string at 0…12`
    /// for a longer range (end exclusive), plus `, row 7` for runtime errors.
    public var description: String {
        let at = length <= 1 ? "at \(offset)" : "at \(offset)…\(offset + length)"
        return "\(message) \(at)" + (row.map { ", row \($0)" } ?? "")
    }
}

/// A byte range inside the expression text.
struct ExprSpan: Sendable, Hashable {
    var offset: Int
    var length: Int

    var end: Int { offset + length }

    init(_ offset: Int, _ length: Int) {
        self.offset = offset
        self.length = length
    }

    /// The smallest span covering both.
    func to(_ other: ExprSpan) -> ExprSpan {
        let start = Swift.min(offset, other.offset)
        return ExprSpan(start, Swift.max(end, other.end) - start)
    }
}

extension ExpressionError {
    /// Closest candidate by edit distance (case-insensitive), if close enough to
    /// be a likely typo: used for "did you mean" hints (here for columns,
    /// functions and types; the spec checker may use it for keys).
    public static func closest(to name: String, among candidates: [String]) -> String? {
        let target = Array(name.lowercased().unicodeScalars)
        var best: (String, Int)?
        for candidate in candidates {
            let d = editDistance(target, Array(candidate.lowercased().unicodeScalars))
            if d <= Swift.max(2, target.count / 3), best.map({ d < $0.1 }) ?? true {
                best = (candidate, d)
            }
        }
        return best?.0
    }
}

/// Optimal string alignment distance: insertions, deletions, substitutions
/// and adjacent transpositions ("lenght" -> "length") each cost one.
private func editDistance(_ a: [Unicode.Scalar], _ b: [Unicode.Scalar]) -> Int {
    if a.isEmpty { return b.count }
    if b.isEmpty { return a.count }
    var d = [[Int]](repeating: [Int](repeating: 0, count: b.count + 1), count: a.count + 1)
    for i in 0...a.count { d[i][0] = i }
    for j in 0...b.count { d[0][j] = j }
    for i in 1...a.count {
        for j in 1...b.count {
            let cost = a[i - 1] == b[j - 1] ? 0 : 1
            d[i][j] = Swift.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost)
            if i > 1, j > 1, a[i - 1] == b[j - 2], a[i - 2] == b[j - 1] {
                d[i][j] = Swift.min(d[i][j], d[i - 2][j - 2] + 1)
            }
        }
    }
    return d[a.count][b.count]
}
