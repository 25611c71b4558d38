/// `consolidate:` how normalized rows are partitioned, merged, sorted and
/// de-duplicated.
public struct ConsolidateSpec: Sendable, Hashable {
    /// Rows are hash-partitioned on these columns during normalize.
    public var partitionBy: [String]
    /// How many partitions (1...4096).
    public var partitions: Int
    /// Sort order of each partition's output; empty when not given.
    public var sortBy: [String]
    public var dedupe: DedupeSpec?
    /// Memory a consolidate task may use before it spills.
    public var memoryBudget: ByteSize
    public var location: SpecLocation

    public init(partitionBy: [String], partitions: Int, sortBy: [String] = [], dedupe: DedupeSpec? = nil,
                memoryBudget: ByteSize = ConsolidateSpec.defaultMemoryBudget, location: SpecLocation) {
        self.partitionBy = partitionBy
        self.partitions = partitions
        self.sortBy = sortBy
        self.dedupe = dedupe
        self.memoryBudget = memoryBudget
        self.location = location
    }

    public static let defaultMemoryBudget = ByteSize.mebibytes(512)
    public static let partitionRange = 1...4096
}

/// `dedupe:` rows with equal record keys are duplicates; one is kept.
/// The key always contains every partition column (checked at load), so
/// duplicates meet in one partition.
public struct DedupeSpec: Sendable, Hashable {
    public var key: [String]
    public var keep: DedupeKeep

    public init(key: [String], keep: DedupeKeep) {
        self.key = key
        self.keep = keep
    }
}

/// Which duplicate survives.
public enum DedupeKeep: Sendable, Hashable {
    /// The first in input order (by source file, then line).
    case first
    /// The one with the greatest value of the column (`by:`, null lowest);
    /// among equal values the last in input order wins (the consolidate
    /// operator's rule: a later load replaces an earlier one).
    case latest(by: String)
}
