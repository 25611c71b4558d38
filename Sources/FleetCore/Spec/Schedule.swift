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
    public func slots(onDay day: Int) -> [Slot] { slots(onDay: day, from: Int.min, through: Int.max) }

    /// The slots of local day `day` with `from <= instant <= through`
    /// (seconds since 1970), in time order. On a day without an offset
    /// change (all but a few a year) the zone is asked four times, not for
    /// every slot, and hours outside the window are not looked at.
    func slots(onDay day: Int, from lo: Int, through hi: Int) -> [Slot] {
        guard lo <= hi else { return [] }
        let (y, m, d) = LocalDay.ymd(day)
        if let s = startDay, day < s { return [] }
        if let e = endDay, day > e { return [] }
        guard cron.matchesDay(year: y, month: m, day: d, weekday: LocalDay.weekday(day)) else { return [] }
        var out: [Slot] = []
        let text = LocalDay.text(day)
        let base = day * 86400
        let o = offset(base - 86400)
        let hours = cron.hours.sorted(), minutes = cron.minutes.sorted()
        if offset(base) == o, offset(base + 86400) == o, offset(base + 2 * 86400) == o {
            // One offset all day (the samples cover the local day whatever the offset).
            for h in hours {
                let hourStart = base + h * 3600 - o
                if hourStart + 3599 < lo || hourStart > hi { continue }
                for minute in minutes {
                    let t = hourStart + minute * 60
                    if t >= lo && t <= hi { out.append(Slot(instant: Date(timeIntervalSince1970: Double(t)), localDate: text)) }
                }
            }
            return out
        }
        var seen = Set<Int>()
        for h in hours {
            for minute in minutes {
                let t = instant(ofWall: base + h * 3600 + minute * 60)
                if t >= lo, t <= hi, seen.insert(t).inserted {
                    out.append(Slot(instant: Date(timeIntervalSince1970: Double(t)), localDate: text))
                }
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

    /// Whole seconds: the first at or after `date`, and the last at or before it.
    private static func ceilSeconds(_ date: Date) -> Int { Int(date.timeIntervalSince1970.rounded(.up)) }
    private static func floorSeconds(_ date: Date) -> Int { Int(date.timeIntervalSince1970.rounded(.down)) }

    /// The slots with `from <= instant <= through`, in order (at most `limit`).
    public func slots(from: Date, through: Date, limit: Int = 100_000) -> [Slot] {
        guard from <= through, limit > 0 else { return [] }
        let lo = Self.ceilSeconds(from), hi = Self.floorSeconds(through)
        var day = SlotText.localDays(from, in: timezone) - 1
        let last = SlotText.localDays(through, in: timezone) + 1
        if let s = startDay, day < s - 1 { day = s - 1 }
        var out: [Slot] = []
        while day <= last, out.count < limit {
            if let e = endDay, day > e { break }
            for s in slots(onDay: day, from: lo, through: hi) {
                if out.last.map({ $0.instant < s.instant }) ?? true { out.append(s) }
                if out.count >= limit { break }
            }
            day += 1
        }
        return out
    }

    /// The last slot with `from <= instant <= through`, looking back day by
    /// day from `through`; nil when there is none.
    public func lastSlot(from: Date, through: Date) -> Slot? {
        guard from <= through else { return nil }
        let lo = Self.ceilSeconds(from), hi = Self.floorSeconds(through)
        var day = SlotText.localDays(through, in: timezone) + 1
        var first = SlotText.localDays(from, in: timezone) - 1
        if let e = endDay, day > e { day = e }
        if let s = startDay, first < s { first = s }
        while day >= first {
            if let s = slots(onDay: day, from: lo, through: hi).last { return s }
            day -= 1
        }
        return nil
    }

    /// The first slot strictly after `date`, looking up to ten years ahead.
    public func next(after date: Date) -> Slot? {
        var day = max(SlotText.localDays(date, in: timezone) - 1, startDay.map { $0 - 1 } ?? Int.min)
        let lo = Self.floorSeconds(date) + 1
        let stop = day + 3700
        while day <= stop {
            if let e = endDay, day > e { return nil }
            if let s = slots(onDay: day, from: lo, through: Int.max).first { return s }
            day += 1
        }
        return nil
    }

    /// What the scheduler does at `now`, given the last slot it already
    /// considered (`after`, exclusive; nil for a new pipeline, then slots
    /// count from `start`, or from `registeredAt` without one): the slots to
    /// run and the slots skipped by the catch-up policy, oldest first, at
    /// most `limit` in all (the rest at the next pass). `latest`'s skipped
    /// slots are those of the last three days at most; `none`'s are not
    /// listed.
    ///
    /// `onTimeGrace`: with `catchup: none`, how far back a slot still counts
    /// as on time (the scheduler passes more than the default when its
    /// passes are far apart, or when `after` is its own last pass).
    public func due(after: Date?, registeredAt: Date, now: Date, limit: Int = 1000,
                    onTimeGrace: Double = Self.onTimeGrace) -> (run: [Slot], skip: [Slot]) {
        let from: Date
        if let after {
            // Strictly after: slots are whole seconds and `after` (a pass's
            // clock time) need not be, so the next whole second after it.
            from = Date(timeIntervalSince1970: after.timeIntervalSince1970.rounded(.down) + 1)
        } else if startDay != nil {
            from = Date(timeIntervalSince1970: Double(startDay! - 2) * 86400)
        } else {
            from = registeredAt
        }
        switch catchup {
        case .all:
            return (slots(from: from, through: now, limit: limit), [])
        case .latest:
            // Found looking back from `now`: a minute's cron over a year is
            // half a million slots, and a weekly one paused for two years
            // has its latest far from both ends.
            guard let last = lastSlot(from: from, through: now) else { return ([], []) }
            let skipFrom = max(from, last.instant.addingTimeInterval(-3 * 86400))
            let skipped = slots(from: skipFrom, through: last.instant.addingTimeInterval(-1), limit: limit)
            return ([last], skipped)
        case .none:
            let due = slots(from: max(from, now.addingTimeInterval(-max(onTimeGrace, Self.onTimeGrace))), through: now, limit: limit)
            return (due, [])
        }
    }
}
