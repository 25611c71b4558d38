import Columnar

/// One value that could not be converted.
public struct CastFailure: Sendable, Hashable, CustomStringConvertible {
    /// Row index inside the column.
    public var row: Int
    /// The value as text (strings as they were, numbers formatted exactly).
    public var value: String
    /// Why: "not a number", "out of range for int32", …
    public var reason: String

    public var description: String { "row \(row): '\(value)' \(reason)" }
}

/// A cast that failed for some rows, or that is not allowed at all.
public struct CastError: Error, Sendable, Hashable, CustomStringConvertible {
    public var from: ColumnType
    public var to: ColumnType
    /// Every row that failed, in row order; empty when the cast is not
    /// supported between the two types.
    public var failures: [CastFailure]

    public var description: String {
        guard !failures.isEmpty else { return "cannot cast \(from) to \(to)" }
        let shown = failures.prefix(5).map(\.description).joined(separator: "; ")
        let more = failures.count > 5 ? " and \(failures.count - 5) more" : ""
        return "cannot cast \(failures.count) value\(failures.count == 1 ? "" : "s") from \(from) to \(to): \(shown)\(more)"
    }
}

/// SQL-like conversions between column types, used by normalize's `cast`
/// step and by the expression evaluator for implicit widening.
///
/// | from → to | rule |
/// |---|---|
/// | int → decimal | exact, error beyond the precision |
/// | decimal → decimal | exact when the scale grows; rounded half away from zero when it shrinks; precision checked |
/// | decimal → int | rounded half away from zero (2.5 → 3), range checked |
/// | double → int | rounded half to even (2.5 → 2, 3.5 → 4) as DuckDB does; NaN, ±inf and out of range fail |
/// | double → decimal | rounded half away from zero from the double's exact value |
/// | int, decimal → double | nearest double |
/// | string → int | optional spaces and sign; `12.5` and `1e3` accepted and rounded like decimals |
/// | string → decimal | `-12.345`, `1.5e2`; rounded to the scale half away from zero |
/// | string → double | Swift's `Double(String)` (also `nan`, `inf`) |
/// | string → bool | true/false, t/f, yes/no, y/n, 1/0 (any case) |
/// | string → date | `YYYY-MM-DD`, or an ISO timestamp (its UTC day) |
/// | string → timestamp | ISO 8601 with `T` or space, optional fraction to µs and `Z`/`±HH:MM` (stored as UTC) |
/// | anything → string | ints; decimals exactly (`12.50`); doubles as Swift prints them; ISO dates; timestamps as `YYYY-MM-DDTHH:MM:SS[.ffffff]Z`; true/false |
/// | bool ↔ numbers | 1/0, non-zero is true |
/// | date ↔ timestamp | midnight UTC; a timestamp's UTC day (floor) |
///
/// Nulls stay null. Dates and timestamps do not convert to or from numbers.
public enum Cast {
    /// Whether `from` can be cast to `to` at all (values may still fail).
    public static func isSupported(from: ColumnType, to: ColumnType) -> Bool {
        if from == to || from == .string || to == .string { return true }
        switch (from, to) {
        case (.date, .timestamp), (.timestamp, .date): return true
        case (.date, _), (.timestamp, _), (_, .date), (_, .timestamp): return false
        default: return true
        }
    }

    /// Converts every value; throws listing every row that cannot convert.
    public static func cast(_ column: Column, to type: ColumnType) throws(CastError) -> Column {
        var failures = [CastFailure]()
        guard let result = convert(column, to: type, failures: &failures, limit: Int.max) else {
            throw CastError(from: column.type, to: type, failures: [])
        }
        guard failures.isEmpty else { throw CastError(from: column.type, to: type, failures: failures) }
        return result
    }

    /// Converts what converts: rows that fail become null and are listed, so
    /// the caller can quarantine them. Throws only when the types cannot be
    /// cast at all.
    public static func castCollectingFailures(_ column: Column, to type: ColumnType) throws(CastError)
        -> (column: Column, failures: [CastFailure])
    {
        var failures = [CastFailure]()
        guard let result = convert(column, to: type, failures: &failures, limit: Int.max) else {
            throw CastError(from: column.type, to: type, failures: [])
        }
        return (result, failures)
    }

    /// The conversion itself; nil when unsupported. Stops recording (but
    /// keeps converting, with nulls) after `limit` failures.
    static func convert(_ column: Column, to type: ColumnType, failures: inout [CastFailure], limit: Int) -> Column? {
        guard isSupported(from: column.type, to: type) else { return nil }
        if column.type == type { return column }
        var conversion = Conversion(column, limit: limit, failures: failures)
        let values: ColumnValues?
        switch type {
        case .string: values = conversion.toText()
        case .int64, .int32, .decimal: values = conversion.toInteger(type)
        case .double: values = conversion.toDouble()
        case .bool: values = conversion.toBool()
        case .date: values = conversion.toDate()
        case .timestamp: values = conversion.toTimestamp()
        }
        guard let values else { return nil }
        failures = conversion.failures
        return conversion.column(type, values)
    }

    /// One column on its way to another type: the rows still valid, and the
    /// failures so far. Each `to…` step converts every valid row and returns
    /// the new values (nil when the source storage cannot go there).
    struct Conversion {
        let source: Column
        let n: Int
        let limit: Int
        var validity: [Bool]
        var failed = false
        var failures: [CastFailure]

        init(_ source: Column, limit: Int, failures: [CastFailure]) {
            self.source = source
            n = source.count
            self.limit = limit
            validity = source.validity ?? [Bool](repeating: true, count: n)
            self.failures = failures
        }

        /// Row `row` becomes null, recorded with `reason` while under the limit.
        mutating func fail(_ row: Int, _ reason: String) {
            validity[row] = false
            failed = true
            if failures.count < limit {
                failures.append(CastFailure(row: row, value: Cast.text(source, row), reason: reason))
            }
        }

        /// The result, with a validity mask when the source had one or a row failed.
        func column(_ type: ColumnType, _ values: ColumnValues) -> Column {
            let mask: [Bool]? = (source.validity != nil || failed) ? validity : nil
            return Kernel.column(type, values, mask)
        }

        mutating func toText() -> ColumnValues {
            var out = StringColumn()
            for i in 0..<n {
                if validity[i] { out.append(Cast.text(source, i)) } else { out.append(bytes: EmptyCollection()) }
            }
            return .bytes(out)
        }

        /// int64, int32 and decimal: unscaled integers, range checked.
        mutating func toInteger(_ type: ColumnType) -> ColumnValues {
            let scale: Int, precision: Int, range: ClosedRange<Int64>
            switch type {
            case .decimal(let p, let s): (precision, scale, range) = (p, s, -DecimalMath.maxUnscaled(precision: p)...DecimalMath.maxUnscaled(precision: p))
            case .int32: (precision, scale, range) = (10, 0, Int64(Int32.min)...Int64(Int32.max))
            default: (precision, scale, range) = (19, 0, Int64.min...Int64.max)
            }
            var out = [Int64](repeating: 0, count: n)
            let rangeText = "out of range for \(type)"
            switch source.values {
            case .int64(let v):
                let fromScale: Int
                if case .decimal(_, let s) = source.type { fromScale = s } else { fromScale = 0 }
                for i in 0..<n where validity[i] {
                    guard let r = DecimalMath.rescale(v[i], from: fromScale, to: scale), range.contains(r) else {
                        fail(i, rangeText)
                        continue
                    }
                    out[i] = r
                }
            case .int32(let v):
                for i in 0..<n where validity[i] {
                    guard let r = DecimalMath.rescale(Int64(v[i]), from: 0, to: scale), range.contains(r) else {
                        fail(i, rangeText)
                        continue
                    }
                    out[i] = r
                }
            case .double(let v):
                integers(fromDoubles: v, type, scale: scale, precision: precision, range: range, into: &out)
            case .bool(let v):
                for i in 0..<n where validity[i] {
                    out[i] = v[i] ? DecimalMath.pow10[scale] : 0
                    if !range.contains(out[i]) { fail(i, rangeText) }
                }
            case .bytes(let s):
                integers(fromText: s, type, scale: scale, precision: precision, range: range, into: &out)
            }
            if type == .int32 { return .int32(out.map { Int32(truncatingIfNeeded: $0) }) }
            return .int64(out)
        }

        /// Integer targets round half to even, as DuckDB's cast does;
        /// decimals round half away from zero from the double's exact value.
        private mutating func integers(fromDoubles v: [Double], _ type: ColumnType, scale: Int, precision: Int,
                                       range: ClosedRange<Int64>, into out: inout [Int64]) {
            let rangeText = "out of range for \(type)"
            for i in 0..<n where validity[i] {
                let d = v[i]
                if type == .int64 || type == .int32 {
                    let r = d.rounded(.toNearestOrEven)
                    guard r.isFinite, r >= -9.223372036854775808e18, r < 9.223372036854775808e18,
                          range.contains(Int64(r)) else {
                        fail(i, d.isFinite ? rangeText : "is not a finite number")
                        continue
                    }
                    out[i] = Int64(r)
                    continue
                }
                guard let r = DecimalMath.fromDouble(d, scale: scale, precision: precision) else {
                    fail(i, d.isFinite ? rangeText : "is not a finite number")
                    continue
                }
                out[i] = r
            }
        }

        /// Plain integers exactly; anything else through the decimal parser.
        private mutating func integers(fromText s: StringColumn, _ type: ColumnType, scale: Int, precision: Int,
                                       range: ClosedRange<Int64>, into out: inout [Int64]) {
            let rangeText = "out of range for \(type)"
            for i in 0..<n where validity[i] {
                let b = s.bytes(at: i)
                if scale == 0, let exact = Cast.parseInt64(b) {
                    guard range.contains(exact) else {
                        fail(i, rangeText)
                        continue
                    }
                    out[i] = exact
                    continue
                }
                switch DecimalText.parse(b, scale: scale, precision: Swift.min(precision, 18)) {
                case .value(let r) where range.contains(r): out[i] = r
                case .value, .outOfRange: fail(i, rangeText)
                case .malformed: fail(i, "is not a number")
                }
            }
        }

        mutating func toDouble() -> ColumnValues {
            var out = [Double](repeating: 0, count: n)
            switch source.values {
            case .int64(let v):
                let scale: Int
                if case .decimal(_, let s) = source.type { scale = s } else { scale = 0 }
                for i in 0..<n where validity[i] { out[i] = DecimalMath.toDouble(v[i], scale: scale) }
            case .int32(let v):
                for i in 0..<n where validity[i] { out[i] = Double(v[i]) }
            case .double(let v):
                out = v
            case .bool(let v):
                for i in 0..<n where validity[i] { out[i] = v[i] ? 1 : 0 }
            case .bytes(let s):
                for i in 0..<n where validity[i] {
                    let t = String(decoding: s.bytes(at: i), as: UTF8.self).exprTrimmingSpaces
                    guard let d = Double(t) else {
                        fail(i, "is not a number")
                        continue
                    }
                    out[i] = d
                }
            }
            return .double(out)
        }

        mutating func toBool() -> ColumnValues {
            var out = [Bool](repeating: false, count: n)
            switch source.values {
            case .int64(let v): for i in 0..<n where validity[i] { out[i] = v[i] != 0 }
            case .int32(let v): for i in 0..<n where validity[i] { out[i] = v[i] != 0 }
            case .double(let v): for i in 0..<n where validity[i] { out[i] = v[i] != 0 }
            case .bool(let v): out = v
            case .bytes(let s):
                for i in 0..<n where validity[i] {
                    switch String(decoding: s.bytes(at: i), as: UTF8.self).exprTrimmingSpaces.lowercased() {
                    case "true", "t", "yes", "y", "1": out[i] = true
                    case "false", "f", "no", "n", "0": out[i] = false
                    default: fail(i, "is not a boolean")
                    }
                }
            }
            return .bool(out)
        }

        /// From a timestamp (its UTC day) or text; nil from anything else.
        mutating func toDate() -> ColumnValues? {
            var out = [Int32](repeating: 0, count: n)
            switch source.values {
            case .int64(let v):  // timestamp
                for i in 0..<n where validity[i] {
                    guard let d = Int32(exactly: CalendarMath.day(ofMicros: v[i])) else {
                        fail(i, "out of range for date")
                        continue
                    }
                    out[i] = d
                }
            case .bytes(let s):
                for i in 0..<n where validity[i] {
                    let t = String(decoding: s.bytes(at: i), as: UTF8.self)
                    if let d = CalendarMath.parseDate(t) {
                        out[i] = d
                    } else if let micros = CalendarMath.parseTimestamp(t),
                              let d = Int32(exactly: CalendarMath.day(ofMicros: micros)) {
                        out[i] = d
                    } else {
                        fail(i, "is not a date (YYYY-MM-DD)")
                    }
                }
            default:
                return nil
            }
            return .int32(out)
        }

        /// From a date (midnight UTC) or text; nil from anything else.
        mutating func toTimestamp() -> ColumnValues? {
            var out = [Int64](repeating: 0, count: n)
            switch source.values {
            case .int32(let v):  // date
                for i in 0..<n where validity[i] {
                    let (r, overflow) = Int64(v[i]).multipliedReportingOverflow(by: CalendarMath.microsPerDay)
                    if overflow { fail(i, "out of range for timestamp") } else { out[i] = r }
                }
            case .bytes(let s):
                for i in 0..<n where validity[i] {
                    guard let micros = CalendarMath.parseTimestamp(String(decoding: s.bytes(at: i), as: UTF8.self)) else {
                        fail(i, "is not an ISO 8601 timestamp")
                        continue
                    }
                    out[i] = micros
                }
            default:
                return nil
            }
            return .int64(out)
        }
    }

    /// Value `row` of `column` as exact text (the form `string` casts give).
    static func text(_ column: Column, _ row: Int) -> String {
        switch column.values {
        case .int64(let v):
            switch column.type {
            case .decimal(_, let s): return ValueText.decimal(unscaled: v[row], scale: s)
            case .timestamp: return ValueText.timestamp(micros: v[row])
            default: return String(v[row])
            }
        case .int32(let v):
            return column.type == .date ? ValueText.date(days: Int64(v[row])) : String(v[row])
        case .double(let v): return String(v[row])
        case .bool(let v): return v[row] ? "true" : "false"
        case .bytes(let s): return s.string(at: row)
        }
    }

    /// Plain optional-sign digits with surrounding spaces, exactly in Int64.
    fileprivate static func parseInt64(_ bytes: ArraySlice<UInt8>) -> Int64? {
        var b = bytes
        while b.first == 0x20 { b.removeFirst() }
        while b.last == 0x20 { b.removeLast() }
        guard !b.isEmpty, b.count <= 20 else { return nil }
        return Int64(String(decoding: b, as: UTF8.self))
    }
}

extension String {
    var exprTrimmingSpaces: String {
        var s = Substring(self)
        while s.first == " " { s.removeFirst() }
        while s.last == " " { s.removeLast() }
        return String(s)
    }
}
