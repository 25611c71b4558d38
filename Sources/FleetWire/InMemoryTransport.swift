import Foundation

/// The transport inside one process: what `bis run --local` and unit tests
/// use instead of RabbitMQ. It keeps the semantics the commit protocol
/// needs — manual acks, redelivery of what a vanished consumer held, a
/// delivery limit past which a task is dead-lettered to the coordinator,
/// delays for retries — and nothing else: no persistence (the process is the
/// whole fleet). Messages travel in their wire form with their MAC under
/// `key` (a random one unless given), checked before they are decoded, as
/// over AMQP.
public final class InMemoryTransport: FleetTransport {
    private let broker: Broker
    public let key: FleetKey

    /// `deliveryLimit`: returns of one message (a nack with requeue, or its
    /// consumer going away) before it is dead-lettered, as RabbitMQ's
    /// `x-delivery-limit`.
    public init(deliveryLimit: Int = RetryPolicy.standard.deliveryLimit, key: FleetKey = .random()) {
        self.key = key
        broker = Broker(deliveryLimit: deliveryLimit, key: key)
    }

    public func publishTask(_ task: TaskMessage, delayMilliseconds: Int) async throws {
        // The wire form, as over AMQP, so tests see what does not survive encoding.
        try await publishEncodedTask(try WireCoding.encode(task), stage: task.stage, taskID: task.taskID, attempt: task.attempt,
                                     delayMilliseconds: delayMilliseconds)
    }

    public func publishEncodedTask(_ body: [UInt8], stage: Stage, taskID: String, attempt: Int, delayMilliseconds: Int) async throws {
        let mac = key.mac(.task, body)
        guard delayMilliseconds > 0 else {
            await broker.enqueue(body, mac: mac, stage: stage)
            return
        }
        let broker = self.broker
        Task {
            try? await Task.sleep(for: .milliseconds(delayMilliseconds))
            await broker.enqueue(body, mac: mac, stage: stage)
        }
    }

    /// Tests: a task message as anyone able to publish to the stage queue
    /// could send it: any body, any MAC or none.
    public func publishRawTask(_ body: [UInt8], stage: Stage, mac: String?) async {
        await broker.enqueue(body, mac: mac, stage: stage)
    }

    public func coordinatorInbox(prefetch: Int) async throws -> AsyncThrowingStream<InboundEvent, Error> {
        let (stream, continuation) = AsyncThrowingStream<InboundEvent, Error>.makeStream()
        await broker.attachInbox(continuation)
        return stream
    }

    public func taskDeliveries(stages: [Stage], prefetch: Int) async throws -> AsyncThrowingStream<InboundTask, Error> {
        let (stream, continuation) = AsyncThrowingStream<InboundTask, Error>.makeStream()
        let id = await broker.addConsumer(stages: Set(stages), prefetch: max(1, prefetch), continuation: continuation)
        let broker = self.broker
        continuation.onTermination = { _ in Task { await broker.removeConsumer(id) } }
        return stream
    }

    public func publishEvent(_ event: TaskEvent) async throws {
        let body = try WireCoding.encode(event)
        await broker.receive(body, mac: key.mac(.event, body), purpose: .event)
    }

    public func publishHeartbeat(_ beat: WorkerHeartbeat) async throws {
        let body = try WireCoding.encode(beat)
        await broker.receive(body, mac: key.mac(.heartbeat, body), purpose: .heartbeat)
    }

    /// Tests: an event (or heartbeat) as anyone able to publish to the
    /// events exchange could send it.
    public func publishRawEvent(_ body: [UInt8], mac: String?, heartbeat: Bool = false) async {
        await broker.receive(body, mac: mac, purpose: heartbeat ? .heartbeat : .event)
    }

    public func queueDepths() async -> [Stage: Int] { await broker.depths() }

    public func close() async { await broker.close() }

    /// Messages waiting or unacknowledged, for tests.
    public func pending() async -> Int { await broker.pending() }

    /// Consumers still attached, for tests: a consumer whose stream ended
    /// detaches a moment later (its unsettled messages then go back).
    public func consumerCount() async -> Int { await broker.consumerCount() }

    /// Messages refused for their MAC so far, for tests (AMQP keeps them in
    /// the `<ns>.rejected` queue).
    public func rejectedMessages() async -> [MessageRejection] { await broker.rejectedMessages }

    actor Broker {
        struct Message {
            let id: UInt64
            let body: [UInt8]
            let mac: String?
            let stage: Stage
            var returns: Int
        }
        struct Consumer {
            let stages: Set<Stage>
            let prefetch: Int
            var unacked: [UInt64: Message] = [:]
            let continuation: AsyncThrowingStream<InboundTask, Error>.Continuation
        }

        let deliveryLimit: Int
        let key: FleetKey
        var queues: [Stage: [Message]] = [:]
        var consumers: [Int: Consumer] = [:]
        var consumerOrder: [Int] = []
        var nextConsumer = 0
        var nextMessage: UInt64 = 0
        var roundRobin = 0
        var inbox: AsyncThrowingStream<InboundEvent, Error>.Continuation?
        var inboxBacklog: [InboundEvent.Body] = []
        var rejectedMessages: [MessageRejection] = []
        var closed = false

        init(deliveryLimit: Int, key: FleetKey) {
            self.deliveryLimit = deliveryLimit
            self.key = key
        }

        func enqueue(_ body: [UInt8], mac: String?, stage: Stage) {
            guard !closed else { return }
            nextMessage += 1
            queues[stage, default: []].append(Message(id: nextMessage, body: body, mac: mac, stage: stage, returns: 0))
            dispatch()
        }

        /// An event or heartbeat reaching the coordinator's inbox: checked, then decoded.
        func receive(_ body: [UInt8], mac: String?, purpose: FleetKey.Purpose) {
            if let reason = key.verify(purpose, body, mac: mac).rejection {
                reject(MessageRejection(reason, "a message on the events queue (\(purpose.rawValue))"))
                return
            }
            do {
                switch purpose {
                case .heartbeat: toInbox(.heartbeat(try WireCoding.decode(WorkerHeartbeat.self, from: body)))
                default: toInbox(.event(try WireCoding.decode(TaskEvent.self, from: body)))
                }
            } catch {
                toInbox(.unreadable("\(error)"))
            }
        }

        private func reject(_ r: MessageRejection) {
            rejectedMessages.append(r)
            toInbox(.rejected(r))
        }

        func addConsumer(stages: Set<Stage>, prefetch: Int,
                         continuation: AsyncThrowingStream<InboundTask, Error>.Continuation) -> Int {
            nextConsumer += 1
            consumers[nextConsumer] = Consumer(stages: stages, prefetch: prefetch, continuation: continuation)
            consumerOrder.append(nextConsumer)
            dispatch()
            return nextConsumer
        }

        /// A consumer went away: what it held goes back, counting a return.
        func removeConsumer(_ id: Int) {
            guard let c = consumers.removeValue(forKey: id) else { return }
            consumerOrder.removeAll { $0 == id }
            for m in c.unacked.values.sorted(by: { $0.id < $1.id }) { giveBack(m) }
            dispatch()
        }

        func settle(consumer: Int, message: UInt64, _ s: InboundTask.Settlement) {
            guard var c = consumers[consumer], let m = c.unacked.removeValue(forKey: message) else { return }
            consumers[consumer] = c
            switch s {
            case .ack: break
            case .nack(requeue: true): giveBack(m)
            case .nack(requeue: false): deadLetter(m, reason: "rejected by a worker")
            }
            dispatch()
        }

        private func deadLetter(_ m: Message, reason: String) {
            do {
                toInbox(.deadLetter(try WireCoding.decode(TaskMessage.self, from: m.body), reason: reason))
            } catch {
                toInbox(.unreadable("dead letter (\(reason)) that is not a task message: \(error)"))
            }
        }

        private func giveBack(_ m: Message) {
            var m = m
            m.returns += 1
            if m.returns > deliveryLimit {
                deadLetter(m, reason: "delivery limit \(deliveryLimit) exceeded: the task was returned \(m.returns) times")
            } else {
                queues[m.stage, default: []].insert(m, at: 0)
            }
        }

        private func dispatch() {
            guard !consumerOrder.isEmpty else { return }
            var progressed = true
            while progressed {
                progressed = false
                for step in 0..<consumerOrder.count {
                    let id = consumerOrder[(roundRobin + step) % consumerOrder.count]
                    guard var c = consumers[id], c.unacked.count < c.prefetch else { continue }
                    guard let stage = c.stages.sorted().first(where: { !(queues[$0] ?? []).isEmpty }) else { continue }
                    let m = queues[stage]!.removeFirst()
                    progressed = true
                    // The worker's side of the transport: a message without a
                    // valid MAC is dead-lettered unread, never handed over.
                    if let reason = key.verify(.task, m.body, mac: m.mac).rejection {
                        reject(MessageRejection(reason, "a task message on the \(stage.rawValue) queue, dead-lettered unread"))
                        continue
                    }
                    c.unacked[m.id] = m
                    consumers[id] = c
                    let delivery: InboundTask
                    let settle: @Sendable (InboundTask.Settlement) async throws -> Void = { [weak self] s in
                        await self?.settle(consumer: id, message: m.id, s)
                    }
                    do {
                        delivery = InboundTask(task: try WireCoding.decode(TaskMessage.self, from: m.body), deliveryCount: m.returns,
                                               settle: settle)
                    } catch {
                        delivery = InboundTask(task: nil, decodeError: "not a task message: \(error)", deliveryCount: m.returns,
                                               settle: settle)
                    }
                    c.continuation.yield(delivery)
                }
                roundRobin += 1
            }
        }

        func attachInbox(_ continuation: AsyncThrowingStream<InboundEvent, Error>.Continuation) {
            inbox = continuation
            let backlog = inboxBacklog
            inboxBacklog = []
            for body in backlog { toInbox(body) }
        }

        func toInbox(_ body: InboundEvent.Body) {
            guard let inbox else {
                inboxBacklog.append(body)
                return
            }
            inbox.yield(InboundEvent(body: body, ack: {}))
        }

        func depths() -> [Stage: Int] {
            var d: [Stage: Int] = [:]
            for s in Stage.allCases { d[s] = queues[s]?.count ?? 0 }
            return d
        }

        func consumerCount() -> Int { consumers.count }

        func pending() -> Int {
            queues.values.reduce(0) { $0 + $1.count } + consumers.values.reduce(0) { $0 + $1.unacked.count }
        }

        func close() {
            closed = true
            for c in consumers.values { c.continuation.finish() }
            consumers = [:]
            consumerOrder = []
            inbox?.finish()
        }
    }
}
