import Coordination
import CoordinatorHTTP
import FleetCore
import Foundation
import Testing

/// The operating routes over the fake service: dashboard pages, quarantine,
/// lineage trace and impact, OpenLineage export.
@Suite struct OperationsRouteTests {
    @Test func dashboardPagesAreHTMLAndAMissingOneIsAnHTML404() async throws {
        try await withServer { fake, http in
            // The pages are built from what the service answers: its runs, a run, its input files.
            await fake.add(sampleRun("r1", .running))
            await fake.setInputs("r1", ["/data/orders/a.csv"])
            let index = try await http.get("/")
            #expect(index.status == 200)
            #expect(index.contentType == "text/html; charset=utf-8")
            #expect(index.text.hasPrefix("<!doctype html>"), "\(index.text)")
            #expect(index.text.contains("<h1>BIS Fleet</h1>") && index.text.contains("href=\"/runs/r1\""), "\(index.text)")
            let run = try await http.get("/runs/r1")
            #expect(run.status == 200)
            #expect(run.text.contains("<h1>r1</h1>"))
            #expect(run.text.contains(">a.csv<"), "the lineage graph starts at the run's input files")
            let missing = try await http.get("/runs/nope")
            #expect(missing.status == 404)
            #expect(missing.contentType == "text/html; charset=utf-8")
            #expect(missing.text.contains("Nothing at /runs/nope"), "\(missing.text)")
        }
    }

    @Test func theDashboardEscapesThePathInItsNotFoundPage() async throws {
        try await withServer { _, http in
            let a = try await http.get("/runs/%3Cscript%3E")
            #expect(a.status == 404)
            #expect(!a.text.contains("<script>"), "\(a.text)")
        }
    }

    @Test func quarantineFiltersByRuleAndLimitsAndIs404ForNoRun() async throws {
        try await withServer { fake, http in
            await fake.setQuarantine("r1", Fixtures.quarantine)
            let all = try await http.get("/api/runs/r1/quarantine")
            #expect(all.status == 200)
            #expect(try all.decode([QuarantinedRow].self) == Fixtures.quarantine)
            let first = try #require((try all.json() as? [[String: Any]])?.first)
            #expect(first["file"] as? String == "/data/orders/a.csv" && first["line"] as? Int == 17 && first["rule"] as? String == "parse")

            let byKind = try await http.get("/api/runs/r1/quarantine?rule=range&limit=5")
            #expect(try byKind.decode([QuarantinedRow].self).map(\.rule) == ["range amount"])
            let byName = try await http.get("/api/runs/r1/quarantine?rule=range%20amount")
            #expect(try byName.decode([QuarantinedRow].self).count == 1)
            let one = try await http.get("/api/runs/r1/quarantine?limit=1")
            #expect(try one.decode([QuarantinedRow].self).count == 1)
            #expect(await fake.quarantineAsks == ["r1 rule=- limit=100", "r1 rule=range limit=5", "r1 rule=range amount limit=100",
                                                  "r1 rule=- limit=1"])

            let bad = try await http.get("/api/runs/r1/quarantine?limit=zero")
            #expect(bad.status == 400)
            #expect(bad.error?.contains("limit must be a whole number") == true)
            let missing = try await http.get("/api/runs/nope/quarantine")
            #expect(missing.status == 404)
            #expect(missing.error == "no run nope")
        }
    }

    @Test func lineageTraceAnswersTheTreeAndNeedsATarget() async throws {
        try await withServer { fake, http in
            await fake.setTrace("orders/r1", Fixtures.trace)
            let a = try await http.get("/api/lineage/trace?target=orders%2Fr1")
            #expect(a.status == 200, "\(a.text)")
            #expect(try a.decode(LineageNode.self) == Fixtures.trace)
            let root = try #require(a.object)
            #expect(root["kind"] as? String == "result")
            #expect((root["producedBy"] as? [String: Any])?["stage"] as? String == "publish")
            #expect(await fake.traceAsks == ["orders/r1"])

            let none = try await http.get("/api/lineage/trace")
            #expect(none.status == 400)
            #expect(none.error?.contains("'target' is required") == true, "\(none.text)")
            let unknown = try await http.get("/api/lineage/trace?target=zzz")
            #expect(unknown.status == 404)
            #expect(unknown.error?.contains("nothing in the lineage store matches 'zzz'") == true)
        }
    }

    @Test func lineageImpactAnswersEveryRunThatReadTheFile() async throws {
        try await withServer { fake, http in
            await fake.setImpact(Fixtures.inputSHA, Fixtures.impact)
            let a = try await http.get("/api/lineage/impact?file=\(Fixtures.inputSHA)")
            #expect(a.status == 200)
            #expect(try a.decode(ImpactReport.self) == Fixtures.impact)
            // A path with a space survives the query string.
            let spaced = try await http.get("/api/lineage/impact?file=/data/my%20orders/a.csv")
            #expect(try spaced.decode(ImpactReport.self).runs.isEmpty)
            #expect(await fake.impactAsks.last == "/data/my orders/a.csv")
            let none = try await http.get("/api/lineage/impact?file=")
            #expect(none.status == 400)
            #expect(none.error?.contains("'file' is required") == true)
        }
    }

    @Test func openLineageAnswersTheRunEvents() async throws {
        try await withServer { fake, http in
            await fake.setEvents("r1", Fixtures.events)
            let a = try await http.get("/api/runs/r1/openlineage")
            #expect(a.status == 200)
            #expect(try a.decode([OpenLineageEvent].self) == Fixtures.events)
            let events = try #require(try a.json() as? [[String: Any]])
            #expect(events.map { $0["eventType"] as? String } == ["START", "COMPLETE"])
            let facets = try #require((events[0]["run"] as? [String: Any])?["facets"] as? [String: Any])
            #expect((facets["parent"] as? [String: Any])?["_schemaURL"] as? String
                    == "https://openlineage.io/spec/facets/1-0-1/ParentRunFacet.json#/$defs/ParentRunFacet")
            let missing = try await http.get("/api/runs/nope/openlineage")
            #expect(missing.status == 404)
        }
    }

    // Issue 12 item 4: these GETs used to stay open with a token (this test asserted it).
    @Test func theNewGetsNeedTheTokenToo() async throws {
        try await withServer(token: "t") { fake, http in
            await fake.setQuarantine("r1", [])
            await fake.setEvents("r1", [])
            for path in ["/", "/api/runs/r1/quarantine", "/api/runs/r1/openlineage", "/api/lineage/impact?file=x"] {
                let a = try await http.get(path)
                #expect(a.status == 401, "\(path): \(a.text)")
                let b = try await http.send("GET", path, body: nil, token: "t")
                #expect(b.status == 200, "\(path): \(b.text)")
            }
        }
    }
}
