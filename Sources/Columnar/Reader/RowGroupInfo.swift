/// Min, max and null count of one column chunk, as the file states them.
/// Dates, timestamps (µs) and decimals (unscaled) are `.int`.
public struct ColumnStatistics: Sendable, Hashable {
    public let min: Scalar?
    public let max: Scalar?
    public let nullCount: Int64?
}

/// What the footer says about one column chunk.
public struct ColumnChunkInfo: Sendable {
    public let name: String
    public let physicalType: String
    public let codec: String
    public let encodings: [String]
    public let numValues: Int64
    public let compressedBytes: Int64
    public let uncompressedBytes: Int64
    public let dataPageOffset: Int64
    public let dictionaryPageOffset: Int64?
    public let statistics: ColumnStatistics?
}

/// What the footer says about one row group.
public struct RowGroupInfo: Sendable {
    public let index: Int
    public let rowCount: Int64
    public let compressedBytes: Int64
    public let uncompressedBytes: Int64
    /// One per schema column, in schema order.
    public let columns: [ColumnChunkInfo]

    public func column(_ name: String) -> ColumnChunkInfo? {
        columns.first { $0.name == name }
    }
}

/// A test on row-group statistics: false means no row of the group can
/// match, so the group is skipped. Missing statistics never skip.
public struct RowGroupPredicate: Sendable {
    private let test: @Sendable (RowGroupInfo) -> Bool

    public init(_ test: @escaping @Sendable (RowGroupInfo) -> Bool) {
        self.test = test
    }

    public func mayMatch(_ group: RowGroupInfo) -> Bool { test(group) }

    /// Groups where `column` may hold a value in `lower...upper` (either
    /// bound may be open). Dates, timestamps and decimals compare as their
    /// stored integers (days, µs, unscaled).
    public static func overlaps(_ column: String, _ lower: Scalar?, _ upper: Scalar?) -> RowGroupPredicate {
        RowGroupPredicate { group in
            guard let chunk = group.column(column), let stats = chunk.statistics else { return true }
            if let nulls = stats.nullCount, nulls == group.rowCount, group.rowCount > 0 { return false }
            if let lower, let max = stats.max, let c = Scalar.compare(max, lower), c < 0 { return false }
            if let upper, let min = stats.min, let c = Scalar.compare(min, upper), c > 0 { return false }
            return true
        }
    }

    public static func all(_ predicates: [RowGroupPredicate]) -> RowGroupPredicate {
        RowGroupPredicate { g in predicates.allSatisfy { $0.mayMatch(g) } }
    }
}
