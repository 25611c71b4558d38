import Foundation
import TestSupport
import Testing

/// `bis schedule slots` and `bis pipeline add`'s checks, offline (docs/schedules.md).
@Suite struct ScheduleCommandTests {
    static let spec = """
        pipeline: nightly
        schedule:
          cron: "30 2 * * *"
          timezone: America/New_York
        params:
          region: {type: string, default: emea}
        sources:
          orders:
            format: csv
            files: "data/${date}-${region}.csv"
            columns: {id: int64}

        """

    @Test func slotsInUTCAndLocalTimeAcrossTheSpringGap() throws {
        let ws = try Workspace()
        defer { ws.remove() }
        try ws.write("p.yml", Self.spec)
        let r = try Bis.run(["schedule", "slots", "p.yml", "--from", "2026-03-07", "--to", "2026-03-09"], in: ws.path)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout == """
            2026-03-07T07:30:00Z  2026-03-07T02:30:00-05:00
            2026-03-08T07:00:00Z  2026-03-08T03:00:00-04:00
            2026-03-09T06:30:00Z  2026-03-09T02:30:00-04:00

            """)
        #expect(r.stderr.contains("at 02:30 every day (America/New_York); 3 slots"), "\(r.stderr)")
        let json = try Bis.run(["schedule", "slots", "p.yml", "--from", "2026-11-01", "--to", "2026-11-01", "--json"], in: ws.path)
        #expect(json.status == 0)
        #expect(json.stdout.contains(#""local" : "2026-11-01T02:30:00-05:00""#), "\(json.stdout)")
    }

    @Test func specErrorsExitTwoWithTheirPlace() throws {
        let ws = try Workspace()
        defer { ws.remove() }
        try ws.write("p.yml", Self.spec.replacingOccurrences(of: "${region}", with: "${regoin}"))
        let add = try Bis.run(["pipeline", "add", "p.yml", "--coordinator", "127.0.0.1:9"], in: ws.path)
        #expect(add.status == 2)
        #expect(add.stderr.contains("p.yml:10:26: unknown parameter '${regoin}'; did you mean 'region'?"), "\(add.stderr)")
        try ws.write("q.yml", Self.spec.replacingOccurrences(of: "30 2 * * *", with: "30 2 * * MON-FRU"))
        let slots = try Bis.run(["schedule", "slots", "q.yml", "--from", "2026-03-07", "--to", "2026-03-09"], in: ws.path)
        #expect(slots.status == 2)
        #expect(slots.stderr.contains("q.yml:3:19: in 'cron': day of week field 'MON-FRU'"), "\(slots.stderr)")
        let noCoordinator = try Bis.run(["pipelines", "--coordinator", "127.0.0.1:9"], in: ws.path)
        #expect(noCoordinator.status == 3, "\(noCoordinator.stderr)")
    }
}
