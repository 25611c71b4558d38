import Columnar
import FleetCore
import Foundation
import GRDB
import Stages

extension CoordinatorEngine {
    // MARK: submit

    /// Accepts a pipeline spec: checks it, resolves its inputs (confined to
    /// the spec's folder and the allowed roots), records every input file as
    /// a source chunk with its sha256, plans the ingest tasks (one per shard)
    /// and queues them, all in one transaction.
    ///
    /// With input roots (`CoordinatorOptions.inputRoots`), the spec's folder,
    /// the allowed roots and (without inline text) the spec file must lie
    /// under them, else `ServiceError.forbidden` before anything is parsed
    /// or read (`InputRoots.admit`).
    public func submit(_ request: SubmitRequest) async throws -> RunView {
        try await submit(request, as: Caller(principal: nil, claimedName: request.submittedBy))
    }

    /// `submit(_:)` as `caller`: the run's `submitted_by` is the principal's
    /// name when there is one (the request's `submittedBy` is then ignored),
    /// and `submitter_principal` records it (nil without auth).
    public func submit(_ request: SubmitRequest, as caller: Caller) async throws -> RunView {
        try await submit(request, as: caller, tag: nil)
    }

    /// `submit(_:as:)` of a registered pipeline's run: `tag` (its version,
    /// slot, trigger and parameters) is written in the transaction that
    /// creates the run; a scheduled one also claims its slot there
    /// (Scheduler.swift), so the run and the claim commit together or not at all.
    func submit(_ request: SubmitRequest, as caller: Caller, tag: RunTag?) async throws -> RunView {
        let cwd = FileManager.default.currentDirectoryPath
        if request.specText == nil {   // before the file is read
            try refuseProtected(specFile: request.specPath.hasPrefix("/") ? request.specPath : cwd + "/" + request.specPath,
                                inputs: [])
        }
        let path: String
        let directory: String
        var text: String
        let allowedRoots: [String]
        if let inputRoots = options.inputRoots {
            let admitted: InputRoots.Admitted
            do throws(InputRefusal) {
                admitted = try inputRoots.admit(specPath: request.specPath, specText: request.specText,
                                                allowedRoots: request.allowedRoots, base: cwd)
            } catch {
                switch error {
                case .forbidden(let m):
                    logger.notice("submit refused: outside the input roots", metadata: ["submitted_by": "\(request.submittedBy)"])
                    throw ServiceError.forbidden(m)
                case .unreadable(let m): throw ServiceError.badRequest(m)
                }
            }
            (path, directory, text, allowedRoots) = (admitted.file, admitted.directory, admitted.text, admitted.allowedRoots)
        } else {
            path = request.specPath.hasPrefix("/") ? request.specPath : cwd + "/" + request.specPath
            directory = (path as NSString).deletingLastPathComponent
            allowedRoots = request.allowedRoots
            if let given = request.specText {
                text = given
            } else {
                do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
                    throw ServiceError.badRequest("cannot read the spec \(path): \(error.localizedDescription)")
                }
            }
        }
        // An ad-hoc spec with `${date}` or parameters runs with today's date
        // and the defaults, filled in once here: the run's stored text is
        // what it runs, whenever it is read again.
        if tag == nil, text.contains("${") {
            do throws(SpecErrors) { text = try SpecTemplate.expandForCheck(text, file: path, now: clock.now()) } catch {
                throw ServiceError.badRequest(error.description)
            }
        }
        var spec: PipelineSpec
        do throws(SpecErrors) {
            spec = try PipelineSpec.parse(yaml: text, file: path, directory: directory, allowedRoots: allowedRoots)
        } catch {
            throw ServiceError.badRequest(error.description)
        }
        // The roots as the loader resolved them, checked again: a folder
        // swapped for a symlink since `admit` must not widen them.
        if let inputRoots = options.inputRoots, let wide = spec.allowedRoots.first(where: { !inputRoots.contains($0) }) {
            throw ServiceError.forbidden("the spec's roots now include \(wide), outside the coordinator's input roots: "
                                         + inputRoots.policy)
        }
        do throws(SpecErrors) {
            try spec.resolveInputs(entryLimit: options.globEntryLimit)
        } catch {
            // A glob outside the roots is a refusal of where the spec reads (403).
            throw error.outsideRoots ? ServiceError.forbidden(error.description) : ServiceError.badRequest(error.description)
        }
        try refuseProtected(specFile: nil, inputs: spec.sources.flatMap(\.resolvedFiles))
        // A `notify:` secret the coordinator does not have: refused now
        // rather than its alerts failing later (they are never sent unsigned).
        let unsetSecrets = spec.notify.compactMap { n -> SpecError? in
            guard let name = n.secretEnv, (alertOptions.environment[name] ?? "").isEmpty else { return nil }
            return SpecError(file: path, location: n.secretEnvLocation,
                             message: "'secret_env' names \(name), which is not set in the coordinator's environment; "
                                 + "set it there or remove secret_env (alerts are never sent unsigned)")
        }
        if !unsetSecrets.isEmpty { throw ServiceError.badRequest(SpecErrors(unsetSecrets).description) }
        // Shards and checksums, outside the transaction (this reads the files).
        var shards: [(ShardRef, ChunkRef, String)] = []
        do {
            for source in spec.sources {
                let ingestSource = SpecOperators.ingestSource(source)
                for file in source.resolvedFiles {
                    let size = (try FileManager.default.attributesOfItem(atPath: file)[.size] as? NSNumber)?.int64Value ?? 0
                    // CSV and JSON Lines: a stat placeholder, not a read of the
                    // whole file; the ingests hash their ranges and the file's
                    // identity replaces it when the last one commits
                    // (`SourceIdentity`). Parquet shards are row groups: hashed whole here.
                    let digest = ingestSource.format == .parquet
                        ? try await offPlanningThreads { try sha256(ofFile: file) }
                        : try SourceIdentity.placeholder(ofFile: file)
                    let chunk = ChunkRef(path: file, sha256: digest, bytes: size, kind: .source, name: source.name)
                    for s in try await planShardsOffPool(path: file, size: size, shardSize: Int64(source.shardSize.bytes), source: ingestSource) {
                        let ref = ShardRef(source: source.name, path: file, start: s.byteRange?.lowerBound, end: s.byteRange?.upperBound,
                                           firstLine: s.firstLine, rowGroup: s.rowGroup)
                        var range = s.byteRange.map { $0.lowerBound == 0 && $0.upperBound == size ? "" : " bytes \($0.lowerBound)..<\($0.upperBound)" } ?? ""
                        if let g = s.rowGroup { range = " row group \(g)" }
                        shards.append((ref, chunk, "\(file)\(range)"))
                    }
                }
            }
        } catch {
            throw ServiceError.badRequest("cannot plan the input shards: \(error)")
        }
        guard !shards.isEmpty else {
            throw ServiceError.badRequest("the spec's sources match no input files; nothing to run")
        }
        let run = FleetIDs.newRunID(pipeline: spec.name, now: clock.now())
        let partitions = spec.consolidate?.partitions ?? 1
        let approval = (try? spec.deliverSpec())??.approval == .required
        let specSHA = Checksum.sha256(utf8: text)
        let runText = text
        let roots = String(decoding: try JSONEncoder().encode(spec.allowedRoots), as: UTF8.self)
        let parsed = spec
        let shardList = shards
        let by = caller.name
        let principal = caller.principal?.name
        let view = try await store.write { [self] db in
            let now = clock.seconds
            try StateMachine.createRun(.init(id: run, kind: "pipeline", pipeline: parsed.name, specText: runText, specSHA256: specSHA,
                                             specFile: parsed.file, specDirectory: parsed.directory, allowedRoots: roots,
                                             partitions: partitions, approvalRequired: approval, submittedBy: by,
                                             submitterPrincipal: principal), at: now, db)
            try tag?.record(run: run, pipeline: parsed.name, db)
            try db.audit(actor: by, action: "run.submitted", run: run, detail: "\(parsed.file) sha256 \(specSHA)"
                         + (tag.map { " \($0.trigger) of version \($0.version), slot \($0.slot)" } ?? ""), at: now,
                         caller: caller)
            let record = try RunRecord.fetch(db, run)!
            var effects = IntakeEffects()
            let fused: [Stage] = try fusesNormalize(parsed, db, now: now) ? [.normalize] : []
            for (i, (shard, source, label)) in shardList.enumerated() {
                let chunk = try db.chunkID(source, run: nil)
                try plan(record, parsed, .ingest, index: i, inputs: [(chunk, source)], shard: shard, fused: fused,
                         label: "ingest of shard \(i) (\(label))", db, now: now, effects: &effects)
            }
            try StateMachine.startRun(run, db)
            return try Self.view(of: run, db)!
        }
        let key = SpecRef.parseKey(textHash: specSHA, file: parsed.file, directory: parsed.directory,
                                   allowedRoots: parsed.allowedRoots)
        specs.withLock { $0[key] = parsed }
        wake.yield()
        logger.info("run submitted", metadata: ["run.id": "\(run)", "run.submitted_by": "\(by)", "run.ingest_tasks": "\(shards.count)",
                                            "run.partitions": "\(partitions)"])
        return view
    }

    /// A run of `tasks` no-op tasks (the dispatch benchmark): each is sent,
    /// executed by a worker and committed like any task.
    public func submitNoop(tasks: Int, by: String) async throws -> String {
        let run = FleetIDs.newRunID(pipeline: "noop", now: clock.now())
        try await store.write { [self] db in
            let now = clock.seconds
            try StateMachine.createRun(.init(id: run, kind: "noop", pipeline: "noop", specText: "", specSHA256: "", specFile: "",
                                             specDirectory: "", allowedRoots: "[]", partitions: 0, approvalRequired: false,
                                             submittedBy: by), at: now, db)
            try db.audit(actor: by, action: "run.submitted", run: run, detail: "\(tasks) no-op tasks", at: now)
            let record = try RunRecord.fetch(db, run)!
            var effects = IntakeEffects()
            for i in 0..<tasks {
                try plan(record, nil, .noop, index: i, inputs: [], label: "noop \(i)", db, now: now, effects: &effects)
            }
            try StateMachine.startRun(run, db)
        }
        wake.yield()
        return run
    }

    // MARK: operator actions

    // Each action returns the run as its own transaction left it: read
    // afterwards, a fast fleet could already have moved it on.

    /// Records the approval; a run waiting for it goes on to deliver. A run
    /// still running may be approved ahead of time.
    public func approve(_ id: String, by: String) async throws -> RunView {
        try await approve(id, as: Caller(principal: nil, claimedName: by))
    }

    /// `approve(_:by:)` as `caller`: the approver recorded is `caller.name`.
    /// Whether the caller may approve this run (their role, their own run)
    /// the HTTP layer decides before.
    public func approve(_ id: String, as caller: Caller) async throws -> RunView {
        let by = caller.name
        let view = try await store.write { [self] db in
            guard let run = try RunRecord.fetch(db, id) else { throw ServiceError.notFound("no run \(id)") }
            guard run.approvalRequired else { throw ServiceError.conflict("run \(id) does not need approval: its spec does not ask for it") }
            guard run.approvedBy == nil else { throw ServiceError.conflict("run \(id) was already approved by \(run.approvedBy!)") }
            guard RunMove.approve.transition.allows(run.state) else {
                throw ServiceError.conflict("run \(id) is \(run.state.rawValue); only a running run or one awaiting approval can be approved")
            }
            let now = clock.seconds
            try StateMachine.approveRun(id, by: by, at: now, db)
            try db.audit(actor: by, action: "run.approved", run: id, at: now, caller: caller)
            var effects = IntakeEffects()
            try advance(run: id, db, now: now, effects: &effects)
            return try Self.view(of: id, db)!
        }
        wake.yield()
        return view
    }

    /// A failed run again from its failed tasks: every committed output is
    /// reused; failed and cancelled tasks get a fresh attempt budget.
    public func retry(_ id: String, by: String) async throws -> RunView {
        try await retry(id, as: Caller(principal: nil, claimedName: by))
    }

    public func retry(_ id: String, as caller: Caller) async throws -> RunView {
        let by = caller.name
        let view = try await store.write { [self] db in
            guard let run = try RunRecord.fetch(db, id) else { throw ServiceError.notFound("no run \(id)") }
            guard RunMove.retry.transition.allows(run.state) else {
                throw ServiceError.conflict("run \(id) is \(run.state.rawValue); only a failed run can be retried")
            }
            if let refusal = try Self.retentionRefusal(run: id, db) { throw ServiceError.conflict(refusal) }
            let now = clock.seconds
            try StateMachine.retryRun(id, db)
            let again = try Row.fetchAll(db, sql: "SELECT id, attempt, stage FROM tasks WHERE run = ? AND state IN ('failed', 'cancelled')",
                                         arguments: [id])
            for row in again {
                let task: Int64 = row["id"]
                let next = (row["attempt"] as Int) + 1
                let stage = try row.decode(Stage.self, "stage", table: "tasks", row: "\(task)")
                try StateMachine.retryTask(task, attempt: next, maxAttempts: next - 1 + options.policy.maxAttempts(for: stage), db)
                try db.execute(sql: "INSERT INTO outbox(task, attempt, delay_ms, created_at) VALUES (?, ?, 0, ?)",
                               arguments: [task, next, now])
            }
            try db.audit(actor: by, action: "run.retried", run: id, detail: "\(again.count) tasks again", at: now, caller: caller)
            var effects = IntakeEffects()
            try advance(run: id, db, now: now, effects: &effects)
            return try Self.view(of: id, db)!
        }
        wake.yield()
        return view
    }

    /// Stops a run: tasks not yet sent are dropped; those already queued in
    /// the broker are skipped by the workers (the run's cancel marker in the
    /// chunk store); results of running ones are recorded and discarded.
    public func cancel(_ id: String, by: String) async throws -> RunView {
        try await cancel(id, as: Caller(principal: nil, claimedName: by))
    }

    public func cancel(_ id: String, as caller: Caller) async throws -> RunView {
        let by = caller.name
        let view = try await store.write { [clock] db in
            guard let run = try RunRecord.fetch(db, id) else { throw ServiceError.notFound("no run \(id)") }
            guard RunMove.cancel.transition.allows(run.state) else {
                throw ServiceError.conflict("run \(id) is \(run.state.rawValue) already")
            }
            let now = clock.seconds
            try StateMachine.cancelRun(id, message: "cancelled by \(by)", at: now, db)
            try db.execute(sql: "DELETE FROM outbox WHERE sent_at IS NULL AND task IN (SELECT id FROM tasks WHERE run = ?)", arguments: [id])
            try StateMachine.cancelTasks(run: id, among: [.planned, .queued, .running], at: now, db)
            try db.audit(actor: by, action: "run.cancelled", run: id, at: now, caller: caller)
            return try Self.view(of: id, db)!
        }
        chunkStore.markCancelled(run: id)
        return view
    }

    /// Polls until the run is settled (succeeded, failed, cancelled or awaiting approval).
    public func waitUntilSettled(_ id: String, poll: Duration = .milliseconds(50)) async throws -> RunView {
        while true {
            // The state alone while waiting (the full view reads every task).
            let state = try await store.read { db in try RunRecord.state(of: id, db) }
            guard let state else { throw ServiceError.notFound("no run \(id)") }
            if state.isSettled, let view = try await run(id) { return view }
            try await Task.sleep(for: poll)
        }
    }
}

extension CoordinatorEngine {
    /// Refuses (403) a spec file or input that is one of the coordinator's
    /// own files (`CoordinatorOptions.protectedFiles`): with the defaults the
    /// data root, and so the fleet key and the store, lie under the input
    /// root, and an input read as CSV would show the key in the quarantine.
    func refuseProtected(specFile: String?, inputs: [String]) throws {
        guard !options.protectedFiles.isEmpty else { return }
        // Resolved now, not at start: the store's -wal file exists while it is open.
        let protected = Set(options.protectedFiles.map(PathResolver.canonical))
        for (role, path) in (specFile.map { [("spec", $0)] } ?? []) + inputs.map({ ("input", $0) })
        where protected.contains(PathResolver.canonical(path)) {
            throw ServiceError.forbidden("the \(role) \(path) is one of the coordinator's own files (its fleet key, store, "
                                         + "auth file or TLS key), which no spec may read")
        }
    }
}
