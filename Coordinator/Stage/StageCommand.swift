import ArgumentParser
import Columnar
import FleetCore
import Foundation
import Stages

/// `bis stage run`: one stage operator, in this process, on the inputs given —
/// how an operator debugs one shard without a fleet, and how tests drive the
/// operators from outside.
struct StageCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stage",
        abstract: "Run one stage operator by hand.",
        subcommands: [Run.self, Gate.self]
    )

    struct Run: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run one stage operator in-process and print what it wrote.",
            discussion: """
                ingest       --input FILE… (default: every file the spec's sources match), one \
                chunk per shard in OUT/<source>-NNNNN/ (ingest.parquet, quarantine.parquet)
                normalize    --input CHUNK_OR_DIR… (ingest.parquet files), partition chunks \
                OUT/part-NNNNN.parquet
                consolidate  --input CHUNK_OR_DIR… --partition N (part-0000N.parquet files under \
                a directory), sorted chunks OUT/consolidated-NNNNN.parquet
                validate     --input CHUNK_OR_DIR… --partition N (consolidated-*.parquet files), \
                OUT/validated-NNNNN.parquet, OUT/quarantine.parquet, OUT/validate-result.json, \
                and the spec's gates decided for this partition alone
                report       --input SUMMARY.json (a run summary), OUT/report.html, \
                OUT/<summary>.csv per summary, OUT/report.xlsx
                publish      --input CHUNK_OR_DIR… (validated-*.parquet and *.partials.json under a \
                directory) [--run RUN] [--retention N]: the dataset and its summaries under \
                OUT/published/<dataset>/<run>/, CURRENT and view.sql (see docs/publish.md)
                deliver      --input FILE… --run RUN [--approved-by NAME], OUT is the data root: \
                the files and a receipt.json go to the spec's deliver target

                Example, by hand through the first three stages:
                  bis stage run ingest --spec p.yml --out /tmp/i
                  bis stage run normalize --spec p.yml --input /tmp/i --out /tmp/n
                  bis stage run consolidate --spec p.yml --input /tmp/n --partition 0 --out /tmp/c0
                Exit codes: 0 done, 1 the operator failed, 2 usage or spec error.
                """
        )

        @Argument(help: "The stage: ingest, normalize, consolidate, validate, publish, report or deliver.")
        var stage: String

        @Option(help: "The pipeline spec (YAML).")
        var spec: String

        @Option(name: .customLong("input"), parsing: .upToNextOption,
                help: "Input files, chunks or directories of chunks.")
        var inputs: [String] = []

        @Option(help: "consolidate, validate: the partition whose chunks --input holds.")
        var partition: Int?

        @Option(help: "ingest: only this source (default: every source).")
        var source: String?

        @Option(help: "ingest: split files into byte-range shards of this size (e.g. 64MiB); default: the source's shard_size.")
        var shardSize: String?

        @Option(name: .customLong("run"), help: "publish, deliver: the run id (default: <pipeline>-<UTC yyyyMMddTHHmmssZ>-<4 hex>).")
        var runID: String?

        @Option(help: "deliver: who approved the run (approval time: now); needed when the spec says approval: required.")
        var approvedBy: String?

        @Option(help: "publish: how many versions of each dataset to keep (CURRENT's is never removed).")
        var retention: Int = 5

        @Option(help: "A folder inputs may come from besides the spec's folder (repeatable).")
        var allowRoot: [String] = []

        @Option(name: .customLong("out"), help: "The output folder (created if needed); for publish and deliver, the data root.")
        var outArgument: String

        /// Absolute, so that the paths printed are usable from anywhere.
        var out: String {
            outArgument.hasPrefix("/") ? outArgument : FileManager.default.currentDirectoryPath + "/" + outArgument
        }

        @Flag(help: "Print the result as JSON.")
        var json = false

        func validate() throws {
            do {
                _ = try StageName(parsing: stage)
            } catch {
                throw ValidationError(error.message)
            }
            if stage == "consolidate" || stage == "validate", partition == nil {
                throw ValidationError("\(stage) needs --partition N (the partition whose chunks --input holds)")
            }
            if let shardSize, (ByteSize(parsing: shardSize)?.bytes ?? 0) <= 0 {
                throw ValidationError("--shard-size '\(shardSize)' is not a positive size like 64MiB or 1GB")
            }
        }

        func run() async throws {
            let pipeline: PipelineSpec
            do {
                // Only ingest reads the sources' files; the other stages run on
                // hosts that may not see them.
                pipeline = try PipelineSpec.load(path: spec, allowedRoots: allowRoot, resolvingInputs: stage == "ingest")
            } catch {
                printError(error.description)
                throw ExitCode(2)
            }
            let report: StageReport
            do {
                try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
                switch try StageName(parsing: stage) {
                case .ingest: report = try runIngest(pipeline)
                case .normalize: report = try runNormalize(pipeline)
                case .consolidate: report = try runConsolidate(pipeline)
                case .validate: report = try runValidate(pipeline)
                case .publish: report = try runPublish(pipeline)
                case .report: report = try runReport(pipeline)
                case .deliver: report = try await runDeliver(pipeline)
                }
            } catch let error as SpecErrors {
                printError(error.description)
                throw ExitCode(2)
            } catch let error as UsageError {
                printError(error.message)
                throw ExitCode(2)
            } catch let error as StageInvocationError {
                printError(error.message)
                throw ExitCode(2)
            } catch let error as DeliveryError {
                printError("deliver failed: \(error)")
                throw ExitCode(1)
            } catch {
                printError("\(stage) failed: \(error)")
                throw ExitCode(1)
            }
            if json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
                print(String(decoding: try encoder.encode(report), as: UTF8.self))
            } else {
                print(report.text)
            }
        }

        // MARK: ingest

        private func runIngest(_ pipeline: PipelineSpec) throws -> StageReport {
            let sources = try pipeline.sources.filter { s in
                guard let source else { return true }
                return s.name == source
            }.nonEmpty(or: UsageError("no source named '\(source ?? "")' in the spec; it has \(pipeline.sources.map(\.name).joined(separator: ", "))"))
            if !inputs.isEmpty, sources.count > 1 {
                throw UsageError("the spec has \(sources.count) sources (\(sources.map(\.name).joined(separator: ", "))): "
                                 + "say with --source which one the --input files belong to")
            }
            var report = StageReport(stage: "ingest")
            for src in sources {
                let files = try inputs.isEmpty ? src.resolvedFiles : inputs.map { try pipeline.confinedInput($0) }
                let ingestSource = SpecOperators.ingestSource(src)   // for planning the shards
                let size = shardSize.flatMap { ByteSize(parsing: $0) }?.bytes ?? src.shardSize.bytes
                var n = 0
                for file in files {
                    let bytes = try FileManager.default.attributesOfItem(atPath: file)[.size] as? Int64 ?? 0
                    for shard in try planShards(path: file, size: bytes, shardSize: Int64(size), source: ingestSource) {
                        let dir = out + "/" + src.name + "-" + String(format: "%05d", n)
                        n += 1
                        let r = try StageInvocation.ingest(src, shard: shard, outputDir: dir,
                                                           metadata: [KeyValue("bis.stage", "ingest"), KeyValue("bis.input", file)])
                        report.add(r, input: shardLabel(shard))
                    }
                }
            }
            return report
        }

        private func shardLabel(_ shard: Shard) -> String {
            if let g = shard.rowGroup { return "\(shard.path)[row group \(g)]" }
            guard let r = shard.byteRange else { return shard.path }
            return "\(shard.path)[\(r.lowerBound)..<\(r.upperBound)]"
        }

        // MARK: normalize

        private func runNormalize(_ pipeline: PipelineSpec) throws -> StageReport {
            let chunks = try chunkInputs(named: { $0 == "ingest.parquet" }, what: "ingest.parquet")
            let r = try StageInvocation.normalize(pipeline, chunks: chunks, outputDir: out,
                                                  metadata: [KeyValue("bis.stage", "normalize")])
            var report = StageReport(stage: "normalize")
            report.add(r)
            return report
        }

        // MARK: consolidate

        private func runConsolidate(_ pipeline: PipelineSpec) throws -> StageReport {
            let p = partition ?? 0
            let name = "part-" + String(format: "%05d", p) + ".parquet"
            let chunks = try chunkInputs(named: { $0 == name }, what: name)
            guard SpecOperators.consolidate(pipeline) != nil else {
                throw UsageError("the spec has no consolidate section")
            }
            guard p >= 0, p < (pipeline.consolidate?.partitions ?? 1) else {
                throw UsageError("--partition \(p) is outside 0..<\(pipeline.consolidate?.partitions ?? 1)")
            }
            let r = try StageInvocation.consolidate(pipeline, partition: p, chunks: chunks, outputDir: out,
                                                    metadata: [KeyValue("bis.stage", "consolidate"),
                                                               KeyValue("bis.partition", String(p))])
            var report = StageReport(stage: "consolidate")
            report.add(r)
            return report
        }

        /// `--input` entries: files as given, directories searched (sorted,
        /// recursively) for chunk files whose name matches.
        func chunkInputs(named matches: (String) -> Bool, what: String) throws -> [String] {
            guard !inputs.isEmpty else { throw UsageError("\(stage) needs --input (chunk files or directories holding \(what))") }
            var found: [String] = []
            for input in inputs {
                var isDir: ObjCBool = false
                guard FileManager.default.fileExists(atPath: input, isDirectory: &isDir) else {
                    throw UsageError("--input \(input): no such file or directory")
                }
                if !isDir.boolValue { found.append(input); continue }
                let all = (FileManager.default.subpaths(atPath: input) ?? []).sorted()
                found += all.filter { matches(($0 as NSString).lastPathComponent) }.map { input + "/" + $0 }
            }
            return found
        }
    }
}

/// A usage problem found while running (exit code 2).
struct UsageError: Error {
    let message: String
    init(_ message: String) { self.message = message }
}

extension Array {
    func nonEmpty(or error: @autoclosure () -> some Error) throws -> [Element] {
        if isEmpty { throw error() }
        return self
    }
}

/// What one operator wrote, for people and for scripts (`--json`).
struct StageReport: Encodable {
    struct Output: Encodable {
        var path: String
        var sha256: String
        var rows: Int64
        var bytes: Int64
        var partition: Int?
        var input: String?

        init(_ o: StageOutput, input: String? = nil) {
            path = o.path
            sha256 = o.sha256
            rows = o.rows
            bytes = o.bytes
            partition = o.partition
            self.input = input
        }
    }

    var stage: String
    var rowsIn: Int64 = 0
    var rowsOut: Int64 = 0
    var rowsQuarantined: Int64 = 0
    var duplicatesRemoved: Int64?
    var outputs: [Output] = []
    var quarantine: [Output] = []
    var published: [PublishedReport]?
    /// validate: the ValidateResult JSON written beside the chunks.
    var result: String?
    /// validate: the summaries' partial aggregates, for publish.
    var partials: String?
    /// validate: the spec's gates decided over this partition alone.
    var gate: Gate?

    struct Gate: Encodable {
        var passed: Bool
        var message: String
    }
    var delivery: DeliveryReceipt?
    var alreadyDelivered: Bool?

    /// Adds what one invocation wrote: its rows, its data outputs and its
    /// quarantine (each labelled with `input` when given).
    mutating func add(_ r: StageInvocationResult, input: String? = nil) {
        rowsIn += r.rowsIn
        rowsOut += r.rowsOut
        rowsQuarantined += r.rowsQuarantined
        if let d = r.duplicatesRemoved { duplicatesRemoved = (duplicatesRemoved ?? 0) + d }
        outputs += r.outputs(.data).map { Output($0, input: input) }
        quarantine += r.outputs(.quarantine).map { Output($0, input: input) }
    }

    var text: String {
        if let deliveryText { return deliveryText }
        // Every stage that can set rows aside says how many it did.
        var lines = ["\(stage): \(rowsIn) rows in, \(rowsOut) out"
            + ((try? StageName(parsing: stage))?.quarantines == true ? ", \(rowsQuarantined) quarantined" : "")
            + (duplicatesRemoved.map { ", \($0) duplicates removed" } ?? "")]
        for o in outputs {
            lines.append("  \(o.path)  \(o.rows) rows  \(o.bytes) B  sha256 \(o.sha256)")
        }
        for q in quarantine {
            lines.append("  quarantine \(q.path)  \(q.rows) rows" + (q.input.map { "  (from \($0))" } ?? ""))
        }
        if let result { lines.append("  result \(result)") }
        if let partials { lines.append("  partials \(partials)") }
        if let gate { lines.append(gate.message) }
        for p in published ?? [] {
            lines.append("  published \(p.dataset) run \(p.run): \(p.rows) rows in \(p.path)"
                + (p.reused ? " (already published)" : "") + (p.current == p.run ? ", current" : ", current stays \(p.current)"))
            lines.append("    schema sha256 \(p.schemaSHA256)")
        }
        return lines.joined(separator: "\n")
    }
}

func printError(_ message: String) {
    var err = StandardError()
    print("error: \(message)", to: &err)
}
