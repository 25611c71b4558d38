import ArgumentParser
import Columnar
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension ChunkCommand {
    /// Used by ops/bench/columnar: loads a Parquet file with our reader, then
    /// times rewriting it with our writer. Prints one JSON line.
    struct Bench: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Time rewriting a Parquet file with the Columnar writer.",
            shouldDisplay: false)

        @Argument(help: "Input Parquet file (ZSTD or uncompressed).")
        var input: String

        @Option(help: "Where to write the rewritten file.")
        var output: String

        @Option(help: "zstd level.")
        var level: Int32 = 3

        @Option(help: "Rows per row group.")
        var rowGroupRows: Int = 1 << 20

        @Option(help: "Write this many times; the fastest run is reported.")
        var runs: Int = 3

        func validate() throws {
            if runs < 1 { throw ValidationError("--runs must be at least 1") }
        }

        func run() async throws {
            let reader = try failing { try ParquetReader(path: input) }
            let loadStart = ContinuousClock.now
            let batches = try failing { try reader.rowGroups.indices.map { try reader.readRowGroup($0) } }
            let loadSeconds = seconds(ContinuousClock.now - loadStart)
            var options = WriterOptions()
            options.compression = .zstd(level: level)
            options.rowGroupRows = rowGroupRows
            var best = Double.infinity, bestCPU = Double.infinity
            var result: WriteResult?
            for _ in 0..<runs {
                let start = ContinuousClock.now
                let cpuStart = cpuSeconds()
                result = try failing {
                    let writer = try ParquetWriter(path: output, schema: reader.schema, options: options)
                    for b in batches { try writer.append(b) }
                    return try writer.finish()
                }
                best = min(best, seconds(ContinuousClock.now - start))
                bestCPU = min(bestCPU, cpuSeconds() - cpuStart)
            }
            guard let result else { return }
            print("{\"rows\": \(result.rows), \"bytes\": \(result.bytes), \"seconds\": \(best), "
                + "\"cpu_seconds\": \(bestCPU), \"read_seconds\": \(loadSeconds), "
                + "\"sha256\": \"\(result.sha256)\"}")
        }

        private func seconds(_ d: Duration) -> Double {
            Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
        }

        /// CPU time of this process (all threads), immune to other processes'
        /// load on a shared machine.
        private func cpuSeconds() -> Double {
            var ts = timespec()
            clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts)
            return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
        }
    }
}
