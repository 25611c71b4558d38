import Columnar
@testable import Coordination
import FleetCore
import Foundation
import GRDB
import Testing

/// `bis quarantine --limit N` and the dashboard read a run's quarantine
/// row group by row group and stop at the limit (issue 12, item 10).
@Suite struct QuarantineViewTests {
    @Test func theFirstRowsNeedOnlyTheFirstRowGroups() async throws {
        let (store, dir) = try StateMachineTests.store()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // A validate quarantine of 30 rows in three row groups of 10.
        let schema = Schema([Field("file", .string), Field("line", .int64), Field("rule", .string),
                             Field("reason", .string), Field("row", .string)])
        var options = WriterOptions()
        options.rowGroupRows = 10
        let relative = "runs/r/validate/0/x/quarantine.parquet"
        let path = dir + "/" + relative
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        let writer = try ParquetWriter(path: path, schema: schema, options: options)
        let n = 30
        try writer.append(try ColumnBatch(schema: schema, columns: [
            try Column(.string, scalars: (0..<n).map { _ in .string("in.csv") }),
            try Column(.int64, scalars: (0..<n).map { .int(Int64($0 + 2)) }),
            try Column(.string, scalars: (0..<n).map { _ in .string("not_null: [id]") }),
            try Column(.string, scalars: (0..<n).map { _ in .string("id is null") }),
            try Column(.string, scalars: (0..<n).map { .string("row \($0)") }),
        ]))
        _ = try writer.finish()
        // The last row group is made unreadable: only a reader that reads
        // past the first groups can notice.
        let reader = try ParquetReader(path: path)
        #expect(reader.rowGroups.count == 3)
        let offset = reader.rowGroups[2].columns[0].dataPageOffset
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        try handle.seek(toOffset: UInt64(offset))
        try handle.write(contentsOf: Data(repeating: 0xFF, count: 24))
        try handle.close()

        try await store.pool.write { db in
            try db.execute(sql: "UPDATE tasks SET stage = 'validate', state = 'succeeded', winner = 'x'")
            try db.execute(sql: "UPDATE executions SET state = 'succeeded'")
            try db.execute(sql: """
                INSERT INTO chunks(path, sha256, rows, bytes, kind, run) VALUES (?, 'h', 30, 1, 'quarantine', 'r')
                """, arguments: [relative])
            try db.execute(sql: "INSERT INTO edges(chunk, execution, direction) VALUES (last_insert_rowid(), 'x', 'out')")
        }
        let engine = CoordinatorEngine(store: store, transport: InMemoryTransport(), chunkStore: ChunkStore(root: dir))
        let first = try await engine.quarantine("r", rule: nil, limit: 15)
        #expect(first.map(\.row) == (0..<15).map { "row \($0)" })
        #expect(first.first?.line == 2 && first.first?.rule == "not_null: [id]")
        await #expect(throws: (any Error).self, "the damage is real: reading every group fails") {
            _ = try await engine.quarantine("r", rule: nil, limit: 100)
        }
    }
}
