import Columnar

/// The loops shared by the evaluator, the cast helper and filtering: masks,
/// gathers, broadcasts and comparisons over column buffers.
enum Kernel {
    /// Both masks combined: a row is valid when it is valid in both.
    static func combine(_ a: [Bool]?, _ b: [Bool]?) -> [Bool]? {
        guard let a else { return b }
        guard let b else { return a }
        var out = a
        for i in out.indices where !b[i] { out[i] = false }
        return out
    }

    @inline(__always)
    static func test(_ op: ExprOperator, _ c: Int) -> Bool {
        switch op {
        case .equal: return c == 0
        case .notEqual: return c != 0
        case .less: return c < 0
        case .lessOrEqual: return c <= 0
        case .greater: return c > 0
        case .greaterOrEqual: return c >= 0
        default: preconditionFailure("\(op) is not a comparison")
        }
    }

    static func compareArrays<T: Comparable>(_ op: ExprOperator, _ x: [T], _ y: [T], _ n: Int) -> [Bool] {
        var out = [Bool](repeating: false, count: n)
        x.withUnsafeBufferPointer { x in
            y.withUnsafeBufferPointer { y in
                switch op {
                case .equal: for i in 0..<n { out[i] = x[i] == y[i] }
                case .notEqual: for i in 0..<n { out[i] = x[i] != y[i] }
                case .less: for i in 0..<n { out[i] = x[i] < y[i] }
                case .lessOrEqual: for i in 0..<n { out[i] = x[i] <= y[i] }
                case .greater: for i in 0..<n { out[i] = x[i] > y[i] }
                case .greaterOrEqual: for i in 0..<n { out[i] = x[i] >= y[i] }
                default: preconditionFailure("\(op) is not a comparison")
                }
            }
        }
        return out
    }

    /// Unsigned lexicographic byte order (UTF-8 code point order), as DuckDB
    /// compares strings without a collation.
    /// Rows `indices` of a string column: one pass to size, one to copy.
    static func takeStrings(_ s: StringColumn, _ indices: [Int]) -> StringColumn {
        var offsets = [Int](repeating: 0, count: indices.count + 1)
        var total = 0
        s.offsets.withUnsafeBufferPointer { o in
            for (k, i) in indices.enumerated() {
                total += o[i + 1] - o[i]
                offsets[k + 1] = total
            }
        }
        var bytes = [UInt8](repeating: 0, count: total)
        s.offsets.withUnsafeBufferPointer { o in
            s.bytes.withUnsafeBufferPointer { src in
                bytes.withUnsafeMutableBufferPointer { dst in
                    var at = 0
                    for i in indices {
                        let start = o[i], length = o[i + 1] - start
                        if length > 0 {
                            dst.baseAddress!.advanced(by: at).update(from: src.baseAddress!.advanced(by: start), count: length)
                        }
                        at += length
                    }
                }
            }
        }
        // Safe: offsets start at 0, ascend and end at the byte count by construction.
        return try! StringColumn(offsets: offsets, bytes: bytes)
    }

    /// Row-wise comparison of two string columns by unsigned bytes.
    static func compareStrings(_ op: ExprOperator, _ x: StringColumn, _ y: StringColumn, _ n: Int) -> [Bool] {
        var out = [Bool](repeating: false, count: n)
        x.offsets.withUnsafeBufferPointer { xo in
            y.offsets.withUnsafeBufferPointer { yo in
                x.bytes.withUnsafeBufferPointer { xb in
                    y.bytes.withUnsafeBufferPointer { yb in
                        for i in 0..<n {
                            let xs = xo[i], xl = xo[i + 1] - xs, ys = yo[i], yl = yo[i + 1] - ys
                            if (op == .equal || op == .notEqual) && xl != yl {
                                out[i] = op == .notEqual
                                continue
                            }
                            var c = 0
                            let m = Swift.min(xl, yl)
                            var k = 0
                            while k < m {
                                let a = xb[xs + k], b = yb[ys + k]
                                if a != b {
                                    c = a < b ? -1 : 1
                                    break
                                }
                                k += 1
                            }
                            if c == 0 { c = xl < yl ? -1 : (xl == yl ? 0 : 1) }
                            out[i] = test(op, c)
                        }
                    }
                }
            }
        }
        return out
    }

    static func compareBytes(_ x: ArraySlice<UInt8>, _ y: ArraySlice<UInt8>) -> Int {
        let n = Swift.min(x.count, y.count)
        var i = x.startIndex, j = y.startIndex
        for _ in 0..<n {
            if x[i] != y[j] { return x[i] < y[j] ? -1 : 1 }
            i += 1
            j += 1
        }
        return x.count < y.count ? -1 : (x.count == y.count ? 0 : 1)
    }

    /// A column of `n` copies of one value (nil: all null).
    static func broadcast(_ value: Scalar?, _ type: ColumnType, _ n: Int) -> Column {
        let validity: [Bool]? = value == nil && n > 0 ? [Bool](repeating: false, count: n) : nil
        let values: ColumnValues
        switch (type.storage, value) {
        case (.int64, .int(let v)?): values = .int64([Int64](repeating: v, count: n))
        case (.int32, .int(let v)?): values = .int32([Int32](repeating: Int32(truncatingIfNeeded: v), count: n))
        case (.double, .double(let v)?): values = .double([Double](repeating: v, count: n))
        case (.bool, .bool(let v)?): values = .bool([Bool](repeating: v, count: n))
        case (.bytes, .bytes(let b)?):
            var s = StringColumn()
            s.reserveCapacity(values: n, bytes: n * b.count)
            for _ in 0..<n { s.append(bytes: b) }
            values = .bytes(s)
        case (.int64, _): values = .int64([Int64](repeating: 0, count: n))
        case (.int32, _): values = .int32([Int32](repeating: 0, count: n))
        case (.double, _): values = .double([Double](repeating: 0, count: n))
        case (.bool, _): values = .bool([Bool](repeating: false, count: n))
        case (.bytes, _):
            var s = StringColumn()
            for _ in 0..<n { s.append(bytes: EmptyCollection()) }
            values = .bytes(s)
        }
        return Kernel.column(type, values, validity)
    }

    /// Rows `indices` of `column`, in that order.
    static func take(_ column: Column, _ indices: [Int]) -> Column {
        let validity = column.validity.map { v in indices.map { v[$0] } }
        let values: ColumnValues
        switch column.values {
        case .int64(let v): values = .int64(indices.map { v[$0] })
        case .int32(let v): values = .int32(indices.map { v[$0] })
        case .double(let v): values = .double(indices.map { v[$0] })
        case .bool(let v): values = .bool(indices.map { v[$0] })
        case .bytes(let s):
            values = .bytes(takeStrings(s, indices))
        }
        return Kernel.column(column.type, values, validity)
    }

    /// Row `i` of the result is row `local[i]` of `sources[choice[i]]`, or null
    /// when `choice[i]` is -1. All sources have `type`.
    static func pick(_ type: ColumnType, _ sources: [Column], _ choice: [Int], _ local: [Int]) -> Column {
        let n = choice.count
        var validity = [Bool](repeating: false, count: n)
        for i in 0..<n where choice[i] >= 0 {
            validity[i] = !sources[choice[i]].isNull(local[i])
        }
        func gather<T>(_ zero: T, _ arrays: [[T]]) -> [T] {
            var out = [T](repeating: zero, count: n)
            for i in 0..<n where validity[i] { out[i] = arrays[choice[i]][local[i]] }
            return out
        }
        let values: ColumnValues
        switch type.storage {
        case .int64:
            values = .int64(gather(0, sources.map { if case .int64(let v) = $0.values { return v } else { return [] } }))
        case .int32:
            values = .int32(gather(0, sources.map { if case .int32(let v) = $0.values { return v } else { return [] } }))
        case .double:
            values = .double(gather(0, sources.map { if case .double(let v) = $0.values { return v } else { return [] } }))
        case .bool:
            values = .bool(gather(false, sources.map { if case .bool(let v) = $0.values { return v } else { return [] } }))
        case .bytes:
            let strings = sources.map { if case .bytes(let s) = $0.values { return s } else { return StringColumn() } }
            var out = StringColumn()
            for i in 0..<n {
                if validity[i] { out.append(bytes: strings[choice[i]].bytes(at: local[i])) } else { out.append(bytes: EmptyCollection()) }
            }
            values = .bytes(out)
        }
        return Kernel.column(type, values, validity)
    }

    /// Builds a column, zeroing the slots under nulls as Columnar expects.
    static func column(_ type: ColumnType, _ values: ColumnValues, _ validity: [Bool]?) -> Column {
        var values = values
        if let validity, validity.contains(false) {
            switch values {
            case .int64(var v):
                for i in v.indices where !validity[i] { v[i] = 0 }
                values = .int64(v)
            case .int32(var v):
                for i in v.indices where !validity[i] { v[i] = 0 }
                values = .int32(v)
            case .double(var v):
                for i in v.indices where !validity[i] { v[i] = 0 }
                values = .double(v)
            case .bool(var v):
                for i in v.indices where !validity[i] { v[i] = false }
                values = .bool(v)
            case .bytes(let s):
                if (0..<s.count).contains(where: { !validity[$0] && s.length(at: $0) > 0 }) {
                    var out = StringColumn()
                    out.reserveCapacity(values: s.count, bytes: s.bytes.count)
                    for i in 0..<s.count {
                        if validity[i] { out.append(bytes: s.bytes(at: i)) } else { out.append(bytes: EmptyCollection()) }
                    }
                    values = .bytes(out)
                }
            }
        }
        // Safe: every caller pairs a type with its own storage and a full-length mask.
        return try! Column(type, values, validity: validity)
    }

    /// Scale of an int64-backed numeric operand: a decimal's scale, 0 for ints.
    static func numericScale(_ t: ColumnType) -> Int {
        if case .decimal(_, let s) = t { return s }
        return 0
    }
}
