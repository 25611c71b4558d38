/// Exact decimal arithmetic over Int64 unscaled values (Columnar's
/// `decimal(precision, scale)`), with Int128 for intermediate products.
/// Every operation either gives the exact (or correctly rounded) result or
/// reports overflow; nothing wraps.
///
/// Rounding, wherever a scale shrinks (casts, `round`), is half away from
/// zero: 1.235 -> 1.24, -1.235 -> -1.24, as DuckDB does for decimals.
enum DecimalMath {
    /// 10^0 ... 10^18.
    static let pow10: [Int64] = {
        var p: [Int64] = [1]
        for _ in 1...18 { p.append(p.last! * 10) }
        return p
    }()

    /// The largest unscaled magnitude that fits `precision` digits.
    static func maxUnscaled(precision: Int) -> Int64 {
        pow10[Swift.min(precision, 18)] - 1
    }

    static func fits(_ v: Int64, precision: Int) -> Bool {
        v.magnitude <= UInt64(maxUnscaled(precision: precision))
    }

    static func fits(_ v: Int128, precision: Int) -> Bool {
        v.magnitude <= UInt128(maxUnscaled(precision: precision))
    }

    /// `value / divisor` rounded half away from zero (divisor > 0).
    static func divideRounded(_ value: Int128, by divisor: Int128) -> Int128 {
        let q = value / divisor, r = value % divisor
        if r.magnitude * 2 >= divisor.magnitude {
            return value < 0 ? q - 1 : q + 1
        }
        return q
    }

    /// `v` at scale `from` re-expressed at scale `to`: exact when growing
    /// (nil on Int64 overflow), rounded half away from zero when shrinking.
    static func rescale(_ v: Int64, from: Int, to: Int) -> Int64? {
        if to == from { return v }
        if to > from {
            guard to - from <= 18 else { return v == 0 ? 0 : nil }
            let (r, overflow) = v.multipliedReportingOverflow(by: pow10[to - from])
            return overflow ? nil : r
        }
        guard from - to <= 18 else { return 0 }
        return Int64(divideRounded(Int128(v), by: Int128(pow10[from - to])))
    }

    /// `v` at `scale` as a double, as DuckDB converts (value / 10^scale).
    static func toDouble(_ v: Int64, scale: Int) -> Double {
        scale == 0 ? Double(v) : Double(v) / Double(pow10[scale])
    }

    /// A double as an unscaled decimal at `scale`, rounded half away from
    /// zero from its exact binary value; nil for NaN, infinities and values
    /// beyond `precision` digits.
    static func fromDouble(_ d: Double, scale: Int, precision: Int) -> Int64? {
        guard d.isFinite else { return nil }
        let r = roundDouble(d, digits: scale) * Double(pow10[scale])
        let rounded = r.rounded(.toNearestOrAwayFromZero)
        guard rounded.magnitude < 1e18, let v = Int64(exactly: rounded), fits(v, precision: precision) else {
            return nil
        }
        return v
    }

    /// Rounds a double to `digits` decimal places, half away from zero,
    /// judging ties by the double's exact binary value (2.345 is stored as
    /// 2.34500000000000019…, so it rounds to 2.35; 1.005 is 1.00499…, so 1.0),
    /// which is what DuckDB's round() gives.
    static func roundDouble(_ x: Double, digits: Int) -> Double {
        guard x.isFinite else { return x }
        if digits <= 0 {
            let m = digits == 0 ? 1 : pow(10, -digits)
            return (x / m).rounded(.toNearestOrAwayFromZero) * m
        }
        guard digits <= 22 else { return x }
        let m = pow(10, digits)
        let p = x * m
        guard p.isFinite, p.magnitude < 1e15 else { return x }
        let e = (-p).addingProduct(x, m)  // exact error of the product: x*m = p + e
        var r = p.rounded(.toNearestOrAwayFromZero)
        let diff = (p - r) + e
        if diff > 0.5 { r += 1 } else if diff < -0.5 { r -= 1 } else if diff == 0.5 || diff == -0.5 {
            r = (r + diff).rounded(.toNearestOrAwayFromZero)
        }
        return r / m
    }

    private static func pow(_ base: Double, _ n: Int) -> Double {
        var r = 1.0
        for _ in 0..<n { r *= base }
        return r
    }
}

/// Decimal text, exactly.
enum DecimalText {
    /// A literal like `12.340` or `.5`: its unscaled value, precision
    /// (significant digits, at least the scale and at least 1) and scale
    /// (digits after the point). Nil beyond 18 digits.
    static func parseLiteral(_ text: String) -> (unscaled: Int64, precision: Int, scale: Int)? {
        var unscaled: Int64 = 0
        var scale = 0, significant = 0, afterPoint = false
        for c in text.utf8 {
            if c == UInt8(ascii: ".") {
                afterPoint = true
                continue
            }
            let digit = Int64(c - 0x30)
            if afterPoint { scale += 1 }
            if significant > 0 || digit != 0 { significant += 1 }
            guard significant <= 18, scale <= 18 else { return nil }
            unscaled = unscaled * 10 + digit
        }
        return (unscaled, Swift.max(significant, scale, 1), scale)
    }

    enum ParseResult {
        case value(Int64)
        case malformed
        case outOfRange
    }

    /// Text such as ` -12.345 `, `1.5e2` or `+7` as an unscaled decimal at
    /// `scale`, rounded half away from zero, checked against `precision`.
    static func parse<C: Collection>(_ bytes: C, scale: Int, precision: Int) -> ParseResult where C.Element == UInt8 {
        var digits = [UInt8]()
        var pointPosition: Int?
        var exponent = 0
        var negative = false
        var it = Array(bytes)[...]
        while it.first == 0x20 { it.removeFirst() }
        while it.last == 0x20 { it.removeLast() }
        if it.first == UInt8(ascii: "-") || it.first == UInt8(ascii: "+") {
            negative = it.first == UInt8(ascii: "-")
            it.removeFirst()
        }
        var sawDigit = false
        while let c = it.first {
            if c >= 0x30, c <= 0x39 {
                if !(digits.isEmpty && c == 0x30 && pointPosition == nil) { digits.append(c - 0x30) }
                sawDigit = true
            } else if c == UInt8(ascii: "."), pointPosition == nil {
                pointPosition = digits.count
            } else {
                break
            }
            it.removeFirst()
        }
        guard sawDigit else { return .malformed }
        if let c = it.first, c == UInt8(ascii: "e") || c == UInt8(ascii: "E") {
            it.removeFirst()
            var expNegative = false
            if it.first == UInt8(ascii: "-") || it.first == UInt8(ascii: "+") {
                expNegative = it.first == UInt8(ascii: "-")
                it.removeFirst()
            }
            guard !it.isEmpty else { return .malformed }
            while let c = it.first, c >= 0x30, c <= 0x39 {
                exponent = exponent * 10 + Int(c - 0x30)
                guard exponent < 400 else { return .outOfRange }
                it.removeFirst()
            }
            if expNegative { exponent = -exponent }
        }
        guard it.isEmpty else { return .malformed }
        // value = digits * 10^(exponent - fractionDigits); we want it * 10^scale.
        let fractionDigits = digits.count - (pointPosition ?? digits.count)
        let shift = exponent - fractionDigits + scale
        var kept = digits
        var roundUp = false
        if shift < 0 {
            let drop = -shift
            if drop > kept.count {
                kept = []
            } else {
                roundUp = kept[kept.count - drop] >= 5
                kept.removeLast(drop)
            }
        } else {
            guard kept.count + shift <= 38 || kept.allSatisfy({ $0 == 0 }) else { return .outOfRange }
            kept.append(contentsOf: repeatElement(0, count: kept.isEmpty ? 0 : shift))
        }
        guard kept.count <= 38 else { return .outOfRange }
        var v: Int128 = 0
        for d in kept { v = v * 10 + Int128(d) }
        if roundUp { v += 1 }
        if negative { v = -v }
        guard DecimalMath.fits(v, precision: precision) else { return .outOfRange }
        return .value(Int64(v))
    }
}
