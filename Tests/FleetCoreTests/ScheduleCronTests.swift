import Foundation
import Testing
import TestSupport
@testable import FleetCore

/// Cron lines and schedule slots (docs/schedules.md), checked against a
/// table and against Python's croniter on the same lines, daylight-saving
/// changes of 2026 and 2027 in Europe/Helsinki and America/New_York included.
@Suite struct ScheduleCronTests {
    static func schedule(_ cron: String, _ zone: String = "UTC") throws -> ScheduleSpec {
        ScheduleSpec(cron: try CronExpression(cron), timezone: try #require(TimeZone(identifier: zone)))
    }

    static func utc(_ text: String) throws -> Date { try #require(SlotText.parseUTC(text), "bad instant \(text)") }

    /// The next `count` slots strictly after `after`.
    static func next(_ s: ScheduleSpec, after: Date, count: Int) -> [String] {
        var out: [String] = []
        var t = after
        while out.count < count, let slot = s.next(after: t) {
            out.append(SlotText.utc(slot.instant))
            t = slot.instant
        }
        return out
    }

    // MARK: the parser

    @Test(arguments: [
        ("0 0 * * *", "at 00:00 every day"),
        ("15 2 * * *", "at 02:15 every day"),
        ("* * * * *", "every minute every day"),
        ("0 9 * * MON-FRI", "at 09:00 on Mon, Tue, Wed, Thu, Fri"),
        ("0 12 1 JAN,jul *", "at 12:00 on day 1 of the month in Jan, Jul"),
        ("@daily", "at 00:00 every day"),
        ("*/15 * * * *", "at minute 0, 15, 30, 45 of every hour every day"),
    ])
    func parsesAndDescribes(_ line: String, _ words: String) throws {
        #expect(try CronExpression(line).inWords == words)
    }

    @Test func fieldsExpand() throws {
        let c = try CronExpression("5,35 9-17/4 1-10/3 FEB-APR sun,7,3")
        #expect(c.minutes == [5, 35])
        #expect(c.hours == [9, 13, 17])
        #expect(c.daysOfMonth == [1, 4, 7, 10])
        #expect(c.months == [2, 3, 4])
        #expect(c.daysOfWeek == [0, 3])
        #expect(try CronExpression("10/20 * * * *").minutes == [10, 30, 50])
    }

    /// `a/n` in day of week ends on Saturday, as in croniter: 7 is only
    /// another name for Sunday, not a day after Saturday (review S4).
    @Test(arguments: [
        ("MON/2", [1, 3, 5]),
        ("1/2", [1, 3, 5]),
        ("5/1", [5, 6]),
        ("FRI/1", [5, 6]),
        ("0/3", [0, 3, 6]),
        ("*/2", [0, 2, 4, 6]),
        ("*/3", [0, 3, 6]),
        ("*", [0, 1, 2, 3, 4, 5, 6]),
        ("7/2", [0]),
        ("1-7/2", [1, 3, 5, 0]),
        ("SAT/2", [6]),
    ])
    func dayOfWeekStepsEndOnSaturday(_ field: String, _ days: [Int]) throws {
        #expect(try CronExpression("0 0 * * \(field)").daysOfWeek == Set(days), "\(field)")
    }

    /// A stepped `*` in a day field is unrestricted, as in Vixie cron: the
    /// other day field must match too (AND). croniter reads these with OR.
    @Test func aSteppedStarInADayFieldMeansBothMustMatch() throws {
        // Fridays that fall on odd days of the month, December 2026: the 11th and 25th.
        #expect(Self.next(try Self.schedule("0 0 */2 * 5"), after: try Self.utc("2026-12-01T00:00:00Z"), count: 2)
                == ["2026-12-11T00:00:00Z", "2026-12-25T00:00:00Z"])
        // The 1st of a month that falls on Sun, Tue, Thu or Sat: January 2027
        // (a Friday), February and March (Mondays) are skipped.
        #expect(Self.next(try Self.schedule("0 0 1 * */2"), after: try Self.utc("2026-12-01T00:00:00Z"), count: 3)
                == ["2027-04-01T00:00:00Z", "2027-05-01T00:00:00Z", "2027-06-01T00:00:00Z"])
    }

    @Test(arguments: [
        ("0 0 * *", "five fields"),
        ("60 0 * * *", "60 is outside 0-59"),
        ("0 24 * * *", "24 is outside 0-23"),
        ("0 0 0 * *", "0 is outside 1-31"),
        ("0 0 * 13 *", "13 is outside 1-12"),
        ("0 0 * * 8", "8 is outside 0-7"),
        ("0 0 * * MON-FRU", "'FRU' is not a number"),
        ("*/0 * * * *", "step '0'"),
        ("5-1 * * * *", "runs backwards"),
        ("1,,2 * * * *", "empty item"),
        ("@often", "unknown cron macro"),
    ])
    func refuses(_ line: String, _ message: String) {
        #expect(throws: CronExpression.ParseError.self) { try CronExpression(line) }
        do { _ = try CronExpression(line) } catch {
            #expect(error.message.contains(message), "\(error.message)")
        }
    }

    @Test func aSpecErrorPointsAtTheCronField() throws {
        let yaml = """
            pipeline: p
            schedule:
              cron: "30 2 * * MON-FRU"
              timezone: Mars/Olympus
              catchup: sometimes
            sources:
              s:
                format: csv
                files: "in/${date}.csv"
                columns: {a: int64}
            """
        #expect(throws: SpecErrors.self) { try SpecHeader.read(yaml: yaml, file: "p.yml") }
        do { _ = try SpecHeader.read(yaml: yaml, file: "p.yml") } catch {
            let lines = error.errors.map(\.description)
            #expect(lines.contains { $0.hasPrefix("p.yml:3:19: in 'cron': day of week field") })
            #expect(lines.contains { $0.hasPrefix("p.yml:4:13: unknown time zone 'Mars/Olympus'") })
            #expect(lines.contains { $0.hasPrefix("p.yml:5:12: 'catchup' in schedule must be none, latest or all") })
        }
    }

    // MARK: daylight saving, by the documented rule

    /// A local time the clock jumps over runs once, at the first instant
    /// after the gap; a local time that happens twice runs once, at its first
    /// occurrence.
    @Test(arguments: [
        // America/New_York: 2026-03-08 02:00 → 03:00; 2026-11-01 02:00 → 01:00.
        ("30 2 * * *", "America/New_York", "2026-03-07T12:00:00Z", ["2026-03-08T07:00:00Z", "2026-03-09T06:30:00Z"]),
        ("*/20 2 * * *", "America/New_York", "2026-03-07T12:00:00Z", ["2026-03-08T07:00:00Z", "2026-03-09T06:00:00Z"]),
        ("30 1 * * *", "America/New_York", "2026-10-31T12:00:00Z", ["2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z"]),
        // 2027: 2027-03-14 and 2027-11-07.
        ("30 2 * * *", "America/New_York", "2027-03-13T12:00:00Z", ["2027-03-14T07:00:00Z", "2027-03-15T06:30:00Z"]),
        ("30 1 * * *", "America/New_York", "2027-11-06T12:00:00Z", ["2027-11-07T05:30:00Z", "2027-11-08T06:30:00Z"]),
        // Europe/Helsinki: 2026-03-29 03:00 → 04:00; 2026-10-25 04:00 → 03:00.
        ("30 3 * * *", "Europe/Helsinki", "2026-03-28T12:00:00Z", ["2026-03-29T01:00:00Z", "2026-03-30T00:30:00Z"]),
        ("15 3 * * *", "Europe/Helsinki", "2026-10-24T12:00:00Z", ["2026-10-25T00:15:00Z", "2026-10-26T01:15:00Z"]),
        // 2027: 2027-03-28 and 2027-10-31.
        ("30 3 * * *", "Europe/Helsinki", "2027-03-27T12:00:00Z", ["2027-03-28T01:00:00Z", "2027-03-29T00:30:00Z"]),
        ("15 3 * * *", "Europe/Helsinki", "2027-10-30T12:00:00Z", ["2027-10-31T00:15:00Z", "2027-11-01T01:15:00Z"]),
    ])
    func daylightSaving(_ line: String, _ zone: String, _ after: String, _ expected: [String]) throws {
        #expect(Self.next(try Self.schedule(line, zone), after: try Self.utc(after), count: expected.count) == expected)
    }

    // MARK: croniter, on the same lines

    static let cronPython = PythonTool(importing: "croniter")
    static var croniterThere: Bool {
        cronPython.interpreter != nil || ProcessInfo.processInfo.environment["BIS_REQUIRE_CRONITER"] == "1"
    }

    static let script = #"""
"""Slots of cron lines by croniter, for ScheduleCronTests.

Reads JSON from stdin: [{"cron": "...", "tz": "Europe/Helsinki", "after": "2026-03-28T00:00:00Z", "count": 10}, ...]
Prints JSON: a list of lists of UTC instants ("YYYY-MM-DDTHH:MM:SSZ"), each
the next `count` slots strictly after `after`.
"""
import json
import sys
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

from croniter import croniter

out = []
for case in json.load(sys.stdin):
    zone = ZoneInfo(case["tz"])
    after = datetime.strptime(case["after"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).astimezone(zone)
    it = croniter(case["cron"], after)
    slots = []
    for _ in range(case["count"]):
        t = it.get_next(datetime)
        slots.append(t.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"))
    out.append(slots)
json.dump(out, sys.stdout)
"""#

    struct Case: Codable { var cron: String; var tz: String; var after: String; var count: Int }

    static let cases: [Case] = {
        var c: [Case] = []
        for line in ["0 0 * * *", "*/15 * * * *", "5,35 9-17 * * MON-FRI", "0 12 1 JAN,JUL *", "0 0 1,15 * 5",
                     "0 6 * * 0", "0 6 * * 7", "0 0 29 2 *", "10-50/20 */6 * * *", "0 9 * * mon-fri", "@daily",
                     "59 23 31 DEC *", "0 0 * * SAT,SUN", "1-5 0 * * *"] {
            c.append(Case(cron: line, tz: "UTC", after: "2026-12-30T10:00:00Z", count: 40))
        }
        // Both changes of both years in both zones: every half hour, every
        // hour, and daily lines at times in, before and after the gap or
        // the repeated hour.
        let changes = [("America/New_York", ["2026-03-07", "2026-10-31", "2027-03-13", "2027-11-06"]),
                       ("Europe/Helsinki", ["2026-03-28", "2026-10-24", "2027-03-27", "2027-10-30"])]
        for (zone, days) in changes {
            for day in days {
                for line in ["*/30 * * * *", "0 * * * *", "30 1 * * *", "30 2 * * *", "30 3 * * *", "15 4 * * *",
                             "0 0 * * *", "*/20 2,3 * * *"] {
                    c.append(Case(cron: line, tz: zone, after: day + "T00:00:00Z", count: line.hasPrefix("*/30") ? 120 : 30))
                }
            }
        }
        return c
    }()

    @Test(.enabled(if: croniterThere, "croniter is not installed (ops/setup installs it into .venv; or set BIS_PYTHON)"))
    func agreesWithCroniter() throws {
        let python = try #require(Self.cronPython.interpreter, "BIS_REQUIRE_CRONITER=1 but no Python imports croniter")
        let dir = NSTemporaryDirectory() + "cron-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Self.script.write(toFile: dir + "/cron_slots.py", atomically: true, encoding: .utf8)
        try JSONEncoder().encode(Self.cases).write(to: URL(fileURLWithPath: dir + "/cases.json"))
        let result = try PythonTool.run("/bin/sh", ["-c", "'\(python)' '\(dir)/cron_slots.py' < '\(dir)/cases.json'"])
        try #require(result.status == 0, "\(result.output)")
        let theirs = try JSONDecoder().decode([[String]].self, from: Data(result.output.utf8))
        try #require(theirs.count == Self.cases.count)
        var compared = 0, repeatsDropped = 0
        for (c, slots) in zip(Self.cases, theirs) {
            let zone = try #require(TimeZone(identifier: c.tz))
            // croniter runs a local time that happens twice at both
            // occurrences; the documented rule runs it at the first only:
            // drop croniter's second occurrences, then the lists must be equal.
            var seen = Set<String>()
            var expected: [String] = []
            for s in slots {
                let wall = String(SlotText.local(try Self.utc(s), in: zone).prefix(16))
                if seen.insert(wall).inserted { expected.append(s) } else { repeatsDropped += 1 }
            }
            guard let last = expected.last else { continue }
            let ours = ScheduleSpec(cron: try CronExpression(c.cron), timezone: zone)
                .slots(from: try Self.utc(c.after).addingTimeInterval(1), through: try Self.utc(last)).map { SlotText.utc($0.instant) }
            #expect(ours == expected, "\(c.cron) in \(c.tz) after \(c.after)")
            compared += expected.count
        }
        #expect(compared > 2000)
        #expect(repeatsDropped > 0, "the cases include repeated local times")
    }

    // MARK: catch-up

    /// A daily 02:15 Helsinki schedule whose coordinator was down three days:
    /// `all` runs the three missed slots, `latest` the last, `none` none.
    @Test func catchUpAfterThreeDaysDown() throws {
        var s = try Self.schedule("15 2 * * *", "Europe/Helsinki")
        let lastConsidered = try Self.utc("2026-11-10T00:15:00Z")   // 02:15 local on the 10th
        let now = try Self.utc("2026-11-13T09:00:00Z")              // down until the 13th, 11:00 local
        let registered = try Self.utc("2026-11-01T00:00:00Z")
        s.catchup = .all
        #expect(s.due(after: lastConsidered, registeredAt: registered, now: now).run.map { SlotText.utc($0.instant) }
                == ["2026-11-11T00:15:00Z", "2026-11-12T00:15:00Z", "2026-11-13T00:15:00Z"])
        s.catchup = .latest
        #expect(s.due(after: lastConsidered, registeredAt: registered, now: now).run.map { SlotText.utc($0.instant) }
                == ["2026-11-13T00:15:00Z"])
        s.catchup = .none
        #expect(s.due(after: lastConsidered, registeredAt: registered, now: now).run.isEmpty)
        // On time (within the grace), none still runs the slot.
        #expect(s.due(after: lastConsidered, registeredAt: registered, now: try Self.utc("2026-11-11T00:15:30Z")).run.count == 1)
    }

    /// Passes every few seconds, at fractional times, miss no slot of an every-minute line.
    @Test func passesMissNoSlot() throws {
        for catchup in ScheduleSpec.CatchUp.allCases {
            var s = try Self.schedule("* * * * *")
            s.catchup = catchup
            let registered = try Self.utc("2026-11-10T00:00:00Z").addingTimeInterval(0.3)
            var after: Date?
            var run: [String] = []
            var now = registered
            while now < registered.addingTimeInterval(300) {
                now = now.addingTimeInterval(4.7)
                run += s.due(after: after, registeredAt: registered, now: now).run.map { SlotText.utc($0.instant) }
                after = now
            }
            #expect(run == (1...5).map { String(format: "2026-11-10T00:%02d:00Z", $0) }, "\(catchup)")
        }
    }

    /// A pass half a millisecond before a slot does not take it (it is in
    /// the future) and the next pass, half a millisecond after, does: the
    /// slot is not lost between the two (review M1).
    @Test func aPassJustBeforeASlotDoesNotLoseIt() throws {
        let slot = try Self.utc("2026-11-10T00:01:00Z")
        for catchup in ScheduleSpec.CatchUp.allCases {
            var s = try Self.schedule("* * * * *")
            s.catchup = catchup
            let registered = slot.addingTimeInterval(-30)
            var after: Date?
            var run: [String] = []
            for offset in [-20.2, -0.0005, 0.0005, 4.6, 9.3] {
                let now = slot.addingTimeInterval(offset)
                let due = s.due(after: after, registeredAt: registered, now: now)
                if offset < 0 { #expect(due.run.isEmpty, "\(catchup) at \(offset)") }
                run += due.run.map { SlotText.utc($0.instant) }
                after = now
            }
            #expect(run == ["2026-11-10T00:01:00Z"], "\(catchup)")
        }
        // A pass at the slot's very instant takes it, and the next does not again.
        var s = try Self.schedule("* * * * *")
        s.catchup = .all
        #expect(s.due(after: slot.addingTimeInterval(-5), registeredAt: slot, now: slot).run.count == 1)
        #expect(s.due(after: slot, registeredAt: slot, now: slot.addingTimeInterval(5)).run.isEmpty)
    }

    /// `latest` after two years paused finds the latest slot looking back
    /// from now, however many slots the pause holds (review S7): an
    /// every-minute-on-Sundays line has 150 000 of them.
    @Test func latestAfterALongPauseRunsTheLatest() throws {
        var s = try Self.schedule("* * * * SUN")
        s.catchup = .latest
        let after = try Self.utc("2024-11-06T12:00:00Z")   // a Wednesday
        let now = try Self.utc("2026-11-11T12:00:00Z")     // a Wednesday two years later
        let due = s.due(after: after, registeredAt: after, now: now)
        #expect(due.run.map { SlotText.utc($0.instant) } == ["2026-11-08T23:59:00Z"])
        #expect(due.skip.count == 1000)   // that Sunday's others, at most `limit`
        #expect(s.lastSlot(from: after, through: now)?.instant == due.run.first?.instant)
        #expect(s.lastSlot(from: try Self.utc("2026-11-09T00:00:00Z"), through: now) == nil)
    }

    /// `catchup: none` takes the on-time grace the scheduler gives (more
    /// than a minute when its passes are far apart or slow, review S1), and
    /// never less than a minute.
    @Test func noneTakesTheGraceGiven() throws {
        var s = try Self.schedule("15 2 * * *", "Europe/Helsinki")
        s.catchup = .none
        let slot = try Self.utc("2026-11-11T00:15:00Z")
        let late = slot.addingTimeInterval(200)
        #expect(s.due(after: slot.addingTimeInterval(-10), registeredAt: slot, now: late).run.isEmpty)
        #expect(s.due(after: slot.addingTimeInterval(-10), registeredAt: slot, now: late, onTimeGrace: 210).run.map(\.instant) == [slot])
        #expect(s.due(after: slot.addingTimeInterval(-10), registeredAt: slot, now: slot.addingTimeInterval(30), onTimeGrace: 1)
                    .run.map(\.instant) == [slot])
    }

    /// A window of a few seconds yields just its slots, on a day with a
    /// daylight-saving change too.
    @Test func aShortWindowYieldsItsSlots() throws {
        let s = try Self.schedule("* * * * *", "America/New_York")
        // 06:00Z on 2026-11-01 is 01:00 EST, the repeated hour: its slot ran at 05:00Z.
        for (at, expected) in [("2026-11-10T15:00:00Z", true), ("2026-11-01T05:59:58Z", false), ("2026-11-01T05:00:00Z", true),
                               ("2026-11-01T06:00:00Z", false), ("2026-11-01T07:00:00Z", true), ("2026-03-08T07:00:00Z", true)] {
            let t = try Self.utc(at)
            let got = s.slots(from: t.addingTimeInterval(-4.7), through: t.addingTimeInterval(0.3))
            #expect(got.map { SlotText.utc($0.instant) } == (expected ? [at] : []), "\(at)")
        }
    }

    @Test func startAndEndBoundTheSlots() throws {
        var s = try Self.schedule("0 6 * * *")
        s.startDay = LocalDay.parse("2026-11-03")
        s.endDay = LocalDay.parse("2026-11-05")
        s.catchup = .all
        let slots = s.due(after: nil, registeredAt: try Self.utc("2026-11-20T00:00:00Z"), now: try Self.utc("2026-11-20T00:00:00Z"))
        #expect(slots.run.map(\.localDate) == ["2026-11-03", "2026-11-04", "2026-11-05"])
        #expect(s.next(after: try Self.utc("2026-11-05T07:00:00Z")) == nil)
    }

    // MARK: parameters

    @Test func parametersFillTheText() throws {
        let yaml = """
            pipeline: p
            params:
              region: {type: string, default: emea}
              limit: {type: int}
            sources:
              s:
                format: csv
                files: "in/${region}/${date}.csv"   # ${date-1} in a comment is filled in too
            normalize:
              - filter: "d = date '${date-1}' and n < ${limit}"
            """
        let header = try SpecHeader.read(yaml: yaml, file: "p.yml")
        let (text, values) = try SpecTemplate.expand(yaml, file: "p.yml", header: header, date: "2026-03-01", values: ["limit": "5"])
        #expect(text.contains("files: \"in/emea/2026-03-01.csv\""))
        #expect(text.contains("date '2026-02-28' and n < 5"))
        #expect(text.contains("# 2026-02-28 in a comment is filled in too"))
        #expect(values == ["date": "2026-03-01", "region": "emea", "limit": "5"])
        #expect(throws: SpecErrors.self) { try SpecTemplate.expand(yaml, file: "p.yml", header: header, date: "2026-03-01") }
        #expect(throws: SpecErrors.self) {
            try SpecTemplate.expand(yaml, file: "p.yml", header: header, date: "2026-03-01", values: ["limit": "5", "region": "x'; drop"])
        }
        let bad = yaml.replacingOccurrences(of: "${region}", with: "${regoin}")
        do { _ = try SpecTemplate.expand(bad, file: "p.yml", header: header, date: "2026-03-01", values: ["limit": "1"]); Issue.record("no error") } catch {
            #expect(error.description.hasPrefix("p.yml:8:16: unknown parameter '${regoin}'; did you mean 'region'?"))
        }
    }

    /// Placeholders are filled in everywhere, comments included, so an
    /// unknown name in a comment is an error too; a `${` without its `}` is
    /// an error at its place; `$${` is a literal `${` (review S11).
    @Test func commentsUnclosedAndEscapedPlaceholders() throws {
        let base = """
            pipeline: p
            params:
              region: {type: string, default: emea}
            sources:
              s: {format: csv, files: "in/${region}.csv"}
            """
        let header = try SpecHeader.read(yaml: base, file: "p.yml")
        func errors(_ text: String) -> String {
            do { _ = try SpecTemplate.expand(text, file: "p.yml", header: header, date: "2026-03-01"); return "" } catch {
                return error.description
            }
        }
        #expect(errors(base + "   # for ${regoin}\n").hasPrefix("p.yml:5:55: unknown parameter '${regoin}'"), "\(errors(base + "   # for ${regoin}\n"))")
        #expect(errors(base + "\n# ${regoin}\n").hasPrefix("p.yml:6:3: unknown parameter '${regoin}'"))
        let unclosed = base + "\nreport:\n  title: \"in ${region\"\n"
        #expect(errors(unclosed).hasPrefix("p.yml:7:14: '${' without a closing '}' on its line"), "\(errors(unclosed))")
        // `$${` stays as it is when filled in (filling in again changes
        // nothing) and reads as a literal `${`.
        let escaped = base + "\nreport: {title: \"cost $${currency} in ${region}\"}\n"
        let (text, _) = try SpecTemplate.expand(escaped, file: "p.yml", header: header, date: "2026-03-01")
        #expect(text.contains("title: \"cost $${currency} in emea\""))
        #expect(try SpecTemplate.expand(text, file: "p.yml", header: header, date: "2026-03-01").text == text)
        #expect(SpecTemplate.unescape(text).contains("title: \"cost ${currency} in emea\""))
        #expect(SpecTemplate.placeholders(escaped).map(\.name) == ["region", "region"])
    }
}
