import Columnar
import FleetCore

/// Where a batch's rows came from: the provenance columns ingest writes
/// (`_source_file`, `_source_line`), read by row for the few rows a step
/// rejects. A batch without them gives "" and line 0; `normalize` puts the
/// chunk's path in place of the empty file.
struct RowOrigin {
    private let file: Column?
    private let line: Column?

    init(_ batch: ColumnBatch) {
        file = batch[Provenance.file]
        line = batch[Provenance.line]
    }

    func at(_ row: Int) -> (file: String, line: Int64) {
        var f = "", l: Int64 = 0
        if let file, !file.isNull(row), case .bytes(let s) = file.values { f = s.string(at: row) }
        if let line, !line.isNull(row), case .int64(let v) = line.values { l = v[row] }
        return (f, l)
    }
}
