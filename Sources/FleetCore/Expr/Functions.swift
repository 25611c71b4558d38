import Columnar

/// The built-in functions, each a loop over its argument columns.
///
/// Strings are UTF-8 and positions count Unicode scalars (code points), as
/// DuckDB's `length` and `substr` do: `length('é')` is 1 for the composed
/// form and 2 for e + combining accent.
///
/// - `lower`, `upper`: Unicode case mapping (ASCII fast path).
/// - `trim`: removes leading and trailing spaces (U+0020 only, as DuckDB).
/// - `length(s)`: int64 count of code points.
/// - `substr(s, start[, len])`: 1-based; `start` 0 behaves as position 1 with
///   one less character taken; a negative `start` counts from the end
///   (-1 is the last character); a negative `len` takes the characters before
///   `start`; out-of-range parts give an empty string, never an error.
/// - `coalesce(a, …)`: the first non-null argument (all are evaluated).
/// - `abs(x)`: int64 overflow is an error.
/// - `round(x[, digits])`: half away from zero. For a decimal, the result
///   has scale `digits` (precision kept); for ints only negative digits change
///   anything; doubles round their exact binary value.
/// - `year`, `month`, `day`: int64 parts of a date or timestamp (UTC).
/// - `date_trunc('year'|'month'|'day', d)`: a timestamp (as DuckDB returns,
///   also for a date argument) at the start of the period, UTC.
extension ExprEvaluator {
    func call(_ node: BoundExpr, _ function: ExprFunction, _ args: [Column]) throws(ExpressionError) -> Column {
        switch function {
        case .lower: return mapCase(args[0], upper: false)
        case .upper: return mapCase(args[0], upper: true)
        case .trim:
            return mapStrings(args[0]) { b in
                var s = b
                while s.first == 0x20 { s.removeFirst() }
                while s.last == 0x20 { s.removeLast() }
                return s
            }
        case .length:
            guard case .bytes(let s) = args[0].values else { preconditionFailure("length") }
            var out = [Int64](repeating: 0, count: rows)
            s.bytes.withUnsafeBufferPointer { bytes in
                for i in 0..<rows {
                    var count: Int64 = 0
                    for k in s.offsets[i]..<s.offsets[i + 1] where bytes[k] & 0xC0 != 0x80 { count += 1 }
                    out[i] = count
                }
            }
            return Kernel.column(.int64, .int64(out), args[0].validity)
        case .substr:
            return substr(args)
        case .coalesce:
            var choice = [Int](repeating: -1, count: rows)
            for i in 0..<rows {
                for (k, a) in args.enumerated() where !a.isNull(i) {
                    choice[i] = k
                    break
                }
            }
            return Kernel.pick(node.type, args, choice, Array(0..<rows))
        case .abs:
            switch args[0].values {
            case .double(let v): return Kernel.column(node.type, .double(v.map { Swift.abs($0) }), args[0].validity)
            case .int64(let v):
                var out = [Int64](repeating: 0, count: rows)
                for i in 0..<rows {
                    guard v[i] != Int64.min else { throw failure("overflow: abs(\(v[i])) does not fit int64", node, row: i) }
                    out[i] = Swift.abs(v[i])
                }
                return Kernel.column(node.type, .int64(out), args[0].validity)
            default: preconditionFailure("abs over \(args[0].type)")
            }
        case .round:
            return try round(node, args)
        case .year, .month, .day:
            var out = [Int64](repeating: 0, count: rows)
            let valid = args[0].validity
            forEachDay(args[0]) { i, days in
                let c = CalendarMath.civil(days)
                out[i] = function == .year ? c.year : function == .month ? c.month : c.day
            }
            return Kernel.column(.int64, .int64(out), valid)
        case .dateTrunc:
            guard case .bytes(let partColumn) = args[0].values else { preconditionFailure("date_trunc") }
            let part = rows > 0 ? partColumn.string(at: 0) : "day"
            var out = [Int64](repeating: 0, count: rows)
            var bad: Int?
            forEachDay(args[1]) { i, days in
                var d = days
                if part != "day" {
                    let c = CalendarMath.civil(days)
                    d = CalendarMath.days(year: c.year, month: part == "year" ? 1 : c.month, day: 1)
                }
                let (r, overflow) = d.multipliedReportingOverflow(by: CalendarMath.microsPerDay)
                if overflow, bad == nil, !args[1].isNull(i) { bad = i }
                out[i] = overflow ? 0 : r
            }
            if let bad { throw failure("date out of range for timestamp", node, row: bad) }
            return Kernel.column(.timestamp, .int64(out), args[1].validity)
        }
    }

    /// Calls `body(row, days since epoch)` for each row of a date or timestamp column.
    private func forEachDay(_ c: Column, _ body: (Int, Int64) -> Void) {
        switch c.values {
        case .int32(let v): for i in 0..<rows { body(i, Int64(v[i])) }
        case .int64(let v): for i in 0..<rows { body(i, CalendarMath.day(ofMicros: v[i])) }
        default: preconditionFailure("date part of \(c.type)")
        }
    }

    private func mapStrings(_ c: Column, _ f: (ArraySlice<UInt8>) -> ArraySlice<UInt8>) -> Column {
        guard case .bytes(let s) = c.values else { preconditionFailure("string function over \(c.type)") }
        var out = StringColumn()
        out.reserveCapacity(values: rows, bytes: s.bytes.count)
        for i in 0..<rows { out.append(bytes: f(s.bytes(at: i))) }
        return Kernel.column(.string, .bytes(out), c.validity)
    }

    /// upper/lower: ASCII bytes flipped in one copy of the buffer; values
    /// holding other characters go through Swift's Unicode case mapping.
    private func mapCase(_ c: Column, upper: Bool) -> Column {
        guard case .bytes(let s) = c.values else { preconditionFailure("case mapping over \(c.type)") }
        if !s.bytes.contains(where: { $0 >= 0x80 }) {
            var bytes = s.bytes
            let (lo, hi): (UInt8, UInt8) = upper ? (0x61, 0x7A) : (0x41, 0x5A)
            bytes.withUnsafeMutableBufferPointer { b in
                for k in b.indices where b[k] >= lo && b[k] <= hi { b[k] ^= 0x20 }
            }
            // Safe: same offsets, same byte count.
            return Kernel.column(.string, .bytes(try! StringColumn(offsets: s.offsets, bytes: bytes)), c.validity)
        }
        return mapStrings(c) { caseMapped($0, upper: upper) }
    }

    private func substr(_ args: [Column]) -> Column {
        guard case .bytes(let s) = args[0].values, case .int64(let startArgs) = args[1].values else {
            preconditionFailure("substr")
        }
        var lengths: [Int64]?
        if args.count == 3, case .int64(let l) = args[2].values { lengths = l }
        var validity = Kernel.combine(args[0].validity, args[1].validity)
        if args.count == 3 { validity = Kernel.combine(validity, args[2].validity) }
        var out = StringColumn()
        out.reserveCapacity(values: rows, bytes: s.bytes.count)
        let bound: Int64 = 1 << 40
        for i in 0..<rows {
            let bytes = s.bytes(at: i)
            // Byte offset where each code point starts.
            var starts = [Int]()
            starts.reserveCapacity(bytes.count)
            for k in bytes.indices where bytes[k] & 0xC0 != 0x80 { starts.append(k) }
            let count = Int64(starts.count)
            let start = Swift.max(-bound, Swift.min(bound, startArgs[i]))
            var begin: Int64, length = lengths.map { Swift.max(-bound, Swift.min(bound, $0[i])) }
            if start > 0 {
                begin = start - 1
            } else if start == 0 {
                begin = 0
                length = length.map { $0 - 1 }
            } else {
                begin = count + start
            }
            var end = count
            if let length {
                if length < 0 {
                    end = begin
                    begin += length
                } else {
                    end = begin + length
                }
            }
            begin = Swift.max(0, Swift.min(count, begin))
            end = Swift.max(0, Swift.min(count, end))
            if end <= begin {
                out.append(bytes: EmptyCollection())
            } else {
                let from = starts[Int(begin)]
                let to = end == count ? bytes.endIndex : starts[Int(end)]
                out.append(bytes: bytes[from..<to])
            }
        }
        return Kernel.column(.string, .bytes(out), validity)
    }

    private func round(_ node: BoundExpr, _ args: [Column]) throws(ExpressionError) -> Column {
        let x = args[0]
        guard case .int64(let d) = args[1].values else { preconditionFailure("round digits") }
        let digits = rows > 0 ? Int(d[0]) : 0
        switch x.values {
        case .double(let v):
            return Kernel.column(.double, .double(v.map { DecimalMath.roundDouble($0, digits: digits) }), x.validity)
        case .int64(let v):
            let scale = Kernel.numericScale(x.type)
            guard digits < scale else { return Kernel.column(node.type, .int64(v), x.validity) }
            let newScale = Swift.max(0, digits)
            // Round to `scale - digits` fewer digits, then pad back to the new scale.
            let drop = scale - digits, pad = newScale - digits
            var divisor: Int128 = 1
            for _ in 0..<drop { divisor *= 10 }
            var multiplier: Int128 = 1
            for _ in 0..<pad { multiplier *= 10 }
            var out = [Int64](repeating: 0, count: rows)
            let limit: Int128 = node.type == .int64 ? Int128(Int64.max)
                : Int128(DecimalMath.maxUnscaled(precision: { if case .decimal(let p, _) = node.type { return p } else { return 18 } }()))
            for i in 0..<rows {
                let r = DecimalMath.divideRounded(Int128(v[i]), by: divisor) * multiplier
                guard r <= limit, r >= -limit else {
                    if x.isNull(i) { continue }
                    throw failure("overflow: round(\(Cast.text(x, i)), \(digits)) does not fit \(node.type)", node, row: i)
                }
                out[i] = Int64(r)
            }
            return Kernel.column(node.type, .int64(out), x.validity)
        default:
            preconditionFailure("round over \(x.type)")
        }
    }
}

/// Lower- or upper-cases UTF-8: bytewise for ASCII, through Swift's Unicode
/// case mapping otherwise.
private func caseMapped(_ b: ArraySlice<UInt8>, upper: Bool) -> ArraySlice<UInt8> {
    if b.allSatisfy({ $0 < 0x80 }) {
        let (lo, hi): (UInt8, UInt8) = upper ? (0x61, 0x7A) : (0x41, 0x5A)
        return ArraySlice(b.map { $0 >= lo && $0 <= hi ? $0 ^ 0x20 : $0 })
    }
    let s = String(decoding: b, as: UTF8.self)
    return ArraySlice((upper ? s.uppercased() : s.lowercased()).utf8)
}
