import CoordinatorAPI
@testable import CoordinatorHTTP
import Foundation
import Testing

/// The registered pipelines' routes need the operate permission for every
/// POST and any role to read; refusals are audited (docs/schedules.md).
@Suite struct PipelineRouteTests {
    static func bearer(_ name: String) -> String { "Bearer \(Principals.tokens[name]!)" }

    @Test func viewersReadOperatorsAct() async throws {
        try await withServer(access: try Principals.access()) { fake, http in
            // Reads pass the access layer (the fake keeps no pipelines: 404).
            for path in ["/api/pipelines", "/api/pipelines/nightly", "/api/pipelines/nightly?version=2"] {
                let a = try await http.send("GET", path, body: nil, authorization: Self.bearer("vera"))
                #expect(a.status == 404, "\(path): \(a.status) \(a.text)")
            }
            let add = try APICoding.encoder().encode(PipelineAddRequest(specPath: "/x/nightly.yml", by: "v"))
            let refused = try await http.send("POST", "/api/pipelines", body: add, authorization: Self.bearer("vera"))
            #expect(refused.status == 403)
            #expect(refused.error == "vera is a viewer: registering a pipeline needs the operator or admin role", "\(refused.text)")
            let action = try APICoding.encoder().encode(ActionRequest(by: "b"))
            for (who, path, message) in [
                ("bob", "/api/pipelines/nightly/pause", ": pausing pipeline nightly needs the operator or admin role"),
                ("vera", "/api/pipelines/nightly/trigger", "vera is a viewer: triggering pipeline nightly needs the operator or admin role"),
                // A pipeline named like a route word changes nothing.
                ("bob", "/api/pipelines/approve/remove", ": removing pipeline approve needs the operator or admin role"),
            ] {
                let body = path.hasSuffix("trigger") ? try APICoding.encoder().encode(TriggerRequest(by: "v")) : action
                let r = try await http.send("POST", path, body: body, authorization: Self.bearer(who))
                #expect(r.status == 403, "\(path)")
                #expect(r.error?.hasPrefix(who) == true && r.error?.hasSuffix(message) == true, "\(r.text)")
            }
            // The operator passes the access layer (the fake answers 404).
            let ok = try await http.send("POST", "/api/pipelines/nightly/pause", body: action, authorization: Self.bearer("ann"))
            #expect(ok.status == 404, "\(ok.text)")
            let badVersion = try await http.send("GET", "/api/pipelines/nightly?version=0", body: nil, authorization: Self.bearer("ann"))
            #expect(badVersion.status == 400)
            #expect(await fake.refusals.map { "\($0.principal?.name ?? "-") \($0.action) \($0.status)" }
                    == ["vera pipeline add 403", "bob pipeline pause nightly 403", "vera pipeline trigger nightly 403",
                        "bob pipeline remove approve 403"])
        }
    }
}
