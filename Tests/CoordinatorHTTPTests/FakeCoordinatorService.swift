import CoordinatorAPI
import FleetWire
import Foundation

/// A `CoordinatorService` in memory, enough to drive every route: runs move
/// by the same rules as the engine's (`RunState`'s documentation), and a test
/// can script the states a run goes through as `bis submit --wait` polls it.
actor FakeCoordinatorService: CoordinatorService {
    private(set) var runsByID: [String: RunView] = [:]
    private var order: [String] = []
    /// States handed out one per `run(id)` call, before the run's stored state.
    private var scripts: [String: [RunState]] = [:]
    private(set) var submitted: [SubmitRequest] = []
    private(set) var actions: [String] = []
    private(set) var lastLimit: Int?
    var workerList: [WorkerView] = []
    /// When set, `submit` refuses with this message, as the engine does for a spec with errors.
    var specErrors: String?
    /// The next run id's suffix.
    private var counter = 0
    /// Whole seconds, so that dates survive the API's millisecond form exactly.
    static let epoch = Date(timeIntervalSince1970: 1_795_000_000)

    func add(_ run: RunView) {
        runsByID[run.id] = run
        order.insert(run.id, at: 0)
    }

    func script(_ id: String, _ states: [RunState]) { scripts[id] = states }
    func refuseSpecs(_ message: String?) { specErrors = message }
    func setWorkers(_ workers: [WorkerView]) { workerList = workers }

    func submit(_ request: SubmitRequest) async throws -> RunView {
        if let specErrors { throw ServiceError.badRequest(specErrors) }
        submitted.append(request)
        counter += 1
        let pipeline = URL(fileURLWithPath: request.specPath).deletingPathExtension().lastPathComponent
        var run = RunView(id: "\(pipeline)-20261127T050000Z-\(String(format: "%04x", counter))", pipeline: pipeline,
                          state: .pending, specSHA256: String(repeating: "a", count: 64),
                          submittedBy: request.submittedBy, submittedAt: Self.epoch)
        run.stages = [StageView(stage: .ingest)]
        add(run)
        return run
    }

    func runs(limit: Int) async throws -> [RunView] {
        lastLimit = limit
        return order.prefix(limit).compactMap { runsByID[$0] }
    }

    /// Returns once a client has asked for run `id` (as `bis submit --wait` polls it).
    func polled(_ id: String) async {
        if polledIDs.contains(id) { return }
        await withCheckedContinuation { pollWaiters.append((id, $0)) }
    }
    private var polledIDs: Set<String> = []
    private var pollWaiters: [(String, CheckedContinuation<Void, Never>)] = []

    func run(_ id: String) async throws -> RunView? {
        polledIDs.insert(id)
        for (waiting, c) in pollWaiters where waiting == id { c.resume() }
        pollWaiters.removeAll { $0.0 == id }
        if var views = progressions[id], !views.isEmpty {
            let next = views.removeFirst()
            progressions[id] = views
            runsByID[id] = next
            return next
        }
        guard var run = runsByID[id] else { return nil }
        if var states = scripts[id], !states.isEmpty {
            run.state = states.removeFirst()
            scripts[id] = states
            if run.state == .failed { run.message = "validate partition 1 failed: not_null(id): 3 rows" }
            if run.state == .awaitingApproval { run.approvalRequired = true }
            runsByID[id] = run
        }
        return run
    }

    func approve(_ id: String, by: String) async throws -> RunView {
        try move(id, by: by, action: "approve", from: [.awaitingApproval], to: .running) { $0.approvedBy = by }
    }

    func retry(_ id: String, by: String) async throws -> RunView {
        try move(id, by: by, action: "retry", from: [.failed], to: .running)
    }

    func cancel(_ id: String, by: String) async throws -> RunView {
        try move(id, by: by, action: "cancel", from: [.pending, .running, .awaitingApproval], to: .cancelled)
    }

    func workers() async throws -> [WorkerView] { workerList }

    // MARK: identities and the audit log

    /// Refusals the HTTP layer reported, and the callers of each action (as the engine records them).
    private(set) var refusals: [Refusal] = []
    private(set) var callers: [String] = []

    func submit(_ request: SubmitRequest, as caller: Caller) async throws -> RunView {
        var request = request
        request.submittedBy = caller.name
        var run = try await submit(request)
        run.submitterPrincipal = caller.principal?.name
        runsByID[run.id] = run
        callers.append("submit \(run.id) as \(caller.principalName)")
        return run
    }

    func approve(_ id: String, as caller: Caller) async throws -> RunView {
        callers.append("approve \(id) as \(caller.principalName)")
        return try await approve(id, by: caller.name)
    }

    func retry(_ id: String, as caller: Caller) async throws -> RunView {
        callers.append("retry \(id) as \(caller.principalName)")
        return try await retry(id, by: caller.name)
    }

    func cancel(_ id: String, as caller: Caller) async throws -> RunView {
        callers.append("cancel \(id) as \(caller.principalName)")
        return try await cancel(id, by: caller.name)
    }

    func recordRefusal(_ refusal: Refusal) async throws { refusals.append(refusal) }

    func gc(dryRun: Bool, as caller: Caller) async throws -> GCReport {
        callers.append("gc\(dryRun ? " --dry-run" : "") as \(caller.principalName)")
        return GCReport(dryRun: dryRun, at: Self.epoch, items: [
            .init(kind: "intermediate", path: "runs/r0", run: "r0", dataset: nil, bytes: 1234, files: 3,
                  reason: "run succeeded more than 7d ago (--keep-intermediate)", outcome: dryRun ? "planned" : "removed"),
        ], bytes: 1234, files: 3)
    }

    /// `GET /api/alerts`: one alert per run in `runsByID`, with one sent delivery.
    private(set) var alertAsks: [String] = []
    func alerts(run: String?, limit: Int) async throws -> [AlertView] {
        alertAsks.append("\(run ?? "-") \(limit)")
        let delivery = AlertDeliveryView(receiver: "ops", target: "https://hooks.example.com/…", state: .sent, attempts: 1,
                                         sentAt: Self.epoch, nextAttemptAt: nil, lastError: nil)
        return runsByID.values.filter { run == nil || $0.id == run }.sorted { $0.id < $1.id }.prefix(limit).map { r in
            AlertView(key: "\(r.id)/run_failed/1", event: .runFailed, resolved: false, run: r.id, pipeline: r.pipeline,
                      task: nil, state: "failed", message: "the quality gate failed", raisedAt: Self.epoch, deliveries: [delivery])
        }
    }

    func audit(run: String?, limit: Int) async throws -> [AuditEntry] {
        let rows = refusals.enumerated().map { i, r in
            AuditEntry(id: Int64(i + 1), at: Self.epoch, actor: r.principal?.name ?? "unauthenticated", principal: r.principal?.name,
                       role: r.principal?.role.rawValue, action: "request.refused", run: r.run, outcome: "\(r.status)",
                       detail: "\(r.action): \(r.reason)")
        }
        return Array(rows.filter { run == nil || $0.run == run }.suffix(limit))
    }

    // MARK: lineage, quarantine, the dashboard's inputs

    /// Whole views handed out one per `run(id)` call (a run that progresses
    /// as `bis status --watch` polls it); the last one stays.
    private var progressions: [String: [RunView]] = [:]
    func progress(_ id: String, through views: [RunView]) {
        progressions[id] = views
        if let first = views.first, runsByID[id] == nil { add(first) }
    }

    var quarantined: [String: [QuarantinedRow]] = [:]
    private(set) var quarantineAsks: [String] = []
    var traces: [String: LineageNode] = [:]
    private(set) var traceAsks: [String] = []
    var impacts: [String: ImpactReport] = [:]
    private(set) var impactAsks: [String] = []
    var lineageEvents: [String: [OpenLineageEvent]] = [:]
    var inputs: [String: [String]] = [:]

    func setQuarantine(_ run: String, _ rows: [QuarantinedRow]) { quarantined[run] = rows }
    func setTrace(_ target: String, _ node: LineageNode) { traces[target] = node }
    func setImpact(_ file: String, _ report: ImpactReport) { impacts[file] = report }
    func setEvents(_ run: String, _ events: [OpenLineageEvent]) { lineageEvents[run] = events }
    func setInputs(_ run: String, _ files: [String]) { inputs[run] = files }

    /// Filters by rule as the engine does (full name or kind), records what was asked.
    func quarantine(_ run: String, rule: String?, limit: Int) async throws -> [QuarantinedRow] {
        quarantineAsks.append("\(run) rule=\(rule ?? "-") limit=\(limit)")
        guard let rows = quarantined[run] else { throw ServiceError.notFound("no run \(run)") }
        let kept = rows.filter { r in
            guard let rule else { return true }
            return r.rule == rule || r.rule.split(separator: " ").first.map(String.init) == rule
        }
        return Array(kept.prefix(limit))
    }

    func lineageTrace(_ target: String) async throws -> LineageNode {
        traceAsks.append(target)
        guard let node = traces[target] else {
            throw ServiceError.notFound("nothing in the lineage store matches '\(target)': give a run id, DATASET/RUN, a chunk path or a sha256")
        }
        return node
    }

    func lineageImpact(_ file: String) async throws -> ImpactReport {
        impactAsks.append(file)
        return impacts[file] ?? ImpactReport(query: file, runs: [])
    }

    func openLineage(_ run: String) async throws -> [OpenLineageEvent] {
        guard let events = lineageEvents[run] else { throw ServiceError.notFound("no run \(run)") }
        return events
    }

    func runInputs(_ run: String) async throws -> [String] { inputs[run] ?? [] }

    func metricsSnapshot() async throws -> MetricsSnapshot {
        MetricsSnapshot(runs: [.running: runsByID.values.filter { $0.state == .running }.count])
    }

    private func move(_ id: String, by: String, action: String, from: Set<RunState>, to: RunState,
                      _ change: (inout RunView) -> Void = { _ in }) throws -> RunView {
        guard var run = runsByID[id] else { throw ServiceError.notFound("no run \(id)") }
        guard from.contains(run.state) else {
            throw ServiceError.conflict("run \(id) is \(run.state.rawValue): cannot \(action) it")
        }
        run.state = to
        change(&run)
        runsByID[id] = run
        actions.append("\(action) \(id) by \(by)")
        return run
    }
}
