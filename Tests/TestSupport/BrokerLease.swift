import Testing

/// Who may use the shared private broker at once. Every suite that talks to
/// it runs under `.usesBroker` (shared: any number together); a test that
/// restarts it runs under `.restartsBroker` (exclusive: alone, once the
/// running broker tests have finished; tests arriving meanwhile wait). A
/// restart in the middle of another suite's test broke that test: an ack of
/// a delivery from before the restart fails, a "no reconnects" check sees
/// one, a fleet process started during it finds no broker.
///
/// All test targets run in one process, so one lease covers them all.
public struct BrokerUse: SuiteTrait, TestTrait, TestScoping {
    public enum Mode: Sendable { case shared, exclusive }
    public let mode: Mode

    /// A suite's trait applies to each of its tests.
    public var isRecursive: Bool { true }

    /// Scoped per test case (each run of a test), not around a whole suite.
    public func scopeProvider(for test: Test, testCase: Test.Case?) -> BrokerUse? {
        testCase == nil ? nil : self
    }

    public func provideScope(for test: Test, testCase: Test.Case?,
                             performing function: @Sendable () async throws -> Void) async throws {
        // A restarting test inside a `.usesBroker` suite gets both traits:
        // the exclusive one alone decides.
        if mode == .shared, test.traits.contains(where: { ($0 as? BrokerUse)?.mode == .exclusive }) {
            try await function()
            return
        }
        try await BrokerLease.process.holding(mode, function)
    }
}

extension Trait where Self == BrokerUse {
    /// The test talks to the shared broker and needs it up throughout.
    public static var usesBroker: Self { BrokerUse(mode: .shared) }
    /// The test stops or restarts the shared broker: it runs alone.
    public static var restartsBroker: Self { BrokerUse(mode: .exclusive) }
}

/// A readers–writer lock that prefers the writer: once a restart waits, new
/// broker tests wait behind it, so it cannot starve.
public actor BrokerLease {
    public static let process = BrokerLease()

    private var readers = 0
    private var writing = false
    private var waitingWriters: [CheckedContinuation<Void, Never>] = []
    private var waitingReaders: [CheckedContinuation<Void, Never>] = []

    public nonisolated func holding(_ mode: BrokerUse.Mode, _ body: @Sendable () async throws -> Void) async throws {
        await acquire(mode)
        do {
            try await body()
        } catch {
            await release(mode)
            throw error
        }
        await release(mode)
    }

    func acquire(_ mode: BrokerUse.Mode) async {
        switch mode {
        case .shared:
            if !writing && waitingWriters.isEmpty {
                readers += 1
                return
            }
            // Resumed with `readers` already counting this one.
            await withCheckedContinuation { waitingReaders.append($0) }
        case .exclusive:
            if !writing && readers == 0 {
                writing = true
                return
            }
            // Resumed with `writing` already set for this one.
            await withCheckedContinuation { waitingWriters.append($0) }
        }
    }

    func release(_ mode: BrokerUse.Mode) {
        switch mode {
        case .shared: readers -= 1
        case .exclusive: writing = false
        }
        guard !writing else { return }
        if readers == 0, !waitingWriters.isEmpty {
            writing = true
            waitingWriters.removeFirst().resume()
        } else if waitingWriters.isEmpty, !waitingReaders.isEmpty {
            readers += waitingReaders.count
            let woken = waitingReaders
            waitingReaders = []
            for c in woken { c.resume() }
        }
    }
}
