import Columnar
import FleetCore
import Foundation
import GRDB

// Registered pipelines (docs/schedules.md): `bis pipeline add|show|pause|
// resume|remove`, `bis pipelines`, `bis trigger`. Each version of a
// pipeline's spec text is kept with its SHA-256 (migration 0006-schedules);
// a run records the version it ran. The scheduler is in Scheduler.swift.

/// What a registered pipeline's run records besides an ad-hoc run's.
struct RunTag: Sendable {
    var version: Int
    /// ISO 8601 UTC.
    var slot: String
    /// `schedule`, `manual` or `backfill`.
    var trigger: String
    var params: [String: String]
    /// The backfill a `backfill` run belongs to.
    var backfill: String? = nil

    /// Writes the tag on the new run, in the transaction that creates it. A
    /// scheduled run claims its queued slot too; `SlotTaken` (rolling the
    /// run back) when another run has it. The unique index
    /// `runs_one_per_slot` refuses a second scheduled run of a slot as well.
    func record(run: String, pipeline: String, _ db: Database) throws {
        let json = String(decoding: try JSONEncoder.sortedKeys.encode(params), as: UTF8.self)
        try db.run("UPDATE runs SET pipeline_version = ?, slot = ?, trigger = ?, params = ? WHERE id = ?",
                   [version, slot, trigger, json, run])
        if trigger == "schedule" {
            try db.run("""
                UPDATE schedule_slots SET state = 'started', run = ? WHERE pipeline = ? AND slot = ? AND state IN ('queued', 'waiting_for_input')
                """, [run, pipeline, slot])
            guard db.changesCount == 1 else { throw SlotTaken(pipeline: pipeline, slot: slot) }
        }
        if let backfill {
            // Not beside a run of the same slot that is still active (the
            // scheduled one, or a manual one): both would write the same
            // outputs. The slot stays queued until that run settles.
            let active: Int = try db.value("""
                SELECT COUNT(*) FROM runs WHERE pipeline = ? AND slot = ? AND id != ?
                AND state IN ('pending', 'running', 'awaiting_approval')
                """, [pipeline, slot, run]) ?? 0
            guard active == 0 else { throw SlotBusy(pipeline: pipeline, slot: slot) }
            try db.run("UPDATE backfill_slots SET state = 'started', run = ? WHERE backfill = ? AND slot = ? AND state = 'queued'",
                       [run, backfill, slot])
            guard db.changesCount == 1 else { throw SlotTaken(pipeline: pipeline, slot: slot) }
        }
    }
}

/// A backfill's slot has another active run (rolling the new run back):
/// it waits for that run to settle.
struct SlotBusy: Error, CustomStringConvertible {
    let pipeline: String
    let slot: String
    var description: String { "slot \(slot) of \(pipeline) has an active run" }
}

/// The slot was started already (or is no longer queued).
struct SlotTaken: Error, CustomStringConvertible {
    let pipeline: String
    let slot: String
    var description: String { "slot \(slot) of \(pipeline) is no longer queued" }
}

extension JSONEncoder {
    static var sortedKeys: JSONEncoder {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        return e
    }
}

/// A registered pipeline's row with its current version's.
struct PipelineRecord: Sendable {
    let name: String
    let version: Int
    let paused: Bool
    let registeredAt: Double
    let registeredBy: String
    let lastSlot: Double?
    let specText: String
    let specSHA256: String
    let specFile: String
    let specDirectory: String
    let allowedRoots: [String]

    init(_ row: Row) {
        name = row["name"]
        version = row["current_version"]
        paused = row["paused"]
        registeredAt = row["registered_at"]
        registeredBy = row["registered_by"]
        lastSlot = row["last_slot"]
        specText = row["spec_text"]
        specSHA256 = row["spec_sha256"]
        specFile = row["spec_file"]
        specDirectory = row["spec_directory"]
        allowedRoots = (try? JSONDecoder().decode([String].self, from: Data((row["allowed_roots"] as String).utf8))) ?? []
    }

    static let select = """
        SELECT p.name, p.current_version, p.paused, p.registered_at, p.registered_by, p.last_slot,
               v.spec_text, v.spec_sha256, v.spec_file, v.spec_directory, v.allowed_roots
        FROM pipelines p JOIN pipeline_versions v ON v.pipeline = p.name AND v.version = p.current_version
        """

    static func fetch(_ db: Database, _ name: String) throws -> PipelineRecord? {
        try db.row(select + " WHERE p.name = ?", [name]).map(PipelineRecord.init)
    }

    static func all(_ db: Database) throws -> [PipelineRecord] {
        try Row.fetchAll(db, sql: select + " ORDER BY p.name").map(PipelineRecord.init)
    }
}

extension CoordinatorEngine {
    /// `schedule:` and `params:` of a stored spec text.
    func header(_ record: PipelineRecord) throws -> SpecHeader {
        do throws(SpecErrors) { return try SpecHeader.read(yaml: record.specText, file: record.specFile) } catch {
            throw ServiceError.badRequest(error.description)
        }
    }

    /// The spec file, its folder, its text and the allowed roots, admitted
    /// as `submit` admits them (the coordinator's input roots).
    private func admit(specPath: String, specText: String?, allowedRoots: [String]) throws -> (String, String, String, [String]) {
        let cwd = FileManager.default.currentDirectoryPath
        if specText == nil {
            try refuseProtected(specFile: specPath.hasPrefix("/") ? specPath : cwd + "/" + specPath, inputs: [])
        }
        if let inputRoots = options.inputRoots {
            do throws(InputRefusal) {
                let a = try inputRoots.admit(specPath: specPath, specText: specText, allowedRoots: allowedRoots, base: cwd)
                return (a.file, a.directory, a.text, a.allowedRoots)
            } catch {
                switch error {
                case .forbidden(let m): throw ServiceError.forbidden(m)
                case .unreadable(let m): throw ServiceError.badRequest(m)
                }
            }
        }
        let path = specPath.hasPrefix("/") ? specPath : cwd + "/" + specPath
        let text: String
        if let specText { text = specText } else {
            do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
                throw ServiceError.badRequest("cannot read the spec \(path): \(error.localizedDescription)")
            }
        }
        return (path, (path as NSString).deletingLastPathComponent, text, allowedRoots)
    }

    public func addPipeline(_ request: PipelineAddRequest, as caller: Caller) async throws -> PipelineAddResult {
        let (path, directory, text, roots) = try admit(specPath: request.specPath, specText: request.specText,
                                                       allowedRoots: request.allowedRoots)
        let spec: PipelineSpec
        do throws(SpecErrors) {
            spec = try PipelineSpec.parse(yaml: text, file: path, directory: directory, allowedRoots: roots)
        } catch {
            throw ServiceError.badRequest(error.description)
        }
        if let inputRoots = options.inputRoots, let wide = spec.allowedRoots.first(where: { !inputRoots.contains($0) }) {
            throw ServiceError.forbidden("the spec's roots include \(wide), outside the coordinator's input roots: " + inputRoots.policy)
        }
        let sha = Checksum.sha256(utf8: text)
        let rootsJSON = String(decoding: try JSONEncoder().encode(spec.allowedRoots), as: UTF8.self)
        let name = spec.name
        let (outcome, version) = try await store.write { [clock] db -> (String, Int) in
            let now = clock.seconds
            let current = try PipelineRecord.fetch(db, name)
            if let current, current.specSHA256 == sha, current.specFile == spec.file, current.allowedRoots == spec.allowedRoots {
                return ("unchanged", current.version)
            }
            let last: Int = try db.value("SELECT MAX(version) FROM pipeline_versions WHERE pipeline = ?", [name]) ?? 0
            let version = last + 1
            try db.run("""
                INSERT INTO pipeline_versions(pipeline, version, spec_text, spec_sha256, spec_file, spec_directory, allowed_roots,
                    added_at, added_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                """, [name, version, text, sha, spec.file, spec.directory, rootsJSON, now, caller.name])
            if current == nil {
                try db.run("""
                    INSERT INTO pipelines(name, current_version, paused, registered_at, registered_by) VALUES (?, ?, 0, ?, ?)
                    """, [name, version, now, caller.name])
            } else {
                try db.run("UPDATE pipelines SET current_version = ? WHERE name = ?", [version, name])
            }
            let outcome = current == nil ? "registered" : "new version"
            try db.audit(actor: caller.name, action: current == nil ? "pipeline.registered" : "pipeline.version_added", run: nil,
                         detail: "\(name) version \(version) sha256 \(sha) from \(spec.file)", at: now, caller: caller)
            return (outcome, version)
        }
        logger.info("pipeline registered", metadata: ["pipeline": "\(name)", "pipeline.version": "\(version)", "outcome": "\(outcome)"])
        return PipelineAddResult(pipeline: try await pipelineView(name), outcome: outcome)
    }

    public func pipelines() async throws -> [PipelineView] {
        let records = try await store.read { db in try PipelineRecord.all(db) }
        var out: [PipelineView] = []
        for r in records { out.append(try await view(of: r)) }
        return out
    }

    func pipelineView(_ name: String) async throws -> PipelineView {
        guard let r = try await store.read({ db in try PipelineRecord.fetch(db, name) }) else {
            throw ServiceError.notFound("no registered pipeline \(name) (bis pipelines lists them)")
        }
        return try await view(of: r)
    }

    func view(of r: PipelineRecord) async throws -> PipelineView {
        var v = PipelineView(name: r.name, version: r.version, specSHA256: r.specSHA256, paused: r.paused,
                             registeredAt: Date(timeIntervalSince1970: r.registeredAt), registeredBy: r.registeredBy)
        let read = Result { try header(r) }
        if case .failure(let error) = read { v.specError = "\(error)" }
        if let schedule = (try? read.get())?.schedule {
            v.cron = schedule.cron.text
            v.schedule = schedule.cron.inWords
            v.timezone = schedule.timezone.identifier
            v.catchup = schedule.catchup.rawValue
            v.maxActiveRuns = schedule.maxActiveRuns
            if !r.paused {
                let after = max(clock.now(), r.lastSlot.map { Date(timeIntervalSince1970: $0) } ?? .distantPast)
                v.nextSlot = schedule.next(after: after).map { SlotText.utc($0.instant) }
            }
        }
        let name = r.name
        let (last, queued) = try await store.read { db -> ([String?], Int) in
            let row = try db.row("""
                SELECT id, state, slot FROM runs WHERE pipeline = ? AND trigger IS NOT NULL ORDER BY submitted_at DESC, slot DESC, id DESC LIMIT 1
                """, [name])
            return (row.map { [$0["id"], $0["state"], $0["slot"]] } ?? [],
                    try db.value("SELECT COUNT(*) FROM schedule_slots WHERE pipeline = ? AND state IN ('queued', 'waiting_for_input')", [name]) ?? 0)
        }
        if last.count == 3 {
            v.lastRun = last[0]
            v.lastRunState = last[1].flatMap(RunState.init(rawValue:))
            v.lastRunSlot = last[2]
        }
        v.queuedSlots = queued
        return v
    }

    public func pipeline(_ name: String, version: Int?) async throws -> PipelineDetail {
        let view = try await pipelineView(name)
        let wanted = version ?? view.version
        struct Version: Sendable { let text: String, sha: String, file: String, at: Double, by: String }
        let (found, versions) = try await store.read { db -> (Version?, [Int]) in
            let row = try db.row("SELECT * FROM pipeline_versions WHERE pipeline = ? AND version = ?", [name, wanted])
            return (row.map { Version(text: $0["spec_text"], sha: $0["spec_sha256"], file: $0["spec_file"], at: $0["added_at"], by: $0["added_by"]) },
                    try Int.fetchAll(db, sql: "SELECT version FROM pipeline_versions WHERE pipeline = ? ORDER BY version", arguments: [name]))
        }
        guard let found else {
            throw ServiceError.notFound("pipeline \(name) has no version \(wanted) (it has \(versions.map(String.init).joined(separator: ", ")))")
        }
        return PipelineDetail(pipeline: view, version: wanted, specText: found.text, specSHA256: found.sha,
                              specFile: found.file, addedAt: Date(timeIntervalSince1970: found.at),
                              addedBy: found.by, versions: versions)
    }

    public func changePipeline(_ name: String, _ change: PipelineChange, as caller: Caller) async throws -> PipelineView {
        var view = try await pipelineView(name)
        try await store.write { [clock] db in
            guard try PipelineRecord.fetch(db, name) != nil else { throw ServiceError.notFound("no registered pipeline \(name)") }
            let now = clock.seconds
            switch change {
            case .pause: try db.run("UPDATE pipelines SET paused = 1 WHERE name = ?", [name])
            case .resume: try db.run("UPDATE pipelines SET paused = 0 WHERE name = ?", [name])
            case .remove:
                // Versions and runs stay (lineage names them); queued slots go.
                try db.run("DELETE FROM pipelines WHERE name = ?", [name])
                try db.run("DELETE FROM schedule_slots WHERE pipeline = ? AND state IN ('queued', 'waiting_for_input')", [name])
            }
            let action = ["pause": "pipeline.paused", "resume": "pipeline.resumed", "remove": "pipeline.removed"][change.rawValue]!
            try db.audit(actor: caller.name, action: action, run: nil, detail: name, at: now, caller: caller)
        }
        // `catchup: none` skips what a pause missed, even one shorter than a pass.
        if change != .resume { schedulerMemory.withLock { _ = $0.lastPass.removeValue(forKey: name) } }
        if change == .remove {
            view.paused = true
            view.nextSlot = nil
            return view
        }
        return try await pipelineView(name)
    }

    public func trigger(_ name: String, _ request: TriggerRequest, as caller: Caller) async throws -> RunView {
        guard let r = try await store.read({ db in try PipelineRecord.fetch(db, name) }) else {
            throw ServiceError.notFound("no registered pipeline \(name) (bis pipelines lists them)")
        }
        let header = try header(r)
        let zone = header.timezone
        let slot: Date
        let date: String
        if let given = request.date {
            guard let day = LocalDay.parse(given) else { throw ServiceError.badRequest("--date must be YYYY-MM-DD, not '\(given)'") }
            slot = ScheduleSpec.midnight(ofDay: day, in: zone)
            date = given
        } else {
            slot = Date(timeIntervalSince1970: clock.seconds.rounded(.down))
            date = SlotText.localDate(slot, in: zone)
        }
        return try await start(r, header: header, slot: slot, date: date, trigger: "manual", params: request.params, as: caller)
    }

    /// Starts a run of `r`'s current version for `slot`.
    func start(_ r: PipelineRecord, header: SpecHeader, slot: Date, date: String, trigger: String, params: [String: String],
               backfill: String? = nil, as caller: Caller) async throws -> RunView {
        let expanded: (text: String, values: [String: String])
        do throws(SpecErrors) {
            expanded = try SpecTemplate.expand(r.specText, file: r.specFile, header: header, date: date, values: params)
        } catch {
            throw ServiceError.badRequest(error.description)
        }
        let request = SubmitRequest(specPath: r.specFile, specText: expanded.text, allowedRoots: r.allowedRoots, submittedBy: caller.name)
        return try await submit(request, as: caller,
                                tag: RunTag(version: r.version, slot: SlotText.utc(slot), trigger: trigger, params: expanded.values,
                                            backfill: backfill))
    }
}
