import Columnar

/// One input of a pipeline: which files, how to parse them, and the columns
/// they hold. Ingest maps it to its reader options.
public struct SourceSpec: Sendable, Hashable {
    /// The key under `sources:`.
    public var name: String
    public var format: SourceFormat
    /// The `files:` globs as written, relative to the spec's folder (or
    /// absolute), in order.
    public var files: [FilePattern]
    /// The files the globs matched: absolute, symlinks resolved, sorted and
    /// without repeats. Empty until `PipelineSpec.resolveInputs()` has run
    /// (`PipelineSpec.load` runs it unless told not to).
    public var resolvedFiles: [String]
    /// The declared columns in declared order (the YAML mapping's order).
    public var schema: Schema
    /// Parsing options for `format: csv`; nil for JSON Lines and Parquet.
    public var csv: CSVOptions?
    /// What to do when a file lacks a declared column.
    public var missingColumns: MissingColumnsPolicy
    /// What to do when a file has a column the spec does not name.
    public var extraColumns: ExtraColumnsPolicy
    /// Files larger than this are split into byte-range shards (CSV and
    /// JSON Lines; a Parquet file is split into its row groups).
    public var shardSize: ByteSize
    /// Where the source is declared (its key).
    public var location: SpecLocation

    public init(name: String, format: SourceFormat, files: [FilePattern], resolvedFiles: [String] = [],
                schema: Schema, csv: CSVOptions?, missingColumns: MissingColumnsPolicy = .error,
                extraColumns: ExtraColumnsPolicy = .error, shardSize: ByteSize = SourceSpec.defaultShardSize,
                location: SpecLocation) {
        self.name = name
        self.format = format
        self.files = files
        self.resolvedFiles = resolvedFiles
        self.schema = schema
        self.csv = csv
        self.missingColumns = missingColumns
        self.extraColumns = extraColumns
        self.shardSize = shardSize
        self.location = location
    }

    public static let defaultShardSize = ByteSize.mebibytes(64)
}

/// The input formats ingest reads.
public enum SourceFormat: String, Sendable, Hashable, CaseIterable {
    /// Comma (or other single-byte) separated values, RFC 4180 quoting.
    case csv
    /// One JSON object per line; keys are column names.
    case jsonl
    /// Parquet files from other systems: columns taken by name and
    /// converted to the declared types; each row group is a shard.
    case parquet
}

/// One entry of `files:` as written, with its place in the spec.
public struct FilePattern: Sendable, Hashable {
    public var pattern: String
    public var location: SpecLocation

    public init(_ pattern: String, location: SpecLocation) {
        self.pattern = pattern
        self.location = location
    }
}

/// How a CSV source is parsed. Defaults: a header line, `,` between fields,
/// `"` around quoted fields, and `""`, `NA`, `NULL` read as null.
public struct CSVOptions: Sendable, Hashable {
    /// Whether the first line names the columns. Without a header the
    /// declared columns are taken in order.
    public var header: Bool
    /// The byte between fields.
    public var delimiter: UInt8
    /// The byte around quoted fields; a doubled quote inside is one quote.
    public var quote: UInt8
    /// Unquoted field texts that mean null.
    public var nulls: [String]

    public init(header: Bool = true, delimiter: UInt8 = UInt8(ascii: ","), quote: UInt8 = UInt8(ascii: "\""),
                nulls: [String] = CSVOptions.defaultNulls) {
        self.header = header
        self.delimiter = delimiter
        self.quote = quote
        self.nulls = nulls
    }

    public static let defaultNulls = ["", "NA", "NULL"]
}

/// `missing_columns:` what ingest does when a file's header (or a JSON
/// object) lacks a declared column.
public enum MissingColumnsPolicy: String, Sendable, Hashable, CaseIterable {
    /// Fail the shard, naming the file and the missing columns (default).
    case error
    /// Read the column as all null.
    case null
}

/// `extra_columns:` what ingest does with columns the spec does not name.
public enum ExtraColumnsPolicy: String, Sendable, Hashable, CaseIterable {
    /// Fail the shard, naming the file and the extra columns (default).
    case error
    /// Skip them.
    case ignore
}
