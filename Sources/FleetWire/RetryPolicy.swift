import Foundation

/// How often a task is tried, and how long to wait between tries:
/// exponential backoff with jitter (AWS's "full jitter" variant bounded below
/// by half the step, so retries neither stampede nor come at once).
public struct RetryPolicy: Sendable, Hashable, Codable {
    /// Attempts per task, the first included, per stage; `defaultMaxAttempts`
    /// for stages not listed.
    public var maxAttempts: [Stage: Int]
    public var defaultMaxAttempts: Int
    public var baseDelayMilliseconds: Int
    public var maxDelayMilliseconds: Int
    /// Deliveries of one message before the stage queue dead-letters it (a
    /// worker crashing on it each time): RabbitMQ's `x-delivery-limit`.
    public var deliveryLimit: Int

    public init(maxAttempts: [Stage: Int] = [:], defaultMaxAttempts: Int = 3, baseDelayMilliseconds: Int = 500,
                maxDelayMilliseconds: Int = 30_000, deliveryLimit: Int = 3) {
        self.maxAttempts = maxAttempts
        self.defaultMaxAttempts = defaultMaxAttempts
        self.baseDelayMilliseconds = baseDelayMilliseconds
        self.maxDelayMilliseconds = maxDelayMilliseconds
        self.deliveryLimit = deliveryLimit
    }

    public static let standard = RetryPolicy()

    public func maxAttempts(for stage: Stage) -> Int { maxAttempts[stage] ?? defaultMaxAttempts }

    /// The wait before attempt `next` (2, 3, …): base·2^(next-2), capped, then
    /// a random point in its upper half.
    public func delayMilliseconds<R: RandomNumberGenerator>(beforeAttempt next: Int, using rng: inout R) -> Int {
        let step = min(Double(maxDelayMilliseconds), Double(baseDelayMilliseconds) * pow(2, Double(max(0, next - 2))))
        return Int((step / 2 + Double.random(in: 0...(step / 2), using: &rng)).rounded())
    }

    public func delayMilliseconds(beforeAttempt next: Int) -> Int {
        var rng = SystemRandomNumberGenerator()
        return delayMilliseconds(beforeAttempt: next, using: &rng)
    }
}
