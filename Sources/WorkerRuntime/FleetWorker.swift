import FleetCore
import Foundation
import Logging
import ServiceLifecycle
import Synchronization

/// A stateless worker: takes stage tasks from a transport, executes up to
/// `concurrency` at once (each operator on a thread of its own, so the
/// transport's I/O and the heartbeats keep flowing during long tasks), and
/// reports every execution before settling its delivery.
///
/// Per delivery: a new execution id; a `started` event sent without waiting;
/// the execution; the `succeeded` or `failed` event published and confirmed;
/// only THEN the ack (the commit protocol's rule 1: never ack without a
/// confirmed result). A result that cannot be published is tried again for
/// up to `resultRetry` (a broker node lost a moment ago), then handed back
/// (nack with requeue), so the task runs again. An unreadable body is
/// rejected without requeue (dead-lettered).
///
/// Stopping (`drain()`, the graceful shutdown of the `ServiceGroup` it runs in,
/// which `bis-worker` triggers on SIGTERM and SIGINT): no new tasks are taken;
/// running ones get `drainGrace` to finish; those still running then are
/// handed back (nack with requeue) and their results, should they come, are
/// dropped; a last `stopped` heartbeat is sent and `run()` returns.
public final class FleetWorker: Service, Sendable {
    public let identity: WorkerIdentity
    public let stages: [Stage]
    public let concurrency: Int
    private let transport: any FleetTransport
    private let executor: TaskExecutor
    private let heartbeatInterval: Duration
    private let drainGrace: Duration
    private let resultRetry: Duration
    private let fault: FaultSwitch?
    private let logger: Logger
    /// How long an execution past its stage's timeout gets to stop before `onHang`.
    private let timeoutGrace: Duration
    /// What to do when it does not stop, after its timeout failure was
    /// reported and its delivery acked, and the worker's other tasks were
    /// handed back (bis-worker: exit, so that systemd restarts it; the
    /// thread stuck in the operator cannot be stopped otherwise). nil: only
    /// the timeout is reported (tests).
    private let onHang: (@Sendable () -> Void)?

    private struct Running {
        let taskID: String
        let delivery: InboundTask
        /// Set by whoever settles the delivery first: the execution (ack or
        /// nack after its result) or the drain (nack).
        var settled = false
        /// The execution returned; its result is the one reported.
        var finished = false
        /// The timeout watchdog gave up on it (past timeout + grace) and
        /// reports it timed out; a late return of the execution is dropped.
        var abandoned = false
    }

    private struct State {
        var heartbeat: WorkerHeartbeat.State = .running
        var running: [String: Running] = [:]
        var drainWaiter: CheckedContinuation<Void, Never>?
        var drainRequested = false
        var streamError: (any Error)?
    }

    private let state = Mutex(State())
    private let slots: Slots

    public init(transport: any FleetTransport, chunkStore: ChunkStore, stages: [Stage] = Stage.allCases, concurrency: Int,
                identity: WorkerIdentity = .current(), heartbeatInterval: Duration = .seconds(2),
                drainGrace: Duration = .seconds(30), fault: FaultSwitch? = nil,
                resultRetry: Duration = .seconds(10),
                logger: Logger = Logger(label: "bis.worker"),
                timeoutGrace: Duration = .seconds(30), onHang: (@Sendable () -> Void)? = nil) {
        self.timeoutGrace = timeoutGrace
        self.onHang = onHang
        self.transport = transport
        self.executor = TaskExecutor(chunkStore: chunkStore)
        self.stages = stages
        self.concurrency = max(1, concurrency)
        self.identity = identity
        self.heartbeatInterval = heartbeatInterval
        self.drainGrace = drainGrace
        self.resultRetry = resultRetry
        self.fault = fault
        var logger = logger
        logger[metadataKey: "worker.id"] = .string(identity.id)
        self.logger = logger
        self.slots = Slots(max(1, concurrency))
    }

    /// Consumes and executes tasks until `drain()` is called, the service
    /// group shuts down gracefully (which drains) or the transport's stream
    /// ends; throws what ended the stream, if it failed.
    public func run() async throws {
        // Cancelled (its group failed elsewhere), it drains too: its wait
        // for a drain would otherwise never end, and the group would hang.
        try await withTaskCancellationHandler {
            try await withGracefulShutdownHandler {
                try await runUntilDrained()
            } onGracefulShutdown: {
                self.logger.info("graceful shutdown (SIGTERM or SIGINT in bis-worker): draining")
                self.drain()
            }
        } onCancel: {
            self.drain()
        }
    }

    private func runUntilDrained() async throws {
        // Prefetch is the concurrency: the transport hands this worker no
        // more unsettled tasks than it can run at once, so it hoards none.
        let deliveries = try await transport.taskDeliveries(stages: stages, prefetch: concurrency)
        logger.info("worker started", metadata: ["worker.stages": .string(stages.map(\.rawValue).joined(separator: ",")),
                                                 "worker.concurrency": .stringConvertible(concurrency)])
        let heartbeats = Task { await self.beat() }
        let consumer = Task { await self.consume(deliveries) }

        await withCheckedContinuation { (cont: CheckedContinuation<Void, Never>) in
            let resumeNow = state.withLock { s in
                if s.drainRequested { return true }
                s.drainWaiter = cont
                return false
            }
            if resumeNow { cont.resume() }
        }

        // Draining: wait for the running tasks, at most the grace period.
        await sendHeartbeat(.draining)
        let deadline = ContinuousClock.now + drainGrace
        while ContinuousClock.now < deadline, state.withLock({ !$0.running.isEmpty }) {
            try? await Task.sleep(for: .milliseconds(20))
        }
        let handBack: [(String, Running)] = state.withLock { s in
            var out: [(String, Running)] = []
            for (id, r) in s.running where !r.settled {
                s.running[id]?.settled = true
                out.append((id, r))
            }
            return out
        }
        for (execution, r) in handBack {
            var log = logger
            if let task = r.delivery.task { log = Self.logger(logger, task: task, execution: execution) }
            log.info("handing back a task still running after the drain grace")
            do { try await r.delivery.nack(requeue: true) } catch {
                log.warning("could not hand back a task; the broker will redeliver it", metadata: ["error": "\(error)"])
            }
        }
        consumer.cancel()
        await consumer.value
        state.withLock { $0.heartbeat = .stopped }
        heartbeats.cancel()
        await heartbeats.value   // no beat of the loop's may follow the last one
        await sendHeartbeat(.stopped)
        logger.info("worker stopped")
        if let error = state.withLock({ $0.streamError }) { throw error }
    }

    /// Stop taking tasks and let `run()` finish (see the type's doc). Safe
    /// to call from any thread, any number of times.
    public func drain() {
        let waiter: CheckedContinuation<Void, Never>? = state.withLock { s in
            guard !s.drainRequested else { return nil }
            s.drainRequested = true
            s.heartbeat = .draining
            defer { s.drainWaiter = nil }
            return s.drainWaiter
        }
        slots.close()
        waiter?.resume()
    }

    /// Task ids executing now.
    public var runningTasks: [String] { state.withLock { $0.running.values.map(\.taskID).sorted() } }

    // MARK: - Consuming

    private func consume(_ deliveries: AsyncThrowingStream<InboundTask, Error>) async {
        var iterator = deliveries.makeAsyncIterator()
        do {
            while await slots.acquire() {
                guard let delivery = try await iterator.next() else { break }
                if state.withLock({ $0.drainRequested }) {
                    slots.release()
                    try? await delivery.nack(requeue: true)
                    continue
                }
                // Registered before its task starts, so a drain right now
                // already counts it as running.
                let execution = FleetIDs.newExecutionID()
                if let task = delivery.task {
                    state.withLock { $0.running[execution] = Running(taskID: task.taskID, delivery: delivery) }
                }
                Task { await self.handle(delivery, execution: execution) }
            }
        } catch is CancellationError {
        } catch {
            if !Task.isCancelled {
                logger.error("the task stream failed", metadata: ["error": "\(error)"])
                state.withLock { $0.streamError = error }
            }
        }
        // The stream ended (or failed): nothing more to do but drain.
        drain()
    }

    private func handle(_ delivery: InboundTask, execution: String) async {
        defer { slots.release() }
        guard var message = delivery.task else {
            logger.warning("rejecting an unreadable task message", metadata: ["error": .string(delivery.decodeError ?? "?")])
            try? await delivery.nack(requeue: false)
            return
        }
        // A test fault aimed at a stage fused into this task: run it unfused,
        // so that the fault meets that stage's own task, as without fusion
        // (the coordinator plans it once this one commits without it).
        if fault?.targetsFollower(of: message) == true { message.fused = nil }
        // A stage fused into this task that this worker's --stages exclude
        // (a fused message queued before it started, or re-sent by bis
        // retry): run the task unfused; the coordinator plans that stage as
        // its own task once this one commits without it.
        if let f = message.fused, !f.allSatisfy(stages.contains) { message.fused = nil }
        let task = message
        let log = Self.logger(logger, task: task, execution: execution)
        defer { state.withLock { _ = $0.running.removeValue(forKey: execution) } }
        // Its ids become folder names: a malformed one is refused before
        // anything is built from it (dead-lettered; the coordinator counts it).
        do {
            try task.validate()
        } catch {
            log.warning("rejecting a task message with a malformed field", metadata: ["error": "\(error)"])
            if claim(execution) { try? await delivery.nack(requeue: false) }
            return
        }
        // A cancelled run's tasks still in the queue: nothing to compute.
        if executor.chunkStore.isCancelled(run: task.run) {
            log.info("task skipped: its run was cancelled")
            if claim(execution) { try? await delivery.ack() }
            return
        }

        let startedAt = Date()
        let started = TaskEvent(kind: .started, task: task, execution: execution, worker: identity,
                                deliveryCount: delivery.deliveryCount, startedAt: startedAt)
        let transport = self.transport
        // Status only, not awaited, and only for a task still running after
        // a moment: a task that ends at once is reported by its result alone
        // (half the messages for many short tasks; the coordinator does not
        // need the `started` event to commit a result).
        let announce = Task {
            try await Task.sleep(for: .milliseconds(200))
            try? await transport.publishEvent(started)
        }
        defer { announce.cancel() }
        log.info("task started", metadata: ["task.delivery_count": .stringConvertible(delivery.deliveryCount)])

        // The stage's timeout (spec `timeouts:`, sent by the coordinator):
        // past it the operators are asked to stop between batches and the
        // execution fails transiently ("timed out after 10m"); one that has
        // not returned after `timeoutGrace` more ends the process (`onHang`).
        let timeout = task.parameters["timeout_seconds"].flatMap(Double.init).flatMap { $0 > 0 ? $0 : nil }
        let cancellation = timeout == nil ? nil : ExecutionCancellation()
        let watchdog: Task<Void, Never>? = timeout.map { seconds in
            Task { [timeoutGrace, identity] in
                do { try await Task.sleep(for: .milliseconds(Int64(seconds * 1000))) } catch { return }
                let message = ExecutionCancellation.timeoutMessage(seconds: seconds)
                cancellation?.cancel(message)
                log.warning("task ran past its stage's timeout; asking it to stop",
                            metadata: ["task.timeout_seconds": .stringConvertible(seconds)])
                do { try await Task.sleep(for: timeoutGrace) } catch { return }
                let failed = TaskEvent(kind: .failed, task: task, execution: execution, worker: identity,
                                       deliveryCount: delivery.deliveryCount, startedAt: startedAt, finishedAt: Date(),
                                       failure: TaskFailure(.transient, message, timedOut: true))
                await self.abandonHung(execution, delivery: delivery, event: failed, log: log)
            }
        }
        var event: TaskEvent
        do throws(TaskFailure) {
            try await fault?.apply(to: task, cancellation: cancellation)
            let o = try await executor.execute(task, execution: execution, cancellation: cancellation)
            // A success is reported as one even when it returned just past
            // the timeout: its work is done (and for deliver, done outside);
            // only an operator that stopped on the flag reports `timed out`.
            event = TaskEvent(kind: .succeeded, task: task, execution: execution, worker: identity,
                              deliveryCount: delivery.deliveryCount, startedAt: startedAt, finishedAt: Date(),
                              outputs: o.outputs, rowsIn: o.rowsIn, rowsOut: o.rowsOut, rowsQuarantined: o.rowsQuarantined,
                              result: o.result, followers: o.followers)
            log.info("task succeeded", metadata: ["task.rows_out": .stringConvertible(o.rowsOut)])
        } catch {
            event = TaskEvent(kind: .failed, task: task, execution: execution, worker: identity,
                              deliveryCount: delivery.deliveryCount, startedAt: startedAt, finishedAt: Date(),
                              failure: error)
            log.info("task failed", metadata: ["failure.kind": .string(error.kind.rawValue), "failure.message": .string(error.message)])
        }

        watchdog?.cancel()
        // Handed back by the drain meanwhile (another worker runs it again),
        // or given up on by the watchdog (which reported it timed out).
        let report = state.withLock { s -> Bool in
            guard let r = s.running[execution], !r.settled, !r.abandoned else { return false }
            s.running[execution]?.finished = true
            return true
        }
        guard report else { return }
        do {
            try await publishResult(event, execution: execution, log: log)
        } catch {
            log.warning("could not publish the result; handing the task back", metadata: ["error": "\(error)"])
            if claim(execution) { try? await delivery.nack(requeue: true) }
            return
        }
        fault?.applyAfterResult(of: task)
        guard claim(execution) else { return }
        do {
            try await delivery.ack()
        } catch {
            // The result is recorded; the redelivery becomes a duplicate execution.
            log.warning("could not ack after the result was confirmed", metadata: ["error": "\(error)"])
        }
    }

    /// An execution still running `timeoutGrace` after its stage's timeout:
    /// its timeout failure is published (confirmed, retried as any result),
    /// its delivery acked, so the coordinator records it `timed_out` once and
    /// retries it under the task's attempts with backoff (not by redelivery
    /// of the same attempt); then, when `onHang` is set, the worker's other
    /// tasks are handed back (nack with requeue, as on drain), a `stopped`
    /// heartbeat is sent and `onHang` ends the process.
    private func abandonHung(_ execution: String, delivery: InboundTask, event: TaskEvent, log: Logger) async {
        let mine = state.withLock { s -> Bool in
            guard let r = s.running[execution], !r.settled, !r.finished, !r.abandoned else { return false }
            s.running[execution]?.abandoned = true
            return true
        }
        // It returned meanwhile (its own result is reported), or the drain
        // handed it back: nothing hangs that the drain does not deal with.
        guard mine else { return }
        let then = onHang == nil ? "" : ", then handing back the worker's other tasks and exiting"
        log.error("task did not stop within the grace period after its timeout; reporting it timed out\(then)")
        do {
            try await publishResult(event, execution: execution, log: log)
            if claim(execution) {
                do { try await delivery.ack() } catch {
                    log.warning("could not ack after the timeout was confirmed", metadata: ["error": "\(error)"])
                }
            }
        } catch {
            log.warning("could not publish the timeout; the task is handed back", metadata: ["error": "\(error)"])
            if claim(execution) { try? await delivery.nack(requeue: true) }
        }
        guard let onHang else { return }
        let handBack: [(String, Running)] = state.withLock { s in
            var out: [(String, Running)] = []
            for (id, r) in s.running where !r.settled {
                s.running[id]?.settled = true
                out.append((id, r))
            }
            s.heartbeat = .stopped
            return out
        }
        for (other, r) in handBack {
            var l = logger
            if let task = r.delivery.task { l = Self.logger(logger, task: task, execution: other) }
            l.info("handing back a task: the worker exits after a hung execution")
            do { try await r.delivery.nack(requeue: true) } catch {
                l.warning("could not hand back a task; the broker will redeliver it", metadata: ["error": "\(error)"])
            }
        }
        await sendHeartbeat(.stopped)
        onHang()
    }

    /// Publishes a result, trying again after a pause growing from 0.25 s to
    /// 2 s while `resultRetry` has not passed since the first try: handing the
    /// task back counts toward the stage queue's delivery limit, and a broker
    /// that lost a node refuses publishes for a few seconds (the transport
    /// already sends a nacked publish again on a new channel). Stops early
    /// when the drain handed the task back meanwhile.
    private func publishResult(_ event: TaskEvent, execution: String, log: Logger) async throws {
        let deadline = ContinuousClock.now + resultRetry
        var pause = Duration.milliseconds(250)
        var tries = 0
        while true {
            do {
                try await transport.publishEvent(event)
                if tries > 0 { log.info("result published after \(tries) failed tries") }
                return
            } catch {
                tries += 1
                let handedBack = state.withLock { $0.running[execution]?.settled ?? true }
                // No cancellation check: `handle` runs in an unstructured
                // task nothing cancels; the drain shows up as `handedBack`.
                guard !handedBack, ContinuousClock.now + pause < deadline else { throw error }
                log.warning("could not publish the result; trying again",
                            metadata: ["error": "\(error)", "result.tries": .stringConvertible(tries)])
                try await Task.sleep(for: pause)
                pause = min(pause * 2, .seconds(2))
            }
        }
    }

    /// `logger` with the task's keys: run.id, task.id, task.stage, execution.id.
    private static func logger(_ logger: Logger, task: TaskMessage, execution: String) -> Logger {
        var log = logger
        log[metadataKey: "run.id"] = .string(task.run)
        log[metadataKey: "task.id"] = .string(task.taskID)
        log[metadataKey: "task.stage"] = .string(task.stage.rawValue)
        log[metadataKey: "execution.id"] = .string(execution)
        return log
    }

    /// Takes the right to settle an execution's delivery; false when the
    /// drain took it first.
    private func claim(_ execution: String) -> Bool {
        state.withLock { s in
            guard let r = s.running[execution], !r.settled else { return false }
            s.running[execution]?.settled = true
            return true
        }
    }

    // MARK: - Heartbeats

    private func beat() async {
        while !Task.isCancelled {
            let current = state.withLock { $0.heartbeat }
            if current == .stopped { return }
            await sendHeartbeat(current)
            try? await Task.sleep(for: heartbeatInterval)
        }
    }

    private func sendHeartbeat(_ s: WorkerHeartbeat.State) async {
        let usage = ProcessResources.current()
        let beat = WorkerHeartbeat(worker: identity, at: Date(), state: s, stages: stages, concurrency: concurrency,
                                   running: runningTasks, node: transport.brokerNode, reconnects: transport.brokerReconnects,
                                   cpuSeconds: usage?.cpuSeconds, residentBytes: usage?.residentBytes)
        do { try await transport.publishHeartbeat(beat) } catch {
            logger.debug("heartbeat not sent", metadata: ["error": "\(error)"])
        }
    }
}

/// Counts free execution slots; `acquire` waits for one, and answers false
/// once closed (draining).
final class Slots: Sendable {
    private struct S {
        var free: Int
        var closed = false
        var waiters: [CheckedContinuation<Bool, Never>] = []
    }
    private let s: Mutex<S>

    init(_ n: Int) { s = Mutex(S(free: n)) }

    func acquire() async -> Bool {
        await withCheckedContinuation { (cont: CheckedContinuation<Bool, Never>) in
            let answer: Bool? = s.withLock { s in
                if s.closed { return false }
                if s.free > 0 { s.free -= 1; return true }
                s.waiters.append(cont)
                return nil
            }
            if let answer { cont.resume(returning: answer) }
        }
    }

    func release() {
        let waiter: CheckedContinuation<Bool, Never>? = s.withLock { s in
            if !s.closed, !s.waiters.isEmpty { return s.waiters.removeFirst() }
            s.free += 1
            return nil
        }
        waiter?.resume(returning: true)
    }

    func close() {
        let waiters = s.withLock { s in
            s.closed = true
            defer { s.waiters = [] }
            return s.waiters
        }
        for w in waiters { w.resume(returning: false) }
    }
}
