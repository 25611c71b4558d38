import Columnar
import FuzzSupport
import Stages

/// The CSV ingest (scanner, header mapping, value parsers, quarantine): the
/// first two input bytes choose the options, the rest is the file.
///
/// Byte 0: bit 0 header, bits 1–2 delimiter (`,` `;` tab `|`), bit 3 quote
/// (`"` or `'`), bit 4 missing columns fill_null, bit 5 extra columns
/// ignore, bits 6–7 the read block (7 B, 64 B, 4 KiB, 8 MiB; small blocks
/// split records across refills). Byte 1: bits 0–6 the shard size in bytes
/// (0: no sharding), bit 7 a small record limit (64 B, else 64 MiB).
///
/// The file is ingested whole; with a shard size, `planShards` cuts it and
/// each shard is ingested too, and the shards must together read, write and
/// quarantine exactly the rows the whole file does (the planner and the
/// scanner share one record rule). `IngestError` is fine; a trap, a
/// sanitizer report, a hang, a huge allocation or a broken invariant is a
/// defect.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzCSV(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size >= 2 else { return 0 }
    let config = data[0], sharding = data[1]
    let delimiters: [UInt8] = [UInt8(ascii: ","), UInt8(ascii: ";"), 9, UInt8(ascii: "|")]
    let source = IngestSource(
        format: .csv, columns: Columns.fields,
        header: config & 1 != 0,
        delimiter: delimiters[Int(config >> 1) & 3],
        quote: config & 8 != 0 ? UInt8(ascii: "'") : UInt8(ascii: "\""),
        missingColumns: config & 16 != 0 ? .fillNull : .error,
        extraColumns: config & 32 != 0 ? .ignore : .error)
    var options = IngestOptions()
    options.readBlockBytes = [7, 64, 4096, 8 << 20][Int(config >> 6)]
    options.maxRecordBytes = sharding & 0x80 != 0 ? 64 : 64 << 20
    options.rowGroupRows = 5
    options.batchRows = 3
    options.zstdLevel = 1
    options.quarantineRawLimit = 16

    let file = FuzzFile.shared
    let path = file.write(data + 2, size - 2, name: "input.csv")
    let whole: IngestResult
    do {
        whole = try ingest(shard: Shard(path: path), source: source, outputDir: file.path("whole"), options: options)
    } catch is IngestError {
        return 0
    } catch {
        fatalError("ingest threw something other than an IngestError: \(error)")
    }
    precondition(whole.rowsRead == whole.rowsWritten + whole.rowsQuarantined, "rows read ≠ written + quarantined")
    do {
        let reader = try ParquetReader(path: whole.chunk.path)
        precondition(reader.rowCount == whole.rowsWritten, "the chunk holds \(reader.rowCount) rows, not \(whole.rowsWritten)")
        _ = try reader.read()
    } catch {
        fatalError("cannot read back the ingested chunk: \(error)")
    }

    let shardSize = Int64(sharding & 0x7f)
    guard shardSize > 0 else { return 0 }
    var read: Int64 = 0, written: Int64 = 0, quarantined: Int64 = 0
    do {
        let shards = try planShards(path: path, size: Int64(size - 2), shardSize: shardSize, source: source)
        for (i, shard) in shards.enumerated() {
            let r = try ingest(shard: shard, source: source, outputDir: file.path("shard\(i)"), options: options)
            read += r.rowsRead
            written += r.rowsWritten
            quarantined += r.rowsQuarantined
        }
    } catch {
        fatalError("the whole file ingests but a shard fails: \(error)")
    }
    precondition(read == whole.rowsRead && written == whole.rowsWritten && quarantined == whole.rowsQuarantined,
                 "shards read/wrote/quarantined \(read)/\(written)/\(quarantined) rows, the whole file "
                     + "\(whole.rowsRead)/\(whole.rowsWritten)/\(whole.rowsQuarantined)")
    return 0
}

enum Columns {
    /// The header the seeds use: `id,price,day,name,at,ok,score,n`.
    static let fields: [Field] = [
        Field("id", .int64), Field("price", .decimal(precision: 10, scale: 2)), Field("day", .date),
        Field("name", .string), Field("at", .timestamp), Field("ok", .bool), Field("score", .double),
        Field("n", .int32),
    ]
}
