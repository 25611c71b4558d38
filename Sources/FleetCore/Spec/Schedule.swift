import Foundation

/// `schedule:` of a spec: when a registered pipeline runs by itself.
/// See docs/spec.md and docs/schedules.md.
public struct ScheduleSpec: Sendable, Hashable {
    public enum CatchUp: String, Sendable, Hashable, CaseIterable, Codable {
        /// Slots missed while the coordinator was down (or the pipeline paused) are skipped.
        case none
        /// Only the most recent missed slot runs.
        case latest
        /// Every missed slot runs, oldest first (from `start` for a new pipeline).
        case all
    }

    public var cron: CronExpression
    /// IANA name; UTC by default.
    public var timezone: TimeZone
    /// First local date a slot may fall on (inclusive), days since 1970.
    public var startDay: Int?
    /// Last local date a slot may fall on (inclusive).
    public var endDay: Int?
    public var catchup: CatchUp
    /// A due slot waits (queued) while this many of the pipeline's runs are active.
    public var maxActiveRuns: Int

    public static let defaultMaxActiveRuns = 1

    /// The instant local `day` begins in `zone` (a manual run's slot for `--date`).
    public static func midnight(ofDay day: Int, in zone: TimeZone) -> Date {
        let s = ScheduleSpec(cron: try! CronExpression("0 0 * * *"), timezone: zone)
        return Date(timeIntervalSince1970: Double(s.instant(ofWall: day * 86400)))
    }
    /// With `catchup: none`, a slot still runs when the scheduler sees it
    /// within this many seconds of its time.
    public static let onTimeGrace: Double = 60

    public init(cron: CronExpression, timezone: TimeZone = TimeZone(identifier: "UTC")!, startDay: Int? = nil,
                endDay: Int? = nil, catchup: CatchUp = .latest, maxActiveRuns: Int = defaultMaxActiveRuns) {
        self.cron = cron
        self.timezone = timezone
        self.startDay = startDay
        self.endDay = endDay
        self.catchup = catchup
        self.maxActiveRuns = maxActiveRuns
    }

    /// One slot: the instant, and the local day whose schedule line produced it.
    public struct Slot: Sendable, Hashable {
        public var instant: Date
        /// The local date (`YYYY-MM-DD`) the slot stands for: `${date}`.
        public var localDate: String
    }

    /// Every slot of local day `day` (days since 1970), in time order.
    ///
    /// Daylight saving: a local time that does not exist that day (the clock
    /// jumps over it) yields the first instant after the gap; a local time
    /// that happens twice yields its first occurrence only. Slots that land
    /// on the same instant count once.
    public func slots(onDay day: Int) -> [Slot] {
        let (y, m, d) = LocalDay.ymd(day)
        if let s = startDay, day < s { return [] }
        if let e = endDay, day > e { return [] }
        guard cron.matchesDay(year: y, month: m, day: d, weekday: LocalDay.weekday(day)) else { return [] }
        var out: [Slot] = []
        var seen = Set<Int>()
        let text = LocalDay.text(day)
        for h in cron.hours.sorted() {
            for minute in cron.minutes.sorted() {
                let wall = day * 86400 + h * 3600 + minute * 60
                let t = instant(ofWall: wall)
                if seen.insert(t).inserted { out.append(Slot(instant: Date(timeIntervalSince1970: Double(t)), localDate: text)) }
            }
        }
        return out.sorted { $0.instant < $1.instant }
    }

    private func offset(_ t: Int) -> Int { timezone.secondsFromGMT(for: Date(timeIntervalSince1970: Double(t))) }

    /// The instant of local wall time `wall` (seconds since 1970 as if UTC)
    /// in the schedule's zone, by the daylight-saving rule of `slots(onDay:)`.
    public func instant(ofWall wall: Int) -> Int {
        let candidates = Set([offset(wall - 86400), offset(wall), offset(wall + 86400)])
        let valid = candidates.map { wall - $0 }.filter { $0 + offset($0) == wall }
        if let first = valid.min() { return first }
        // In a gap: the first instant after it (the transition).
        let before = offset(wall - 2 * 86400), after = offset(wall + 2 * 86400)
        var lo = wall - max(before, after), hi = wall - min(before, after)
        guard offset(lo) == before, offset(hi) != before else { return wall - after }
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2
            if offset(mid) == before { lo = mid } else { hi = mid }
        }
        return hi
    }

    /// The slots with `from <= instant <= through`, in order (at most `limit`).
    public func slots(from: Date, through: Date, limit: Int = 100_000) -> [Slot] {
        guard from <= through else { return [] }
        var day = SlotText.localDays(from, in: timezone) - 1
        let last = SlotText.localDays(through, in: timezone) + 1
        if let s = startDay, day < s - 1 { day = s - 1 }
        var out: [Slot] = []
        while day <= last, out.count < limit {
            if let e = endDay, day > e { break }
            for s in slots(onDay: day) where s.instant >= from && s.instant <= through {
                if out.last.map({ $0.instant < s.instant }) ?? true { out.append(s) }
                if out.count >= limit { break }
            }
            day += 1
        }
        return out
    }

    /// The first slot strictly after `date`, looking up to ten years ahead.
    public func next(after date: Date) -> Slot? {
        var day = max(SlotText.localDays(date, in: timezone) - 1, startDay.map { $0 - 1 } ?? Int.min)
        let stop = day + 3700
        while day <= stop {
            if let e = endDay, day > e { return nil }
            if let s = slots(onDay: day).first(where: { $0.instant > date }) { return s }
            day += 1
        }
        return nil
    }

    /// What the scheduler does at `now`, given the last slot it already
    /// considered (`after`, exclusive; nil for a new pipeline, then slots
    /// count from `start`, or from `registeredAt` without one): the slots to
    /// run and the slots skipped by the catch-up policy, oldest first, at
    /// most `limit` in all (the rest at the next pass).
    public func due(after: Date?, registeredAt: Date, now: Date, limit: Int = 1000) -> (run: [Slot], skip: [Slot]) {
        let from: Date
        if let after {
            from = after.addingTimeInterval(0.001)   // strictly after: slots are whole seconds, `after` need not be
        } else if startDay != nil {
            from = Date(timeIntervalSince1970: Double(startDay! - 2) * 86400)
        } else {
            from = registeredAt
        }
        switch catchup {
        case .all:
            return (slots(from: from, through: now, limit: limit), [])
        case .latest:
            // The recent past first: a minute's cron over a year is half a million slots.
            var due = slots(from: max(from, now.addingTimeInterval(-3 * 86400)), through: now)
            if due.isEmpty, from < now.addingTimeInterval(-3 * 86400) { due = slots(from: from, through: now) }
            guard let last = due.last else { return ([], []) }
            return ([last], Array(due.dropLast()))
        case .none:
            let due = slots(from: max(from, now.addingTimeInterval(-Self.onTimeGrace)), through: now)
            return (due, [])
        }
    }
}
