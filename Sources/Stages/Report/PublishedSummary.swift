import Columnar
import Foundation

extension SummaryTable {
    /// A published summary version as the report shows it: the Parquet files
    /// its `_manifest.json` lists (in manifest order, every row group), read
    /// back into one table. `groupBy` names the spec's group-by columns; the
    /// others are aggregates. What the report task does with the summaries
    /// publish wrote, and what ops/demo does through DuckDB.
    ///
    /// Throws `PublishError.damagedVersion` when the manifest is not readable
    /// or a file is missing or of another schema, or a `ColumnarError`.
    public init(publishedManifest manifestPath: String, name: String, groupBy: [String]) throws {
        guard let bytes = DurableFiles.readBytes(manifestPath) else {
            throw PublishError.damagedVersion(path: manifestPath, reason: "cannot read the manifest")
        }
        let manifest: PublishManifest
        do {
            manifest = try PublishManifest(json: bytes)
        } catch {
            throw PublishError.damagedVersion(path: manifestPath, reason: "not a publish manifest: \(error)")
        }
        let folder = (manifestPath as NSString).deletingLastPathComponent
        var table: SummaryTable?
        for file in manifest.files {
            let reader = try ParquetReader(path: folder + "/" + file.name)
            let part = SummaryTable(name: name, groupBy: groupBy, batch: try reader.read())
            if var t = table {
                guard t.columns == part.columns else {
                    throw PublishError.damagedVersion(path: folder + "/" + file.name, reason: "its columns differ from the version's other files")
                }
                t.rows += part.rows
                table = t
            } else {
                table = part
            }
        }
        guard let table else {
            throw PublishError.damagedVersion(path: manifestPath, reason: "the manifest lists no file")
        }
        self = table
    }
}
