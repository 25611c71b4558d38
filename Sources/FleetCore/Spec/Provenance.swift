import Columnar

/// The two columns that carry every data row's origin from ingest to
/// publish: the input file (exactly as ingest's own quarantine rows name it)
/// and the 1-based line where the row's record starts (the same numbering as
/// ingest's quarantine `line`; a quoted CSV record over several lines has the
/// line of its first line).
///
/// Ingest appends them after the source's columns; normalize, consolidate
/// and validate carry them whatever their steps do (a filter drops the whole
/// row); validate names them in its quarantine rows; publish drops them
/// unless the spec says `publish: {provenance: true}`. Names starting with
/// `_source_` are reserved for them: a spec may not declare or make one.
public enum Provenance {
    public static let prefix = "_source_"
    public static let file = "_source_file"
    public static let line = "_source_line"
    public static let fields = [Field(file, .string, nullable: false), Field(line, .int64, nullable: false)]

    public static func isReserved(_ name: String) -> Bool { name.hasPrefix(prefix) }

    /// The spec error text for a column named `name` in `context` (e.g.
    /// "source 'orders' declares column").
    static func reservedMessage(_ name: String, _ what: String) -> String {
        "\(what) '\(name)': names starting with '\(prefix)' are reserved for the row provenance columns "
            + "\(file) and \(line) that ingest adds; choose another name"
    }

    /// `schema` without the provenance columns.
    public static func stripped(_ schema: Schema) -> Schema {
        Schema(schema.fields.filter { !isReserved($0.name) })
    }

    /// Whether `schema` carries both provenance columns.
    public static func carried(by schema: Schema) -> Bool {
        schema.index(of: file) != nil && schema.index(of: line) != nil
    }
}
