import Columnar
import FleetCore
import Foundation
import GRDB
import Stages

extension CoordinatorEngine {
    /// The tree back to the input files from: a run id (its published
    /// manifests, else its last stage's outputs), a dataset name (the
    /// version its `CURRENT` names), a dataset version
    /// (`dataset/run`, or a path under `published/`), a chunk path (absolute
    /// or relative to the data root) or a sha256.
    public func lineageTrace(_ target: String) async throws -> LineageNode {
        let root = chunkStore
        return try await store.read { db in
            let roots = try Self.resolveTarget(target, root: root, db)
            guard !roots.isEmpty else {
                throw ServiceError.notFound("nothing in the lineage store matches '\(target)': give a run id, a dataset name, DATASET/RUN, a chunk path or a sha256")
            }
            var memo: [Int64: LineageNode] = [:]
            let nodes = try roots.map { try Self.trace(chunk: $0, db, memo: &memo, depth: 0) }
            if nodes.count == 1 { return nodes[0] }
            return LineageNode(kind: .result, path: target, sha256: "", rows: nodes.reduce(0) { $0 + $1.rows },
                               bytes: nodes.reduce(0) { $0 + $1.bytes }, name: target, producedBy: nil, inputs: nodes)
        }
    }

    static func resolveTarget(_ target: String, root: ChunkStore, _ db: Database) throws -> [Int64] {
        if try RunRecord.fetch(db, target) != nil {
            let published = try Int64.fetchAll(db, sql: """
                SELECT e.chunk FROM tasks t JOIN edges e ON e.execution = t.winner AND e.direction = 'out'
                JOIN chunks c ON c.id = e.chunk WHERE t.run = ? AND t.stage = 'publish' AND c.kind = 'result' ORDER BY c.id
                """, arguments: [target])
            if !published.isEmpty { return published }
            // Every committed output of the latest stage that committed any
            // (all its tasks: consolidate's every partition, not one).
            let outputs = try Int64.fetchAll(db, sql: """
                SELECT e.chunk FROM tasks t JOIN edges e ON e.execution = t.winner AND e.direction = 'out'
                WHERE t.run = ? AND t.state = 'succeeded' AND t.stage = (
                    SELECT t2.stage FROM tasks t2 JOIN edges e2 ON e2.execution = t2.winner AND e2.direction = 'out'
                    WHERE t2.run = ? AND t2.state = 'succeeded' ORDER BY t2.planned_at DESC, t2.id DESC LIMIT 1)
                ORDER BY t.idx, e.chunk
                """, arguments: [target, target])
            if !outputs.isEmpty { return outputs }
            // Retention pruned its executions' lineage (--keep-lineage): the
            // rows of its published versions' manifests stay, without
            // producer or inputs.
            let kept = try Self.keptVersionManifests(run: target, db)
            if !kept.isEmpty { return kept.map(\.id) }
            if try Bool.fetchOne(db, sql: """
                SELECT EXISTS (SELECT 1 FROM tasks t WHERE t.run = ? AND t.winner IS NOT NULL
                               AND NOT EXISTS (SELECT 1 FROM executions x WHERE x.id = t.winner))
                """, arguments: [target]) ?? false {
                throw ServiceError.notFound("run \(target)'s lineage was pruned by retention (--keep-lineage) and it published "
                                            + "no version, so it has no lineage to trace")
            }
            throw ServiceError.notFound("run \(target) has committed no outputs yet, so it has no lineage to trace")
        }
        // A bare dataset name: the version its CURRENT names (a run id of
        // the same name wins, above: run ids carry their time and do not
        // look like dataset names). Only CURRENT is read, not the manifests.
        var unknownCurrent: String?
        if !target.contains("/"), let current = DatasetCatalog.current(of: target, root: root.root) {
            let manifest = "published/\(target)/\(current)/_manifest.json"
            let ids = try Int64.fetchAll(db, sql: "SELECT id FROM chunks WHERE path = ? ORDER BY id DESC LIMIT 1", arguments: [manifest])
            if !ids.isEmpty { return ids }
            unknownCurrent = current
        }
        var candidates = [target]
        if let rel = root.relative(target) { candidates.append(rel) }
        let parts = target.split(separator: "/")
        if parts.count == 2 { candidates.append("published/\(parts[0])/\(parts[1])/_manifest.json") }
        if !target.hasSuffix(".json"), !target.hasSuffix(".parquet") {
            let t = target.hasSuffix("/") ? String(target.dropLast()) : target
            candidates.append(t + "/_manifest.json")
            if let rel = root.relative(t) { candidates.append(rel + "/_manifest.json") }
        }
        for c in candidates {
            let ids = try Int64.fetchAll(db, sql: "SELECT id FROM chunks WHERE path = ? ORDER BY id DESC LIMIT 1", arguments: [c])
            if !ids.isEmpty { return ids }
        }
        let bySHA = try Int64.fetchAll(db, sql: "SELECT id FROM chunks WHERE sha256 = ? ORDER BY id LIMIT 1", arguments: [target.lowercased()])
        if bySHA.isEmpty, let current = unknownCurrent {
            throw ServiceError.notFound("dataset \(target)'s CURRENT names run \(current), whose version the lineage store does not "
                                        + "know (published outside this coordinator?): trace another version as \(target)/RUN")
        }
        return bySHA
    }

    /// The chunk rows of `run`'s published versions' manifests (and of its
    /// delivery receipts, with `receipts`), which lineage pruning keeps:
    /// by run (chunks_by_run), not through edges.
    static func keptVersionManifests(run: String, receipts: Bool = false, _ db: Database) throws -> [(id: Int64, path: String)] {
        try Row.fetchAll(db, sql: """
            SELECT id, path FROM chunks WHERE run = ? AND ((substr(path, 1, 10) = 'published/' AND path LIKE '%/_manifest.json')
            OR (? AND path LIKE '%/receipt.json')) ORDER BY id
            """, arguments: [run, receipts]).map { ($0["id"], $0["path"]) }
    }

    static func trace(chunk: Int64, _ db: Database, memo: inout [Int64: LineageNode], depth: Int) throws -> LineageNode {
        if let known = memo[chunk] { return known }
        guard let row = try Row.fetchOne(db, sql: "SELECT * FROM chunks WHERE id = ?", arguments: [chunk]) else {
            throw ServiceError.notFound("chunk \(chunk) vanished from the store")
        }
        let c = ChunkRef(row: row)
        var node = LineageNode(kind: c.kind, path: c.path, sha256: c.sha256, rows: c.rows, bytes: c.bytes, name: c.name,
                               producedBy: nil, inputs: [],
                               removedAt: (row["removed_at"] as Double?).map(Date.init(timeIntervalSince1970:)))
        // The winning execution that wrote it (a duplicate's chunks are never recorded).
        if depth < 16, let producer = try Row.fetchOne(db, sql: """
            SELECT x.id, x.worker, x.attempt, t.run, t.stage, t.idx FROM edges e JOIN executions x ON x.id = e.execution
            JOIN tasks t ON t.id = x.task WHERE e.chunk = ? AND e.direction = 'out' AND x.state = 'succeeded' LIMIT 1
            """, arguments: [chunk]) {
            let stage = try producer.decode(Stage.self, "stage", table: "tasks", row: "of execution \(producer["id"] as String)")
            node.producedBy = .init(run: producer["run"], stage: stage,
                                    task: FleetIDs.taskID(run: producer["run"], stage: stage, index: producer["idx"]),
                                    execution: producer["id"], worker: producer["worker"], attempt: producer["attempt"])
            let inputs = try Int64.fetchAll(db, sql: "SELECT chunk FROM edges WHERE execution = ? AND direction = 'in' ORDER BY chunk",
                                            arguments: [producer["id"] as String])
            node.inputs = try inputs.map { try trace(chunk: $0, db, memo: &memo, depth: depth + 1) }
            if let leader = Self.fusable.first(where: { $0.1 == stage })?.0,
               var fused = try fusedLeader(leader, of: stage, run: producer["run"], index: producer["idx"],
                                           follower: producer["id"], db) {
                fused.inputs = node.inputs
                // Its folder is the one validate's files lie in: removed with them.
                fused.removedAt = node.removedAt
                node.inputs = [fused]
            }
        }
        memo[chunk] = node
        return node
    }

    /// A follower stage that ran fused in its leader's task
    /// (`Intake.followerExecution`; validate in consolidate's, normalize in
    /// ingest's): the leader's step of the trace, which wrote no chunk of its
    /// own. Shown as a node of kind `data` with no sha256 and no bytes, path
    /// the fused execution's folder, named e.g. "consolidate of partition N
    /// (fused into validate, not written)" or "ingest of shard N (fused into
    /// normalize, not written)", rows the leader's rows out, produced by the
    /// leader's execution; its inputs are the follower's (the partition's
    /// normalize chunks; the shard's source file); removed (`removedAt`)
    /// when the follower's chunk is, the folder they share.
    static func fusedLeader(_ leader: Stage, of follower: Stage, run: String, index: Int, follower execution: String,
                            _ db: Database) throws -> LineageNode? {
        guard let row = try Row.fetchOne(db, sql: """
            SELECT x.id, x.worker, x.attempt, x.rows_out FROM tasks t JOIN executions x ON x.id = t.winner
            WHERE t.run = ? AND t.stage = ? AND t.idx = ? AND t.state = 'succeeded'
            """, arguments: [run, leader.rawValue, index]),
            Self.followerExecution(row["id"], follower) == execution
        else { return nil }
        let id: String = row["id"]
        let unit = leader == .ingest ? "shard" : "partition"
        return LineageNode(
            kind: .data, path: "runs/\(run)/\(leader.rawValue)/\(index)/\(id)", sha256: "", rows: row["rows_out"] ?? 0, bytes: 0,
            name: "\(leader.rawValue) of \(unit) \(index) (fused into \(follower.rawValue), not written)",
            producedBy: .init(run: run, stage: leader, task: FleetIDs.taskID(run: run, stage: leader, index: index),
                              execution: id, worker: row["worker"], attempt: row["attempt"]),
            inputs: [])
    }

    /// Every run that read the file (by absolute path or by sha256), with the
    /// dataset versions it published and the deliveries it made.
    public func lineageImpact(_ file: String) async throws -> ImpactReport {
        let absolute = file.hasPrefix("/") ? file : FileManager.default.currentDirectoryPath + "/" + file
        let standardized = URL(fileURLWithPath: absolute).standardizedFileURL.path
        return try await store.read { db in
            let rows = try Row.fetchAll(db, sql: """
                SELECT DISTINCT r.id, r.pipeline, r.state, c.path, c.sha256, r.submitted_at FROM chunks c
                JOIN task_inputs i ON i.chunk = c.id JOIN tasks t ON t.id = i.task JOIN runs r ON r.id = t.run
                WHERE c.kind = 'source' AND (c.path = ? OR c.path = ? OR c.sha256 = ?) ORDER BY r.submitted_at, r.id
                """, arguments: [file, standardized, file.lowercased()])
            var uses: [ImpactReport.RunUse] = []
            for r in rows {
                let run: String = r["id"]
                var use = ImpactReport.RunUse(run: run, pipeline: r["pipeline"], state: try r.decode(RunState.self, "state", table: "runs", row: run),
                                              file: r["path"], sha256: r["sha256"], datasets: [:], deliveries: [])
                for c in try Row.fetchAll(db, sql: """
                    SELECT t.stage, c.path, c.name FROM tasks t JOIN edges e ON e.execution = t.winner AND e.direction = 'out'
                    JOIN chunks c ON c.id = e.chunk WHERE t.run = ? AND t.stage IN ('publish', 'deliver') ORDER BY c.id
                    """, arguments: [run]) {
                    let path: String = c["path"]
                    if c["stage"] == "publish", let name: String = c["name"] {
                        use.datasets[name] = (path as NSString).deletingLastPathComponent
                    } else if c["stage"] == "deliver", path.hasSuffix("receipt.json") {
                        use.deliveries.append(path)
                    }
                }
                if use.datasets.isEmpty && use.deliveries.isEmpty {
                    // Its executions' lineage pruned (--keep-lineage): the
                    // kept rows of its manifests and receipts, by run.
                    for (_, path) in try Self.keptVersionManifests(run: run, receipts: true, db) {
                        let parts = path.split(separator: "/")
                        if path.hasPrefix("published/"), parts.count == 4 {
                            use.datasets[String(parts[1])] = (path as NSString).deletingLastPathComponent
                        } else if path.hasSuffix("receipt.json") {
                            use.deliveries.append(path)
                        }
                    }
                }
                uses.append(use)
            }
            return ImpactReport(query: file, runs: uses)
        }
    }

    /// The input files the run's tasks read (source chunks), sorted: the
    /// dashboard's lineage graph starts at them.
    public func runInputs(_ run: String) async throws -> [String] {
        try await store.read { db in
            try String.fetchAll(db, sql: """
                SELECT DISTINCT c.path FROM tasks t JOIN task_inputs i ON i.task = t.id JOIN chunks c ON c.id = i.chunk
                WHERE t.run = ? AND c.kind = 'source' ORDER BY c.path
                """, arguments: [run])
        }
    }

    /// The run's quarantined rows, ingest's, normalize's then validate's,
    /// optionally of one rule (ingest's rule is `parse`, normalize's `cast`).
    public func quarantine(_ run: String, rule: String?, limit: Int) async throws -> [QuarantinedRow] {
        let chunks: [(Stage, String)] = try await store.read { db in
            guard try RunRecord.fetch(db, run) != nil else { throw ServiceError.notFound("no run \(run)") }
            return try Row.fetchAll(db, sql: """
                SELECT t.stage, c.path FROM tasks t JOIN edges e ON e.execution = t.winner AND e.direction = 'out'
                JOIN chunks c ON c.id = e.chunk WHERE t.run = ? AND c.kind = 'quarantine'
                ORDER BY CASE t.stage WHEN 'ingest' THEN 0 WHEN 'normalize' THEN 1 ELSE 2 END, t.idx, c.id
                """, arguments: [run]).map { (try $0.decode(Stage.self, "stage", table: "tasks", row: "of run \(run)"), $0["path"]) }
        }
        var out: [QuarantinedRow] = []
        // Row group by row group, stopping at the limit: a quarantine of a
        // million rows shown 100 at a time (the dashboard refreshes every
        // 3 s) decodes one small group, not every chunk whole.
        for (stage, path) in chunks where out.count < limit {
            let reader = try ParquetReader(path: try chunkStore.absolute(path))
            for group in reader.rowGroups.indices where out.count < limit {
                let batch = try reader.readRowGroup(group)
                func text(_ name: String, _ i: Int) -> String? {
                    guard let col = batch[name], !col.isNull(i), let s = col.scalar(at: i) else { return nil }
                    return ValueText.format(s, as: col.type)
                }
                for i in 0..<batch.rowCount where out.count < limit {
                    let ruleName = stage == .ingest ? "parse" : (text("rule", i) ?? "")
                    if let rule, !Self.quarantineRule(ruleName, matches: rule) { continue }
                    out.append(QuarantinedRow(stage: stage, file: text("file", i), line: text("line", i).flatMap { Int64($0) },
                                              column: text("column", i), rule: ruleName, reason: text("reason", i) ?? "",
                                              row: text("raw", i) ?? text("row", i) ?? "", chunk: path))
                }
            }
        }
        return out
    }

    /// Whether a quarantined row's rules (validate joins a row's failed rules
    /// with `; `; a rule's own name may hold commas: `unique a, b`) include
    /// `wanted`, by full name (`not_null id`) or by kind (`not_null`).
    static func quarantineRule(_ names: String, matches wanted: String) -> Bool {
        let wanted = wanted.trimmingCharacters(in: .whitespaces)
        return names.components(separatedBy: "; ").contains { name in
            let name = name.trimmingCharacters(in: .whitespaces)
            return name == wanted || name.split(separator: " ", maxSplits: 1).first.map(String.init) == wanted
        }
    }
}
