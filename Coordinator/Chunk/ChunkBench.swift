import ArgumentParser
import Columnar

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

        func run() async throws {
            let reader = try failing { try ParquetReader(path: input) }
            let loadStart = ContinuousClock.now
            let batches = try failing { try reader.rowGroups.indices.map { try reader.readRowGroup($0) } }
            let loadTime = ContinuousClock.now - loadStart
            var options = WriterOptions()
            options.compression = .zstd(level: level)
            options.rowGroupRows = rowGroupRows
            let start = ContinuousClock.now
            let result = try failing {
                let writer = try ParquetWriter(path: output, schema: reader.schema, options: options)
                for b in batches { try writer.append(b) }
                return try writer.finish()
            }
            let elapsed = ContinuousClock.now - start
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            let loadSeconds = Double(loadTime.components.seconds) + Double(loadTime.components.attoseconds) / 1e18
            print("{\"rows\": \(result.rows), \"bytes\": \(result.bytes), \"seconds\": \(seconds), "
                + "\"rows_per_s\": \(Double(result.rows) / seconds), \"read_seconds\": \(loadSeconds), "
                + "\"sha256\": \"\(result.sha256)\"}")
        }
    }
}
