import Columnar
import FuzzSupport

/// The Parquet reader: the input is a whole file. Opens it (footer, schema,
/// row group statistics), reads every row group with every column, then one
/// column alone, then the whole file as one batch. A thrown `ColumnarError`
/// is fine; a trap, a sanitizer report, a hang or a huge allocation (a
/// footer that claims more rows or bytes than the file can hold) is a defect.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzParquet(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let path = FuzzFile.shared.write(data, size, name: "input.parquet")
    guard let reader = try? ParquetReader(path: path) else { return 0 }
    var readable = true
    for group in reader.rowGroups.indices {
        if (try? reader.readRowGroup(group)) == nil { readable = false }
    }
    if let last = reader.schema.fields.last, !reader.rowGroups.isEmpty {
        _ = try? reader.readRowGroup(0, columns: [last.name])
    }
    if readable { _ = try? reader.read() }
    return 0
}
