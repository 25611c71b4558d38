import CRabbitMQ
import Testing
@testable import AMQP

/// The pure parts of the I/O loop: which channel number a nacked publish
/// moves to, how long `poll` may wait, which configurations are refused.
@Suite struct PublishChannelTests {
    @Test func theFirstSwitchLeavesTheFirstPublishChannelForTheFirstSpare() {
        #expect(Channel.nextPublishChannel(after: Channel.publish, retired: []) == Channel.publishSpare.lowerBound)
        #expect(Channel.nextPublishChannel(after: 4, retired: [2]) == 5)
    }

    /// Walking through the spare numbers wraps round from the last to the
    /// first, more than once, never landing on the current number.
    @Test func theNumbersWrapRoundAndNeverRepeatTheCurrentOne() {
        var current = Channel.publish
        var seen: [amqp_channel_t] = []
        for _ in 0..<(Channel.publishSpare.count * 2 + 5) {
            let next = try! #require(Channel.nextPublishChannel(after: current, retired: [current]))
            #expect(next != current)
            #expect(Channel.publishSpare.contains(next))
            seen.append(next)
            current = next
        }
        #expect(seen.first == 4)
        #expect(seen[95] == 99 && seen[96] == 4, "after 99 comes 4 again")
    }

    @Test func retiredNumbersAreSkippedAcrossTheWrap() {
        // Current 98; 99, 4 and 5 still await close-ok.
        #expect(Channel.nextPublishChannel(after: 98, retired: [99, 4, 5]) == 6)
        // Only one number free, behind the current one.
        let spare: ClosedRange<amqp_channel_t> = 4...99
        var retired = Set(spare)
        retired.remove(10)
        #expect(Channel.nextPublishChannel(after: 50, retired: retired) == 10)
    }

    /// Every other spare retired: the current number is never reused (its
    /// channel is the one being closed), nor a retired one: nil, and the
    /// loop treats that as a lost connection.
    @Test func noFreeNumberIsNilNotTheCurrentOrARetiredOne() {
        let spare = Channel.publishSpare
        var others = Set(spare)
        others.remove(50)
        #expect(Channel.nextPublishChannel(after: 50, retired: others) == nil)
        #expect(Channel.nextPublishChannel(after: Channel.publish, retired: Set(spare)) == nil)
        // A range of one: its only number is the current one.
        #expect(Channel.nextPublishChannel(after: 7, retired: [], spare: 7...7) == nil)
        #expect(Channel.nextPublishChannel(after: 2, retired: [], spare: 7...7) == 7)
    }

    @Test func thePollTimeoutIsClampedBeforeItBecomesAnInt32() {
        #expect(IOLoop.pollTimeout(heartbeat: 0, now: 100, until: []) == 200)
        #expect(IOLoop.pollTimeout(heartbeat: 30, now: 100, until: []) == 200)
        // A quarter of a 0.5 s heartbeat is not expressible (Int seconds); 1 s: 200 ms cap anyway.
        #expect(IOLoop.pollTimeout(heartbeat: 1, now: 100, until: []) == 200)
        #expect(IOLoop.pollTimeout(heartbeat: 0, now: 100, until: [100.125]) == 126, "just past the deadline")
        #expect(IOLoop.pollTimeout(heartbeat: 0, now: 100, until: [99]) == 0, "a past deadline: do not wait")
        // Far, infinite and NaN deadlines (a large configured backoff) must not trap.
        #expect(IOLoop.pollTimeout(heartbeat: 0, now: 100, until: [100 + 3.1e9]) == 200)
        #expect(IOLoop.pollTimeout(heartbeat: 0, now: 100, until: [.infinity]) == 200)
        #expect(IOLoop.pollTimeout(heartbeat: 0, now: 100, until: [-.infinity]) == 0)
        #expect(IOLoop.pollTimeout(heartbeat: 0, now: 100, until: [.nan, 100.0625]) == 63)
        #expect(IOLoop.pollTimeout(heartbeat: Int.max, now: 100, until: []) == 200)
    }

    @Test func unusableSettingsAreRefused() throws {
        let good = try AMQPConfiguration(url: "amqp://u:p@127.0.0.1:5672/%2F")
        try good.validate()
        func refused(_ change: (inout AMQPConfiguration) -> Void) -> Bool {
            var c = good
            change(&c)
            do { try c.validate(); return false } catch { if case .invalidConfiguration = error { return true }; return false }
        }
        #expect(refused { $0.nackResends = -1 })
        #expect(refused { $0.nackResendDelay = -0.1 })
        #expect(refused { $0.nackResendDelay = .nan })
        #expect(refused { $0.nackResendDelay = .infinity })
        #expect(refused { $0.rpcTimeout = 0 })
        #expect(refused { $0.rpcTimeout = .infinity })
        #expect(refused { $0.connectTimeout = .nan })
        #expect(refused { $0.heartbeat = -1 })
        #expect(refused { $0.heartbeat = 70_000 })
        #expect(refused { $0.confirmWindow = 0 })
        #expect(!refused { $0.nackResends = 0; $0.nackResendDelay = 0 })
        #expect(!refused { $0.nackResends = 40; $0.nackResendDelay = 3 })
    }
}
