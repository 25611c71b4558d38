/// `publish:` the dataset the validated rows become, and summary datasets.
public struct PublishSpec: Sendable, Hashable {
    /// Dataset name: lower-case letters, digits, `_` and `-`.
    public var dataset: String
    /// In spec order.
    public var summaries: [SummarySpec]
    /// `provenance: true` keeps the `_source_file` and `_source_line`
    /// columns (see `Provenance`) in the published dataset, so each row can
    /// be traced to its input file and line; by default they are dropped and
    /// the dataset has exactly the normalized columns. Summaries never have them.
    public var provenance: Bool
    /// `keep: N`: versions of the dataset (and of each summary) the
    /// coordinator's retention keeps (`bis gc`); never `CURRENT`'s, nor one a
    /// recent delivery names. 1 to 10000, default 5.
    public var keep: Int
    public var location: SpecLocation
    /// `schema_change:` which differences from CURRENT's schema a new
    /// version may have (the schema contract); `none` unless the spec says.
    public var schemaChange: SchemaChange = .none

    public static let defaultKeep = 5
    public static let keepRange = 1...10_000

    public init(dataset: String, summaries: [SummarySpec], provenance: Bool = false, keep: Int = PublishSpec.defaultKeep,
                location: SpecLocation) {
        self.dataset = dataset
        self.summaries = summaries
        self.provenance = provenance
        self.keep = keep
        self.location = location
    }

    /// `publish: {schema_change: none | additive | any}`: how a new version's
    /// schema (column names, types, nullability, order) may differ from the
    /// one `CURRENT` names. The first version of a dataset sets the contract.
    public enum SchemaChange: String, Sendable, Hashable, CaseIterable {
        /// No difference at all (the default).
        case none
        /// New nullable columns after the existing ones; nothing else changes.
        case additive
        /// Any difference (the contract is off).
        case any
    }
}

/// A group-by summary published as a dataset of its own.
public struct SummarySpec: Sendable, Hashable {
    public var name: String
    public var groupBy: [String]
    /// Output columns in spec order.
    public var aggregates: [AggregateSpec]

    public init(name: String, groupBy: [String], aggregates: [AggregateSpec]) {
        self.name = name
        self.groupBy = groupBy
        self.aggregates = aggregates
    }
}

/// `name: fn(col)`.
public struct AggregateSpec: Sendable, Hashable {
    public var name: String
    public var function: AggregateFunction
    /// Nil only for `count()`, which counts rows.
    public var column: String?

    public init(name: String, function: AggregateFunction, column: String?) {
        self.name = name
        self.function = function
        self.column = column
    }
}

public enum AggregateFunction: String, Sendable, Hashable, CaseIterable {
    /// Numeric columns.
    case sum
    /// `count()` counts rows; `count(col)` counts non-null values.
    case count
    case countDistinct = "count_distinct"
    case min
    case max
    /// Numeric columns.
    case avg
}
