import CoordinatorAPI
@testable import CoordinatorHTTP
import Foundation
import Testing

/// `GET /api/alerts` (docs/alerts.md): any role may read it; `run` and `limit` reach the service.
@Suite struct AlertRouteTests {
    static func bearer(_ name: String) -> String { "Bearer \(Principals.tokens[name]!)" }

    @Test func aViewerReadsTheAlertsOfARun() async throws {
        try await withServer(access: try Principals.access()) { fake, http in
            let submitted = try await fake.submit(SubmitRequest(specPath: "/specs/orders.yml", submittedBy: "me@host"))
            let answer = try await http.send("GET", "/api/alerts?run=\(submitted.id)&limit=5", body: nil, authorization: Self.bearer("vera"))
            #expect(answer.status == 200, "\(answer.text)")
            let alerts = try answer.decode([AlertView].self)
            #expect(alerts.map(\.key) == ["\(submitted.id)/run_failed/1"])
            #expect(alerts.first?.deliveries.map(\.state) == [.sent])
            #expect(await fake.alertAsks == ["\(submitted.id) 5"])
            let anonymous = try await http.send("GET", "/api/alerts", body: nil, authorization: nil)
            #expect(anonymous.status == 401)
            let tooMany = try await http.send("GET", "/api/alerts?limit=0", body: nil, authorization: Self.bearer("vera"))
            #expect(tooMany.status == 400)
        }
    }
}
