// Release-built driver for ops/bench/ingest: ingests CSV files (one
// process, one thread) with the TPC-H lineitem schema and prints one JSON
// line with rows, wall and CPU seconds, output bytes and peak RSS.
//   bis-bench-ingest INPUT.csv [INPUT.csv...] OUTPUT_DIR [--shard-size BYTES] [--drain]
// With several inputs each file is one shard, ingested in turn into
// OUTPUT_DIR/file-<i> (one ingest per file, as a worker runs one task per
// shard). With --shard-size each file is planned into shards and each is
// ingested in turn (same thread), which also times the planner's pass.
#if canImport(Glibc)
import Glibc
#endif
import Columnar
import Stages

func seconds() -> Double {
    var t = timespec()
    clock_gettime(CLOCK_MONOTONIC, &t)
    return Double(t.tv_sec) + Double(t.tv_nsec) / 1e9
}

func usage() -> (cpu: Double, maxRSSKiB: Int) {
    var u = rusage()
    getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &u)
    let cpu = Double(u.ru_utime.tv_sec) + Double(u.ru_utime.tv_usec) / 1e6
        + Double(u.ru_stime.tv_sec) + Double(u.ru_stime.tv_usec) / 1e6
    return (cpu, Int(u.ru_maxrss))
}

let args = CommandLine.arguments
var positional = Array(args.dropFirst())
var shardSize: Int64? = nil
if let i = positional.firstIndex(of: "--shard-size"), i + 1 < positional.count {
    guard let n = Int64(positional[i + 1]), n > 0 else {
        print("bis-bench-ingest: --shard-size needs a positive number of bytes, not '\(positional[i + 1])'")
        exit(2)
    }
    shardSize = n
    positional.removeSubrange(i...(i + 1))
}
// --drain: empty the builder pool after each shard, as if every shard ran in
// a fresh process (what a per-task drain in the worker would cost).
let drain = positional.contains("--drain")
positional.removeAll { $0 == "--drain" }
guard positional.count >= 2 else {
    print("usage: bis-bench-ingest INPUT.csv [INPUT.csv...] OUTPUT_DIR [--shard-size BYTES] [--drain]")
    exit(2)
}
let inputs = Array(positional.dropLast()), outDir = positional.last!

let money = ColumnType.decimal(precision: 15, scale: 2)
let lineitem = [
    Field("l_orderkey", .int64), Field("l_partkey", .int64), Field("l_suppkey", .int64), Field("l_linenumber", .int64),
    Field("l_quantity", money), Field("l_extendedprice", money), Field("l_discount", money), Field("l_tax", money),
    Field("l_returnflag", .string), Field("l_linestatus", .string), Field("l_shipdate", .date),
    Field("l_commitdate", .date), Field("l_receiptdate", .date), Field("l_shipinstruct", .string),
    Field("l_shipmode", .string), Field("l_comment", .string),
]
let source = IngestSource(format: .csv, columns: lineitem, header: true)

let t0 = seconds()
let (c0, _) = usage()
var planSeconds = 0.0
var rows: Int64 = 0, bytes: Int64 = 0, quarantined: Int64 = 0, shardCount = 0
for (f, input) in inputs.enumerated() {
    var st = stat()
    guard stat(input, &st) == 0 else { fatalError("cannot stat \(input)") }
    var shards = [Shard(path: input)]
    if let shardSize {
        let p0 = seconds()
        shards = try planShards(path: input, size: Int64(st.st_size), shardSize: shardSize, source: source)
        planSeconds += seconds() - p0
    }
    let fileDir = outDir + (inputs.count > 1 ? "/file-\(f)" : "")
    for (i, shard) in shards.enumerated() {
        let r = try ingest(shard: shard, source: source, outputDir: fileDir + (shards.count > 1 ? "/shard-\(i)" : ""))
        rows += r.rowsWritten
        bytes += r.chunk.bytes
        quarantined += r.rowsQuarantined
        if drain { BuilderPool.shared.drain() }
    }
    shardCount += shards.count
}
let wall = seconds() - t0
let (c1, rss) = usage()
print("{\"rows\": \(rows), \"quarantined\": \(quarantined), \"seconds\": \(wall), \"cpu_seconds\": \(c1 - c0), \"bytes\": \(bytes), \"max_rss_kib\": \(rss), \"shards\": \(shardCount), \"files\": \(inputs.count), \"plan_seconds\": \(planSeconds)}")
