// Release-built driver for ops/bench/ingest: ingests one CSV file (one
// process, one thread) with the TPC-H lineitem schema and prints one JSON
// line with rows, wall and CPU seconds, output bytes and peak RSS.
//   bis-bench-ingest INPUT.csv OUTPUT_DIR [--shard-size BYTES]
// With --shard-size the file is planned into shards and each is ingested in
// turn (same thread), which also times the planner's pass.
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
guard args.count >= 3 else {
    print("usage: bis-bench-ingest INPUT.csv OUTPUT_DIR [--shard-size BYTES]")
    exit(2)
}
let input = args[1], outDir = args[2]
var shardSize: Int64? = nil
if args.count >= 5, args[3] == "--shard-size" { shardSize = Int64(args[4]) }

let money = ColumnType.decimal(precision: 15, scale: 2)
let lineitem = [
    Field("l_orderkey", .int64), Field("l_partkey", .int64), Field("l_suppkey", .int64), Field("l_linenumber", .int64),
    Field("l_quantity", money), Field("l_extendedprice", money), Field("l_discount", money), Field("l_tax", money),
    Field("l_returnflag", .string), Field("l_linestatus", .string), Field("l_shipdate", .date),
    Field("l_commitdate", .date), Field("l_receiptdate", .date), Field("l_shipinstruct", .string),
    Field("l_shipmode", .string), Field("l_comment", .string),
]
let source = IngestSource(format: .csv, columns: lineitem, header: true)

var st = stat()
guard stat(input, &st) == 0 else { fatalError("cannot stat \(input)") }
let t0 = seconds()
let (c0, _) = usage()
var shards = [Shard(path: input)]
var planSeconds = 0.0
if let shardSize {
    shards = try planShards(path: input, size: Int64(st.st_size), shardSize: shardSize, source: source)
    planSeconds = seconds() - t0
}
var rows: Int64 = 0, bytes: Int64 = 0, quarantined: Int64 = 0
for (i, shard) in shards.enumerated() {
    let r = try ingest(shard: shard, source: source, outputDir: outDir + (shards.count > 1 ? "/shard-\(i)" : ""))
    rows += r.rowsWritten
    bytes += r.chunk.bytes
    quarantined += r.rowsQuarantined
}
let wall = seconds() - t0
let (c1, rss) = usage()
print("{\"rows\": \(rows), \"quarantined\": \(quarantined), \"seconds\": \(wall), \"cpu_seconds\": \(c1 - c0), \"bytes\": \(bytes), \"max_rss_kib\": \(rss), \"shards\": \(shards.count), \"plan_seconds\": \(planSeconds)}")
