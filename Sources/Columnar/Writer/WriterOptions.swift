/// How a writer lays out and compresses a file. The defaults suit chunk
/// files of a few million rows.
public struct WriterOptions: Sendable {
    public enum Compression: Sendable, Hashable {
        /// One zstd frame per page at this level (1...22; 3 is zstd's default).
        case zstd(level: Int32)
        /// No compression: for tests and debugging.
        case uncompressed
    }

    /// A row group is flushed when it reaches this many rows...
    public var rowGroupRows: Int = 1 << 20
    /// ...or this many bytes of buffered column data, whichever comes first.
    /// This bounds the writer's memory.
    public var rowGroupBytes: Int = 128 << 20
    /// Target size of one page before compression.
    public var pageBytes: Int = 1 << 20
    public var compression: Compression = .zstd(level: 3)
    /// Dictionary-encode columns whose distinct values fit in
    /// `dictionaryPageBytes` and are at most half the values.
    public var dictionary: Bool = true
    public var dictionaryPageBytes: Int = 1 << 20
    public var keyValueMetadata: [KeyValue] = []
    /// A temporary file that only the writing process reads back, such as
    /// a sort's spilled run: no SHA-256 (`WriteResult.sha256` is empty), no
    /// column statistics and no fsync. Never for a chunk that another task,
    /// a reader outside the process, or lineage sees.
    public var scratch: Bool = false
    public var createdBy: String = "bis-fleet version 0.1.0"

    public init() {}
}

public struct KeyValue: Sendable, Hashable {
    public var key: String
    public var value: String

    public init(_ key: String, _ value: String) {
        self.key = key
        self.value = value
    }
}

/// What a finished writer produced: everything a chunk record needs.
public struct WriteResult: Sendable, Hashable {
    public let path: String
    /// Lowercase hex SHA-256 of the whole file.
    public let sha256: String
    public let rows: Int64
    public let bytes: Int64
}
