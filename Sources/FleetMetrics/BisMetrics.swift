import CoordinatorAPI
import FleetWire
import Prometheus
import Synchronization

/// A `CoordinatorService` that renders `/metrics` itself, from a registry it
/// owns (the engine). `CoordinatorHTTP` asks a service that is not one for its
/// `MetricsSnapshot` and renders that through a `BisMetrics` of its own.
public protocol PrometheusExposition: Sendable {
    /// The families of `BisMetrics`, current, in Prometheus' text format.
    func prometheusText() async throws -> String
}

/// A worker's resources as its last heartbeat reported them.
public struct WorkerResources: Sendable, Hashable {
    public var worker: String
    /// CPU time (user + system) the worker process used since it started.
    public var cpuSeconds: Double?
    /// Its resident memory.
    public var residentBytes: Int64?
    /// Tasks it was executing.
    public var runningTasks: Int

    public init(worker: String, cpuSeconds: Double?, residentBytes: Int64?, runningTasks: Int) {
        self.worker = worker
        self.cpuSeconds = cpuSeconds
        self.residentBytes = residentBytes
        self.runningTasks = runningTasks
    }
}

/// A run that reached a final state, as the per-pipeline families count it.
public struct FinishedRun: Sendable, Hashable {
    public var pipeline: String
    public var state: RunState
    /// From its latest start (submit, or the last retry) to this finish.
    public var durationSeconds: Double

    public init(pipeline: String, state: RunState, durationSeconds: Double) {
        self.pipeline = pipeline
        self.state = state
        self.durationSeconds = durationSeconds
    }
}

/// `/metrics`' families on a swift-prometheus registry of its own.
///
/// One per engine (and one per HTTP server for a service that is not an
/// engine), never the process-global `MetricsSystem`: tests run many
/// coordinators in one process, and each must count only its own. What the
/// store holds (runs, tasks, executions, workers, pipelines' last successes)
/// and what the engine counts in memory (`MetricsSnapshot`) are set just
/// before the registry is rendered. The task histograms and the row counters
/// are recorded when a result is committed; run outcomes and durations by the
/// engine at scrape time, from the store (the runs finished since the previous
/// scrape). Labels name states, stages, reasons, pipelines
/// (specs' names) and worker ids (of the last hour) only, never runs, tasks or
/// executions, whose number is unbounded.
///
/// Hummingbird's request metrics (`MetricsMiddleware`) are recorded through
/// swift-metrics' global factory, the only one it takes: see `RequestMetrics`.
public final class BisMetrics: Sendable {
    public static let contentType = "text/plain; version=0.0.4; charset=utf-8"
    public static let taskDurationBuckets: [Double] = [0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900]
    public static let handoffLatencyBuckets: [Double] = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 60]
    /// Whole runs: a second to a day.
    public static let runDurationBuckets: [Double] = [1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 14400, 43200, 86400]
    /// A worker not heard from for this long drops out of the per-worker families.
    public static let workerWindowSeconds = 3600.0

    public let registry: PrometheusCollectorRegistry
    private let taskDuration: ValueHistogram
    private let handoffLatency: ValueHistogram
    /// Setting from a snapshot and rendering, one at a time: a counter set by
    /// reset-and-increment is never seen half-way.
    private let rendering = Mutex(RenderState())

    private struct RenderState {
        /// Label sets set before, set to 0 when a later snapshot lacks them.
        var tasks: Set<TaskKey> = []
        var queues: Set<Stage> = []
        var pipelines: Set<String> = []
        var workers: [String: WorkerSeries] = [:]
    }

    private struct WorkerSeries {
        var cpu: Counter?
        var rss: Gauge?
        var running: Gauge
    }

    private struct TaskKey: Hashable {
        var stage: Stage
        var state: TaskState
    }

    public init() {
        registry = PrometheusCollectorRegistry()
        taskDuration = registry.makeValueHistogram(descriptor: Self.name("bis_task_duration_seconds", "Winning executions' run time."),
                                                   labels: [], buckets: Self.taskDurationBuckets)
        handoffLatency = registry.makeValueHistogram(descriptor: Self.name("bis_handoff_latency_seconds", "From a task's planning to its result's commit."),
                                                     labels: [], buckets: Self.handoffLatencyBuckets)
        // Families without labels show from the start; labelled ones with their
        // first label set (every state and reason at the first render).
        rendering.withLock { _ in set(MetricsSnapshot()) }
    }

    // MARK: recorded when it happens

    /// A winning execution's run time.
    public func observeTaskDuration(_ seconds: Double) { taskDuration.record(seconds) }

    /// From a task's planning to its result's commit.
    public func observeHandoffLatency(_ seconds: Double) { handoffLatency.record(seconds) }

    /// Creates a pipeline's series at zero (its last success shows once it has one).
    public func registerPipeline(_ pipeline: String) {
        let fresh = rendering.withLock { $0.pipelines.insert(pipeline).inserted }
        guard fresh else { return }
        for state in Self.finalStates { _ = runsFinished(pipeline, state) }
        _ = runDuration(pipeline)
        _ = rowsIn(pipeline); _ = rowsOut(pipeline); _ = rowsQuarantined(pipeline)
        _ = deadlineMisses(pipeline); _ = alertsSent(pipeline); _ = alertsFailed(pipeline)
    }

    /// A run reached a final state (once per time it does: a retried run
    /// that finishes again counts again): its outcome and duration.
    public func recordRunFinished(_ run: FinishedRun) {
        registerPipeline(run.pipeline)
        runsFinished(run.pipeline, run.state).increment()
        runDuration(run.pipeline).record(max(0, run.durationSeconds))
    }

    /// A task's result was committed (once per task: a retried run reuses
    /// the results it committed before). Rows in: what an ingest task read;
    /// out: what a publish task wrote; quarantined: any stage's.
    public func recordRows(pipeline: String, stage: Stage, rowsIn: Int64, rowsOut: Int64, rowsQuarantined: Int64) {
        registerPipeline(pipeline)
        if stage == .ingest { self.rowsIn(pipeline).increment(by: max(0, rowsIn)) }
        if stage == .publish { self.rowsOut(pipeline).increment(by: max(0, rowsOut)) }
        self.rowsQuarantined(pipeline).increment(by: max(0, rowsQuarantined))
    }

    /// A run of `pipeline` passed its deadline unfinished (once per run).
    public func recordDeadlineMiss(pipeline: String) {
        registerPipeline(pipeline)
        deadlineMisses(pipeline).increment()
    }

    /// An alert about `pipeline` was delivered (`sent`) or given up on.
    public func recordAlert(sent: Bool, pipeline: String) {
        registerPipeline(pipeline)
        (sent ? alertsSent(pipeline) : alertsFailed(pipeline)).increment()
    }

    /// The pipeline's schedule period, for the rule BisPipelineNoRecentSuccess
    /// (ops/prometheus/bis-rules.yml: period plus 2 h; a pipeline without one
    /// does not alert). For the scheduler to call; nil removes the series.
    public func setSchedulePeriod(pipeline: String, seconds: Double?) {
        let g = gauge("bis_pipeline_schedule_period_seconds", "The pipeline's schedule period (between two slots).", [("pipeline", pipeline)])
        if let seconds { g.set(to: seconds) } else { registry.unregisterGauge(g) }
    }

    /// When the pipeline's next scheduled slot starts (seconds since 1970);
    /// nil removes the series (paused, removed, unscheduled, past its end).
    /// For the scheduler to call at each pass.
    public func setNextRun(pipeline: String, at seconds: Double?) {
        let g = gauge("bis_pipeline_next_run_timestamp_seconds", "When the pipeline's next scheduled slot starts (seconds since 1970).",
                      [("pipeline", pipeline)])
        if let seconds { g.set(to: seconds) } else { registry.unregisterGauge(g) }
    }

    /// How late the scheduler started the last slot it started: the run's
    /// start minus the slot's time, in seconds (0 when on time).
    public func setSchedulerLag(seconds: Double) {
        gauge("bis_scheduler_lag_seconds", "How late the last scheduled slot started (its run's start minus the slot's time).", [])
            .set(to: max(0, seconds))
    }

    // MARK: set at scrape time

    /// The registry's text with `snapshot`'s counts, the pipelines' last
    /// successes (seconds since 1970), and the workers heard from lately,
    /// followed by the process' request metrics.
    public func render(_ snapshot: MetricsSnapshot, lastSuccess: [String: Double] = [:],
                       workers: [WorkerResources] = []) -> String {
        for p in lastSuccess.keys { registerPipeline(p) }
        let text = rendering.withLock { state -> String in
            set(snapshot, &state)
            for (p, at) in lastSuccess { lastSuccessGauge(p).set(to: at) }
            setWorkers(workers, &state)
            return registry.emitToString()
        }
        return text + RequestMetrics.registry.emitToString()
    }

    private func set(_ m: MetricsSnapshot) {
        var scratch = RenderState()
        set(m, &scratch)
    }

    private func set(_ m: MetricsSnapshot, _ state: inout RenderState) {
        for s in RunState.allCases {
            gauge("bis_runs", "Runs in the lineage store by state.", [("state", s.rawValue)]).set(to: Double(m.runs[s] ?? 0))
        }
        let tasksHelp = "Tasks by stage and state."
        var tasks: Set<TaskKey> = []
        for t in m.tasks {
            gauge("bis_tasks", tasksHelp, [("stage", t.stage.rawValue), ("state", t.state.rawValue)]).set(to: Double(t.count))
            tasks.insert(TaskKey(stage: t.stage, state: t.state))
        }
        for k in state.tasks.subtracting(tasks) {
            gauge("bis_tasks", tasksHelp, [("stage", k.stage.rawValue), ("state", k.state.rawValue)]).set(to: 0)
        }
        state.tasks.formUnion(tasks)
        for s in ExecutionState.allCases {
            gauge("bis_executions",
                  "Executions by state (duplicate: a redelivered task's later result; lost: dead-lettered; abandoned: never reported, its task settled without it).",
                  [("state", s.rawValue)]).set(to: Double(m.executions[s] ?? 0))
        }
        set(counter("bis_task_retries_total", "Task attempts after a failure or a lost execution."), m.taskRetries)
        let queueHelp = "Ready messages per stage queue."
        for (stage, n) in m.queueDepths { gauge("bis_queue_depth", queueHelp, [("stage", stage.rawValue)]).set(to: Double(n)) }
        for stage in state.queues.subtracting(m.queueDepths.keys) { gauge("bis_queue_depth", queueHelp, [("stage", stage.rawValue)]).set(to: 0) }
        state.queues.formUnion(m.queueDepths.keys)
        gauge("bis_workers_live", "Workers with a recent heartbeat.").set(to: Double(m.liveWorkers))
        gauge("bis_workers_quiet", "Workers heard from in the last hour, not stopped, without a recent heartbeat (crashed or cut off).")
            .set(to: Double(m.quietWorkers))
        set(counter("bis_messages_sent_total", "Task messages the outbox sent and the broker confirmed, since start."), m.messagesSent)
        for reason in MessageRejection.Reason.allCases {
            set(counter("bis_messages_rejected_total",
                        "Messages refused since start (a missing or wrong MAC, a malformed id or path): never executed or committed.",
                        [("reason", reason.rawValue)]), m.messagesRejected[reason.rawValue] ?? 0)
        }
        set(counter("bis_intake_commits_total", "Event batches committed (group commits), since start."), m.intakeCommits)
        set(counter("bis_broker_reconnects_total", "The coordinator's broker connections re-established after a loss, since start.",
                    [("client", "coordinator")]), m.brokerReconnects)
        // Not a counter: the sum of lifetime counts of the workers heard from
        // in the last hour drops when a worker goes.
        gauge("bis_worker_broker_reconnects",
              "Broker reconnects the workers heard from in the last hour report in their last heartbeats, summed.")
            .set(to: Double(m.workerBrokerReconnects))
        set(counter("bis_gc_reclaimed_bytes_total", "Bytes of the files retention (bis gc) removed, since start."), m.gcReclaimedBytes)
        set(counter("bis_gc_reclaimed_files_total", "Files retention (bis gc) removed, since start."), m.gcReclaimedFiles)
        set(counter("bis_gc_passes_total", "Retention passes made (bis gc and the periodic pass), since start."), m.gcPasses)
    }

    private func setWorkers(_ workers: [WorkerResources], _ state: inout RenderState) {
        let seen = Set(workers.map(\.worker))
        for (id, series) in state.workers where !seen.contains(id) {
            series.cpu.map { registry.unregisterCounter($0) }
            series.rss.map { registry.unregisterGauge($0) }
            registry.unregisterGauge(series.running)
            state.workers[id] = nil
        }
        for w in workers {
            let labels = [("worker", w.worker)]
            var series = state.workers[w.worker] ?? WorkerSeries(
                running: gauge("bis_worker_running_tasks", "Tasks a worker heard from in the last hour was executing at its last heartbeat (0 once it stopped or went quiet).", labels))
            series.running.set(to: Double(max(0, w.runningTasks)))
            // Unknown (an older worker): no series rather than a false 0.
            if let cpu = w.cpuSeconds {
                let c = series.cpu ?? counter("bis_worker_cpu_seconds_total",
                                              "CPU time (user and system) a worker heard from in the last hour reports in its last heartbeat.", labels)
                c.reset()
                c.increment(by: max(0, cpu))
                series.cpu = c
            } else if let c = series.cpu {
                registry.unregisterCounter(c)
                series.cpu = nil
            }
            if let rss = w.residentBytes {
                let g = series.rss ?? gauge("bis_worker_resident_memory_bytes",
                                            "Resident memory a worker heard from in the last hour reports in its last heartbeat.", labels)
                g.set(to: Double(max(0, rss)))
                series.rss = g
            } else if let g = series.rss {
                registry.unregisterGauge(g)
                series.rss = nil
            }
            state.workers[w.worker] = series
        }
    }

    // MARK: families

    static let finalStates: [RunState] = [.succeeded, .failed, .cancelled]

    private func runsFinished(_ p: String, _ s: RunState) -> Counter {
        counter("bis_pipeline_runs_total", "Runs that reached a final state (succeeded, failed, cancelled) since start, by pipeline.",
                [("pipeline", p), ("state", s.rawValue)])
    }
    private func runDuration(_ p: String) -> ValueHistogram {
        registry.makeValueHistogram(descriptor: Self.name("bis_pipeline_run_duration_seconds",
                                                          "Finished runs' time from submit (or the last retry) to a final state, since start, by pipeline."),
                                    labels: [("pipeline", p)], buckets: Self.runDurationBuckets)
    }
    private func rowsIn(_ p: String) -> Counter {
        counter("bis_pipeline_rows_in_total", "Rows the committed ingest tasks read, since start, by pipeline.", [("pipeline", p)])
    }
    private func rowsOut(_ p: String) -> Counter {
        counter("bis_pipeline_rows_out_total", "Rows the committed publish tasks wrote, since start, by pipeline.", [("pipeline", p)])
    }
    private func rowsQuarantined(_ p: String) -> Counter {
        counter("bis_pipeline_rows_quarantined_total", "Rows the committed tasks of every stage quarantined, since start, by pipeline.",
                [("pipeline", p)])
    }
    private func deadlineMisses(_ p: String) -> Counter {
        counter("bis_pipeline_deadline_misses_total", "Runs that passed their deadline unfinished, since start, by pipeline.",
                [("pipeline", p)])
    }
    private func alertsSent(_ p: String) -> Counter {
        counter("bis_pipeline_alerts_sent_total", "Alert deliveries marked sent, since start, by pipeline.", [("pipeline", p)])
    }
    private func alertsFailed(_ p: String) -> Counter {
        counter("bis_pipeline_alerts_failed_total", "Alert deliveries given up on (retries exhausted), since start, by pipeline.",
                [("pipeline", p)])
    }
    private func lastSuccessGauge(_ p: String) -> Gauge {
        gauge("bis_pipeline_last_success_timestamp_seconds", "When the pipeline's last successful run finished (seconds since 1970).",
              [("pipeline", p)])
    }

    private func gauge(_ name: String, _ help: String, _ labels: [(String, String)] = []) -> Gauge {
        registry.makeGauge(descriptor: Self.name(name, help), labels: labels)
    }

    private func counter(_ name: String, _ help: String, _ labels: [(String, String)] = []) -> Counter {
        registry.makeCounter(descriptor: Self.name(name, help), labels: labels)
    }

    /// A counter that shows a total counted elsewhere (the engine's memory).
    private func set<N: BinaryInteger>(_ c: Counter, _ value: N) {
        c.reset()
        c.increment(by: Int64(clamping: max(0, value)))
    }

    private static func name(_ name: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(metricName: name, unitName: "", helpText: help)
    }
}
