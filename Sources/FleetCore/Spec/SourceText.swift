import Yams

/// The spec's text by lines, to map a position inside a YAML string (an
/// expression error's offset) back to the file's line and column.
struct SourceText {
    let lines: [[Unicode.Scalar]]

    init(_ yaml: String) {
        lines = yaml.split(separator: "\n", omittingEmptySubsequences: false).map { line in
            var scalars = Array(line.unicodeScalars)
            if scalars.last == "\r" { scalars.removeLast() }
            return scalars
        }
    }

    /// Where the character at `utf8Offset` of a scalar's value was written.
    /// Exact for plain and quoted strings on one line, for escapes in
    /// quoted strings and for literal blocks (`|`); line folds count as one
    /// character, as YAML reads them.
    func location(inScalar node: Node, utf8Offset: Int) -> SpecLocation {
        guard case .scalar(let scalar) = node, let mark = node.mark else { return node.location }
        let value = scalar.string
        // The offset as a count of Unicode scalars (libyaml's column unit).
        let clamped = max(0, min(utf8Offset, value.utf8.count))
        let utf8Index = value.utf8.index(value.utf8.startIndex, offsetBy: clamped)
        let index = utf8Index.samePosition(in: value.unicodeScalars)
            ?? value.unicodeScalars.index(before: utf8Index)
        let target = value.unicodeScalars.distance(from: value.unicodeScalars.startIndex, to: index)

        switch scalar.style {
        case .literal, .folded:
            return blockLocation(indicatorLine: mark.line - 1, target: target)
        case .singleQuoted, .doubleQuoted:
            return flowLocation(line: mark.line - 1, column: mark.column, target: target, style: scalar.style)
        default:
            return flowLocation(line: mark.line - 1, column: mark.column - 1, target: target, style: scalar.style)
        }
    }

    /// Walks a plain or quoted scalar from its first character (0-based
    /// line and column), counting the characters it reads as.
    private func flowLocation(line startLine: Int, column startColumn: Int, target: Int,
                              style: Node.Scalar.Style) -> SpecLocation {
        var line = startLine, column = startColumn, read = 0
        while read < target, line < lines.count {
            let current = lines[line]
            if column >= current.count {
                // A line break folds into one space; the next line's indent is skipped.
                line += 1
                column = 0
                while line < lines.count, column < lines[line].count, lines[line][column] == " " || lines[line][column] == "\t" {
                    column += 1
                }
                read += 1
                continue
            }
            let c = current[column]
            if style == .singleQuoted, c == "'", column + 1 < current.count, current[column + 1] == "'" {
                column += 2
            } else if style == .doubleQuoted, c == "\\", column + 1 < current.count {
                switch current[column + 1] {
                case "x": column += 4
                case "u": column += 6
                case "U": column += 10
                default: column += 2
                }
            } else {
                column += 1
            }
            read += 1
        }
        return SpecLocation(line: line + 1, column: column + 1)
    }

    /// Finds a character of a `|` or `>` block: its lines follow the
    /// indicator's line, all indented alike.
    private func blockLocation(indicatorLine: Int, target: Int) -> SpecLocation {
        var line = indicatorLine + 1
        var indent = 0
        if let first = lines[min(line, lines.count)...].first(where: { $0.contains { $0 != " " } }) {
            indent = first.prefix { $0 == " " }.count
        }
        var remaining = target
        while line < lines.count {
            let length = max(0, lines[line].count - indent)
            if remaining <= length { return SpecLocation(line: line + 1, column: indent + remaining + 1) }
            remaining -= length + 1
            line += 1
        }
        return SpecLocation(line: indicatorLine + 1, column: 1)
    }
}
