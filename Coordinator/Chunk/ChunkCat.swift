import ArgumentParser
import Columnar

extension ChunkCommand {
    struct Cat: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print a chunk's rows as CSV.",
            discussion: """
                Written so that CSV ingest with the default null markers reads the same \
                rows back: a null is an empty unquoted field (NULL when it is the line's \
                only field, since a blank line is not a record); an empty string, or a \
                string equal to a null marker (NA, NULL), is quoted. Decimals are exact; \
                dates are YYYY-MM-DD and timestamps ISO 8601 in UTC. The first line names \
                the columns.
                """)

        @Argument(help: "The Parquet file.")
        var file: String

        @Option(help: "Comma-separated columns to print, in this order (default: all).")
        var columns: String?

        @Option(help: "Print at most this many rows.")
        var limit: Int?

        func validate() throws {
            if let limit, limit < 0 { throw ValidationError("--limit must be zero or more") }
        }

        func run() async throws {
            let projection = columns.map { $0.split(separator: ",").map { String($0).trimmingSpaces } }
            var out = StandardOutput()
            defer { out.flush() }
            try failing {
                let reader = try ParquetReader(path: file)
                let schema = try reader.projectedSchema(projection)
                let header = schema.fields.map { ValueText.csvField($0.name) }.joined(separator: ",") + "\n"
                var remaining = limit ?? Int.max
                // The header follows the first successful read, so an
                // unreadable file prints only the error.
                if reader.rowGroups.isEmpty || remaining == 0 { out.write(header) }
                for g in reader.rowGroups.indices where remaining > 0 {
                    let batch = try reader.readRowGroup(g, columns: projection)
                    if g == 0 { out.write(header) }
                    let n = min(batch.rowCount, remaining)
                    let lone = batch.columns.count == 1
                    for row in 0..<n {
                        var line = ""
                        for (c, column) in batch.columns.enumerated() {
                            if c > 0 { line += "," }
                            if let v = column.scalar(at: row) {
                                line += Cat.field(ValueText.format(v, as: column.type))
                            } else if lone {
                                line += Cat.loneNull
                            }
                        }
                        out.write(line + "\n")
                    }
                    remaining -= n
                }
            }
        }
    }
}

extension ChunkCommand.Cat {
    /// A null that is a line's only field: an empty line would be skipped
    /// as blank by CSV readers (ours included), losing the row.
    static let loneNull = "NULL"

    /// The null markers CSV ingest uses by default (IngestSource.nullMarkers).
    static let nullMarkers: Set<String> = ["", "NA", "NULL"]

    /// A value as a CSV field that ingest reads back as that value: quoted
    /// when RFC 4180 needs it, and when unquoted it would read as null.
    static func field(_ text: String) -> String {
        nullMarkers.contains(text) ? "\"" + text + "\"" : ValueText.csvField(text)
    }
}

extension String {
    var trimmingSpaces: String {
        String(drop(while: { $0 == " " }).reversed().drop(while: { $0 == " " }).reversed())
    }
}
