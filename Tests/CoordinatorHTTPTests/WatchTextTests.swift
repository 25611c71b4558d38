@testable import bis
@testable import Coordination
import FleetCore
import Foundation
import Testing

/// The pure parts behind `bis status --watch` and `bis quarantine --rule`.
@Suite struct WatchTextTests {
    static let now = Date(timeIntervalSince1970: 1_795_000_100)

    static func run(done: Int, state: RunState = .running) -> RunView {
        var run = RunView(id: "r1", pipeline: "orders", state: state, specSHA256: "", submittedBy: "a@b",
                          submittedAt: now.addingTimeInterval(-60))
        var s = StageView(stage: .ingest)
        s.total = 4
        s.succeeded = done
        s.rowsOut = 1000
        s.startedAt = now.addingTimeInterval(-10)
        run.stages = [s]
        return run
    }

    @Test func throughputIsRowsOutPerSecondAndTheETAFollowsTheTaskRate() {
        let s = Self.run(done: 2).stages[0]
        #expect(WatchText.throughput(s, now: Self.now) == "100")
        // 2 tasks in 10 s: the other 2 in 10 s more.
        #expect(WatchText.eta(s, now: Self.now) == "10s")
        #expect(WatchText.eta(Self.run(done: 0).stages[0], now: Self.now) == "-")
        #expect(WatchText.eta(Self.run(done: 4).stages[0], now: Self.now) == "done")
        #expect(WatchText.bar(done: 1, total: 4, width: 8) == "[##------]")
    }

    @Test func onATerminalEachFrameGoesBackOverThePreviousOne() {
        var screen = WatchScreen(terminal: true)
        let first = screen.frame(Self.run(done: 1), now: Self.now)
        let lines = first.components(separatedBy: "\n").count - 1
        #expect(first.hasPrefix("\u{1b}[2Krun "), "the first frame moves nowhere: \(first.debugDescription)")
        let second = screen.frame(Self.run(done: 2), now: Self.now)
        #expect(second.hasPrefix("\u{1b}[\(lines)F\u{1b}[2K"), "\(second.debugDescription)")
        #expect(second.hasSuffix("\u{1b}[J"))
    }

    @Test func offATerminalOnlyChangesPrintAndWithoutEscapes() {
        var screen = WatchScreen(terminal: false)
        let first = screen.frame(Self.run(done: 1), now: Self.now)
        #expect(first.hasPrefix("run r1  pipeline orders  running"))
        #expect(screen.frame(Self.run(done: 1), now: Self.now.addingTimeInterval(5)) == "")
        let failed = Self.run(done: 3, state: .failed)
        let next = screen.frame(failed, now: Self.now)
        #expect(next.hasPrefix("\nrun r1  pipeline orders  failed"))
        #expect(!(first + next).contains("\u{1b}"))
    }

    @Test func cuttingALineCountsOnlyVisibleCharacters() {
        let red = "\u{1b}[31mabcdef\u{1b}[0m"
        #expect(WatchText.cut(red, to: 3) == "\u{1b}[31mabc\u{1b}[0m")
        #expect(WatchText.cut("abc", to: 5) == "abc")
    }

    @Test func aQuarantineRuleMatchesByNameOrKindAcrossARowsRules() {
        // validate joins a row's rules with "; ", and a unique rule's own name holds a comma.
        let rules = "unique order_id, line; not_null customer"
        #expect(CoordinatorEngine.quarantineRule(rules, matches: "unique order_id, line"))
        #expect(CoordinatorEngine.quarantineRule(rules, matches: "unique"))
        #expect(CoordinatorEngine.quarantineRule(rules, matches: "not_null customer"))
        #expect(CoordinatorEngine.quarantineRule(rules, matches: "not_null"))
        #expect(!CoordinatorEngine.quarantineRule(rules, matches: "unique order_id"))
        #expect(!CoordinatorEngine.quarantineRule(rules, matches: "range"))
        #expect(CoordinatorEngine.quarantineRule("parse", matches: "parse"))
    }
}
