import Columnar

/// Exact conversions from what a Parquet file holds to a declared column
/// type. Unlike normalize's `cast` (which rounds), ingest never changes a
/// value: what does not fit exactly is a failure, and its row goes to the
/// quarantine, as a CSV field that does not parse does.
///
/// | file holds | may be declared as |
/// |---|---|
/// | integers (INT32, INT64, UINT_8…64) | int64, int32, decimal, double, string |
/// | decimals (up to 38 digits) | decimal, int64, int32, double, string |
/// | FLOAT, DOUBLE | double, int64, int32, decimal, string |
/// | BOOLEAN | bool, string |
/// | strings (BYTE_ARRAY) | any type: parsed as a CSV field is |
/// | DATE | date, timestamp, string |
/// | timestamps (ms, µs, ns, INT96) | timestamp, date, string |
///
/// Rules: integers must fit the declared range; a decimal's value must fit
/// the declared precision and scale without rounding (1.50 fits
/// decimal(5,1), 1.55 does not), and in an integer column it must be whole;
/// a double converts to an integer or decimal from its shortest decimal
/// text (0.1 is 0.10 in decimal(9,2)) and must fit the same way, NaN and
/// ±infinity never do; to `double` every number converts to the nearest
/// double. A timestamp with sub-microsecond digits does not fit `timestamp`
/// (microseconds); declare the column as `string` to keep them. A timestamp
/// converts to `date` only at midnight UTC. Text converts as CSV fields do
/// (an empty string is not null); `string` columns must hold valid UTF-8.
enum ParquetConversion {
    enum Category {
        case integer, decimal, double, bool, text, date, instant
    }

    static func category(_ kind: SourceColumnKind) -> Category {
        switch kind {
        case .unsigned: return .integer
        case .wideDecimal: return .decimal
        case .timestampNanos: return .instant
        case .typed(let t):
            switch t {
            case .int64, .int32: return .integer
            case .decimal: return .decimal
            case .double: return .double
            case .bool: return .bool
            case .string: return .text
            case .date: return .date
            case .timestamp: return .instant
            }
        }
    }

    static func allowed(_ kind: SourceColumnKind, _ to: ColumnType) -> Bool {
        if case .string = to { return true }
        switch category(kind) {
        case .text: return true
        case .integer, .decimal, .double:
            switch to {
            case .int64, .int32, .decimal, .double: return true
            default: return false
            }
        case .bool: return to == .bool
        case .date, .instant: return to == .date || to == .timestamp
        }
    }

    /// The declared types `kind` can be read as, for messages.
    static func targets(_ kind: SourceColumnKind) -> String {
        switch category(kind) {
        case .text: return "any type"
        case .integer, .decimal, .double: return "int64, int32, decimal, double or string"
        case .bool: return "bool or string"
        case .date, .instant: return "timestamp, date or string"
        }
    }

    /// A value as read from the file.
    enum Value {
        case int(Int128)
        case decimal(Int128, scale: Int)
        case double(Double)
        /// A FLOAT column's value: converted from the float's own shortest
        /// text (0.1, where the double it widens to prints 0.10000000149011612).
        case float(Float)
        case bool(Bool)
        case bytes(ArraySlice<UInt8>)
        case date(Int64)
        case micros(Int64)
        case nanos(Int128)
    }

    static func value(_ values: SourceColumn, _ row: Int, kind: SourceColumnKind, float: Bool = false) -> Value? {
        if values.isNull(row) { return nil }
        switch (values, kind) {
        case (.wide(let v, _), .unsigned): return .int(v[row])
        case (.wide(let v, _), .wideDecimal(_, let s)): return .decimal(v[row], scale: s)
        case (.wide(let v, _), _): return .nanos(v[row])
        case (.typed(let c), _):
            switch c.values {
            case .int64(let v):
                switch c.type {
                case .decimal(_, let s): return .decimal(Int128(v[row]), scale: s)
                case .timestamp: return .micros(v[row])
                default: return .int(Int128(v[row]))
                }
            case .int32(let v): return c.type == .date ? .date(Int64(v[row])) : .int(Int128(v[row]))
            case .double(let v): return float ? .float(Float(v[row])) : .double(v[row])
            case .bool(let v): return .bool(v[row])
            case .bytes(let s): return .bytes(s.bytes(at: row))
            }
        }
    }

    struct Converted {
        var column: Column
        /// Rows that did not fit, with the reason (without the row's place).
        var failures: [(Int, String)]
    }

    /// `float`: the column is FLOAT (`SourceField.isFloat`).
    static func convert(_ values: SourceColumn, kind: SourceColumnKind, float: Bool = false, to field: Field) throws -> Converted {
        let n = values.count
        var failures = [(Int, String)]()
        // The same type: the column as read, checked for nulls (and UTF-8).
        if case .typed(let column) = values, case .typed(let t) = kind, t == field.type {
            if !field.nullable, column.nullCount > 0 {
                for row in 0..<n where column.isNull(row) { failures.append((row, "null in a non-nullable column")) }
            }
            if case .bytes(let s) = column.values {
                s.bytes.withUnsafeBufferPointer { b in
                    for row in 0..<n where !column.isNull(row) {
                        let len = s.offsets[row + 1] - s.offsets[row]
                        if len > 0, !ValueParsers.isValidUTF8(b.baseAddress! + s.offsets[row], len) {
                            failures.append((row, "invalid UTF-8"))
                        }
                    }
                }
            }
            // The file's decimal(p,s) says how many digits its values have,
            // not that they have no more: check them as any conversion does.
            if case .decimal(let p, let s) = field.type, case .int64(let v) = column.values, p < pow10.count {
                let limit = pow10[p]
                for row in 0..<n where !column.isNull(row) && Int128(v[row]).magnitude >= limit.magnitude {
                    failures.append((row, "'\(decimalText(Int128(v[row]), scale: s))' \(overflow(p, s))"))
                }
            }
            if failures.count > 1 { failures.sort { $0.0 < $1.0 } }
            return Converted(column: column, failures: failures)
        }
        var builder = ColumnBuilder(field.type, capacity: n)
        for row in 0..<n {
            guard let v = value(values, row, kind: kind, float: float) else {
                if !field.nullable { failures.append((row, "null in a non-nullable column")) }
                builder.appendNull()
                continue
            }
            switch convert(v, to: field.type) {
            case .success(let scalar): try builder.append(scalar)
            case .failure(let reason):
                failures.append((row, reason.text))
                builder.appendNull()
            }
        }
        return Converted(column: builder.build(), failures: failures)
    }

    struct Reason: Error {
        let text: String
    }

    static let pow10: [Int128] = {
        var p: [Int128] = [1]
        for _ in 0..<38 { p.append(p.last! * 10) }
        return p
    }()

    /// One value to `type`, exactly.
    static func convert(_ v: Value, to type: ColumnType) -> Result<Scalar, Reason> {
        func fail(_ why: String) -> Result<Scalar, Reason> { .failure(Reason(text: "'\(text(v))' \(why)")) }
        switch type {
        case .string:
            if case .bytes(let b) = v, !validUTF8(b) { return .failure(Reason(text: "invalid UTF-8")) }
            if case .bytes(let b) = v { return .success(.bytes(Array(b))) }
            return .success(.string(text(v)))
        case .int64, .int32:
            let whole: Int128
            switch v {
            case .int(let x): whole = x
            case .decimal(let u, let s):
                guard u % pow10[s] == 0 else { return fail("is not a whole number, as \(type) needs") }
                whole = u / pow10[s]
            case .double(let d):
                guard d.isFinite, d == d.rounded(.towardZero), let x = Int128(exactly: d) else {
                    return fail("is not a whole number within \(type)'s range")
                }
                whole = x
            case .float(let f):
                guard f.isFinite, f == f.rounded(.towardZero), let x = Int128(exactly: f) else {
                    return fail("is not a whole number within \(type)'s range")
                }
                whole = x
            case .bytes(let b):
                guard let x = parse(b, { ValueParsers.int64($0, $1) }) else { return fail("is not \(Reasons.typeName(type))") }
                whole = Int128(x)
            default: return fail("cannot be read as \(type)")
            }
            if type == .int32 {
                guard let x = Int32(exactly: whole) else { return fail("does not fit int32") }
                return .success(.int(Int64(x)))
            }
            guard let x = Int64(exactly: whole) else { return fail("does not fit int64") }
            return .success(.int(x))
        case .decimal(let p, let s):
            let unscaled: Int128
            switch v {
            case .int(let x):
                let (m, o) = x.multipliedReportingOverflow(by: pow10[s])
                guard !o else { return fail(overflow(p, s)) }
                unscaled = m
            case .decimal(let u, let s0):
                if s >= s0 {
                    let (m, o) = u.multipliedReportingOverflow(by: pow10[s - s0])
                    guard !o else { return fail(overflow(p, s)) }
                    unscaled = m
                } else {
                    guard u % pow10[s0 - s] == 0 else { return fail(scaleText(p, s)) }
                    unscaled = u / pow10[s0 - s]
                }
            case .double(let d):
                guard d.isFinite else { return fail("is not a decimal(\(p),\(s))") }
                switch decimalFromShortest(d.description, scale: s) {
                case .success(let u): unscaled = u
                case .failure(let e): return fail(e == .scale ? scaleText(p, s) : overflow(p, s))
                }
            case .float(let f):
                guard f.isFinite else { return fail("is not a decimal(\(p),\(s))") }
                switch decimalFromShortest(f.description, scale: s) {
                case .success(let u): unscaled = u
                case .failure(let e): return fail(e == .scale ? scaleText(p, s) : overflow(p, s))
                }
            case .bytes(let b):
                let r = b.withUnsafeBufferPointer { q -> ValueParsers.DecimalParse in
                    guard let base = q.baseAddress, q.count > 0 else { return .failure(.syntax) }
                    return ValueParsers.decimal(base, q.count, precision: p, scale: s)
                }
                switch r {
                case .value(let x): return .success(.int(x))
                case .failure(.syntax): return fail("is not a decimal(\(p),\(s))")
                case .failure(.overflow): return fail(overflow(p, s))
                case .failure(.tooManyFractionDigits): return fail(scaleText(p, s))
                }
            default: return fail("cannot be read as \(type)")
            }
            guard unscaled.magnitude < pow10[p].magnitude, let x = Int64(exactly: unscaled) else { return fail(overflow(p, s)) }
            return .success(.int(x))
        case .double:
            switch v {
            case .int(let x): return .success(.double(Double(x)))
            case .decimal: return .success(.double(Double(text(v))!))
            case .double(let d): return .success(.double(d))
            case .float(let f): return .success(.double(Double(f)))
            case .bytes(let b):
                guard let d = parse(b, { ValueParsers.double($0, $1) }) else { return fail("is not \(Reasons.typeName(type))") }
                return .success(.double(d))
            default: return fail("cannot be read as double")
            }
        case .bool:
            switch v {
            case .bool(let x): return .success(.bool(x))
            case .bytes(let b):
                guard let x = parse(b, { ValueParsers.bool($0, $1) }) else { return fail("is not \(Reasons.typeName(type))") }
                return .success(.bool(x))
            default: return fail("cannot be read as bool")
            }
        case .date:
            let perDay: Int128 = 86_400_000_000
            switch v {
            case .date(let d): return .success(.int(d))
            case .micros(let m):
                guard Int128(m) % perDay == 0, let d = Int32(exactly: Int128(m) / perDay) else {
                    return fail("has a time of day; a date holds whole days")
                }
                return .success(.int(Int64(d)))
            case .nanos(let ns):
                guard ns % (perDay * 1000) == 0, let d = Int32(exactly: ns / (perDay * 1000)) else {
                    return fail("has a time of day; a date holds whole days")
                }
                return .success(.int(Int64(d)))
            case .bytes(let b):
                guard let d = parse(b, { ValueParsers.date($0, $1) }) else { return fail("is not \(Reasons.typeName(type))") }
                return .success(.int(Int64(d)))
            default: return fail("cannot be read as date")
            }
        case .timestamp:
            switch v {
            case .micros(let m): return .success(.int(m))
            case .date(let d):
                guard let m = Int64(exactly: Int128(d) * 86_400_000_000) else { return fail("is out of the timestamp range") }
                return .success(.int(m))
            case .nanos(let ns):
                guard ns % 1000 == 0 else {
                    return fail("has sub-microsecond digits; a timestamp holds microseconds (declare the column as string to keep them)")
                }
                guard let m = Int64(exactly: ns / 1000) else { return fail("is out of the timestamp range") }
                return .success(.int(m))
            case .bytes(let b):
                guard let m = parse(b, { ValueParsers.timestamp($0, $1) }) else { return fail("is not \(Reasons.typeName(type))") }
                return .success(.int(m))
            default: return fail("cannot be read as timestamp")
            }
        }
    }

    static func overflow(_ p: Int, _ s: Int) -> String {
        "overflows decimal(\(p),\(s)) (at most \(p - s) digits before the point)"
    }

    static func scaleText(_ p: Int, _ s: Int) -> String {
        "has more than \(s) digits after the point for decimal(\(p),\(s))"
    }

    static func parse<T>(_ b: ArraySlice<UInt8>, _ f: (UnsafePointer<UInt8>, Int) -> T?) -> T? {
        b.withUnsafeBufferPointer { q in
            guard let base = q.baseAddress, q.count > 0 else { return nil }
            return f(base, q.count)
        }
    }

    static func validUTF8(_ b: ArraySlice<UInt8>) -> Bool {
        b.withUnsafeBufferPointer { q in
            guard let base = q.baseAddress, q.count > 0 else { return true }
            return ValueParsers.isValidUTF8(base, q.count)
        }
    }

    enum ShortestFailure: Error { case scale, overflow }

    /// A finite double's or float's shortest decimal text (Swift's
    /// `description`: `0.1`, `1e-05`, `1.5e+20`) as an unscaled integer at `scale`.
    static func decimalFromShortest(_ text: String, scale: Int) -> Result<Int128, ShortestFailure> {
        let t = Array(text.utf8)
        var i = 0
        var negative = false
        if i < t.count, t[i] == UInt8(ascii: "-") { negative = true; i += 1 }
        var digits: Int128 = 0
        var fraction = 0
        var seenPoint = false
        var exponent = 0
        while i < t.count {
            let c = t[i]
            if c == UInt8(ascii: ".") {
                seenPoint = true
            } else if c == UInt8(ascii: "e") || c == UInt8(ascii: "E") {
                exponent = Int(String(decoding: t[(i + 1)...], as: UTF8.self)) ?? 0
                break
            } else if c >= 0x30, c <= 0x39 {
                digits = digits * 10 + Int128(c - 0x30)
                if seenPoint { fraction += 1 }
            }
            i += 1
        }
        var k = exponent - fraction + scale
        // Trailing zeros of the digits may absorb a negative shift.
        while k < 0, digits != 0, digits % 10 == 0 {
            digits /= 10
            k += 1
        }
        if digits == 0 { return .success(0) }
        if k < 0 { return .failure(.scale) }
        guard k <= 38 else { return .failure(.overflow) }
        let (m, o) = digits.multipliedReportingOverflow(by: pow10[k])
        guard !o else { return .failure(.overflow) }
        return .success(negative ? -m : m)
    }

    /// A value as text: numbers exactly, dates and timestamps in ISO 8601
    /// (UTC), strings as UTF-8 (invalid bytes shown as U+FFFD).
    static func text(_ v: Value) -> String {
        switch v {
        case .int(let x): return String(x)
        case .decimal(let u, let s): return decimalText(u, scale: s)
        case .double(let d): return d.description
        case .float(let f): return f.description
        case .bool(let b): return b ? "true" : "false"
        case .bytes(let b): return String(decoding: b, as: UTF8.self)
        case .date(let d): return ValueText.date(days: d)
        case .micros(let m): return ValueText.timestamp(micros: m)
        case .nanos(let ns): return nanosText(ns)
        }
    }

    static func decimalText(_ u: Int128, scale: Int) -> String {
        var digits = String(u.magnitude)
        guard scale > 0 else { return (u < 0 ? "-" : "") + digits }
        if digits.count <= scale { digits = String(repeating: "0", count: scale - digits.count + 1) + digits }
        let point = digits.index(digits.endIndex, offsetBy: -scale)
        return (u < 0 ? "-" : "") + digits[..<point] + "." + digits[point...]
    }

    /// Nanoseconds since the epoch as YYYY-MM-DDTHH:MM:SS[.ffffff[fff]]Z:
    /// six fraction digits when the rest are zeros, as microsecond timestamps print.
    static func nanosText(_ ns: Int128) -> String {
        let perDay: Int128 = 86_400_000_000_000
        var days = ns / perDay
        var rest = ns % perDay
        if rest < 0 {
            rest += perDay
            days -= 1
        }
        guard let d = Int64(exactly: days) else { return String(ns) + " ns" }
        let secs = Int64(rest / 1_000_000_000), frac = Int64(rest % 1_000_000_000)
        func pad(_ v: Int64, _ w: Int) -> String {
            let s = String(v)
            return s.count >= w ? s : String(repeating: "0", count: w - s.count) + s
        }
        let time = "\(pad(secs / 3600, 2)):\(pad(secs / 60 % 60, 2)):\(pad(secs % 60, 2))"
        let fraction = frac == 0 ? "" : frac % 1000 == 0 ? "." + pad(frac / 1000, 6) : "." + pad(frac, 9)
        return ValueText.date(days: d) + "T" + time + fraction + "Z"
    }

    /// Row `row` of `values` as a JSON value: numbers bare, the rest quoted.
    /// `limit`: a string longer than this many bytes is cut there first.
    static func json(_ values: SourceColumn, _ row: Int, kind: SourceColumnKind, float: Bool = false, limit: Int = .max) -> String {
        guard var v = value(values, row, kind: kind, float: float) else { return "null" }
        if case .bytes(let b) = v, b.count > limit { v = .bytes(b.prefix(limit)) }
        switch v {
        case .int, .decimal, .bool: return text(v)
        case .double(let d): return d.isFinite ? text(v) : RowText.jsonString(text(v))
        case .float(let f): return f.isFinite ? text(v) : RowText.jsonString(text(v))
        default: return RowText.jsonString(text(v))
        }
    }
}
