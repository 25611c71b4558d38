import CoordinatorAPI
@testable import CoordinatorHTTP
import Crypto
import Foundation
import Testing

/// Principals and roles (`--auth FILE`), who is recorded, self-approval,
/// the audit routes: issue 12, item 4.
enum Principals {
    static let tokens = ["vera": "viewer-token", "ann": "operator-token", "bob": "approver-token", "root": "admin-token"]

    static func hash(_ token: String) -> String {
        SHA256.hash(data: Data(token.utf8)).map { String(format: "%02x", $0) }.joined()
    }

    static var file: String {
        """
        # the fleet's principals
        vera  viewer    \(hash(tokens["vera"]!))
        ann   operator  \(hash(tokens["ann"]!))   # submits
        bob   approver  \(hash(tokens["bob"]!))

        root  admin     \(hash(tokens["root"]!))
        """
    }

    static func access(allowSelfApproval: Bool = false, metricsAnonymous: Bool = false) throws -> Access {
        var a = try Access.parse(file, file: "auth.txt")
        a.allowSelfApproval = allowSelfApproval
        a.metricsAnonymous = metricsAnonymous
        return a
    }
}

@Suite struct AccessFileTests {
    @Test func aGoodFileListsItsPrincipals() throws {
        let a = try Principals.access()
        #expect(a.principals == [Principal(name: "vera", role: .viewer), Principal(name: "ann", role: .operator),
                                 Principal(name: "bob", role: .approver), Principal(name: "root", role: .admin)])
        #expect(a.identify("Bearer operator-token")?.name == "ann")
        #expect(a.identify("bearer  admin-token")?.name == "root")
        #expect(a.identify("Bearer operator-tokeN") == nil)
        #expect(a.identify("Bearer ") == nil)
        #expect(a.identify(nil) == nil)
        let basic = Data("bob:approver-token".utf8).base64EncodedString()
        #expect(a.identify("Basic \(basic)")?.name == "bob")
        // The name must be the token's.
        let mismatched = Data("ann:approver-token".utf8).base64EncodedString()
        #expect(a.identify("Basic \(mismatched)") == nil)
    }

    @Test func badFilesNameFileAndLine() throws {
        let h = Principals.hash("x"), g = Principals.hash("y")
        let cases: [(String, String)] = [
            ("ann operator\n", "auth.txt:1: expected NAME ROLE SHA256 (three fields), found 2"),
            ("# c\nann boss \(h)\n", "auth.txt:2: unknown role 'boss' (viewer, operator, approver or admin)"),
            ("ann viewer abc\n", "auth.txt:1: 'abc' is not a SHA-256 in hex"),
            ("ann viewer \(h)\nann admin \(g)\n", "auth.txt:2: the name 'ann' is already on line 1"),
            ("ann viewer \(h)\n\nbob admin \(h)\n", "auth.txt:3: 'bob' has the same token as 'ann' on line 1"),
            ("a/b viewer \(h)\n", "auth.txt:1: 'a/b' is not a principal name"),
            ("# nobody\n\n", "auth.txt: no principals"),
        ]
        for (text, expected) in cases {
            do {
                _ = try Access.parse(text, file: "auth.txt")
                Issue.record("accepted: \(text)")
            } catch {
                #expect(error.description.hasPrefix(expected), "\(error.description)")
            }
        }
    }

    @Test func rolesAllowWhatTheIssueSays() {
        #expect(Role.allCases.allSatisfy { $0.allows(.read) })
        #expect(Role.allCases.filter { $0.allows(.operate) } == [.operator, .admin])
        #expect(Role.allCases.filter { $0.allows(.approve) } == [.approver, .admin])
        #expect(Permission.operate.explanation == "the operator or admin role")
    }
}

@Suite struct AuthRouteTests {
    static func bearer(_ name: String) -> String { "Bearer \(Principals.tokens[name]!)" }

    @Test func noTokenOrAnUnknownOneIs401WithABasicChallenge() async throws {
        try await withServer(access: try Principals.access()) { fake, http in
            await fake.add(sampleRun("r1", .running))
            for (path, auth) in [("/api/runs", nil), ("/", nil), ("/api/runs/r1", "Bearer nope"), ("/metrics", nil),
                                 ("/api/whoami", "Basic bm9wZQ==")] as [(String, String?)] {
                let a = try await http.send("GET", path, body: nil, authorization: auth)
                #expect(a.status == 401, "\(path): \(a.text)")
                #expect(a.error == "this coordinator requires a token: set BIS_TOKEN")
                #expect(a.wwwAuthenticate == nil, "no challenge to an API client")
            }
            // A browser gets the Basic challenge, so that it asks for a name and token
            // (curl: URLSession on Linux hangs on a 401 with a challenge).
            let curl = try curlHead(http.base + "/", accept: "text/html,application/xhtml+xml")
            #expect(curl.hasPrefix("HTTP/1.1 401"), "\(curl)")
            #expect(curl.lowercased().contains(#"www-authenticate: basic realm="bis""#), "\(curl)")
            #expect(try await http.get("/healthz").status == 200)
            let post = try await http.post("/api/runs", json: SubmitRequest(specPath: "/x/orders.yml", submittedBy: "eve@host"))
            #expect(post.status == 401)
            #expect(await fake.submitted.isEmpty)
            // Refusals without a principal are logged, not stored: anyone who reaches the port could
            // otherwise grow the store without bound. (A principal's 403 is stored: see below.)
            let refusals = await fake.refusals
            #expect(refusals.isEmpty, "an unauthenticated POST is not written to the audit log: \(refusals)")
        }
    }

    @Test func aViewerReadsButItsPostIs403() async throws {
        try await withServer(access: try Principals.access()) { fake, http in
            await fake.add(sampleRun("r1", .awaitingApproval))
            for path in ["/api/runs", "/api/runs/r1", "/api/workers", "/metrics", "/", "/runs/r1", "/api/audit", "/api/whoami"] {
                let a = try await http.send("GET", path, body: nil, authorization: Self.bearer("vera"))
                #expect(a.status == 200, "\(path): \(a.text)")
            }
            let submit = try await http.send("POST", "/api/runs",
                                             body: try APICoding.encoder().encode(SubmitRequest(specPath: "/x/o.yml", submittedBy: "v")),
                                             authorization: Self.bearer("vera"))
            #expect(submit.status == 403)
            #expect(submit.error == "vera is a viewer: submitting a run needs the operator or admin role", "\(submit.text)")
            let approve = try await http.send("POST", "/api/runs/r1/approve", body: try APICoding.encoder().encode(ActionRequest(by: "v")),
                                              authorization: Self.bearer("ann"))
            #expect(approve.status == 403)
            #expect(approve.error == "ann is an operator: approving run r1 needs the approver or admin role", "\(approve.text)")
            // The router ignores a trailing slash and empty segments: these reach the approve route
            // too, and need the approver's role as much.
            for path in ["/api/runs/r1/approve/", "/api/runs/r1//approve", "/api/runs/r1/approve//"] {
                let sneaky = try await http.send("POST", path, body: try APICoding.encoder().encode(ActionRequest(by: "v")),
                                                 authorization: Self.bearer("ann"))
                #expect(sneaky.status == 403 || sneaky.status == 404, "\(path): \(sneaky.status) \(sneaky.text)")
            }
            #expect(await fake.submitted.isEmpty)
            #expect(await fake.actions.isEmpty)
            let refusals = await fake.refusals
            #expect(refusals.prefix(2).map { "\($0.principal?.name ?? "-") \($0.action) \($0.run ?? "-") \($0.status)" }
                    == ["vera submit - 403", "ann approve r1 403"])
        }
    }

    @Test func theRecordedNamesAreThePrincipalsNotTheClaims() async throws {
        try await withServer(access: try Principals.access()) { fake, http in
            let body = try APICoding.encoder().encode(SubmitRequest(specPath: "/x/orders.yml", submittedBy: "mallory@host"))
            let submitted = try await http.send("POST", "/api/runs", body: body, authorization: Self.bearer("ann"))
            #expect(submitted.status == 201, "\(submitted.text)")
            let run = try submitted.decode(RunView.self)
            #expect(run.submittedBy == "ann")
            #expect(run.submitterPrincipal == "ann")
            await fake.script(run.id, [.awaitingApproval])
            _ = try await http.send("GET", "/api/runs/\(run.id)", body: nil, authorization: Self.bearer("vera"))
            let approved = try await http.send("POST", "/api/runs/\(run.id)/approve",
                                               body: try APICoding.encoder().encode(ActionRequest(by: "ann@host")),
                                               authorization: Self.bearer("bob"))
            #expect(approved.status == 200, "\(approved.text)")
            #expect(try approved.decode(RunView.self).approvedBy == "bob")
            #expect(await fake.callers == ["submit \(run.id) as ann", "approve \(run.id) as bob"])
        }
    }

    @Test func theSubmitterCannotApproveTheirOwnRunUnlessAllowed() async throws {
        for allowed in [false, true] {
            try await withServer(access: try Principals.access(allowSelfApproval: allowed)) { fake, http in
                let body = try APICoding.encoder().encode(SubmitRequest(specPath: "/x/orders.yml", submittedBy: "root@host"))
                let run = try (try await http.send("POST", "/api/runs", body: body, authorization: Self.bearer("root")))
                    .decode(RunView.self)
                await fake.script(run.id, [.awaitingApproval])
                _ = try await http.send("GET", "/api/runs/\(run.id)", body: nil, authorization: Self.bearer("root"))
                let approve = try await http.send("POST", "/api/runs/\(run.id)/approve",
                                                  body: try APICoding.encoder().encode(ActionRequest(by: "someone@else")),
                                                  authorization: Self.bearer("root"))
                if allowed {
                    #expect(approve.status == 200, "\(approve.text)")
                } else {
                    #expect(approve.status == 403)
                    #expect(approve.error == "root submitted run \(run.id) and cannot approve it too: another principal with "
                            + "the approver or admin role must (or start the coordinator with --allow-self-approval)",
                            "\(approve.text)")
                    #expect(await fake.actions.isEmpty)
                    #expect(await fake.refusals.map(\.status) == [403])
                }
            }
        }
    }

    @Test func basicAuthServesTheDashboardToABrowser() async throws {
        try await withServer(access: try Principals.access()) { fake, http in
            await fake.add(sampleRun("r1", .running))
            let basic = "Basic " + Data("vera:viewer-token".utf8).base64EncodedString()
            let page = try await http.send("GET", "/", body: nil, authorization: basic)
            #expect(page.status == 200)
            #expect(page.contentType?.hasPrefix("text/html") == true)
        }
    }

    @Test func metricsCanBeOpenedToScrapers() async throws {
        try await withServer(access: try Principals.access(metricsAnonymous: true)) { _, http in
            let metrics = try await http.get("/metrics")
            let runs = try await http.get("/api/runs")
            #expect(metrics.status == 200)
            #expect(runs.status == 401)
        }
    }

    @Test func whoamiAndAudit() async throws {
        try await withServer(access: try Principals.access()) { fake, http in
            let who = try await http.send("GET", "/api/whoami", body: nil, authorization: Self.bearer("bob"))
            #expect(try who.decode(WhoAmI.self) == WhoAmI(name: "bob", role: .approver, authenticated: true))
            _ = try await http.post("/api/runs/r9/cancel", json: ActionRequest(by: "x"))   // 401: logged, not recorded
            let refused = try await http.send("POST", "/api/runs/r9/cancel", body: try APICoding.encoder().encode(ActionRequest(by: "x")),
                                              authorization: Self.bearer("vera"))   // 403: recorded
            #expect(refused.status == 403)
            let audit = try await http.send("GET", "/api/audit?run=r9", body: nil, authorization: Self.bearer("vera"))
            let rows = try audit.decode([AuditEntry].self)
            #expect(rows.map { "\($0.action) \($0.run ?? "-") \($0.outcome ?? "-")" } == ["request.refused r9 403"])
            _ = fake
        }
        try await withServer { _, http in
            let who = try await http.get("/api/whoami")
            #expect(try who.decode(WhoAmI.self) == WhoAmI(name: "anonymous", role: .admin, authenticated: false))
        }
    }

    @Test func withoutAuthTheClaimedNamesAreRecordedAndSelfApprovalIsNotChecked() async throws {
        try await withServer { fake, http in
            let run = try (try await http.post("/api/runs", json: SubmitRequest(specPath: "/x/orders.yml", submittedBy: "ann@host")))
                .decode(RunView.self)
            #expect(run.submittedBy == "ann@host")
            #expect(run.submitterPrincipal == nil)
            await fake.script(run.id, [.awaitingApproval])
            _ = try await http.get("/api/runs/\(run.id)")
            let approved = try await http.post("/api/runs/\(run.id)/approve", json: ActionRequest(by: "ann@host"))
            #expect(approved.status == 200)
            #expect(await fake.callers == ["submit \(run.id) as anonymous", "approve \(run.id) as anonymous"])
        }
    }
}

/// `curl -si URL` with an Accept header: the status line and headers.
func curlHead(_ url: String, accept: String) throws -> String {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
    p.arguments = ["-si", "--max-time", "10", "-H", "Accept: \(accept)", url]
    let out = Pipe()
    p.standardOutput = out
    p.standardError = FileHandle(forWritingAtPath: "/dev/null")
    try p.run()
    let data = out.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return String(decoding: data, as: UTF8.self)
}
