import Columnar

/// `validate:` the row rules each partition checks, and the run-level gates
/// the coordinator decides on. See docs/spec.md, "validate".
public struct ValidateSpec: Sendable, Hashable {
    /// Row rules in spec order; `not_null: [a, b]` is one rule per column.
    public var rules: [RowRule]
    public var gates: QualityGates

    public init(rules: [RowRule] = [], gates: QualityGates = QualityGates()) {
        self.rules = rules
        self.gates = gates
    }

    /// No rule and no gate.
    public var isEmpty: Bool { rules.isEmpty && gates == QualityGates() }
}

/// One row rule with the name results and messages use for it.
public struct RowRule: Sendable, Hashable {
    /// `not_null l_orderkey`, `unique l_orderkey, l_linenumber`,
    /// `range l_discount`, `allowed c`, `regex c`, `expression <text>`, or the
    /// rule's own `name:`. Unique within a spec.
    public var name: String
    public var check: RowCheck
    /// Where the rule is written (its `- ` entry).
    public var location: SpecLocation

    public init(name: String, check: RowCheck, location: SpecLocation) {
        self.name = name
        self.check = check
        self.location = location
    }
}

/// What a row rule checks. Every rule but `notNull` lets a null pass (as an
/// SQL CHECK constraint does); `notNull` is the rule for nulls.
public enum RowCheck: Sendable, Hashable {
    /// The column is not null.
    case notNull(column: String)
    /// No two rows share these values (rows with a null in any of them are
    /// never duplicates); the first row of a key passes, later ones fail.
    /// The columns contain every consolidate partition column.
    case unique(columns: [String])
    case range(RangeCheck)
    case allowed(AllowedCheck)
    /// The whole value matches `pattern` (Swift `Regex` syntax, anchors implied).
    case regex(column: String, pattern: String)
    /// A bool expression; a row fails when it is false (null passes).
    case expression(SpecExpression)

    /// The columns the rule reads (the expression's are known only once
    /// it is compiled; none here).
    public var columns: [String] {
        switch self {
        case .notNull(let c), .regex(let c, _): return [c]
        case .unique(let cs): return cs
        case .range(let r): return [r.column]
        case .allowed(let a): return [a.column]
        case .expression: return []
        }
    }
}

/// `range: {column, min, max, exclusive_min, exclusive_max}`.
public struct RangeCheck: Sendable, Hashable {
    public var column: String
    public var min: RangeBound?
    public var max: RangeBound?

    public init(column: String, min: RangeBound?, max: RangeBound?) {
        self.column = column
        self.min = min
        self.max = max
    }
}

/// One bound of a range as written, typed to the column when its type is
/// known at load time (the stage types `text` again against the chunk).
public struct RangeBound: Sendable, Hashable {
    public var text: String
    public var exclusive: Bool
    public var value: RuleLiteral?

    public init(text: String, exclusive: Bool, value: RuleLiteral?) {
        self.text = text
        self.exclusive = exclusive
        self.value = value
    }
}

/// A range bound's value. Decimals keep the scale they were written with,
/// so `0.105` against a decimal(15,2) column compares exactly.
public enum RuleLiteral: Sendable, Hashable {
    /// int32/int64 values, dates (days since 1970-01-01), timestamps (µs, UTC).
    case int(Int64)
    case decimal(unscaled: Int64, scale: Int)
    case double(Double)

    /// `text` as a bound for a column of `type`: integers for int columns,
    /// any decimal of up to 18 digits for decimal columns, numbers for
    /// double, `YYYY-MM-DD` for dates, timestamps as in `fill_null`. Nil when
    /// it does not fit, or the type has no order a range can use (string, bool).
    public static func bound(_ text: String, for type: ColumnType) -> RuleLiteral? {
        switch type {
        case .int64, .int32: return Int64(text).map(RuleLiteral.int)
        case .double: return Double(text).flatMap { $0.isNaN ? nil : .double($0) }
        case .date: return SpecLiteral.date(text).map(RuleLiteral.int)
        case .timestamp: return SpecLiteral.timestamp(text).map(RuleLiteral.int)
        case .decimal:
            var fraction = 0
            if let dot = text.firstIndex(of: ".") { fraction = text.distance(from: dot, to: text.endIndex) - 1 }
            guard fraction <= 18, let v = SpecLiteral.decimal(text, precision: 18, scale: fraction) else { return nil }
            return .decimal(unscaled: v, scale: fraction)
        case .string, .bool: return nil
        }
    }

    /// `a` compared with `b`: -1, 0 or 1 (both of the same kind, or
    /// decimals and ints, compared exactly).
    public static func compare(_ a: RuleLiteral, _ b: RuleLiteral) -> Int {
        func exact(_ x: RuleLiteral) -> (Int128, Int)? {
            switch x {
            case .int(let v): return (Int128(v), 0)
            case .decimal(let u, let s): return (Int128(u), s)
            case .double: return nil
            }
        }
        if let (x, s) = exact(a), let (y, t) = exact(b) {
            let m = Swift.max(s, t)
            let l = x * pow10(m - s), r = y * pow10(m - t)
            return l < r ? -1 : (l == r ? 0 : 1)
        }
        if case .double(let x) = a, case .double(let y) = b { return x < y ? -1 : (x == y ? 0 : 1) }
        return 0
    }

    static func pow10(_ n: Int) -> Int128 {
        var r: Int128 = 1
        for _ in 0..<n { r *= 10 }
        return r
    }
}

/// `allowed: {column, values: [...]}`.
public struct AllowedCheck: Sendable, Hashable {
    public var column: String
    /// As written, for messages.
    public var texts: [String]
    /// Typed to the column (Columnar's representation: decimals unscaled at
    /// the column's scale, dates as days); nil when the column's type is not
    /// known at load time.
    public var values: [Scalar]?

    public init(column: String, texts: [String], values: [Scalar]?) {
        self.column = column
        self.texts = texts
        self.values = values
    }

    /// `text` as a value of a column of `type` (as `fill_null` reads it),
    /// nil when it is not one.
    public static func value(_ text: String, as type: ColumnType) -> Scalar? {
        SpecLiteral.scalar(text, as: type)
    }
}

/// The run-level gates, decided over every partition's result.
public struct QualityGates: Sendable, Hashable, Codable {
    /// Fail the run when more than this share of rows fail a rule. Without
    /// it, failing rows are quarantined and the run goes on.
    public var maxFailureRate: FailureRate?
    /// Bounds on the rows that pass (what publish would publish).
    public var minRows: Int64?
    public var maxRows: Int64?
    /// Every partition must pass at least this many rows.
    public var minRowsPerPartition: Int64?

    public init(maxFailureRate: FailureRate? = nil, minRows: Int64? = nil, maxRows: Int64? = nil,
                minRowsPerPartition: Int64? = nil) {
        self.maxFailureRate = maxFailureRate
        self.minRows = minRows
        self.maxRows = maxRows
        self.minRowsPerPartition = minRowsPerPartition
    }
}

/// A share of rows as an exact fraction `parts / whole` (`5%` is 5/100,
/// `0.05` is 5/100, `2.5%` is 25/1000), so comparing counts against it
/// has no rounding.
public struct FailureRate: Sendable, Hashable, Codable, CustomStringConvertible {
    public var parts: Int64
    public var whole: Int64

    public init(parts: Int64, whole: Int64) {
        self.parts = parts
        self.whole = whole
    }

    /// `5%`, `5 %`, `2.5%` (0% to 100%) or `0.05` (0 to 1); nil otherwise.
    public init?(parsing text: String) {
        var t = text.trimmingSpaces()
        let percent = t.hasSuffix("%")
        if percent { t = String(t.dropLast()).trimmingSpaces() }
        var fraction = 0
        if let dot = t.firstIndex(of: ".") { fraction = t.distance(from: dot, to: t.endIndex) - 1 }
        guard !t.hasPrefix("-"), !t.hasPrefix("+"), fraction <= 12,
              let v = SpecLiteral.decimal(t, precision: 18, scale: fraction) else { return nil }
        var whole: Int64 = percent ? 100 : 1
        for _ in 0..<fraction { whole *= 10 }
        guard v <= whole else { return nil }
        self.init(parts: v, whole: whole)
    }

    /// Whether `failed` of `rows` is more than this share.
    public func isExceeded(failed: Int64, of rows: Int64) -> Bool {
        Int128(failed) * Int128(whole) > Int128(parts) * Int128(rows)
    }

    /// As a percentage: `5%`, `0.5%`, `12.25%`.
    public var description: String {
        // parts/whole * 100, exactly when whole divides into a power of ten.
        var scale = 0, w = whole
        while w > 1, w % 10 == 0 { w /= 10; scale += 1 }
        let text = ValueText.decimal(unscaled: parts * 100, scale: scale)
        var trimmed = Substring(text)
        if trimmed.contains(".") {
            while trimmed.hasSuffix("0") { trimmed = trimmed.dropLast() }
            if trimmed.hasSuffix(".") { trimmed = trimmed.dropLast() }
        }
        return trimmed + "%"
    }
}
