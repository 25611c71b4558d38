import Columnar

/// How one input file is laid out: its format, the columns it must yield (in
/// declared order, which is also the output chunk's schema) and how to treat
/// nulls and header drift. The pipeline spec maps onto this.
public struct IngestSource: Sendable, Hashable {
    public enum Format: String, Sendable, Hashable {
        /// RFC 4180 CSV: quoted fields, doubled quotes, line breaks inside
        /// quotes, LF or CRLF record ends, an optional UTF-8 BOM.
        case csv
        /// JSON Lines: one object per line, fields by name.
        case jsonl
        /// Parquet from other systems: columns by name, converted to the
        /// declared types (see `ParquetIngest`); a shard is a row group.
        case parquet
    }

    /// What to do when the header lacks a declared column.
    public enum MissingColumns: String, Sendable, Hashable {
        /// Fail the shard with `IngestError.schemaDrift` (the default).
        case error
        /// Fill the column with nulls (the column must be nullable).
        case fillNull
    }

    /// What to do when the header (CSV) or an object (JSON Lines) has a
    /// column the source does not declare.
    public enum ExtraColumns: String, Sendable, Hashable {
        /// CSV: fail with `IngestError.schemaDrift`; JSON Lines: quarantine the row.
        case error
        /// Skip the column.
        case ignore
    }

    public var format: Format
    /// The output schema, in declared order.
    public var columns: [Field]
    /// CSV only: the first record names the columns (in any order, matched
    /// by exact name). Without a header, fields are in declared order.
    public var header: Bool
    /// CSV only: the field separator byte.
    public var delimiter: UInt8
    /// CSV only: the quote byte.
    public var quote: UInt8
    /// CSV only: unquoted field texts read as null. A quoted field is never
    /// a null marker: `""` is an empty string in a string column (and null in
    /// a column of any other type, where an empty text cannot parse).
    public var nullMarkers: [String]
    public var missingColumns: MissingColumns
    public var extraColumns: ExtraColumns

    public init(
        format: Format,
        columns: [Field],
        header: Bool = true,
        delimiter: UInt8 = UInt8(ascii: ","),
        quote: UInt8 = UInt8(ascii: "\""),
        nullMarkers: [String] = ["", "NA", "NULL"],
        missingColumns: MissingColumns = .error,
        extraColumns: ExtraColumns = .error
    ) {
        self.format = format
        self.columns = columns
        self.header = header
        self.delimiter = delimiter
        self.quote = quote
        self.nullMarkers = nullMarkers
        self.missingColumns = missingColumns
        self.extraColumns = extraColumns
    }
}

/// Tuning of one ingest execution. Memory is bounded by `rowGroupRows`
/// (the writer's row group) plus `batchRows` (the batch, and one copy of it
/// kept by the column sinks for the life of the run) and one read block.
public struct IngestOptions: Sendable, Hashable {
    /// Rows per Parquet row group of the output chunk.
    public var rowGroupRows: Int = 1 << 20
    /// Rows parsed before a batch is handed to the writer.
    public var batchRows: Int = 1 << 16
    /// zstd level of the output chunks (1...22).
    public var zstdLevel: Int32 = 3
    /// The longest raw record text kept in a quarantine row, in bytes; longer
    /// text is cut at a UTF-8 character boundary and marked.
    public var quarantineRawLimit: Int = 4096
    /// Bytes per read from the input file.
    public var readBlockBytes: Int = 8 << 20
    /// A record longer than this (an unterminated quote, a runaway line) is
    /// quarantined without being held in memory, and parsing goes on after
    /// its end.
    public var maxRecordBytes: Int = 64 << 20
    /// A Parquet row group whose footer claims more rows than this is
    /// refused (a permanent failure) before anything is allocated for it.
    public var maxParquetRowGroupRows: Int64 = 1 << 31
    /// The most memory one Parquet row group's declared columns may take
    /// once decoded, estimated as rows × bytes per value before anything
    /// is decoded, and enforced while decoding (a column's share: this
    /// divided by the declared columns in the file). More fails the shard
    /// permanently.
    public var maxParquetRowGroupBytes: Int64 = 2 << 30

    public init() {}
}

/// One slice of input: a whole file, or the byte range `planShards` computed.
///
/// A shard owns the records that start inside its byte range. The ranges
/// that `planShards` returns always start at a real record start (a quote-aware
/// scan found it), so a shard reads from its first byte in the unquoted state
/// and stops at the first record that starts at or after its end; a record
/// that starts inside the range is read to its end even past the range.
/// A hand-made range must also start at a record start.
public struct Shard: Sendable, Hashable {
    public var path: String
    /// Nil: the whole file.
    public var byteRange: Range<Int64>?
    /// The physical line number (1-based, counting the header) at which
    /// `byteRange` starts; 1 for a whole file.
    public var firstLine: Int64
    /// Parquet only: the row group (0-based) this shard reads; nil reads
    /// every row group of the file.
    public var rowGroup: Int?

    public init(path: String, byteRange: Range<Int64>? = nil, firstLine: Int64 = 1, rowGroup: Int? = nil) {
        self.path = path
        self.byteRange = byteRange
        self.firstLine = firstLine
        self.rowGroup = rowGroup
    }
}

/// What one ingest execution produced. `rowsRead == rowsWritten + rowsQuarantined`.
public struct IngestResult: Sendable, Hashable {
    /// The typed rows, in the source's declared schema.
    public var chunk: WriteResult
    /// Rows that did not fit, with file, line, column and reason; nil when none.
    public var quarantine: WriteResult?
    public var rowsRead: Int64
    public var rowsWritten: Int64
    public var rowsQuarantined: Int64
}

/// A failure of the whole shard (as opposed to a bad row, which is quarantined).
/// These are permanent: retrying will not help until the spec or file changes.
public enum IngestError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The CSV header does not match the declared columns.
    case schemaDrift(file: String, missing: [String], extra: [String])
    /// The source itself is inconsistent (duplicate names, a non-nullable
    /// column filled with nulls, a bad header...).
    case invalidSource(file: String, message: String)
    /// An operating-system call failed.
    case io(file: String, message: String, errno: Int32)

    public var description: String {
        switch self {
        case .schemaDrift(let file, let missing, let extra):
            var parts = [String]()
            if !missing.isEmpty {
                parts.append("lacks declared column\(missing.count == 1 ? "" : "s") \(missing.joined(separator: ", "))")
            }
            if !extra.isEmpty {
                parts.append("has undeclared column\(extra.count == 1 ? "" : "s") \(extra.joined(separator: ", "))")
            }
            return "\(file): header \(parts.joined(separator: " and ")) "
                + "(declare them, or set missing columns to fill_null / extra columns to ignore)"
        case .invalidSource(let file, let message):
            return "\(file): \(message)"
        case .io(let file, let message, let e):
            return "\(file): \(message) (errno \(e))"
        }
    }
}
