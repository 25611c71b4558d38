import Columnar
import FleetCore
import Foundation
import Testing
@testable import Stages

/// consolidate with its sorted rows going straight into validate's checks
/// (`consolidate(…, into:)` and `ValidateWriter`, as a fused task runs them)
/// gives what consolidate's chunks then validate over them give, writes no
/// consolidated chunk, and the same bytes when run again.
@Suite struct FusedConsolidateValidateTests {
    /// Two shards' chunks of one partition: unsorted ids, a duplicate key, failing rows.
    func inputs(_ dir: OpTempDir) throws -> [String] {
        let a = try ordersBatch([(5, 5, "A"), (1, 20, "B"), (3, 5, nil), (9, 1, "A")])
        let b = try ordersBatch([(2, 5, "A"), (1, 3, "C"), (nil, 7, "B"), (4, 11, "B"), (8, 2, "A")])
        return [try opWriteChunk(dir.file("a.parquet"), [a], rowGroupRows: 2).path,
                try opWriteChunk(dir.file("b.parquet"), [b], rowGroupRows: 3).path]
    }

    let rules = [VRule.notNull("id"), VRule.range("amount", min: "0", max: "0.10"), VRule.notNull("flag")]
    let dedupe = DedupeRule(key: ["id"], keep: .first)

    func fused(_ chunks: [String], _ out: String, budget: Int = 256 << 20) throws -> (ConsolidateResult, ValidateResult) {
        var options = ConsolidateOptions()
        options.memoryBudgetBytes = budget
        var writer: ValidateWriter?
        let c = try consolidate(inputChunks: chunks, partitionBy: [], sortBy: ["id"], dedupe: dedupe, outputDir: out,
                                options: options) { schema in
            let w = try ValidateWriter(schema: schema, rules: rules, partition: 2, outputDir: out,
                                       metadata: [KeyValue("bis.stage", "validate")])
            writer = w
            return w
        }
        return (c, try #require(writer).finish())
    }

    @Test func fusedGivesTheRowsAndCountsOfConsolidateThenValidate() throws {
        let dir = try OpTempDir()
        defer { dir.cleanup() }
        let chunks = try inputs(dir)
        let c = try consolidate(inputChunks: chunks, partitionBy: [], sortBy: ["id"], dedupe: dedupe, outputDir: try dir.sub("c"))
        let v = try validate(inputChunks: c.chunks.map(\.path), rules: rules, partition: 2, outputDir: try dir.sub("v"),
                             metadata: [KeyValue("bis.stage", "validate")])
        let out = try dir.sub("fused")
        let (fc, fv) = try fused(chunks, out)

        #expect((fc.rowsIn, fc.rowsOut, fc.duplicatesRemoved) == (c.rowsIn, c.rowsOut, c.duplicatesRemoved))
        #expect(fc.duplicatesRemoved == 1 && fc.chunks.isEmpty)
        #expect((fv.rowsIn, fv.rowsPassed, fv.rowsFailed) == (v.rowsIn, v.rowsPassed, v.rowsFailed))
        #expect(fv.rules == v.rules)
        #expect(try opReadRows(fv.chunks.map(\.path)) == (try opReadRows(v.chunks.map(\.path))))
        #expect(try quarantineRows(fv) == (try quarantineRows(v)))
        // The same rows, the same settings: the same bytes as the unfused validate's.
        #expect(fv.chunks.map(\.sha256) == v.chunks.map(\.sha256))
        #expect(fv.quarantine?.sha256 == v.quarantine?.sha256)
        // No consolidated chunk (nor spill) is left in the fused folder.
        let names = try FileManager.default.contentsOfDirectory(atPath: out).sorted()
        #expect(names == ["quarantine.parquet", "validated-00000.parquet"], "\(names)")
    }

    @Test func fusedOutputIsTheSameBytesOnARerunWhateverTheMemoryBudget() throws {
        let dir = try OpTempDir()
        defer { dir.cleanup() }
        let chunks = try inputs(dir)
        let (_, first) = try fused(chunks, try dir.sub("one"))
        let (_, again) = try fused(chunks, try dir.sub("two"), budget: 1)   // spills every batch
        #expect(first.chunks.map(\.sha256) == again.chunks.map(\.sha256))
        #expect(first.quarantine?.sha256 == again.quarantine?.sha256)
        #expect(first.rules == again.rules)
    }

    @Test func noInputsValidateNothingAndAFailingRuleAbandonsTheFiles() throws {
        let dir = try OpTempDir()
        defer { dir.cleanup() }
        var opened = false
        let c = try consolidate(inputChunks: [], partitionBy: [], sortBy: [], dedupe: nil, outputDir: try dir.sub("none")) { _ in
            opened = true
            return try ValidateWriter(schema: Schema([]), rules: [], partition: 0, outputDir: dir.path)
        }
        #expect(!opened && c.rowsIn == 0 && c.chunks.isEmpty)

        // A rule that compiles but throws inside `append` (id * 2^60
        // overflows from id 8 on, the last rows of the sorted merge), after
        // earlier rows may have gone to the writers: the caller abandons the
        // writer as a fused task does (StageInvocation.consolidateAndValidate)
        // and nothing validate would have written is left in the folder.
        let chunks = try inputs(dir)
        let out = try dir.sub("bad")
        var options = ConsolidateOptions()
        options.memoryBudgetBytes = 1   // spills every batch: the merge hands on more than one batch
        var validateOptions = ValidateOptions()
        validateOptions.rowsPerChunk = 1
        validateOptions.rowGroupRows = 1
        var writer: ValidateWriter?
        var thrown: (any Error)?
        do {
            _ = try consolidate(inputChunks: chunks, partitionBy: [], sortBy: ["id"], dedupe: nil, outputDir: out,
                                options: options) { schema in
                let w = try ValidateWriter(schema: schema, rules: [VRule.notNull("flag"),
                                                                   VRule.expression("id * 1152921504606846976 > 0", name: "huge")],
                                           partition: 0, outputDir: out, options: validateOptions)
                writer = w
                return w
            }
        } catch {
            writer?.abandon()
            thrown = error
        }
        #expect(writer != nil, "the writer should have been opened: the rule must fail in append, not in ValidateWriter.init")
        #expect(thrown.map { "\($0)".contains("validate rule 'huge'") } == true, "\(String(describing: thrown))")
        let left = try FileManager.default.contentsOfDirectory(atPath: out)
            .filter { $0.hasPrefix("validated-") || $0 == "quarantine.parquet" }
        #expect(left.isEmpty, "an abandoned fused validate should leave no files: \(left)")
    }

    /// A fused task's timeout stops it in the merge-and-validate tail:
    /// `ValidateWriter.append` checks the execution's cancellation flag.
    @Test func aTimedOutExecutionStopsInValidateWriterAppend() throws {
        let dir = try OpTempDir()
        defer { dir.cleanup() }
        let out = try dir.sub("timeout")
        let flag = ExecutionCancellation()
        flag.cancel(ExecutionCancellation.timeoutMessage(seconds: 1))
        var writer: ValidateWriter?
        var thrown: (any Error)?
        do {
            try ExecutionCancellation.with(flag) {
                // The sorter's input pass checks between chunks too: give
                // the writer one batch directly, as the merge would.
                let w = try ValidateWriter(schema: try ordersBatch([]).schema, rules: rules, partition: 0, outputDir: out)
                writer = w
                try w.append(try ordersBatch([(1, 5, "A")]))
            }
        } catch {
            writer?.abandon()
            thrown = error
        }
        let failure = try #require(thrown as? TaskFailure, "\(String(describing: thrown))")
        #expect(failure.timedOut == true && failure.message.hasPrefix(ExecutionCancellation.timeoutPrefix), "\(failure)")
    }
}
