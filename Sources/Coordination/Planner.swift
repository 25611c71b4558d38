import FleetCore
import Foundation
import GRDB
import Stages

/// Tasks of one stage and how many have committed.
struct StageCount: Sendable {
    var total = 0
    var succeeded = 0
}

/// A run's `StageCount`s; a stage with no task counts zero.
struct StageCounts: Sendable {
    var byStage: [Stage: StageCount] = [:]
    subscript(_ stage: Stage) -> StageCount { byStage[stage] ?? StageCount() }
}

extension CoordinatorEngine {
    /// Publish's own `retention` parameter in the fleet: every version (the
    /// coordinator's retention pass applies `publish.keep`).
    static let publishKeepsAll = "1000000000"

    /// Plans whatever the run's committed tasks now allow, in the same
    /// transaction as the commits that allowed it. Idempotent: it only adds
    /// tasks that do not exist yet, so calling it again (after a restart, a
    /// retry or a duplicate event) plans nothing twice.
    ///
    /// - a shard's normalize as soon as its ingest committed (no barrier); by
    ///   default fused into the ingest task (`fusesNormalize`), committed with
    ///   it (Intake, `commitFollower`), so planned here only when unfused;
    /// - consolidate of every partition once every normalize committed (the shuffle's barrier);
    /// - a partition's validate as soon as its consolidate committed; by default
    ///   fused into the consolidate task (`fusesValidate`), committed with it
    ///   (Intake, `commitFollower`), so planned here only when unfused;
    /// - the quality gate over every partition's validate result, then publish;
    /// - report after publish; deliver after report, once approved when the spec asks for approval;
    /// - the run succeeds when its last task committed.
    ///
    /// Each step returns whether its stage is complete, so that the next one may go on.
    func advance(run id: String, _ db: Database, now: Double, effects: inout IntakeEffects) throws {
        guard let run = try RunRecord.fetch(db, id), run.state == .running else { return }
        if run.kind == "noop" {
            try advanceNoop(run, db, now: now)
            return
        }
        guard let spec = try spec(run) else { return }
        let counts = try stageCounts(run: id, db)
        guard try planNormalize(run, spec, counts, db, now: now, effects: &effects),
              try planConsolidateAndValidate(run, spec, counts, db, now: now, effects: &effects),
              try decideGateAndPublish(run, spec, counts, db, now: now, effects: &effects),
              try planReport(run, spec, counts, db, now: now, effects: &effects),
              try awaitApprovalOrDeliver(run, spec, counts, db, now: now, effects: &effects)
        else { return }
        try succeed(run, db, now: now)
    }

    /// The dispatch benchmark's run: done when no task is open.
    private func advanceNoop(_ run: RunRecord, _ db: Database, now: Double) throws {
        // Through the (run, stage, state) index: only the unfinished ones are counted.
        let open: Int = try db.value("""
            SELECT COUNT(*) FROM tasks WHERE run = ? AND stage = 'noop' AND state IN ('planned', 'queued', 'running', 'failed', 'cancelled')
            """, [run.id]) ?? 0
        if open == 0 { try succeed(run, db, now: now) }
    }

    /// Tasks per stage, and how many have committed.
    private func stageCounts(run id: String, _ db: Database) throws -> StageCounts {
        var counts = StageCounts()
        for row in try Row.fetchAll(db, sql: "SELECT stage, state, COUNT(*) AS n FROM tasks WHERE run = ? GROUP BY stage, state",
                                    arguments: [id]) {
            let stage = try row.decode(Stage.self, "stage", table: "tasks", row: "of run \(id)")
            let n: Int = row["n"]
            counts.byStage[stage, default: StageCount()].total += n
            if row["state"] == TaskState.succeeded.rawValue { counts.byStage[stage, default: StageCount()].succeeded += n }
        }
        return counts
    }

    /// A shard's normalize per committed ingest; complete when every shard is normalized.
    private func planNormalize(_ run: RunRecord, _ spec: PipelineSpec, _ counts: StageCounts, _ db: Database, now: Double,
                               effects: inout IntakeEffects) throws -> Bool {
        if counts[.ingest].succeeded > counts[.normalize].total {
            for row in try Row.fetchAll(db, sql: """
                SELECT i.idx, i.winner, i.label FROM tasks i WHERE i.run = ? AND i.stage = 'ingest' AND i.state = 'succeeded'
                AND NOT EXISTS (SELECT 1 FROM tasks n WHERE n.run = i.run AND n.stage = 'normalize' AND n.idx = i.idx)
                """, arguments: [run.id]) {
                let index: Int = row["idx"]
                let inputs = try outputs(of: row["winner"], kinds: [.data], db)
                let label = (row["label"] as String).replacingOccurrences(of: "ingest of", with: "normalize of")
                try plan(run, spec, .normalize, index: index, inputs: inputs, label: label, db, now: now, effects: &effects)
            }
        }
        let shards = counts[.ingest].total
        return counts[.ingest].succeeded == shards && counts[.normalize].succeeded == shards
    }

    /// consolidate of every partition at the shuffle's barrier, then a
    /// partition's validate per committed consolidate (without consolidate,
    /// validate of every partition at the barrier); complete when every
    /// partition is validated.
    private func planConsolidateAndValidate(_ run: RunRecord, _ spec: PipelineSpec, _ counts: StageCounts, _ db: Database,
                                            now: Double, effects: inout IntakeEffects) throws -> Bool {
        let partitions = run.partitions
        if spec.consolidate != nil {
            if counts[.consolidate].total == 0 {
                let all = try winnersOutputs(run: run.id, stage: .normalize, kinds: [.data], db)
                let fused = try fusesValidate(spec, db, now: now)
                for p in 0..<partitions {
                    try plan(run, spec, .consolidate, index: p, inputs: all.filter { $0.1.partition == p },
                             fused: fused ? [.validate] : [], label: "consolidate of partition \(p)", db, now: now, effects: &effects)
                }
                return false
            }
            // A fused consolidate's commit records its validate too (Intake,
            // `commitFollower`): validate is planned here only after an
            // unfused consolidate (or a worker that did not fuse).
            if counts[.consolidate].succeeded > counts[.validate].total {
                for row in try Row.fetchAll(db, sql: """
                    SELECT c.idx, c.winner FROM tasks c WHERE c.run = ? AND c.stage = 'consolidate' AND c.state = 'succeeded'
                    AND NOT EXISTS (SELECT 1 FROM tasks v WHERE v.run = c.run AND v.stage = 'validate' AND v.idx = c.idx)
                    """, arguments: [run.id]) {
                    let p: Int = row["idx"]
                    try plan(run, spec, .validate, index: p, inputs: try outputs(of: row["winner"], kinds: [.data], db),
                             label: "validate of partition \(p)", db, now: now, effects: &effects)
                }
            }
        } else if counts[.validate].total == 0 {
            let all = try winnersOutputs(run: run.id, stage: .normalize, kinds: [.data], db)
            for p in 0..<partitions {
                try plan(run, spec, .validate, index: p, inputs: all.filter { ($0.1.partition ?? 0) == p },
                         label: "validate of partition \(p)", db, now: now, effects: &effects)
            }
            return false
        }
        return counts[.validate].total == partitions && counts[.validate].succeeded == partitions
    }

    /// Whether a partition's validate runs inside its consolidate's task
    /// (`TaskMessage.fused`). Not when fusion is off; nor when the spec's
    /// `timeouts:` bound only one of the two stages (each keeps its own
    /// bound then; with both bounded the fused task gets their sum); nor when
    /// a live worker that takes consolidate does not take validate (its
    /// `--stages`, from its heartbeats): validate never runs on a worker told
    /// not to run it. With no live worker known yet, fused.
    func fusesValidate(_ spec: PipelineSpec, _ db: Database, now: Double) throws -> Bool {
        guard spec.consolidate != nil else { return false }
        return try fuses(.validate, into: .consolidate, spec, db, now: now)
    }

    /// Whether a shard's normalize runs inside its ingest's task
    /// (`TaskMessage.fused`), on the same conditions as `fusesValidate`:
    /// fusion on, `timeouts:` bounding both stages or neither (and not one by
    /// its own entry, the other only by `default:`), every live worker that
    /// takes ingest also taking normalize.
    func fusesNormalize(_ spec: PipelineSpec, _ db: Database, now: Double) throws -> Bool {
        try fuses(.normalize, into: .ingest, spec, db, now: now)
    }

    /// The conditions every fusion of `follower` into `leader`'s task shares.
    func fuses(_ follower: Stage, into leader: Stage, _ spec: PipelineSpec, _ db: Database, now: Double) throws -> Bool {
        guard options.fuseStages else { return false }
        if let t = spec.timeouts {
            if (t.seconds(for: leader) == nil) != (t.seconds(for: follower) == nil) { return false }
            // One stage given a bound of its own, the other only `default:`
            // (`{default: 1h, ingest: 3s}`): the summed bound would hide the
            // short one the spec asks for, so each keeps its own.
            if (t.byStage[leader] == nil) != (t.byStage[follower] == nil) { return false }
        }
        let live = try String.fetchAll(db, sql: "SELECT stages FROM workers WHERE state = 'running' AND last_seen > ?",
                                       arguments: [now - Self.liveWorkerSeconds])
        return live.map { Set($0.split(separator: ",").map(String.init)) }
            .allSatisfy { !$0.contains(leader.rawValue) || $0.contains(follower.rawValue) }
    }

    /// A worker heard from this recently counts as live when deciding fusion.
    static let liveWorkerSeconds: Double = 60

    /// The quality gate over the whole run (`GateDecision`): a failed gate
    /// fails the run, nothing published; then publish. Complete when publish
    /// committed (or the spec publishes nothing).
    private func decideGateAndPublish(_ run: RunRecord, _ spec: PipelineSpec, _ counts: StageCounts, _ db: Database,
                                      now: Double, effects: inout IntakeEffects) throws -> Bool {
        if counts[.publish].total == 0, counts[.report].total == 0, counts[.deliver].total == 0 {
            let results = try validateResults(run: run.id, db)
            if case .fail(let message) = GateDecision.decide(results: results, gates: spec.validate.gates) {
                try failRun(run.id, message: "the quality gate failed, nothing was published: \(message)", db, now: now)
                return false
            }
            if spec.publish != nil {
                let inputs = try winnersOutputs(run: run.id, stage: .validate, kinds: [.data, .result], db)
                    .filter { $0.1.kind == .data || $0.1.name == "partials" }
                // In the fleet the coordinator's retention (`bis gc`) removes old
                // versions, minding deliveries; publish itself keeps them all.
                try plan(run, spec, .publish, index: 0, inputs: inputs, parameters: ["retention": Self.publishKeepsAll],
                         label: "publish", db, now: now, effects: &effects)
                return false
            }
        }
        return spec.publish == nil || counts[.publish].succeeded == 1
    }

    /// The report, with the run summary the coordinator assembles; complete
    /// when it committed (or the spec has no report).
    private func planReport(_ run: RunRecord, _ spec: PipelineSpec, _ counts: StageCounts, _ db: Database,
                            now: Double, effects: inout IntakeEffects) throws -> Bool {
        guard spec.report != nil else { return true }
        if counts[.report].total == 0 {
            let summaryNames = Set(spec.publish?.summaries.map(\.name) ?? [])
            let manifests = try winnersOutputs(run: run.id, stage: .publish, kinds: [.result], db)
                .filter { summaryNames.contains($0.1.name ?? "") }
            let summary = try runSummary(run, spec, db, now: now)
            let json = String(decoding: try summary.jsonData(), as: UTF8.self)
            try plan(run, spec, .report, index: 0, inputs: manifests, parameters: ["summary": json],
                     label: "report", db, now: now, effects: &effects)
            return false
        }
        return counts[.report].succeeded == 1
    }

    /// Deliver, once approved when the spec asks for approval (the run waits
    /// in `awaiting_approval` until then); complete when it committed (or the
    /// spec delivers nothing).
    private func awaitApprovalOrDeliver(_ run: RunRecord, _ spec: PipelineSpec, _ counts: StageCounts, _ db: Database,
                             now: Double, effects: inout IntakeEffects) throws -> Bool {
        guard let deliver = try spec.deliverSpec() else { return true }
        if counts[.deliver].total == 0 {
            if deliver.approval == .required, run.approvedBy == nil {
                let waiting = "waiting for approval before deliver: bis approve \(run.id)"
                if try StateMachine.awaitApproval(run.id, message: waiting, db) {
                    try db.raiseRunAlert(.awaitingApproval, run: run.id, message: waiting, at: now)
                }
                try db.audit(actor: "coordinator", action: "run.awaiting_approval", run: run.id, at: now)
                return false
            }
            try planDeliver(run, spec, db, now: now, effects: &effects)
            return false
        }
        return counts[.deliver].succeeded == 1
    }

    func planDeliver(_ run: RunRecord, _ spec: PipelineSpec, _ db: Database, now: Double, effects: inout IntakeEffects) throws {
        var inputs = try winnersOutputs(run: run.id, stage: .report, kinds: [.report], db)
            .filter { $0.1.path.hasSuffix(".html") || $0.1.path.hasSuffix(".xlsx") }
        inputs += try winnersOutputs(run: run.id, stage: .publish, kinds: [.result], db)
            .filter { $0.1.name == spec.publish?.dataset }
        var parameters: [String: String] = [:]
        if let by = run.approvedBy, let at = run.approvedAt {
            parameters["approved_by"] = by
            parameters["approved_at"] = ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: at))
        }
        try plan(run, spec, .deliver, index: 0, inputs: inputs, parameters: parameters, label: "deliver", db, now: now, effects: &effects)
    }

    private func succeed(_ run: RunRecord, _ db: Database, now: Double) throws {
        guard try StateMachine.succeedRun(run.id, at: now, db) else { return }
        try db.audit(actor: "coordinator", action: "run.succeeded", run: run.id, at: now)
        if run.kind == "pipeline" { try db.raiseRunAlert(.runSucceeded, run: run.id, message: "run succeeded", at: now) }
        logger.info("run succeeded", metadata: ["run.id": "\(run.id)"])
    }

    /// Adds a task in state `planned`, its inputs for the lineage, and its
    /// message to the outbox.
    func plan(_ run: RunRecord, _ spec: PipelineSpec?, _ stage: Stage, index: Int, inputs: [(Int64, ChunkRef)],
              shard: ShardRef? = nil, parameters: [String: String] = [:], fused: [Stage] = [], label: String,
              _ db: Database, now: Double, effects: inout IntakeEffects) throws {
        let specRef = spec == nil ? nil : SpecRef(text: run.specText, sha256: run.specSHA256, file: run.specFile,
                                                  directory: run.specDirectory, allowedRoots: run.allowedRoots)
        var parameters = parameters
        // The stage's timeout (spec `timeouts:`): the worker stops an execution past it.
        // A fused task: the sum of its stages' (`fusesValidate` fuses only when each has one, or none has).
        if let seconds = spec?.timeouts?.seconds(for: stage) {
            let total = fused.reduce(seconds) { $0 + (spec?.timeouts?.seconds(for: $1) ?? 0) }
            parameters["timeout_seconds"] = String(Int(total))
        }
        let message = TaskMessage(run: run.id, stage: stage, index: index, attempt: 1, spec: specRef,
                                  inputs: inputs.map(\.1), shard: shard, parameters: parameters,
                                  fused: fused.isEmpty ? nil : fused)
        let task = try StateMachine.createTask(run: run.id, stage: stage, index: index, maxAttempts: options.policy.maxAttempts(for: stage),
                                               body: Data(try WireCoding.encode(message)), label: label, at: now, db)
        for (chunk, _) in inputs {
            try db.run("INSERT OR IGNORE INTO task_inputs(task, chunk) VALUES (?, ?)", [task, chunk])
        }
        try db.run("INSERT INTO outbox(task, attempt, delay_ms, created_at) VALUES (?, 1, 0, ?)", [task, now])
        effects.planned = true
    }

    /// The chunks an execution wrote, of these kinds.
    func outputs(of execution: String?, kinds: Set<ChunkRef.Kind>, _ db: Database) throws -> [(Int64, ChunkRef)] {
        guard let execution else { return [] }
        return try Row.fetchAll(db, sql: """
            SELECT c.* FROM edges e JOIN chunks c ON c.id = e.chunk WHERE e.execution = ? AND e.direction = 'out' ORDER BY c.id
            """, arguments: [execution])
            .map { (row: Row) in (row["id"] as Int64, ChunkRef(row: row)) }
            .filter { kinds.contains($0.1.kind) }
    }

    /// Every winner's outputs of one stage, by task index then chunk.
    func winnersOutputs(run: String, stage: Stage, kinds: Set<ChunkRef.Kind>, _ db: Database) throws -> [(Int64, ChunkRef)] {
        try Row.fetchAll(db, sql: """
            SELECT c.* FROM tasks t JOIN edges e ON e.execution = t.winner AND e.direction = 'out' JOIN chunks c ON c.id = e.chunk
            WHERE t.run = ? AND t.stage = ? AND t.state = 'succeeded' ORDER BY t.idx, c.id
            """, arguments: [run, stage.rawValue])
            .map { (row: Row) in (row["id"] as Int64, ChunkRef(row: row)) }
            .filter { kinds.contains($0.1.kind) }
    }

    func validateResults(run: String, _ db: Database) throws -> [ValidateResult] {
        try String.fetchAll(db, sql: "SELECT result FROM tasks WHERE run = ? AND stage = 'validate' AND state = 'succeeded' ORDER BY idx",
                            arguments: [run])
            .map { try ValidateResult(json: Array($0.utf8)) }
    }

    /// The run summary the report stage renders (its summary tables are
    /// filled by the report task from the published summaries).
    func runSummary(_ run: RunRecord, _ spec: PipelineSpec, _ db: Database, now: Double) throws -> RunSummary {
        var stages: [StageSummary] = []
        for row in try Row.fetchAll(db, sql: """
            SELECT t.stage, COUNT(*) AS tasks, SUM(x.rows_in) AS rin, SUM(x.rows_out) AS rout, SUM(x.rows_quarantined) AS rq,
                   MIN(x.started_at) AS s, MAX(x.finished_at) AS f
            FROM tasks t JOIN executions x ON x.id = t.winner WHERE t.run = ? AND t.state = 'succeeded' GROUP BY t.stage
            """, arguments: [run.id]) {
            let stage = try row.decode(Stage.self, "stage", table: "tasks", row: "of run \(run.id)")
            let s: Double = row["s"] ?? 0, f: Double = row["f"] ?? 0
            stages.append(StageSummary(name: stage.rawValue, rowsIn: row["rin"] ?? 0, rowsOut: row["rout"] ?? 0,
                                       rowsQuarantined: row["rq"] ?? 0, durationSeconds: max(0, f - s), tasks: row["tasks"]))
        }
        stages.sort { Stage(rawValue: $0.name)! < Stage(rawValue: $1.name)! }   // names written from Stage just above

        let gates = GateDecision.gateResults(results: try validateResults(run: run.id, db), gates: spec.validate.gates)

        let inputs = try Row.fetchAll(db, sql: """
            SELECT DISTINCT c.path, c.sha256, c.bytes FROM tasks t JOIN task_inputs i ON i.task = t.id JOIN chunks c ON c.id = i.chunk
            WHERE t.run = ? AND t.stage = 'ingest' AND c.kind = 'source' ORDER BY c.path
            """, arguments: [run.id]).map { InputFile(path: $0["path"], sha256: $0["sha256"], bytes: $0["bytes"]) }
        let schemas = try Self.publishedSchemas(run: run.id, db) ?? [:]
        let datasets = try winnersOutputs(run: run.id, stage: .publish, kinds: [.result], db).map { _, c in
            PublishedDataset(name: c.name ?? c.path, version: run.id, manifestSHA256: c.sha256, rows: c.rows,
                             schemaSHA256: c.name.flatMap { schemas[$0] })
        }
        let title = (try? spec.reportSpec().title) ?? nil
        return RunSummary(pipeline: run.pipeline, runID: run.id, title: title ?? run.pipeline,
                          startedAt: Date(timeIntervalSince1970: run.submittedAt), finishedAt: Date(timeIntervalSince1970: now), status: "succeeded",
                          stages: stages, gates: gates, lineage: LineageSummary(inputs: inputs, datasets: datasets))
    }
}
