#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Columnar
import Foundation

/// An aggregate function of a summary.
public enum AggregateOp: Sendable, Hashable, Codable {
    /// count(): rows.
    case count
    /// count(col): non-null values.
    case countNonNull(String)
    /// count(DISTINCT col): distinct non-null values.
    case countDistinct(String)
    /// sum(col) of int32/int64 (int64 result), decimal(p,s) (decimal(18,s),
    /// exact) or double. Null when the group has no non-null value. An exact
    /// sum that leaves the result's range is an error, never a wrap.
    case sum(String)
    /// min/max of any type, in `SortKeys` order; null when all null.
    case min(String)
    case max(String)
    /// avg(col) as a double; carried as an exact sum and a count until the end.
    case avg(String)

    var column: String? {
        switch self {
        case .count: return nil
        case .countNonNull(let c), .countDistinct(let c), .sum(let c), .min(let c), .max(let c), .avg(let c): return c
        }
    }

    var sqlName: String {
        switch self {
        case .count: return "count()"
        case .countNonNull(let c): return "count(\(c))"
        case .countDistinct(let c): return "count_distinct(\(c))"
        case .sum(let c): return "sum(\(c))"
        case .min(let c): return "min(\(c))"
        case .max(let c): return "max(\(c))"
        case .avg(let c): return "avg(\(c))"
        }
    }
}

/// A named output column of a summary: `revenue: sum(revenue)`.
public struct AggregateColumn: Sendable, Hashable, Codable {
    public var name: String
    public var function: AggregateOp

    public init(_ name: String, _ function: AggregateOp) {
        self.name = name
        self.function = function
    }
}

/// The running state of one aggregate in one group. Each merges
/// associatively and commutatively (double sums up to rounding).
public enum AggregateState: Sendable, Equatable, Codable {
    case count(Int64)
    /// Exact sum of integers or unscaled decimals; nil before the first value.
    case sumExact(Int64?)
    case sumDouble(Double?)
    case extreme(GroupValue)
    case avgExact(sum: Int64, count: Int64)
    case avgDouble(sum: Double, count: Int64)
    /// The distinct non-null values seen. Memory: every distinct value of the
    /// group is held until the end (one `GroupValue` each); the JSON lists
    /// them sorted so equal partials encode equally.
    case distinct(Set<GroupValue>)

    private enum CodingKeys: String, CodingKey { case kind, value, sum, count, values }

    /// Doubles compare by bits, so a NaN sum equals itself (a partial must
    /// equal its own JSON round trip).
    public static func == (a: AggregateState, b: AggregateState) -> Bool {
        func same(_ x: Double?, _ y: Double?) -> Bool { x?.bitPattern == y?.bitPattern }
        switch (a, b) {
        case (.count(let x), .count(let y)): return x == y
        case (.sumExact(let x), .sumExact(let y)): return x == y
        case (.sumDouble(let x), .sumDouble(let y)): return same(x, y)
        case (.extreme(let x), .extreme(let y)): return x == y
        case (.avgExact(let s1, let n1), .avgExact(let s2, let n2)): return s1 == s2 && n1 == n2
        case (.avgDouble(let s1, let n1), .avgDouble(let s2, let n2)): return same(s1, s2) && n1 == n2
        case (.distinct(let x), .distinct(let y)): return x == y
        default: return false
        }
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        switch try c.decode(String.self, forKey: .kind) {
        case "count": self = .count(try c.decode(Int64.self, forKey: .value))
        case "sum_exact": self = .sumExact(try c.decodeIfPresent(Int64.self, forKey: .value))
        case "sum_double": self = .sumDouble(try c.decodeIfPresent(Double.self, forKey: .value))
        case "extreme": self = .extreme(try c.decode(GroupValue.self, forKey: .value))
        case "avg_exact": self = .avgExact(sum: try c.decode(Int64.self, forKey: .sum), count: try c.decode(Int64.self, forKey: .count))
        case "avg_double": self = .avgDouble(sum: try c.decode(Double.self, forKey: .sum), count: try c.decode(Int64.self, forKey: .count))
        case "distinct": self = .distinct(Set(try c.decode([GroupValue].self, forKey: .values)))
        case let k: throw DecodingError.dataCorruptedError(forKey: .kind, in: c, debugDescription: "unknown aggregate state '\(k)'")
        }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        switch self {
        case .count(let n): try c.encode("count", forKey: .kind); try c.encode(n, forKey: .value)
        case .sumExact(let s): try c.encode("sum_exact", forKey: .kind); try c.encodeIfPresent(s, forKey: .value)
        case .sumDouble(let s): try c.encode("sum_double", forKey: .kind); try c.encodeIfPresent(s, forKey: .value)
        case .extreme(let v): try c.encode("extreme", forKey: .kind); try c.encode(v, forKey: .value)
        case .avgExact(let s, let n):
            try c.encode("avg_exact", forKey: .kind); try c.encode(s, forKey: .sum); try c.encode(n, forKey: .count)
        case .avgDouble(let s, let n):
            try c.encode("avg_double", forKey: .kind); try c.encode(s, forKey: .sum); try c.encode(n, forKey: .count)
        case .distinct(let set): try c.encode("distinct", forKey: .kind); try c.encode(set.sorted(), forKey: .values)
        }
    }
}

/// Group-by partial aggregates of one partition, mergeable into the run's
/// result: `merge(a, merge(b, c)) == merge(merge(a, b), c)`, and merging the
/// partials of any split of the rows equals aggregating them all (exactly,
/// except double sums and averages, which differ by rounding).
///
/// Groups are keyed by the values of the group-by columns; null is a group
/// of its own (SQL's GROUP BY). Memory: one entry per group, plus for
/// count_distinct every distinct value per group. Serialize with
/// `jsonBytes()` / `init(json:)` (Codable; groups sorted by key).
public struct PartialAggregate: Sendable, Codable {
    public let groupBy: [String]
    public let aggregates: [AggregateColumn]
    /// Types of the group-by columns.
    private let groupTypes: [CodableColumnType]
    /// Type of each aggregate's argument column (nil for count()).
    private let argumentTypes: [CodableColumnType?]
    private var keys: [[GroupValue]] = []
    private var states: [[AggregateState]] = []
    private var index: [[GroupValue]: Int] = [:]
    /// Groups by the stable hash of their key (the hash `StableHash` gives
    /// the rows), so `add` finds a row's group without building its key.
    private var byHash: [UInt64: [Int]] = [:]

    private enum CodingKeys: String, CodingKey { case groupBy, aggregates, groupTypes, argumentTypes, keys, states }

    /// An empty partial for rows of `schema`. Checks that every column
    /// exists and fits its function (sum and avg need numbers).
    public init(groupBy: [String], aggregates: [AggregateColumn], schema: Schema) throws {
        self.groupBy = groupBy
        self.aggregates = aggregates
        groupTypes = try groupBy.map { CodableColumnType(schema.fields[try schema.requireColumn($0, "group_by")].type) }
        var seen = Set(groupBy)
        argumentTypes = try aggregates.map { spec in
            guard seen.insert(spec.name).inserted else {
                throw OperatorError.duplicateColumn(spec.name, context: "summary")
            }
            guard let c = spec.function.column else { return nil }
            let type = schema.fields[try schema.requireColumn(c, "aggregate '\(spec.name)': \(spec.function.sqlName)")].type
            switch spec.function {
            case .sum, .avg:
                switch type {
                case .int64, .int32, .decimal, .double: break
                default:
                    throw OperatorError.wrongType(column: c, type: type, expected: "a number (int32, int64, decimal or double)",
                                                  context: "aggregate '\(spec.name)': \(spec.function.sqlName)")
                }
            default: break
            }
            return CodableColumnType(type)
        }
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        groupBy = try c.decode([String].self, forKey: .groupBy)
        aggregates = try c.decode([AggregateColumn].self, forKey: .aggregates)
        groupTypes = try c.decode([CodableColumnType].self, forKey: .groupTypes)
        argumentTypes = try c.decode([CodableColumnType?].self, forKey: .argumentTypes)
        keys = try c.decode([[GroupValue]].self, forKey: .keys)
        states = try c.decode([[AggregateState]].self, forKey: .states)
        guard keys.count == states.count, states.allSatisfy({ $0.count == aggregates.count }),
              keys.allSatisfy({ $0.count == groupBy.count }) else {
            throw DecodingError.dataCorrupted(.init(codingPath: [], debugDescription: "partial aggregate: keys and states disagree"))
        }
        for (i, k) in keys.enumerated() {
            index[k] = i
            byHash[keyHash(k), default: []].append(i)
        }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(groupBy, forKey: .groupBy)
        try c.encode(aggregates, forKey: .aggregates)
        try c.encode(groupTypes, forKey: .groupTypes)
        try c.encode(argumentTypes, forKey: .argumentTypes)
        let order = sortedGroups()
        try c.encode(order.map { keys[$0] }, forKey: .keys)
        try c.encode(order.map { states[$0] }, forKey: .states)
    }

    /// The partial as JSON with sorted keys: equal partials give equal bytes.
    public func jsonBytes() throws -> [UInt8] {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        e.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return Array(try e.encode(self))
    }

    public init(json: [UInt8]) throws {
        let d = JSONDecoder()
        d.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        self = try d.decode(PartialAggregate.self, from: Data(json))
    }

    public var groupCount: Int { keys.count }

    private func sortedGroups() -> [Int] {
        keys.indices.sorted { a, b in
            for (x, y) in zip(keys[a], keys[b]) {
                let c = GroupValue.compare(x, y)
                if c != 0 { return c < 0 }
            }
            return false
        }
    }

    private func initialState(_ a: Int) -> AggregateState {
        switch aggregates[a].function {
        case .count, .countNonNull: return .count(0)
        case .countDistinct: return .distinct([])
        case .sum: return argumentTypes[a]?.type == .double ? .sumDouble(nil) : .sumExact(nil)
        case .min, .max: return .extreme(.null)
        case .avg: return argumentTypes[a]?.type == .double ? .avgDouble(sum: 0, count: 0) : .avgExact(sum: 0, count: 0)
        }
    }

    private mutating func group(_ key: [GroupValue], hash: UInt64? = nil) -> Int {
        if let g = index[key] { return g }
        let g = keys.count
        keys.append(key)
        states.append(aggregates.indices.map(initialState))
        index[key] = g
        byHash[hash ?? keyHash(key), default: []].append(g)
        return g
    }

    /// The stable hash of a group key, equal to `StableHash.rowHashes` of a
    /// row holding it. (0 only for keys that do not fit their types, which
    /// only a damaged JSON partial could hold.)
    private func keyHash(_ key: [GroupValue]) -> UInt64 {
        (try? StableHash.hash(zip(groupTypes, key).map { ($0.type, $1.scalar) })) ?? 0
    }

    @inline(__always)
    private mutating func bump(_ g: Int, _ a: Int) {
        if case .count(let n) = states[g][a] { states[g][a] = .count(n + 1) }
    }

    @inline(__always)
    private mutating func addExact(_ g: Int, _ a: Int, _ x: Int64) throws {
        switch states[g][a] {
        case .sumExact(let s): states[g][a] = .sumExact(try s.map { try exactAdd($0, x, a) } ?? x)
        case .avgExact(let s, let n): states[g][a] = .avgExact(sum: try exactAdd(s, x, a), count: n + 1)
        default: break
        }
    }

    @inline(__always)
    private mutating func addDouble(_ g: Int, _ a: Int, _ x: Double) {
        switch states[g][a] {
        case .sumDouble(let s): states[g][a] = .sumDouble((s ?? 0) + x)
        case .avgDouble(let s, let n): states[g][a] = .avgDouble(sum: s + x, count: n + 1)
        default: break
        }
    }

    @inline(__always)
    private mutating func insertDistinct(_ g: Int, _ a: Int, _ v: GroupValue) {
        guard case .distinct(var set) = states[g][a] else { return }
        states[g][a] = .count(0)  // drop the array's reference so the set is unique
        set.insert(v)
        states[g][a] = .distinct(set)
    }

    /// Adds the rows of `batch` (which must hold the group-by and argument columns).
    public mutating func add(_ batch: ColumnBatch) throws {
        guard batch.rowCount > 0 else { return }
        let groupColumns = try groupBy.map { batch.columns[try batch.requireColumn($0, "group_by")] }
        for (name, (column, type)) in zip(groupBy, zip(groupColumns, groupTypes)) where column.type != type.type {
            throw OperatorError.wrongType(column: name, type: column.type, expected: "\(type.type) as when the partial was made",
                                          context: "group_by")
        }
        // A row's group: look its hash up and compare values in place; a
        // key is built only for a new group.
        let hashes = try StableHash.rowHashes(batch, columns: groupBy)
        var rowGroup = [Int](repeating: 0, count: batch.rowCount)
        for r in 0..<batch.rowCount {
            var found = -1
            if let candidates = byHash[hashes[r]] {
                for g in candidates where zip(keys[g], groupColumns).allSatisfy({ $0.matches($1, r) }) {
                    found = g
                    break
                }
            }
            rowGroup[r] = found >= 0 ? found : group(groupColumns.map { GroupValue($0, r) }, hash: hashes[r])
        }
        for a in aggregates.indices {
            let spec = aggregates[a]
            guard let name = spec.function.column else {
                for g in rowGroup { bump(g, a) }
                continue
            }
            let column = batch.columns[try batch.requireColumn(name, "aggregate '\(spec.name)'")]
            guard column.type == argumentTypes[a]?.type else {
                throw OperatorError.wrongType(column: name, type: column.type, expected: "\(argumentTypes[a]!.type) as when the partial was made",
                                              context: "aggregate '\(spec.name)'")
            }
            let valid = column.validity
            switch (spec.function, column.values) {
            case (.countNonNull, _):
                for r in 0..<batch.rowCount where valid?[r] ?? true { bump(rowGroup[r], a) }
            case (.countDistinct, _):
                for r in 0..<batch.rowCount where valid?[r] ?? true { insertDistinct(rowGroup[r], a, GroupValue(column, r)) }
            case (.sum, .int64(let v)), (.avg, .int64(let v)):
                for r in 0..<batch.rowCount where valid?[r] ?? true { try addExact(rowGroup[r], a, v[r]) }
            case (.sum, .int32(let v)), (.avg, .int32(let v)):
                for r in 0..<batch.rowCount where valid?[r] ?? true { try addExact(rowGroup[r], a, Int64(v[r])) }
            case (.sum, .double(let v)), (.avg, .double(let v)):
                for r in 0..<batch.rowCount where valid?[r] ?? true { addDouble(rowGroup[r], a, v[r]) }
            default:
                for r in 0..<batch.rowCount where valid?[r] ?? true {
                    let g = rowGroup[r]
                    states[g][a] = try combine(states[g][a], single(spec.function, column, r), a)
                }
            }
        }
    }

    /// The state of one non-null value.
    private func single(_ f: AggregateOp, _ column: Column, _ r: Int) -> AggregateState {
        switch f {
        case .count, .countNonNull: return .count(1)
        case .countDistinct: return .distinct([GroupValue(column, r)])
        case .min, .max: return .extreme(GroupValue(column, r))
        case .sum, .avg:
            let exact: Int64
            switch column.values {
            case .double(let v):
                if case .sum = f { return .sumDouble(v[r]) }
                return .avgDouble(sum: v[r], count: 1)
            case .int64(let v): exact = v[r]
            case .int32(let v): exact = Int64(v[r])
            default: preconditionFailure("sum over a non-number was refused at init")
            }
            if case .sum = f { return .sumExact(exact) }
            return .avgExact(sum: exact, count: 1)
        }
    }

    /// Merges two states of aggregate `a`.
    private func combine(_ x: AggregateState, _ y: AggregateState, _ a: Int) throws -> AggregateState {
        let spec = aggregates[a]
        switch (x, y) {
        case (.count(let p), .count(let q)): return .count(p + q)
        case (.sumExact(let p), .sumExact(let q)):
            guard let p else { return .sumExact(q) }
            guard let q else { return .sumExact(p) }
            return .sumExact(try exactAdd(p, q, a))
        case (.sumDouble(let p), .sumDouble(let q)):
            guard let p else { return .sumDouble(q) }
            guard let q else { return .sumDouble(p) }
            return .sumDouble(p + q)
        case (.extreme(let p), .extreme(let q)):
            if p == .null { return y }
            if q == .null { return x }
            let c = GroupValue.compare(p, q)
            if case .min = spec.function { return c <= 0 ? x : y }
            return c >= 0 ? x : y
        case (.avgExact(let s1, let n1), .avgExact(let s2, let n2)):
            return .avgExact(sum: try exactAdd(s1, s2, a), count: n1 + n2)
        case (.avgDouble(let s1, let n1), .avgDouble(let s2, let n2)):
            return .avgDouble(sum: s1 + s2, count: n1 + n2)
        case (.distinct(var p), .distinct(let q)):
            if p.count < q.count { return .distinct(q.union(p)) }
            p.formUnion(q)
            return .distinct(p)
        default:
            throw OperatorError.invalidSetting("aggregate '\(spec.name)': partial states of different kinds cannot merge")
        }
    }

    /// Int64 addition that refuses overflow, and for decimals also a result
    /// past 18 digits (the result type is decimal(18,s)).
    private func exactAdd(_ p: Int64, _ q: Int64, _ a: Int) throws -> Int64 {
        let (s, overflow) = p.addingReportingOverflow(q)
        var bad = overflow
        if case .decimal = argumentTypes[a]?.type, s.magnitude > 999_999_999_999_999_999 { bad = true }
        guard !bad else {
            throw OperatorError.overflow(column: aggregates[a].function.column ?? aggregates[a].name,
                                         context: "aggregate '\(aggregates[a].name)'")
        }
        return s
    }

    /// Adds `other`'s groups into this one. Both must aggregate the same way.
    public mutating func merge(_ other: PartialAggregate) throws {
        guard groupBy == other.groupBy, aggregates == other.aggregates, groupTypes == other.groupTypes,
              argumentTypes == other.argumentTypes else {
            throw OperatorError.invalidSetting("cannot merge partial aggregates of different group-by columns, aggregates or types")
        }
        for (k, key) in other.keys.enumerated() {
            let g = group(key)
            for a in aggregates.indices { states[g][a] = try combine(states[g][a], other.states[k][a], a) }
        }
    }

    public func merging(_ other: PartialAggregate) throws -> PartialAggregate {
        var copy = self
        try copy.merge(other)
        return copy
    }

    /// The output schema: the group-by columns, then one column per aggregate.
    public var resultSchema: Schema {
        var fields = zip(groupBy, groupTypes).map { Field($0, $1.type, nullable: true) }
        for (a, spec) in aggregates.enumerated() {
            let arg = argumentTypes[a]?.type
            switch spec.function {
            case .count, .countNonNull, .countDistinct: fields.append(Field(spec.name, .int64, nullable: false))
            case .sum:
                switch arg {
                case .decimal(_, let s): fields.append(Field(spec.name, .decimal(precision: 18, scale: s)))
                case .double: fields.append(Field(spec.name, .double))
                default: fields.append(Field(spec.name, .int64))
                }
            case .min, .max: fields.append(Field(spec.name, arg!))
            case .avg: fields.append(Field(spec.name, .double))
            }
        }
        return Schema(fields)
    }

    /// The final table, one row per group, sorted by the group key (nulls
    /// first, `SortKeys` order), so it is the same whatever order the
    /// partials were merged in. avg of a decimal is sum / count / 10^scale
    /// as a double.
    public func result() throws -> ColumnBatch {
        let schema = resultSchema
        let order = sortedGroups()
        var builders = schema.fields.map { ColumnBuilder($0.type, capacity: order.count) }
        for g in order {
            for (i, v) in keys[g].enumerated() { try builders[i].append(v.scalar) }
            for a in aggregates.indices {
                let b = groupBy.count + a
                switch states[g][a] {
                case .count(let n): try builders[b].append(.int(n))
                case .sumExact(let s): try builders[b].append(s.map { .int($0) })
                case .sumDouble(let s): try builders[b].append(s.map { .double($0) })
                case .extreme(let v): try builders[b].append(v.scalar)
                case .avgExact(let s, let n):
                    var scale = 1.0
                    if case .decimal(_, let sc) = argumentTypes[a]?.type { scale = pow(10, Double(sc)) }
                    try builders[b].append(n == 0 ? nil : .double(Double(s) / Double(n) / scale))
                case .avgDouble(let s, let n): try builders[b].append(n == 0 ? nil : .double(s / Double(n)))
                case .distinct(let set): try builders[b].append(.int(Int64(set.count)))
                }
            }
        }
        return try ColumnBatch(schema: schema, columns: builders.map { $0.build() })
    }
}

extension PartialAggregate: Equatable {
    /// Same aggregation and the same groups with equal states, in any order.
    public static func == (a: PartialAggregate, b: PartialAggregate) -> Bool {
        guard a.groupBy == b.groupBy, a.aggregates == b.aggregates, a.groupTypes == b.groupTypes,
              a.argumentTypes == b.argumentTypes, a.keys.count == b.keys.count else { return false }
        for (k, key) in a.keys.enumerated() {
            guard let j = b.index[key], a.states[k] == b.states[j] else { return false }
        }
        return true
    }
}

/// Aggregates one partition's chunks (read one row group at a time, only the
/// columns needed) into a partial. No chunks give an empty partial.
public func partialAggregate(chunks: [String], groupBy: [String], aggregates: [AggregateColumn]) throws -> PartialAggregate? {
    guard let first = chunks.first else { return nil }
    let schema = try ParquetReader(path: first).schema
    var partial = try PartialAggregate(groupBy: groupBy, aggregates: aggregates, schema: schema)
    var needed = groupBy
    for spec in aggregates { if let c = spec.function.column, !needed.contains(c) { needed.append(c) } }
    for path in chunks {
        try ParquetReader(path: path).forEachRowGroup(columns: needed) { try partial.add($0) }
    }
    return partial
}
