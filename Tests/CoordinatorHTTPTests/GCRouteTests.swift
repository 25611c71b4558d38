import CoordinatorAPI
@testable import CoordinatorHTTP
import Foundation
import Testing

/// `GET /api/gc` (a dry run: any role) and `POST /api/gc` (a pass: the
/// operator or admin role, the principal recorded).
@Suite struct GCRouteTests {
    static func bearer(_ name: String) -> String { "Bearer \(Principals.tokens[name]!)" }

    @Test func aViewerMayDryRunButNotCollect() async throws {
        try await withServer(access: try Principals.access()) { fake, http in
            let dry = try await http.send("GET", "/api/gc", body: nil, authorization: Self.bearer("vera"))
            #expect(dry.status == 200, "\(dry.text)")
            let report = try dry.decode(GCReport.self)
            #expect(report.dryRun && report.items.map(\.path) == ["runs/r0"] && report.bytes == 1234)

            let body = try APICoding.encoder().encode(ActionRequest(by: "vera@host"))
            let refused = try await http.send("POST", "/api/gc", body: body, authorization: Self.bearer("vera"))
            #expect(refused.status == 403)
            #expect(refused.error == "vera is a viewer: a gc pass (bis gc; --dry-run needs any role) needs the operator or admin role",
                    "\(refused.text)")
            let approver = try await http.send("POST", "/api/gc", body: body, authorization: Self.bearer("bob"))
            #expect(approver.status == 403)

            let pass = try await http.send("POST", "/api/gc", body: body, authorization: Self.bearer("ann"))
            #expect(pass.status == 200, "\(pass.text)")
            #expect(try pass.decode(GCReport.self).dryRun == false)
            #expect(await fake.callers == ["gc --dry-run as vera", "gc as ann"])
            let refusals = await fake.refusals
            #expect(refusals.map { "\($0.principal?.name ?? "-") \($0.action) \($0.status)" } == ["vera gc 403", "bob gc 403"])
        }
    }

    @Test func withoutAuthAnyoneMayCollect() async throws {
        try await withServer { fake, http in
            let pass = try await http.send("POST", "/api/gc", body: try APICoding.encoder().encode(ActionRequest(by: "me@host")),
                                           authorization: nil)
            #expect(pass.status == 200, "\(pass.text)")
            #expect(await fake.callers == ["gc as anonymous"])
            let empty = try await http.send("POST", "/api/gc", body: nil, authorization: nil)
            #expect(empty.status == 400)
        }
    }
}

/// `bis gc` against the in-process server over the fake service.
@Suite struct GCCommandTests {
    @Test func gcPrintsPathsBytesAndWhyAndTheViewersPassIsRefusedWith4() async throws {
        let dir = FileManager.default.temporaryDirectory.path
        try await withServer(access: try Principals.access()) { fake, http in
            let dry = try await Bis.run(["gc", "--dry-run"], in: dir, coordinator: http.base, token: Principals.tokens["vera"])
            #expect(dry.status == 0, "\(dry.stderr)")
            #expect(dry.stdout.contains("would remove") && dry.stdout.contains("runs/r0") && dry.stdout.contains("1234"),
                    "\(dry.stdout)")
            #expect(dry.stdout.contains("would reclaim 1234 bytes in 3 files"), "\(dry.stdout)")
            #expect(dry.stdout.contains("--keep-intermediate"), "\(dry.stdout)")

            let refused = try await Bis.run(["gc"], in: dir, coordinator: http.base, token: Principals.tokens["vera"])
            #expect(refused.status == 4, "\(refused.stderr)")
            #expect(refused.stderr.contains("needs the operator or admin role"), "\(refused.stderr)")

            let json = try await Bis.run(["gc", "--json"], in: dir, coordinator: http.base, token: Principals.tokens["ann"])
            #expect(json.status == 0, "\(json.stderr)")
            let report = try APICoding.decoder().decode(GCReport.self, from: Data(json.stdout.utf8))
            #expect(!report.dryRun && report.items.map(\.outcome) == ["removed"])
            #expect(await fake.callers == ["gc --dry-run as vera", "gc as ann"])
        }
    }
}
