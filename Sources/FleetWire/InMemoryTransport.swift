import Foundation

/// The transport inside one process: what `bis run --local` and unit tests
/// use instead of RabbitMQ. It keeps the semantics the commit protocol
/// needs — manual acks, redelivery of what a vanished consumer held, a
/// delivery limit past which a task is dead-lettered to the coordinator,
/// delays for retries — and nothing else: no persistence (the process is the
/// whole fleet).
public final class InMemoryTransport: FleetTransport {
    private let broker: Broker

    /// `deliveryLimit`: returns of one message (a nack with requeue, or its
    /// consumer going away) before it is dead-lettered, as RabbitMQ's
    /// `x-delivery-limit`.
    public init(deliveryLimit: Int = RetryPolicy.standard.deliveryLimit) {
        broker = Broker(deliveryLimit: deliveryLimit)
    }

    public func publishTask(_ task: TaskMessage, delayMilliseconds: Int) async throws {
        // A round trip through the wire form, as over AMQP, so tests see
        // what does not survive encoding.
        let copy = try WireCoding.decode(TaskMessage.self, from: try WireCoding.encode(task))
        guard delayMilliseconds > 0 else {
            await broker.enqueue(copy)
            return
        }
        let broker = self.broker
        Task {
            try? await Task.sleep(for: .milliseconds(delayMilliseconds))
            await broker.enqueue(copy)
        }
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
        let copy = try WireCoding.decode(TaskEvent.self, from: try WireCoding.encode(event))
        await broker.toInbox(.event(copy))
    }

    public func publishHeartbeat(_ beat: WorkerHeartbeat) async throws {
        await broker.toInbox(.heartbeat(beat))
    }

    public func queueDepths() async -> [Stage: Int] { await broker.depths() }

    public func close() async { await broker.close() }

    /// Messages waiting or unacknowledged, for tests.
    public func pending() async -> Int { await broker.pending() }

    /// Consumers still attached, for tests: a consumer whose stream ended
    /// detaches a moment later (its unsettled messages then go back).
    public func consumerCount() async -> Int { await broker.consumerCount() }

    actor Broker {
        struct Message {
            let id: UInt64
            let task: TaskMessage
            var returns: Int
        }
        struct Consumer {
            let stages: Set<Stage>
            let prefetch: Int
            var unacked: [UInt64: Message] = [:]
            let continuation: AsyncThrowingStream<InboundTask, Error>.Continuation
        }

        let deliveryLimit: Int
        var queues: [Stage: [Message]] = [:]
        var consumers: [Int: Consumer] = [:]
        var consumerOrder: [Int] = []
        var nextConsumer = 0
        var nextMessage: UInt64 = 0
        var roundRobin = 0
        var inbox: AsyncThrowingStream<InboundEvent, Error>.Continuation?
        var inboxBacklog: [InboundEvent.Body] = []
        var closed = false

        init(deliveryLimit: Int) { self.deliveryLimit = deliveryLimit }

        func enqueue(_ task: TaskMessage) {
            guard !closed else { return }
            nextMessage += 1
            queues[task.stage, default: []].append(Message(id: nextMessage, task: task, returns: 0))
            dispatch()
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
            case .nack(requeue: false): toInbox(.deadLetter(m.task, reason: "rejected by a worker"))
            }
            dispatch()
        }

        private func giveBack(_ m: Message) {
            var m = m
            m.returns += 1
            if m.returns > deliveryLimit {
                toInbox(.deadLetter(m.task, reason: "delivery limit \(deliveryLimit) exceeded: the task was returned \(m.returns) times"))
            } else {
                queues[m.task.stage, default: []].insert(m, at: 0)
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
                    c.unacked[m.id] = m
                    consumers[id] = c
                    let delivery = InboundTask(task: m.task, deliveryCount: m.returns) { [weak self] s in
                        await self?.settle(consumer: id, message: m.id, s)
                    }
                    c.continuation.yield(delivery)
                    progressed = true
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
