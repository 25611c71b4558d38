import FleetCore
import ServiceLifecycle

// The engine's long-running loops as swift-service-lifecycle services. A
// process runs them in its one `ServiceGroup` (see `CoordinatorEngine.services()`);
// each stops at the group's graceful shutdown (or when cancelled).

/// Commits worker events in batches (group commit), acking them after the
/// commit. At shutdown the batch in progress stays unacked and comes back
/// at the next start.
struct EventIntake: Service {
    let engine: CoordinatorEngine
    let inbox: AsyncThrowingStream<InboundEvent, Error>

    func run() async throws {
        try await cancelWhenGracefulShutdown { [engine, inbox] in
            await withTaskCancellationHandler {
                await engine.intakeLoop(inbox)
            } onCancel: {
                // The loop may be waiting for events: end the wait.
                Task { await engine.batcher.finish() }
            }
        }
    }
}

/// Publishes unsent outbox rows with broker confirms, then marks them sent.
struct OutboxDispatcher: Service {
    let engine: CoordinatorEngine

    func run() async throws {
        try await cancelWhenGracefulShutdown { [engine] in await engine.dispatchLoop() }
    }
}

/// Wakes the dispatcher every half second, so rows whose first publish
/// failed are tried again even when nothing else happens.
struct Ticker: Service {
    let wake: AsyncStream<Void>.Continuation
    var interval: Duration = .milliseconds(500)

    func run() async throws {
        try await cancelWhenGracefulShutdown { [wake, interval] in
            while !Task.isCancelled {
                try? await Task.sleep(for: interval)
                wake.yield()
            }
        }
    }
}
