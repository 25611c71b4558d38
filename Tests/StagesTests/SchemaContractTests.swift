import Columnar
import FleetCore
import Foundation
import Testing
@testable import Stages

@Suite struct SchemaContractTests {
    typealias C = PublishManifest.Column
    static func col(_ name: String, _ type: String, _ nullable: Bool = true) -> C { C(name: name, type: type, nullable: nullable) }

    static let base = [col("id", "int64", false), col("revenue", "decimal(18,4)"), col("region", "string")]

    @Test func equalSchemasHaveNoDifferenceAndTheSameHash() {
        #expect(SchemaContract.differences(from: Self.base, to: Self.base).isEmpty)
        #expect(SchemaContract.violation(from: Self.base, to: Self.base, policy: .none) == nil)
        #expect(SchemaContract.hash(Self.base) == SchemaContract.hash(Self.base))
        #expect(SchemaContract.hash(Self.base).count == 64)
    }

    @Test func theHashIsTheSHA256OfTheCompactSortedJSON() {
        let text = #"[{"name":"id","nullable":false,"type":"int64"},{"name":"revenue","nullable":true,"type":"decimal(18,4)"},"#
            + #"{"name":"region","nullable":true,"type":"string"}]"#
        #expect(SchemaContract.hash(Self.base) == Checksum.sha256(utf8: text))
        // Every part counts: a name, a type, nullability, the order.
        let variants = [
            [Self.col("ID", "int64", false)] + Self.base.dropFirst(),
            [Self.col("id", "int32", false)] + Self.base.dropFirst(),
            [Self.col("id", "int64", true)] + Self.base.dropFirst(),
            [Self.base[1], Self.base[0], Self.base[2]],
        ]
        for v in variants { #expect(SchemaContract.hash(v) != SchemaContract.hash(Self.base)) }
    }

    @Test func theDifferenceIsSpelledOutInColumnOrder() {
        let new = [Self.col("id", "int64", false), Self.col("revenue", "double")]
        #expect(SchemaContract.violation(from: Self.base, to: new, policy: .none)
                == "column revenue: decimal(18,4) → double; column region removed")
    }

    @Test func nullabilityAdditionsAndOrderAreNamed() {
        let new = [Self.col("region", "string"), Self.col("id", "int64", true), Self.col("revenue", "decimal(18,4)"),
                   Self.col("note", "string")]
        #expect(SchemaContract.differences(from: Self.base, to: new).map(\.text) == [
            "column id: not null → nullable",
            "column note added (string, nullable)",
            "column order: id, revenue, region → region, id, revenue",
        ])
        let both = [Self.col("id", "string", true)] + Self.base.dropFirst()
        #expect(SchemaContract.violation(from: Self.base, to: both, policy: .none) == "column id: int64 not null → string nullable")
    }

    @Test func additiveAllowsOnlyNewNullableColumnsAtTheEnd() {
        let atEnd = Self.base + [Self.col("note", "string"), Self.col("score", "double")]
        #expect(SchemaContract.violation(from: Self.base, to: atEnd, policy: .additive) == nil)
        // `none` refuses the same change, naming both columns.
        #expect(SchemaContract.violation(from: Self.base, to: atEnd, policy: .none)
                == "column note added (string, nullable); column score added (double, nullable)")

        let notNull = Self.base + [Self.col("note", "string", false)]
        #expect(SchemaContract.violation(from: Self.base, to: notNull, policy: .additive) == "column note added (string, not null)")

        let inTheMiddle = [Self.base[0], Self.col("note", "string"), Self.base[1], Self.base[2]]
        #expect(SchemaContract.violation(from: Self.base, to: inTheMiddle, policy: .additive)
                == "column note added before existing column revenue (string, nullable)")

        // Additions do not excuse other changes; only those are reported.
        let mixed = [Self.base[0], Self.col("revenue", "double"), Self.base[2], Self.col("note", "string")]
        #expect(SchemaContract.violation(from: Self.base, to: mixed, policy: .additive) == "column revenue: decimal(18,4) → double")
        let removed = [Self.base[0], Self.base[1], Self.col("note", "string")]
        #expect(SchemaContract.violation(from: Self.base, to: removed, policy: .additive) == "column region removed")
    }

    @Test func anyAllowsEverything() {
        #expect(SchemaContract.violation(from: Self.base, to: [Self.col("x", "bool")], policy: .any) == nil)
    }
}

/// The contract as publish applies it, and rollback, on a real data root.
@Suite struct SchemaContractPublishTests {
    /// One chunk of `rows` rows with ids from `firstID` and an `amount` of `amountType`, plus `extra` nullable string columns.
    static func chunk(_ f: PublishFixture, _ label: String, rows: Int = 20, firstID: Int64 = 0,
                      amountType: ColumnType = .decimal(precision: 10, scale: 2), extra: [String] = []) throws -> [String] {
        var fields: [(String, ColumnType, [Scalar?])] = [
            ("id", .int64, (0..<rows).map { .int(firstID + Int64($0)) }),
            ("amount", amountType, (0..<rows).map { i -> Scalar? in
                amountType == .double ? .double(Double(i)) : .int(Int64(i) * 100) }),
        ]
        for name in extra { fields.append((name, .string, (0..<rows).map { _ in nil })) }
        let path = try f.dir.sub("validated-\(label)") + "/validated-00000.parquet"
        return [try opWriteChunk(path, [try opBatch(fields)]).path]
    }

    static func publishRun(_ f: PublishFixture, _ run: String, _ chunks: [String], at seconds: Double,
                           schemaChange: PublishSpec.SchemaChange = .none) throws -> PublishResult {
        try publish(dataset: "orders", run: run, pipeline: "orders-daily", chunks: chunks, summaries: [:], root: f.root,
                    retention: 5, now: Date(timeIntervalSince1970: 1_795_000_000 + seconds), schemaChange: schemaChange)
    }

    @Test func aChangedSchemaIsRefusedAndNothingIsPublished() throws {
        let f = try PublishFixture()
        defer { f.dir.cleanup() }
        let first = try Self.publishRun(f, "run-1", try Self.chunk(f, "a"), at: 0)
        let view = f.text("orders/view.sql")
        let error = #expect(throws: PublishError.self) {
            _ = try Self.publishRun(f, "run-2", try Self.chunk(f, "b", amountType: .double), at: 60)
        }
        guard case .schemaChanged(let dataset, let current, let currentHash, _, let difference, let policy)? = error else {
            Issue.record("expected schemaChanged, got \(String(describing: error))")
            return
        }
        #expect(dataset == "orders" && current == "run-1" && policy == .none)
        #expect(difference == "column amount: decimal(10,2) → double")
        #expect(currentHash == first.dataset.manifest.schemaSHA256)
        let text = error!.description
        #expect(text.hasPrefix("quality gate failed: the schema of dataset 'orders' differs from CURRENT's (run run-1): "
                               + "column amount: decimal(10,2) → double. Nothing was published"), "\(text)")
        #expect(text.contains("schema_change: additive") && text.contains("schema_change: any"))
        #expect(f.text("orders/CURRENT") == "run-1\n" && f.text("orders/view.sql") == view)
        #expect(f.entries("orders") == [".lock", "CURRENT", "run-1", "view.sql"])
    }

    @Test func additiveAllowsANewNullableColumnAtTheEndAndAnyAllowsAll() throws {
        let f = try PublishFixture()
        defer { f.dir.cleanup() }
        _ = try Self.publishRun(f, "run-1", try Self.chunk(f, "a"), at: 0)
        Self.expectSchemaChanged(current: "run-1", difference: "column note added (string, nullable)") {
            _ = try Self.publishRun(f, "run-2", try Self.chunk(f, "b", extra: ["note"]), at: 60)
        }
        let added = try Self.publishRun(f, "run-2", try Self.chunk(f, "b", extra: ["note"]), at: 60, schemaChange: .additive)
        #expect(added.current["orders"] == "run-2")
        #expect(added.dataset.manifest.schema.map(\.name) == ["id", "amount", "note"])
        // The contract is now run-2's: dropping the column again is not additive.
        Self.expectSchemaChanged(current: "run-2", difference: "column note removed", policy: .additive) {
            _ = try Self.publishRun(f, "run-3", try Self.chunk(f, "c"), at: 120, schemaChange: .additive)
        }
        #expect(f.text("orders/CURRENT") == "run-2\n")
        let any = try Self.publishRun(f, "run-3", try Self.chunk(f, "c", amountType: .double), at: 120, schemaChange: .any)
        #expect(any.current["orders"] == "run-3")
        // Publishing a version already in place again is not checked again,
        // even when CURRENT has moved on to another schema since.
        _ = try Self.publishRun(f, "run-4", try Self.chunk(f, "d"), at: 180, schemaChange: .any)
        let again = try Self.publishRun(f, "run-3", try Self.chunk(f, "c", amountType: .double), at: 120)
        #expect(again.dataset.reused && again.current["orders"] == "run-4")
    }

    /// `body` fails with `schemaChanged` against `current`, naming `difference`.
    static func expectSchemaChanged(current: String, difference: String, policy: PublishSpec.SchemaChange = .none,
                                    sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> Void) {
        let error = #expect(throws: PublishError.self, sourceLocation: sourceLocation) { try body() }
        guard case .schemaChanged(_, let c, _, _, let d, let p)? = error else {
            Issue.record("expected schemaChanged, got \(String(describing: error))", sourceLocation: sourceLocation)
            return
        }
        #expect(c == current && d == difference && p == policy, sourceLocation: sourceLocation)
    }

    @Test func aSummaryBreakingItsContractStopsTheWholePublish() throws {
        let f = try PublishFixture()
        defer { f.dir.cleanup() }
        let a = try f.chunks("a", count: 2, rows: 50)
        _ = try f.publishRun("run-1", a, at: 0)
        let b = try f.chunks("b", count: 2, rows: 50, firstID: 1000, seed: 2)
        // The dataset's schema is the same; the summary loses its aggregates but the count.
        let fewer = try b.map { try #require(try partialAggregate(chunks: [$0], groupBy: ["flag"],
                                                                  aggregates: [AggregateColumn("rows", .count)])) }
        let before = try f.snapshot()
        let error = #expect(throws: PublishError.self) {
            _ = try publish(dataset: "orders", run: "run-2", pipeline: "orders-daily", chunks: b, summaries: ["by_flag": fewer],
                            root: f.root, retention: 3, now: Date(timeIntervalSince1970: 1_795_000_060))
        }
        guard case .schemaChanged(let dataset, let current, _, _, let difference, _)? = error else {
            Issue.record("expected schemaChanged, got \(String(describing: error))")
            return
        }
        #expect(dataset == "by_flag" && current == "run-1")
        #expect(difference.hasPrefix("column amount_sum removed; "), "\(difference)")
        // Nothing placed, for the dataset either; no temp folder left.
        #expect(f.entries("orders") == [".lock", "CURRENT", "run-1", "view.sql"])
        #expect(f.entries("by_flag") == [".lock", "CURRENT", "run-1", "view.sql"])
        let after = try f.snapshot()
        #expect(Set(after.keys) == Set(before.keys))
        for (k, v) in before { #expect(after[k]?.0 == v.0, "\(k) changed") }
    }

    @Test(arguments: ["orders", "by_flag"])
    func aCrashWhileStagingLeavesNothingPlacedAndAReplayCompletes(crashAt: String) throws {
        let f = try PublishFixture()
        defer { f.dir.cleanup() }
        _ = try f.publishRun("run-1", try f.chunks("a", count: 2, rows: 50), at: 0)
        let next = try f.chunks("b", count: 2, rows: 40, firstID: 1000, seed: 2)
        let crash = PublishFaults { s, dataset in
            if s == .versionWritten, dataset == crashAt { throw InjectedCrash() }
        }
        #expect(throws: InjectedCrash.self) { _ = try f.publishRun("run-2", next, at: 60, faults: crash) }
        // The dataset is staged first; the summary only when the crash is at its own step.
        #expect(f.entries("orders").filter { $0.hasPrefix(".tmp-run-2-") }.count == 1)
        #expect(f.entries("by_flag").filter { $0.hasPrefix(".tmp-run-2-") }.count == (crashAt == "by_flag" ? 1 : 0))
        #expect(!f.entries("orders").contains("run-2") && !f.entries("by_flag").contains("run-2"))
        #expect(f.text("orders/CURRENT") == "run-1\n" && f.text("by_flag/CURRENT") == "run-1\n")

        let r = try f.publishRun("run-2", next, at: 60)
        #expect(r.current == ["orders": "run-2", "by_flag": "run-2"] && !r.dataset.reused)
        #expect(f.entries("orders") == [".lock", "CURRENT", "run-1", "run-2", "view.sql"])
        #expect(f.entries("by_flag") == [".lock", "CURRENT", "run-1", "run-2", "view.sql"])
    }

    @Test func anUnreadableCurrentIsNoWayPastTheContract() throws {
        let f = try PublishFixture()
        defer { f.dir.cleanup() }
        _ = try Self.publishRun(f, "run-1", try Self.chunk(f, "a"), at: 0)
        for broken in ["run-9\n", "../x\n"] {
            try broken.write(toFile: f.published + "/orders/CURRENT", atomically: true, encoding: .utf8)
            let error = #expect(throws: PublishError.self) {
                _ = try Self.publishRun(f, "run-2", try Self.chunk(f, "b", amountType: .double), at: 60)
            }
            guard case .schemaChanged(_, let current, _, _, let difference, _)? = error else {
                Issue.record("expected schemaChanged, got \(String(describing: error))")
                continue
            }
            #expect(difference == "column amount: decimal(10,2) → double")
            #expect(current.hasPrefix(broken.dropLast() + ", which cannot be read (") && current.hasSuffix(
                "compared with run-1, the newest readable version"), "\(current)")
            #expect(f.text("orders/CURRENT") == broken && !f.entries("orders").contains("run-2"))
        }
        // A damaged manifest under CURRENT's name: the same.
        try "run-1\n".write(toFile: f.published + "/orders/CURRENT", atomically: true, encoding: .utf8)
        _ = try Self.publishRun(f, "run-2", try Self.chunk(f, "b"), at: 60)
        try "{".write(toFile: f.published + "/orders/run-2/_manifest.json", atomically: true, encoding: .utf8)
        let error = #expect(throws: PublishError.self) {
            _ = try Self.publishRun(f, "run-3", try Self.chunk(f, "c", amountType: .double), at: 120)
        }
        guard case .schemaChanged(_, let current, _, _, _, _)? = error else {
            Issue.record("expected schemaChanged, got \(String(describing: error))")
            return
        }
        #expect(current.hasPrefix("run-2, which cannot be read") && current.hasSuffix("compared with run-1, the newest readable version"))
        #expect(f.text("orders/CURRENT") == "run-2\n")
    }

    @Test func rollbackMovesCurrentAndTheViewAndRollsForward() throws {
        let f = try PublishFixture()
        defer { f.dir.cleanup() }
        _ = try Self.publishRun(f, "run-1", try Self.chunk(f, "a", rows: 10, firstID: 0), at: 0)
        _ = try Self.publishRun(f, "run-2", try Self.chunk(f, "b", rows: 15, firstID: 100), at: 60)
        let listed = try DatasetCatalog.list(root: f.root)
        #expect(listed.map(\.name) == ["orders"])
        #expect(listed[0].versions.map(\.run) == ["run-2", "run-1"] && listed[0].current == "run-2")

        let back = try DatasetCatalog.rollback("orders", to: "run-1", root: f.root)
        #expect(back.from == "run-2" && back.to == "run-1" && back.moved)
        #expect(f.text("orders/CURRENT") == "run-1\n")
        #expect(f.text("orders/view.sql")?.contains("/orders/run-1/part-00000.parquet") == true)
        #expect(!f.entries("orders").contains { $0.hasPrefix(".tmp") })
        if StagesPython.enabled {
            let v = try f.duckdbView("orders")
            #expect(v.rows == 10 && v.ids == Array(0..<10))
        }
        // Again: nothing moves.
        #expect(try DatasetCatalog.rollback("orders", to: "run-1", root: f.root).moved == false)
        // Forward again.
        #expect(try DatasetCatalog.rollback("orders", to: "run-2", root: f.root).moved)
        #expect(f.text("orders/view.sql")?.contains("/orders/run-2/part-00000.parquet") == true)
        if StagesPython.enabled {
            let v = try f.duckdbView("orders")
            #expect(v.rows == 15 && v.ids == Array(100..<115))
        }
    }

    @Test func aDuplicatePublishOfARolledAwayRunLeavesCurrentWhereTheRollbackPutIt() throws {
        let f = try PublishFixture()
        defer { f.dir.cleanup() }
        let a = try Self.chunk(f, "a", rows: 10, firstID: 0)
        let b = try Self.chunk(f, "b", rows: 15, firstID: 100)
        _ = try Self.publishRun(f, "run-1", a, at: 0)
        _ = try Self.publishRun(f, "run-2", b, at: 60)
        _ = try DatasetCatalog.rollback("orders", to: "run-1", root: f.root)
        #expect(RollbackMarker.read(folder: f.published + "/orders") == RollbackMarker(to: "run-1", from: "run-2", held: ["run-2"]))

        // A redelivered publish task of run-2 finds its version in place.
        let again = try Self.publishRun(f, "run-2", b, at: 60)
        #expect(again.dataset.reused && again.current["orders"] == "run-1")
        #expect(f.text("orders/CURRENT") == "run-1\n")
        #expect(f.text("orders/view.sql")?.contains("/orders/run-1/part-00000.parquet") == true)

        // Rolling forward explicitly clears the hold; the duplicate changes nothing then either.
        #expect(try DatasetCatalog.rollback("orders", to: "run-2", root: f.root).moved)
        #expect(RollbackMarker.read(folder: f.published + "/orders") == nil)
        #expect(try Self.publishRun(f, "run-2", b, at: 60).current["orders"] == "run-2")

        // A run published for the first time after a rollback moves CURRENT as usual.
        _ = try DatasetCatalog.rollback("orders", to: "run-1", root: f.root)
        let c = try Self.publishRun(f, "run-3", try Self.chunk(f, "c", rows: 5, firstID: 200), at: 120)
        #expect(c.current["orders"] == "run-3" && f.text("orders/CURRENT") == "run-3\n")
        #expect(try Self.publishRun(f, "run-2", b, at: 60).current["orders"] == "run-3")
    }

    @Test func aCrashBetweenCurrentAndTheViewIsFlaggedAndRepaired() throws {
        let f = try PublishFixture()
        defer { f.dir.cleanup() }
        _ = try Self.publishRun(f, "run-1", try Self.chunk(f, "a", rows: 10, firstID: 0), at: 0)
        _ = try Self.publishRun(f, "run-2", try Self.chunk(f, "b", rows: 15, firstID: 100), at: 60)
        let view2 = try #require(f.text("orders/view.sql"))
        let crash = PublishFaults { step, _ in if step == .pointerSwapped { throw InjectedCrash() } }
        #expect(throws: InjectedCrash.self) { _ = try DatasetCatalog.rollback("orders", to: "run-1", root: f.root, faults: crash) }
        #expect(f.text("orders/CURRENT") == "run-1\n" && f.text("orders/view.sql") == view2)
        let entry = try #require(try DatasetCatalog.dataset("orders", root: f.root))
        #expect(DatasetCatalog.problem(entry)?.hasPrefix("view.sql does not read CURRENT's version (run-1)") == true)

        #expect(try DatasetCatalog.repairViews(root: f.root) == ["orders"])
        #expect(f.text("orders/view.sql")?.contains("/orders/run-1/part-00000.parquet") == true)
        #expect(DatasetCatalog.problem(try #require(try DatasetCatalog.dataset("orders", root: f.root))) == nil)
        #expect(try DatasetCatalog.repairViews(root: f.root) == [])
        if StagesPython.enabled {
            let v = try f.duckdbView("orders")
            #expect(v.rows == 10 && v.ids == Array(0..<10))
        }
        // CURRENT naming a version that is gone is flagged, not repaired.
        try "run-9\n".write(toFile: f.published + "/orders/CURRENT", atomically: true, encoding: .utf8)
        let gone = try #require(try DatasetCatalog.dataset("orders", root: f.root))
        #expect(DatasetCatalog.problem(gone) == "CURRENT names run-9, which is not a readable version of orders")
        #expect(try DatasetCatalog.repairViews(root: f.root) == [])
    }

    @Test func rollbackDoesNotWaitForAPublishHoldingTheLock() throws {
        let f = try PublishFixture()
        defer { f.dir.cleanup() }
        _ = try Self.publishRun(f, "run-1", try Self.chunk(f, "a"), at: 0)
        _ = try Self.publishRun(f, "run-2", try Self.chunk(f, "b", firstID: 100), at: 60)
        let held = try DurableFiles.Lock(f.published + "/orders/.lock")
        let started = Date()
        #expect(throws: DatasetCatalog.RefusalError.busy(dataset: "orders")) {
            _ = try DatasetCatalog.rollback("orders", to: "run-1", root: f.root, patience: 0.2)
        }
        #expect(Date().timeIntervalSince(started) < 5)
        #expect(f.text("orders/CURRENT") == "run-2\n")
        held.release()
        #expect(try DatasetCatalog.rollback("orders", to: "run-1", root: f.root, patience: 0.2).moved)
    }

    @Test func rollbackMovesTheDatasetsSummariesAlong() throws {
        let f = try PublishFixture()
        defer { f.dir.cleanup() }
        _ = try f.publishRun("run-1", try f.chunks("a", count: 2, rows: 50), at: 0)
        _ = try f.publishRun("run-2", try f.chunks("b", count: 2, rows: 50, firstID: 1000, seed: 2), at: 60)
        let back = try DatasetCatalog.rollback("orders", to: "run-1", root: f.root)
        #expect(back.moved && back.summaries == ["by_flag"] && back.summariesLeft == [])
        #expect(f.text("by_flag/CURRENT") == "run-1\n")
        #expect(f.text("by_flag/view.sql")?.contains("/by_flag/run-1/part-00000.parquet") == true)
        // A redelivered publish of run-2 leaves both where the rollback put them.
        let again = try f.publishRun("run-2", try f.chunks("b", count: 2, rows: 50, firstID: 1000, seed: 2), at: 60)
        #expect(again.current == ["orders": "run-1", "by_flag": "run-1"])

        // A run without the summary: the summary stays, and says so.
        _ = try publish(dataset: "orders", run: "run-3", pipeline: "orders-daily", chunks: try f.chunks("c", count: 1, rows: 5, firstID: 5000),
                        summaries: [:], root: f.root, retention: 5, now: Date(timeIntervalSince1970: 1_795_000_120))
        _ = try DatasetCatalog.rollback("orders", to: "run-1", root: f.root)
        let forward = try DatasetCatalog.rollback("orders", to: "run-3", root: f.root)
        #expect(forward.summaries == [] && forward.summariesLeft == ["by_flag"])
        #expect(f.text("orders/CURRENT") == "run-3\n" && f.text("by_flag/CURRENT") == "run-1\n")
    }

    @Test func rollbackRefusesUnknownDatasetsRunsAndDamagedVersions() throws {
        let f = try PublishFixture()
        defer { f.dir.cleanup() }
        _ = try Self.publishRun(f, "run-1", try Self.chunk(f, "a"), at: 0)
        _ = try Self.publishRun(f, "run-2", try Self.chunk(f, "b", firstID: 100), at: 60)
        #expect(throws: DatasetCatalog.RefusalError.unknownDataset("nope", known: ["orders"])) {
            _ = try DatasetCatalog.rollback("nope", to: "run-1", root: f.root)
        }
        #expect(throws: DatasetCatalog.RefusalError.noSuchVersion(dataset: "orders", run: "run-9", versions: ["run-2", "run-1"])) {
            _ = try DatasetCatalog.rollback("orders", to: "run-9", root: f.root)
        }
        #expect(throws: DatasetCatalog.RefusalError.self) { _ = try DatasetCatalog.rollback("../x", to: "run-1", root: f.root) }
        try FileManager.default.removeItem(atPath: f.published + "/orders/run-1/part-00000.parquet")
        #expect(throws: PublishError.self) { _ = try DatasetCatalog.rollback("orders", to: "run-1", root: f.root) }
        #expect(f.text("orders/CURRENT") == "run-2\n")
    }
}
