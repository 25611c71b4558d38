import Columnar

/// Normalize's column operations as plain functions over a batch. Each works
/// on the column buffers directly (one typed loop per column, no boxed
/// values per row) and returns a new batch; errors name the column.
public enum ColumnOperations {
    /// Renames columns (`from` → `to`), keeping their place. Fails on a name
    /// the batch lacks, on two renames of one column, and on a result with a
    /// name twice (renaming onto another column that keeps its name).
    public static func rename(_ batch: ColumnBatch, _ pairs: [(from: String, to: String)]) throws -> ColumnBatch {
        var fields = batch.schema.fields
        var renamed = Set<String>()
        for (from, to) in pairs {
            let i = try batch.requireColumn(from, "rename \(from) → \(to)")
            guard renamed.insert(from).inserted else {
                throw OperatorError.invalidSetting("rename: column '\(from)' is renamed twice")
            }
            guard !to.isEmpty else { throw OperatorError.invalidSetting("rename: '\(from)' to an empty name") }
            fields[i].name = to
        }
        var seen = Set<String>()
        for f in fields where !seen.insert(f.name).inserted {
            throw OperatorError.duplicateColumn(f.name, context: "rename")
        }
        return try ColumnBatch(schema: Schema(fields), columns: batch.columns)
    }

    /// Keeps only `columns`, in the order given.
    public static func select(_ batch: ColumnBatch, _ columns: [String]) throws -> ColumnBatch {
        var seen = Set<String>()
        let indices = try columns.map { name -> Int in
            guard seen.insert(name).inserted else { throw OperatorError.duplicateColumn(name, context: "select") }
            return try batch.requireColumn(name, "select")
        }
        return try ColumnBatch(schema: Schema(indices.map { batch.schema.fields[$0] }),
                               columns: indices.map { batch.columns[$0] })
    }

    /// Removes `columns`; each must exist.
    public static func drop(_ batch: ColumnBatch, _ columns: [String]) throws -> ColumnBatch {
        var gone = Set<Int>()
        for name in columns { gone.insert(try batch.requireColumn(name, "drop")) }
        let keep = batch.schema.fields.indices.filter { !gone.contains($0) }
        return try ColumnBatch(schema: Schema(keep.map { batch.schema.fields[$0] }), columns: keep.map { batch.columns[$0] })
    }

    /// Replaces the nulls of `column` with `value`, which must fit its type
    /// (`.int` for integers, dates, timestamps and unscaled decimals).
    public static func fillNull(_ batch: ColumnBatch, column name: String, with value: Scalar) throws -> ColumnBatch {
        let i = try batch.requireColumn(name, "fill_null")
        let column = batch.columns[i]
        guard let validity = column.validity else { return batch }
        let wrong = OperatorError.wrongType(
            column: name, type: column.type, expected: "a fill value of its own type, got \(value)", context: "fill_null")
        let values: ColumnValues
        switch (column.values, value) {
        case (.int64(var v), .int(let x)):
            for r in v.indices where !validity[r] { v[r] = x }
            values = .int64(v)
        case (.int32(var v), .int(let x)):
            guard let x32 = Int32(exactly: x) else { throw wrong }
            for r in v.indices where !validity[r] { v[r] = x32 }
            values = .int32(v)
        case (.double(var v), .double(let x)):
            for r in v.indices where !validity[r] { v[r] = x }
            values = .double(v)
        case (.bool(var v), .bool(let x)):
            for r in v.indices where !validity[r] { v[r] = x }
            values = .bool(v)
        case (.bytes(let s), .bytes(let x)):
            var out = StringColumn()
            out.reserveCapacity(values: s.count, bytes: s.bytes.count + x.count * column.nullCount)
            for r in 0..<s.count {
                if validity[r] { out.append(bytes: s.bytes(at: r)) } else { out.append(bytes: x) }
            }
            values = .bytes(out)
        default:
            throw wrong
        }
        if case .decimal(let p, _) = column.type, case .int(let x) = value {
            var limit: Int64 = 1
            for _ in 0..<p { limit *= 10 }
            guard x.magnitude < UInt64(limit) else { throw wrong }
        }
        return try replacing(batch, at: i, with: try Column(column.type, values))
    }

    /// Removes ASCII whitespace (space, \t, \n, \v, \f, \r) from both ends of
    /// each value of string `columns`. Other Unicode spaces (U+00A0, U+3000)
    /// are kept: they are data more often than padding.
    public static func trim(_ batch: ColumnBatch, _ columns: [String]) throws -> ColumnBatch {
        try mapStrings(batch, columns, "trim") { bytes, out in
            var a = bytes.startIndex, b = bytes.endIndex
            while a < b, isASCIISpace(bytes[a]) { a += 1 }
            while b > a, isASCIISpace(bytes[b - 1]) { b -= 1 }
            out.append(bytes: bytes[a..<b])
        }
    }

    /// Upper-cases string `columns`, Unicode-correct: ASCII values take a byte
    /// loop; others go through Swift's `uppercased()`, the full Unicode case
    /// mapping without locale ("ß" → "SS", "ﬁ" → "FI"), so a value can grow.
    /// Invalid UTF-8 in a non-ASCII value becomes U+FFFD.
    public static func upper(_ batch: ColumnBatch, _ columns: [String]) throws -> ColumnBatch {
        try mapStrings(batch, columns, "upper") { bytes, out in
            if bytes.allSatisfy({ $0 < 0x80 }) {
                out.append(bytes: bytes.lazy.map { (0x61...0x7A).contains($0) ? $0 - 0x20 : $0 })
            } else {
                out.append(String(decoding: bytes, as: UTF8.self).uppercased())
            }
        }
    }

    /// Lower-cases string `columns`, Unicode-correct like `upper` ("Σ" → "σ"
    /// everywhere: the mapping has no final-sigma context).
    public static func lower(_ batch: ColumnBatch, _ columns: [String]) throws -> ColumnBatch {
        try mapStrings(batch, columns, "lower") { bytes, out in
            if bytes.allSatisfy({ $0 < 0x80 }) {
                out.append(bytes: bytes.lazy.map { (0x41...0x5A).contains($0) ? $0 + 0x20 : $0 })
            } else {
                out.append(String(decoding: bytes, as: UTF8.self).lowercased())
            }
        }
    }

    @inline(__always)
    static func isASCIISpace(_ b: UInt8) -> Bool {
        b == 0x20 || (0x09...0x0D).contains(b)
    }

    /// Rewrites each non-null value of string `columns`; nulls stay null.
    private static func mapStrings(
        _ batch: ColumnBatch, _ columns: [String], _ op: String,
        _ transform: (ArraySlice<UInt8>, inout StringColumn) -> Void
    ) throws -> ColumnBatch {
        var result = batch
        for name in columns {
            let i = try batch.requireColumn(name, op)
            let column = batch.columns[i]
            guard case .bytes(let s) = column.values else {
                throw OperatorError.wrongType(column: name, type: column.type, expected: "string", context: op)
            }
            var out = StringColumn()
            out.reserveCapacity(values: s.count, bytes: s.bytes.count)
            for r in 0..<s.count {
                if column.validity?[r] == false { out.append(bytes: EmptyCollection<UInt8>()) } else {
                    transform(s.bytes(at: r), &out)
                }
            }
            result = try replacing(result, at: i, with: try Column(column.type, .bytes(out), validity: column.validity))
        }
        return result
    }

    /// `batch` with column `i` replaced (same name and nullability).
    static func replacing(_ batch: ColumnBatch, at i: Int, with column: Column) throws -> ColumnBatch {
        var columns = batch.columns
        columns[i] = column
        var fields = batch.schema.fields
        fields[i].type = column.type
        return try ColumnBatch(schema: Schema(fields), columns: columns)
    }
}
