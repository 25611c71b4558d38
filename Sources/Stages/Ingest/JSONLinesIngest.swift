#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Columnar

/// The JSON Lines side of `ingest`: one object per line, fields by name.
///
/// A missing field or `null` is null; a string, number or `true`/`false` is
/// read as its text by the column's parser (so a number goes into a decimal
/// column exactly from its digits, never through a Double, and dates come
/// as strings). An empty string is null in a non-string column. A nested
/// object or array in a declared field, a duplicate field, invalid JSON, and
/// (unless `extraColumns` is `.ignore`) an undeclared field quarantine the row.
struct JSONLinesIngest {
    let run: IngestRun
    let source: IngestSource
    let shard: Shard
    let options: IngestOptions

    struct Reject: Error {
        var column: String?
        var message: String
    }

    func parse() throws {
        let start = shard.byteRange?.lowerBound ?? 0
        let end = shard.byteRange?.upperBound ?? Int64.max
        var line = shard.firstLine
        let reader = try BlockReader(path: shard.path, start: start, limit: end, blockBytes: options.readBlockBytes)
        if start == 0 {
            while !reader.eof && reader.count < 3 { try reader.refill() }
            reader.pos = CSVIngest.bomLength(reader.buffer, reader.count)
        }
        var parser = JSONObjectParser(columns: source.columns, ignoreExtra: source.extraColumns == .ignore)
        let sinks = run.sinks
        while true {
            if reader.pos >= reader.count {
                if reader.eof { break }
                try reader.refill()
                continue
            }
            if reader.offset >= end { break }
            let b = UnsafePointer(reader.buffer)
            let s = reader.pos
            let left = reader.count - s
            let nl = memchr(b + s, 10, left)
            if nl == nil && !reader.eof {
                if left >= options.maxRecordBytes {
                    try CSVIngest(run: run, source: source, shard: shard, options: options)
                        .skipLongRecord(reader, line: &line, quote: nil)
                } else {
                    try reader.refill()
                }
                continue
            }
            let lineEnd = nl.map { s + (UnsafeRawPointer($0) - UnsafeRawPointer(b + s)) } ?? reader.count
            reader.pos = nl == nil ? reader.count : lineEnd + 1
            let recordLine = line
            line += 1
            var e = lineEnd
            if e > s && b[e - 1] == 13 { e -= 1 }
            // Blank (or all-space) lines are not records.
            var k = s
            while k < e && (b[k] == 32 || b[k] == 9) { k += 1 }
            if k == e { continue }
            run.read()
            let raw = UnsafeRawBufferPointer(start: b + s, count: e - s)
            do {
                try parser.parse(b, from: s, to: e, line: recordLine, sinks: sinks)
            } catch let r as Reject {
                try run.reject(line: recordLine, column: r.column, reason: "line \(recordLine)" + (r.column.map { ", column \($0)" } ?? "") + ": " + r.message, raw: raw)
                continue
            }
            try run.commitRow(line: recordLine)
        }
    }
}

/// Parses one JSON object into the sinks (one value, or a null, per column).
struct JSONObjectParser {
    let names: [[UInt8]]
    let fields: [Field]
    let ignoreExtra: Bool
    var seen: [Bool]
    var key: [UInt8] = []
    var value: [UInt8] = []

    init(columns: [Field], ignoreExtra: Bool) {
        names = columns.map { Array($0.name.utf8) }
        fields = columns
        self.ignoreExtra = ignoreExtra
        seen = Array(repeating: false, count: columns.count)
    }

    typealias Reject = JSONLinesIngest.Reject

    private static func invalid(_ what: String, at i: Int, _ s: Int) -> Reject {
        Reject(column: nil, message: "invalid JSON: \(what) at byte \(i - s + 1)")
    }

    @inline(__always)
    private func skipSpace(_ b: UnsafePointer<UInt8>, _ i: inout Int, _ e: Int) {
        while i < e && (b[i] == 32 || b[i] == 9 || b[i] == 13 || b[i] == 10) { i += 1 }
    }

    mutating func parse(_ b: UnsafePointer<UInt8>, from s: Int, to e: Int, line: Int64, sinks: UnsafeMutablePointer<ColumnSink>) throws {
        // A rejected row's values are undone by IngestRun.reject.
        for c in seen.indices { seen[c] = false }
        try parseObject(b, from: s, to: e, sinks: sinks)
    }

    private mutating func parseObject(_ b: UnsafePointer<UInt8>, from s: Int, to e: Int, sinks: UnsafeMutablePointer<ColumnSink>) throws {
        var i = s
        skipSpace(b, &i, e)
        guard i < e, b[i] == UInt8(ascii: "{") else {
            throw Reject(column: nil, message: "not a JSON object (each line must hold one {...})")
        }
        i += 1
        skipSpace(b, &i, e)
        if i < e && b[i] == UInt8(ascii: "}") {
            i += 1
        } else {
            while true {
                skipSpace(b, &i, e)
                guard i < e, b[i] == UInt8(ascii: "\"") else { throw Self.invalid("expected a field name", at: i, s) }
                try readString(b, &i, e, s, into: &key)
                skipSpace(b, &i, e)
                guard i < e, b[i] == UInt8(ascii: ":") else { throw Self.invalid("expected ':'", at: i, s) }
                i += 1
                skipSpace(b, &i, e)
                let column = names.firstIndex(of: key)
                let keyText = String(decoding: key, as: UTF8.self)
                guard let c = column else {
                    guard ignoreExtra else {
                        throw Reject(column: nil, message: "field \(keyText) is not a declared column (declare it, or set extra columns to ignore)")
                    }
                    try skipValue(b, &i, e, s)
                    if try endOfMember(b, &i, e, s) { break }
                    continue
                }
                guard !seen[c] else { throw Reject(column: keyText, message: "the field appears twice in the object") }
                let field = fields[c]
                guard i < e else { throw Self.invalid("expected a value", at: i, s) }
                var failure: FieldFailure?
                var shown: (Int, Int)? = nil
                switch b[i] {
                case UInt8(ascii: "\""):
                    try readString(b, &i, e, s, into: &value)
                    if value.isEmpty && !sinks[c].isString {
                        failure = sinks[c].appendNull()
                    } else {
                        failure = value.withUnsafeBufferPointer { sinks[c].append($0.baseAddress!, $0.count) }
                    }
                case UInt8(ascii: "{"), UInt8(ascii: "["):
                    throw Reject(column: keyText, message: "a nested \(b[i] == UInt8(ascii: "{") ? "object" : "array") is not a \(field.type) value")
                case UInt8(ascii: "n"):
                    try literal("null", b, &i, e, s)
                    failure = sinks[c].appendNull()
                case UInt8(ascii: "t"), UInt8(ascii: "f"):
                    let v0 = i
                    try literal(b[i] == UInt8(ascii: "t") ? "true" : "false", b, &i, e, s)
                    shown = (v0, i)
                    failure = sinks[c].append(b + v0, i - v0)
                default:
                    let v0 = i
                    try number(b, &i, e, s)
                    shown = (v0, i)
                    failure = sinks[c].append(b + v0, i - v0)
                }
                if let failure {
                    if let (a, z) = shown {
                        throw Reject(column: keyText, message: Self.message(field, failure, b + a, z - a))
                    }
                    let text = value
                    throw Reject(column: keyText, message: text.withUnsafeBufferPointer { Self.message(field, failure, $0.baseAddress!, $0.count) })
                }
                seen[c] = true
                if try endOfMember(b, &i, e, s) { break }
            }
        }
        skipSpace(b, &i, e)
        guard i == e else { throw Self.invalid("text after the object", at: i, s) }
        for c in seen.indices where !seen[c] {
            if sinks[c].appendNull() != nil {
                throw Reject(column: fields[c].name, message: "null in a non-nullable column (the field is missing)")
            }
            seen[c] = true
        }
    }

    /// The reason text without its `line N, column C: ` head.
    private static func message(_ field: Field, _ failure: FieldFailure, _ p: UnsafePointer<UInt8>, _ n: Int) -> String {
        let full = Reasons.field(line: 0, field: field, failure: failure, p, n)
        let head = "line 0, column \(field.name): "
        return String(full.dropFirst(head.count))
    }

    /// After a value: consumes ',' (false: another member follows) or '}' (true).
    private func endOfMember(_ b: UnsafePointer<UInt8>, _ i: inout Int, _ e: Int, _ s: Int) throws -> Bool {
        skipSpace(b, &i, e)
        guard i < e else { throw Self.invalid("the object is not closed", at: i, s) }
        if b[i] == UInt8(ascii: ",") { i += 1; return false }
        guard b[i] == UInt8(ascii: "}") else { throw Self.invalid("expected ',' or '}'", at: i, s) }
        i += 1
        return true
    }

    private func literal(_ word: StaticString, _ b: UnsafePointer<UInt8>, _ i: inout Int, _ e: Int, _ s: Int) throws {
        let n = word.utf8CodeUnitCount
        guard e - i >= n, memcmp(b + i, word.utf8Start, n) == 0 else { throw Self.invalid("unknown literal", at: i, s) }
        i += n
    }

    /// JSON number grammar: -?(0|[1-9]d*)(.d+)?([eE][+-]?d+)?
    private func number(_ b: UnsafePointer<UInt8>, _ i: inout Int, _ e: Int, _ s: Int) throws {
        let v0 = i
        if i < e && b[i] == UInt8(ascii: "-") { i += 1 }
        let d0 = i
        while i < e && ValueParsers.isDigit(b[i]) { i += 1 }
        guard i > d0, !(b[d0] == UInt8(ascii: "0") && i - d0 > 1) else { throw Self.invalid("bad value", at: v0, s) }
        if i < e && b[i] == UInt8(ascii: ".") {
            i += 1
            let f0 = i
            while i < e && ValueParsers.isDigit(b[i]) { i += 1 }
            guard i > f0 else { throw Self.invalid("bad number", at: v0, s) }
        }
        if i < e && (b[i] == UInt8(ascii: "e") || b[i] == UInt8(ascii: "E")) {
            i += 1
            if i < e && (b[i] == UInt8(ascii: "+") || b[i] == UInt8(ascii: "-")) { i += 1 }
            let x0 = i
            while i < e && ValueParsers.isDigit(b[i]) { i += 1 }
            guard i > x0 else { throw Self.invalid("bad number", at: v0, s) }
        }
    }

    /// Skips any value, nested ones included (for ignored fields).
    private func skipValue(_ b: UnsafePointer<UInt8>, _ i: inout Int, _ e: Int, _ s: Int) throws {
        var depth = 0
        var scratch = [UInt8]()
        repeat {
            skipSpace(b, &i, e)
            guard i < e else { throw Self.invalid("unexpected end of line", at: i, s) }
            switch b[i] {
            case UInt8(ascii: "{"), UInt8(ascii: "["): depth += 1; i += 1
            case UInt8(ascii: "}"), UInt8(ascii: "]"): depth -= 1; i += 1
            case UInt8(ascii: "\""): try readString(b, &i, e, s, into: &scratch)
            case UInt8(ascii: ","), UInt8(ascii: ":"): guard depth > 0 else { throw Self.invalid("expected a value", at: i, s) }; i += 1
            case UInt8(ascii: "t"): try literal("true", b, &i, e, s)
            case UInt8(ascii: "f"): try literal("false", b, &i, e, s)
            case UInt8(ascii: "n"): try literal("null", b, &i, e, s)
            default: try number(b, &i, e, s)
            }
        } while depth > 0
    }

    /// Reads a string at `b[i] == '"'`, unescaped, into `out`.
    private func readString(_ b: UnsafePointer<UInt8>, _ i: inout Int, _ e: Int, _ s: Int, into out: inout [UInt8]) throws {
        out.removeAll(keepingCapacity: true)
        i += 1
        var run = i
        while i < e {
            let c = b[i]
            if c == UInt8(ascii: "\"") {
                out.append(contentsOf: UnsafeBufferPointer(start: b + run, count: i - run))
                i += 1
                return
            }
            if c != UInt8(ascii: "\\") { i += 1; continue }
            out.append(contentsOf: UnsafeBufferPointer(start: b + run, count: i - run))
            guard i + 1 < e else { break }
            let x = b[i + 1]
            i += 2
            switch x {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(x)
            case UInt8(ascii: "b"): out.append(8)
            case UInt8(ascii: "f"): out.append(12)
            case UInt8(ascii: "n"): out.append(10)
            case UInt8(ascii: "r"): out.append(13)
            case UInt8(ascii: "t"): out.append(9)
            case UInt8(ascii: "u"):
                guard var u = hex4(b, i, e) else { throw Self.invalid("bad \\u escape", at: i - 2, s) }
                i += 4
                if u >= 0xD800 && u < 0xDC00 {
                    guard i + 6 <= e, b[i] == UInt8(ascii: "\\"), b[i + 1] == UInt8(ascii: "u"),
                          let lo = hex4(b, i + 2, e), lo >= 0xDC00, lo < 0xE000
                    else { throw Self.invalid("unpaired surrogate in \\u escape", at: i - 6, s) }
                    u = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00)
                    i += 6
                } else if u >= 0xDC00 && u < 0xE000 {
                    throw Self.invalid("unpaired surrogate in \\u escape", at: i - 6, s)
                }
                out.append(contentsOf: String(Character(Unicode.Scalar(u)!)).utf8)
            default:
                throw Self.invalid("bad escape", at: i - 2, s)
            }
            run = i
        }
        throw Self.invalid("unterminated string", at: e, s)
    }

    private func hex4(_ b: UnsafePointer<UInt8>, _ i: Int, _ e: Int) -> UInt32? {
        guard i + 4 <= e else { return nil }
        var v: UInt32 = 0
        for k in 0..<4 {
            let c = b[i + k]
            let d: UInt8
            switch c {
            case 0x30...0x39: d = c - 0x30
            case 0x41...0x46: d = c - 0x37
            case 0x61...0x66: d = c - 0x57
            default: return nil
            }
            v = v << 4 | UInt32(d)
        }
        return v
    }
}
