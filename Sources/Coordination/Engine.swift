import Columnar
import FleetCore
import FleetMetrics
import Foundation
import GRDB
import Logging
import ServiceLifecycle
import Stages
import Synchronization

/// Tunables of the coordinator.
public struct CoordinatorOptions: Sendable {
    public var policy: RetryPolicy
    /// A worker without a heartbeat for this long is shown as quiet.
    public var workerQuietAfterSeconds: Double
    /// Most events committed in one transaction (group commit).
    public var intakeBatch: Int
    /// Most outbox messages read and published per round.
    public var dispatchBatch: Int
    /// Where the engine, its planner and its views read the time of day.
    public var clock: any WallClock
    /// The folders submitted specs and their inputs must lie under
    /// (`bis coordinator --input-root`); nil for an embedded engine
    /// (`bis run --local`, tests), where the caller's roots are taken as given.
    public var inputRoots: InputRoots?
    /// Most folder entries one submit's globs may look at.
    public var globEntryLimit: Int
    /// The coordinator's own secrets and state (the fleet key, the lineage
    /// store and its journal files, the auth file, the TLS key, the broker
    /// password file): a submitted spec may neither be one nor read one as
    /// an input, even where they lie under an input root (the default data
    /// root, `.bis/data`, lies under the default input root).
    public var protectedFiles: [String]
    /// How long finished runs' chunks, delivered versions and lineage rows
    /// are kept, and how often the coordinator collects (`bis gc`).
    public var retention = RetentionOptions()
    /// How often the scheduler looks for due slots of registered pipelines
    /// (Scheduler.swift); nil: no scheduler (tests call `schedulerPass()`).
    public var schedulerInterval: Duration? = .seconds(5)
    /// Alert routing, sending and watching (`--alerts`, `--queue-stall`; docs/alerts.md).
    public var alerts = AlertOptions()
    /// Run a partition's consolidate and validate as one task (README, "Where
    /// the code differs from DESIGN.md"); false plans them as two tasks.
    public var fuseStages = true

    public init(policy: RetryPolicy = .standard, workerQuietAfterSeconds: Double = 10, intakeBatch: Int = 1000,
                dispatchBatch: Int = 1000, clock: any WallClock = SystemClock(), inputRoots: InputRoots? = nil,
                globEntryLimit: Int = PipelineSpec.defaultGlobEntryLimit, protectedFiles: [String] = []) {
        self.protectedFiles = protectedFiles
        self.policy = policy
        self.workerQuietAfterSeconds = workerQuietAfterSeconds
        self.intakeBatch = intakeBatch
        self.dispatchBatch = dispatchBatch
        self.clock = clock
        self.inputRoots = inputRoots
        self.globEntryLimit = globEntryLimit
    }
}

/// The coordinator: plans runs into tasks, sends them through the outbox,
/// commits what workers report, and answers operators. All state is in the
/// lineage store; the engine itself can be killed at any moment and started
/// again on the same store and broker.
///
/// Its long-running loops are services (`services()`), for the process's one
/// `ServiceGroup` (`bis coordinator`, `bis run --local`), started together
/// and stopped in reverse on graceful shutdown:
/// - `EventIntake` commits batches of worker events in one transaction each
///   (group commit) and acks them only after the commit;
/// - `OutboxDispatcher` publishes unsent outbox rows (with broker confirms)
///   and marks them sent afterwards, so a crash in between re-sends them;
/// - `Ticker` wakes the dispatcher periodically (retries are delayed
///   messages, not timers).
public final class CoordinatorEngine: CoordinatorService, Sendable {
    public let store: LineageStore
    public let chunkStore: ChunkStore
    let transport: any FleetTransport
    let options: CoordinatorOptions
    let logger: Logger
    let wake: AsyncStream<Void>.Continuation
    let wakeups: AsyncStream<Void>
    let embedded = Mutex<(group: ServiceGroup, task: Task<Void, Never>)?>(nil)
    let specs = Mutex<[String: PipelineSpec]>([:])
    let metricsState = Mutex(EngineMetrics())
    /// `/metrics`' registry: this engine's own, not the process' (see `BisMetrics`).
    public let metrics = BisMetrics()
    /// The schedule periods `/metrics` shows, by pipeline, with the spec
    /// text's SHA-256 they were computed from and when (Scheduler.swift).
    let schedulePeriods = Mutex([String: (sha: String, seconds: Double, at: Double)]())
    /// The scheduler's own memory (Scheduler.swift): each pipeline's
    /// `last_slot` as this engine's last pass set it, and the spec versions
    /// (SHA-256) whose read error it has logged.
    let schedulerMemory = Mutex(SchedulerMemory())
    /// The pipelines with a `bis_pipeline_next_run_timestamp_seconds` series.
    let nextRuns = Mutex(Set<String>())
    /// One retention pass at a time (the periodic one and `bis gc`).
    let gcGate = GCGate()
    let batcher = Batcher()

    /// The time of day, as every part of the engine reads it.
    var clock: any WallClock { options.clock }

    public init(store: LineageStore, transport: any FleetTransport, chunkStore: ChunkStore,
                options: CoordinatorOptions = CoordinatorOptions(), logger: Logger = Logger(label: "bis.coordinator")) {
        self.store = store
        self.transport = transport
        self.chunkStore = chunkStore
        self.options = options
        self.logger = logger
        (wakeups, wake) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        // Runs finished from now on count in the per-pipeline families.
        let started = options.clock.seconds
        metricsState.withLock { $0.finished = (started, []) }
    }

    /// The engine's loops as services, in start order. Opens the
    /// coordinator's inbox first (so it throws when the transport cannot),
    /// and unsent outbox rows from a previous life are sent first;
    /// unacknowledged events are redelivered by the broker and committed
    /// idempotently.
    public func services() async throws -> [any Service] {
        let inbox = try await transport.coordinatorInbox(prefetch: options.intakeBatch * 2)
        await repairDatasetViews()
        wake.yield()
        var services: [any Service] = [EventIntake(engine: self, inbox: inbox), OutboxDispatcher(engine: self), Ticker(wake: wake),
                                       AlertSender(engine: self)]
        if let every = options.retention.interval { services.append(RetentionPass(engine: self, interval: every)) }
        if let every = options.schedulerInterval { services.append(SchedulerLoop(engine: self, interval: every)) }
        return services
    }

    /// Runs `services()` in a `ServiceGroup` of the engine's own, for tests
    /// and embedding where nothing else shares a group; `stop()` shuts it down
    /// gracefully. Processes put `services()` in their own group instead.
    public func start() async throws {
        let group = ServiceGroup(configuration: .init(services: try await services(), logger: logger))
        let task = Task { [logger] in
            do { try await group.run() } catch { logger.error("the engine's services stopped on an error", metadata: ["error": "\(error)"]) }
        }
        embedded.withLock { $0 = (group, task) }
    }

    /// Stops what `start()` started (not the transport: its owner closes it).
    public func stop() async {
        guard let (group, task) = embedded.withLock({ e in defer { e = nil }; return e }) else { return }
        await group.triggerGracefulShutdown()
        await task.value
    }

    // MARK: dispatcher

    func dispatchLoop() async {
        var wakeups = self.wakeups.makeAsyncIterator()
        while !Task.isCancelled {
            let rows: [OutboxRow]
            do {
                rows = try await store.read { [limit = options.dispatchBatch] db in
                    try Row.fetchAll(db, sql: """
                        SELECT o.id, o.task, o.attempt, o.delay_ms, t.body, t.run, t.stage, t.idx FROM outbox o JOIN tasks t ON t.id = o.task
                        WHERE o.sent_at IS NULL ORDER BY o.id LIMIT ?
                        """, arguments: [limit]).map { try OutboxRow($0) }
                }
            } catch is CancellationError {
                return   // shutting down
            } catch {
                logger.error("reading the outbox failed; trying again in a second", metadata: ["error": "\(error)"])
                try? await Task.sleep(for: .seconds(1))
                continue
            }
            if rows.isEmpty {
                _ = await wakeups.next()
                continue
            }
            let transport = self.transport
            let logger = self.logger
            let sent: [OutboxRow] = await withTaskGroup(of: OutboxRow?.self) { group in
                for row in rows {
                    group.addTask {
                        do {
                            if row.attempt == 1 {
                                // The stored body is attempt 1: sent as it is.
                                try await transport.publishEncodedTask(row.body, stage: row.stage, taskID: row.taskID, attempt: 1,
                                                                       delayMilliseconds: row.delayMilliseconds)
                            } else {
                                var message = try WireCoding.decode(TaskMessage.self, from: row.body)
                                message.attempt = row.attempt
                                try await transport.publishTask(message, delayMilliseconds: row.delayMilliseconds)
                            }
                            return row
                        } catch {
                            logger.warning("sending a task failed; it stays in the outbox and is sent again", metadata: [
                                "task.id": "\(row.taskID)", "task.stage": "\(row.stage.rawValue)", "task.attempt": "\(row.attempt)",
                                "error": "\(error)"])
                            return nil
                        }
                    }
                }
                var done: [OutboxRow] = []
                for await r in group { if let r { done.append(r) } }
                return done
            }
            if !sent.isEmpty {
                do {
                    let now = clock.seconds
                    try await store.write { db in
                        for r in sent {
                            try db.run("UPDATE outbox SET sent_at = ? WHERE id = ?", [now, r.id])
                            try StateMachine.queueTask(r.task, attempt: r.attempt, db)
                        }
                    }
                    metricsState.withLock { $0.sent += sent.count }
                } catch {
                    // The messages went out; marking them failed. They will
                    // be sent again: intake is idempotent.
                    logger.error("marking outbox rows sent failed; they will be sent again", metadata: ["outbox.rows": "\(sent.count)", "error": "\(error)"])
                }
            }
            if sent.count < rows.count { try? await Task.sleep(for: .milliseconds(500)) }
        }
    }

    struct OutboxRow: Sendable {
        let id: Int64
        let task: Int64
        let attempt: Int
        let delayMilliseconds: Int
        let body: [UInt8]
        let stage: Stage
        let taskID: String
        init(_ row: Row) throws {
            id = row["id"]
            task = row["task"]
            attempt = row["attempt"]
            delayMilliseconds = row["delay_ms"]
            body = [UInt8](row["body"] as Data)
            stage = try row.decode(Stage.self, "stage", table: "tasks", row: "\(row["task"] as Int64)")
            taskID = FleetIDs.taskID(run: row["run"], stage: stage, index: row["idx"])
        }
    }

    // MARK: event intake

    func intakeLoop(_ inbox: AsyncThrowingStream<InboundEvent, Error>) async {
        let batcher = self.batcher
        let reader = Task { [logger] in
            do {
                for try await event in inbox { await batcher.add(event) }
            } catch {
                logger.error("the coordinator's inbox ended", metadata: ["error": "\(error)"])
            }
            await batcher.finish()
        }
        defer { reader.cancel() }
        while !Task.isCancelled, let batch = await batcher.take(max: options.intakeBatch) {
            var committed = false
            var oneByOne = false
            while !committed && !Task.isCancelled {
                do {
                    let bodies = batch.map(\.body)
                    let started = ContinuousClock.now
                    let effects = try await store.write { [self, oneByOne] db in
                        oneByOne ? try self.applyOneByOne(bodies, db) : try self.apply(bodies, db)
                    }
                    let elapsed = ContinuousClock.now - started
                    committed = true
                    await withTaskGroup(of: Void.self) { group in
                        for e in batch { group.addTask { try? await e.ack() } }
                    }
                    metricsState.withLock { m in
                        m.commits += 1
                        m.commitSeconds += Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
                        m.rejected.merge(effects.rejected, uniquingKeysWith: +)
                    }
                    for d in effects.taskDurations { metrics.observeTaskDuration(d) }
                    for d in effects.handoffLatencies { metrics.observeHandoffLatency(d) }
                    for r in effects.rows {
                        metrics.recordRows(pipeline: r.pipeline, stage: r.stage, rowsIn: r.rowsIn, rowsOut: r.rowsOut,
                                           rowsQuarantined: r.rowsQuarantined)
                    }
                    if effects.planned { wake.yield() }
                    reclaim(effects.reclaim)
                } catch is CancellationError {
                    // Stopping: the batch stays unacked and comes back at the next start.
                    return
                } catch let error as StoredValueError where !oneByOne {
                    // A row this build cannot read (a newer version wrote it, or
                    // a hand edit): commit the batch event by event, so that
                    // only the events touching it are skipped, not the fleet.
                    logger.error("an event touches a row this coordinator cannot read; committing the batch event by event",
                                 metadata: ["intake.events": "\(batch.count)", "error": "\(error)"])
                    oneByOne = true
                } catch {
                    logger.error("committing a batch of events failed; retrying", metadata: ["intake.events": "\(batch.count)", "error": "\(error)"])
                    try? await Task.sleep(for: .seconds(1))
                }
            }
        }
    }

    /// Deletes the execution folders of duplicates and discarded executions.
    private func reclaim(_ dirs: [String]) {
        for dir in dirs {
            // Exactly runs/<run>/<stage>/<index>/<execution>, inside the root.
            let parts = dir.split(separator: "/", omittingEmptySubsequences: false)
            guard parts.count == 5, parts[0] == "runs", FleetIDs.isValidID(String(parts[1])), FleetIDs.isValidID(String(parts[4])),
                  let path = try? chunkStore.absolute(dir, field: "execution folder"), path.hasPrefix(chunkStore.root + "/runs/") else {
                logger.warning("refusing to reclaim a folder that is not an execution folder", metadata: ["folder": "\(dir)"])
                continue
            }
            try? FileManager.default.removeItem(atPath: path)
        }
    }

    func spec(_ run: RunRecord) throws -> PipelineSpec? {
        guard run.kind == "pipeline" else { return nil }
        let key = SpecRef.parseKey(textHash: run.specSHA256, file: run.specFile, directory: run.specDirectory,
                                   allowedRoots: run.allowedRoots)
        if let s = specs.withLock({ $0[key] }) { return s }
        let s = try PipelineSpec.parse(yaml: run.specText, file: run.specFile, directory: run.specDirectory,
                                       allowedRoots: run.allowedRoots)
        specs.withLock { $0[key] = s }
        return s
    }
}

/// The inbox, buffered, handed out in batches (group commit).
actor Batcher {
    private var buffer: [InboundEvent] = []
    private var waiter: CheckedContinuation<Void, Never>?
    private var finished = false

    func add(_ e: InboundEvent) {
        buffer.append(e)
        waiter?.resume()
        waiter = nil
    }

    func finish() {
        finished = true
        waiter?.resume()
        waiter = nil
    }

    /// Everything buffered (at most `max`), waiting for at least one; nil at the end.
    func take(max: Int) async -> [InboundEvent]? {
        while buffer.isEmpty {
            if finished || Task.isCancelled { return nil }
            await withCheckedContinuation { waiter = $0 }
        }
        let n = min(max, buffer.count)
        let batch = Array(buffer.prefix(n))
        buffer.removeFirst(n)
        return batch
    }
}
