import Foundation
import Synchronization

/// Where the fleet reads the time of day: the coordinator's engine, its
/// planner and its views take one `WallClock` (`CoordinatorOptions.clock`)
/// and never call `Date()` themselves, so tests drive time by hand
/// (`ManualClock`) instead of sleeping.
///
/// Durations that only pace a loop (the dispatcher's tick, a poll) are not
/// read from here: they are waits, not times of day.
public protocol WallClock: Sendable {
    func now() -> Date
}

extension WallClock {
    /// Seconds since 1970, as the lineage store keeps times.
    public var seconds: Double { now().timeIntervalSince1970 }
}

/// The system's clock.
public struct SystemClock: WallClock {
    public init() {}
    public func now() -> Date { Date() }
}

/// A clock that moves only when told: for tests.
public final class ManualClock: WallClock {
    private let current: Mutex<Date>

    public init(_ start: Date = Date(timeIntervalSince1970: 1_800_000_000)) {
        current = Mutex(start)
    }

    public func now() -> Date { current.withLock { $0 } }

    public func advance(by seconds: Double) {
        current.withLock { $0 = $0.addingTimeInterval(seconds) }
    }

    public func set(_ date: Date) {
        current.withLock { $0 = date }
    }
}
