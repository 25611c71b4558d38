import FleetCore
import Foundation
import GRDB

// A source file submitted with a stat placeholder (`SourceIdentity`) gets
// its content identity when the last ingest of it in the run commits: the
// ingests' range hashes (their `result`), combined. The run's ingest tasks
// and their input edges move from the placeholder chunk row to the row of
// (path, identity), shared with other runs of the same bytes; the
// placeholder row goes when nothing refers to it. Until then (and for good
// if an ingest of the file fails) lineage shows the placeholder.

extension Database {
    /// After ingest task `task` of `run` committed (and its fused followers
    /// were recorded): records its source file's identity if it was the
    /// file's last ingest. Idempotent.
    func recordSourceIdentity(run: String, ingestTask task: Int64) throws {
        guard let source = try Row.fetchOne(self, sql: """
            SELECT c.id, c.path, c.sha256, c.rows, c.bytes, c.kind, c.partition, c.name FROM task_inputs ti
            JOIN chunks c ON c.id = ti.chunk WHERE ti.task = ? AND c.kind = 'source' AND c.sha256 LIKE 'stat:%'
            """, arguments: [task]) else { return }
        let placeholder: Int64 = source["id"]
        let tasks = try Row.fetchAll(self, sql: """
            SELECT t.id, t.state, t.result FROM tasks t JOIN task_inputs ti ON ti.task = t.id
            WHERE t.run = ? AND t.stage = 'ingest' AND ti.chunk = ?
            """, arguments: [run, placeholder])
        var ranges: [SourceIdentity.Range] = []
        for t in tasks {
            guard (t["state"] as String) == TaskState.succeeded.rawValue,
                  let r = SourceIdentity.range(fromResult: t["result"]) else { return }
            ranges.append(r)
        }
        guard let identity = SourceIdentity.identity(of: ranges, size: source["bytes"]) else { return }
        var chunk = ChunkRef(row: source)
        chunk.sha256 = identity
        let id = try chunkID(chunk, run: nil)
        // Every task of this run that names the file: its ingests and, when
        // fused, their normalize followers (whose inputs are the shard too).
        try execute(sql: """
            UPDATE OR REPLACE task_inputs SET chunk = ? WHERE chunk = ? AND task IN (SELECT id FROM tasks WHERE run = ?)
            """, arguments: [id, placeholder, run])
        try execute(sql: """
            UPDATE OR REPLACE edges SET chunk = ? WHERE chunk = ? AND direction = 'in'
            AND execution IN (SELECT e.id FROM executions e JOIN tasks t ON t.id = e.task WHERE t.run = ?)
            """, arguments: [id, placeholder, run])
        let used = try Int.fetchOne(self, sql: """
            SELECT (SELECT COUNT(*) FROM task_inputs WHERE chunk = ?) + (SELECT COUNT(*) FROM edges WHERE chunk = ?)
            """, arguments: [placeholder, placeholder]) ?? 0
        if used == 0 { try execute(sql: "DELETE FROM chunks WHERE id = ?", arguments: [placeholder]) }
    }
}
