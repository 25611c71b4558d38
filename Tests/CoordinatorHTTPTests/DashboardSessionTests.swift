import CoordinatorAPI
@testable import CoordinatorHTTP
import FleetWire
import Foundation
import Testing

/// A browser's request as curl makes it: no redirect followed, no cookie kept.
struct Browser: Sendable {
    let base: String

    struct Answer {
        let status: Int
        let headers: [String: String]
        let body: String
        var location: String? { headers["location"] }
        var setCookie: String? { headers["set-cookie"] }
        /// The session cookie's `name=value`.
        var cookie: String? { setCookie?.split(separator: ";").first.map(String.init) }
        /// The first CSRF token of the page's forms.
        var csrf: String? {
            guard let r = body.range(of: #"name="csrf" value=""#) else { return nil }
            return String(body[r.upperBound...].prefix { $0 != "\"" })
        }
    }

    func send(_ method: String, _ path: String, cookie: String? = nil, form: [String: String]? = nil,
              headers: [String] = []) async throws -> Answer {
        var args = ["-s", "-i", "-X", method, base + path]
        if let cookie { args += ["-H", "Cookie: \(cookie)"] }
        for h in headers { args += ["-H", h] }
        if let form {
            let body = form.map { k, v in
                "\(k)=\(v.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? v)"
            }.joined(separator: "&")
            args += ["-H", "Content-Type: application/x-www-form-urlencoded", "--data-binary", body]
        }
        let out = try await runTool("/usr/bin/curl", args)
        guard out.status == 0 else { throw LiveFleet.Failure("curl \(args): \(out.stderr)") }
        let text = out.stdout
        let split = text.range(of: "\r\n\r\n")!
        let head = text[..<split.lowerBound].split(separator: "\r\n")
        let status = Int(head[0].split(separator: " ")[1])!
        var headers: [String: String] = [:]
        for line in head.dropFirst() {
            if let colon = line.firstIndex(of: ":") {
                headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            }
        }
        return Answer(status: status, headers: headers, body: String(text[split.upperBound...]))
    }

    /// Signs in with a principal's token: the session cookie.
    func signIn(_ token: String) async throws -> String {
        let a = try await send("POST", "/signin", form: ["token": token])
        guard a.status == 303, let cookie = a.cookie else { throw LiveFleet.Failure("sign-in: \(a.status) \(a.body)") }
        return cookie
    }
}

/// The dashboard's sessions and forms (docs/dashboard.md): sign in with a
/// token, a cookie only the dashboard's form routes take, a CSRF token bound
/// to the session on every form, roles as in the API.
@Suite(.serialized) struct DashboardSessionTests {
    static let curlAvailable = FileManager.default.isExecutableFile(atPath: "/usr/bin/curl")

    func withDashboard(_ body: @Sendable (FakeCoordinatorService, Browser, HTTPClient) async throws -> Void) async throws {
        try await withServer(access: try Principals.access()) { fake, http in
            var failed = sampleRun("orders-failed", .failed)
            failed.submittedBy = "ann"
            await fake.add(failed)
            var waiting = sampleRun("orders-waiting", .awaitingApproval)
            waiting.submitterPrincipal = "ann"
            await fake.add(waiting)
            try await body(fake, Browser(base: http.base), http)
        }
    }

    @Test(.enabled(if: curlAvailable)) func signingInGivesAStrictHttpOnlyCookie() async throws {
        try await withDashboard { _, browser, _ in
            let page = try await browser.send("GET", "/signin")
            #expect(page.status == 200 && page.body.contains(#"<form method="post" action="/signin">"#), "\(page.body)")
            let wrong = try await browser.send("POST", "/signin", form: ["token": "guess"])
            #expect(wrong.status == 401 && wrong.setCookie == nil)
            let ok = try await browser.send("POST", "/signin", form: ["token": Principals.tokens["ann"]!])
            #expect(ok.status == 303 && ok.location == "/")
            let cookie = try #require(ok.setCookie)
            #expect(cookie.hasPrefix("bis_session=") && cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict")
                    && cookie.contains("Path=/") && !cookie.contains("Secure"), "\(cookie)")
            let index = try await browser.send("GET", "/", cookie: ok.cookie)
            #expect(index.status == 200 && index.body.contains("signed in as ann"), "\(index.body.prefix(600))")
            #expect(index.body.contains(#"<a href="/pipelines">Pipelines</a>"#))
            // Pages with buttons cannot be framed, run scripts, or post elsewhere.
            let csp = try #require(index.headers["content-security-policy"])
            #expect(csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'") && csp.contains("form-action 'self'"))
            #expect(index.headers["x-frame-options"] == "DENY")
            // Without the cookie the dashboard still asks for a token, as before.
            #expect(try await browser.send("GET", "/").status == 401)
        }
    }

    @Test(.enabled(if: curlAvailable)) func aFormWithoutTheSessionsCSRFTokenIsRefusedAndChangesNothing() async throws {
        try await withDashboard { fake, browser, _ in
            let cookie = try await browser.signIn(Principals.tokens["ann"]!)
            let page = try await browser.send("GET", "/runs/orders-failed", cookie: cookie)
            #expect(page.body.contains(#"action="/runs/orders-failed/retry""#), "\(page.body)")
            let csrf = try #require(page.csrf)
            // A wrong token: the real one with its first character changed
            // (never equal to it, whatever that character is).
            let wrong = (csrf.first == "x" ? "y" : "x") + csrf.dropFirst()
            for form in [[:], ["csrf": ""], ["csrf": wrong]] {
                let refused = try await browser.send("POST", "/runs/orders-failed/retry", cookie: cookie, form: form)
                #expect(refused.status == 403 && refused.body.contains("CSRF"), "\(form): \(refused.status)")
            }
            // Another session's token is not this one's.
            let other = try await browser.signIn(Principals.tokens["root"]!)
            let otherCSRF = try #require(try await browser.send("GET", "/runs/orders-failed", cookie: other).csrf)
            #expect(otherCSRF != csrf)
            #expect(try await browser.send("POST", "/runs/orders-failed/retry", cookie: cookie, form: ["csrf": otherCSRF]).status == 403)
            // No session at all: 401.
            #expect(try await browser.send("POST", "/runs/orders-failed/retry", form: ["csrf": csrf]).status == 401)
            // A page of another origin.
            let crossSite = try await browser.send("POST", "/runs/orders-failed/retry", cookie: cookie, form: ["csrf": csrf],
                                                  headers: ["Origin: http://evil.example"])
            #expect(crossSite.status == 403)
            #expect(await fake.callers.isEmpty)

            let ok = try await browser.send("POST", "/runs/orders-failed/retry", cookie: cookie, form: ["csrf": csrf])
            #expect(ok.status == 303 && ok.location == "/runs/orders-failed", "\(ok.status) \(ok.body)")
            #expect(await fake.callers == ["retry orders-failed as ann"])
        }
    }

    @Test(.enabled(if: curlAvailable)) func aViewerSeesNoButtonsAndItsPostsAreRefused() async throws {
        try await withDashboard { fake, browser, _ in
            let cookie = try await browser.signIn(Principals.tokens["vera"]!)
            for path in ["/runs/orders-failed", "/runs/orders-waiting", "/", "/pipelines"] {
                let page = try await browser.send("GET", path, cookie: cookie)
                #expect(page.status == 200, "\(path)")
                #expect(!page.body.contains("<button type=\"submit\">"), "\(path): \(page.body)")
            }
            // Its own CSRF token (the sign-out form) does not make it an approver.
            let csrf = try #require(try await browser.send("GET", "/", cookie: cookie).csrf)
            let refused = try await browser.send("POST", "/runs/orders-waiting/approve", cookie: cookie, form: ["csrf": csrf])
            #expect(refused.status == 403 && refused.body.contains("vera is a viewer"), "\(refused.body)")
            #expect(await fake.callers.isEmpty)
            #expect(await fake.refusals.map { "\($0.principal?.name ?? "-") \($0.action) \($0.run ?? "-") \($0.status)" }
                    == ["vera approve orders-waiting 403"])

            // The approver sees Approve; the operator who submitted sees Cancel but no Approve.
            let bob = try await browser.signIn(Principals.tokens["bob"]!)
            let bobPage = try await browser.send("GET", "/runs/orders-waiting", cookie: bob)
            #expect(bobPage.body.contains(#"action="/runs/orders-waiting/approve""#))
            #expect(!bobPage.body.contains(#"action="/runs/orders-waiting/cancel""#))
            let approved = try await browser.send("POST", "/runs/orders-waiting/approve", cookie: bob, form: ["csrf": try #require(bobPage.csrf)])
            #expect(approved.status == 303)
            #expect(await fake.callers == ["approve orders-waiting as bob"])
        }
    }

    @Test(.enabled(if: curlAvailable)) func theCookieDoesNotReachTheAPI() async throws {
        try await withDashboard { fake, browser, _ in
            let cookie = try await browser.signIn(Principals.tokens["root"]!)
            #expect(try await browser.send("GET", "/api/runs", cookie: cookie).status == 401)
            #expect(try await browser.send("GET", "/metrics", cookie: cookie).status == 401)
            let json = try await browser.send("POST", "/api/runs/orders-failed/retry", cookie: cookie,
                                              headers: ["Content-Type: application/json"])
            #expect(json.status == 401)
            let form = try await browser.send("POST", "/api/runs/orders-failed/retry", cookie: cookie, form: ["by": "x"])
            #expect(form.status == 415)
            #expect(await fake.callers.isEmpty)
        }
    }

    @Test(.enabled(if: curlAvailable)) func signingOutEndsTheSession() async throws {
        try await withDashboard { _, browser, _ in
            let cookie = try await browser.signIn(Principals.tokens["ann"]!)
            let csrf = try #require(try await browser.send("GET", "/", cookie: cookie).csrf)
            #expect(try await browser.send("POST", "/signout", cookie: cookie, form: [:]).status == 403, "the CSRF token is needed")
            let out = try await browser.send("POST", "/signout", cookie: cookie, form: ["csrf": csrf])
            #expect(out.status == 303 && out.location == "/signin")
            #expect(out.setCookie?.contains("Max-Age=0") == true)
            #expect(try await browser.send("GET", "/", cookie: cookie).status == 401)
            #expect(try await browser.send("POST", "/runs/orders-failed/retry", cookie: cookie, form: ["csrf": csrf]).status == 401)
        }
    }

    @Test(.enabled(if: curlAvailable)) func withoutAuthAnyoneSignsInAsAnonymous() async throws {
        try await withServer { fake, http in
            await fake.add(sampleRun("orders-failed", .failed))
            let browser = Browser(base: http.base)
            // Read-only until signed in: no buttons, a sign-in link.
            let before = try await browser.send("GET", "/runs/orders-failed")
            #expect(before.status == 200 && !before.body.contains("<form") && before.body.contains(#"href="/signin""#))
            let first = try await browser.signIn("")
            let second = try await browser.send("POST", "/signin", cookie: first, form: ["token": ""])
            #expect(second.cookie != nil && second.cookie != first)
            #expect(try await browser.send("GET", "/runs/orders-failed", cookie: first).csrf == nil, "signing in again ends the old session")
            let cookie = try #require(second.cookie)
            let page = try await browser.send("GET", "/runs/orders-failed", cookie: cookie)
            #expect(page.body.contains("signed in as anonymous"))
            #expect(try await browser.send("POST", "/runs/orders-failed/retry", cookie: cookie, form: [:]).status == 403)
            let ok = try await browser.send("POST", "/runs/orders-failed/retry", cookie: cookie, form: ["csrf": try #require(page.csrf)])
            #expect(ok.status == 303)
            #expect(await fake.callers == ["retry orders-failed as anonymous"])
        }
    }

    @Test func sessionsExpireAndIdsAreRandom() {
        let sessions = DashboardSessions(lifetime: 60, capacity: 3)
        let now = Date()
        let a = sessions.create(principal: Principal(name: "ann", role: .operator), now: now)
        #expect(a.id.count == 43 && a.csrf.count == 43 && a.id != a.csrf)
        #expect(sessions.find(a.id, now: now.addingTimeInterval(59))?.name == "ann")
        #expect(sessions.find(a.id, now: now.addingTimeInterval(61)) == nil)
        #expect(sessions.find(a.id, now: now) == nil, "an expired session is gone")
        let ids = (0..<5).map { _ in sessions.create(principal: nil, now: now).id }
        #expect(Set(ids).count == 5 && sessions.count == 3, "at most capacity sessions")
        #expect(sessions.find(nil) == nil && sessions.find("") == nil)
        #expect(a.csrfMatches(a.csrf) && !a.csrfMatches(nil) && !a.csrfMatches(a.csrf + "x") && !a.csrfMatches(""))
    }

    @Test func onlyTheDashboardsFormRoutesTakeTheCookie() {
        for (method, path) in [("POST", "/signin"), ("POST", "/signout"), ("POST", "/pipelines/nightly/run"),
                               ("POST", "/pipelines/nightly/pause/"), ("POST", "/runs/r1/approve"), ("POST", "/runs/r1/cancel")] {
            #expect(DashboardForms.isFormRoute(method, path), "\(method) \(path)")
        }
        for (method, path) in [("GET", "/signin"), ("POST", "/api/runs/r1/approve"), ("POST", "/api/pipelines/n/trigger"),
                               ("POST", "/runs"), ("POST", "/pipelines/n/remove"), ("POST", "/metrics"), ("POST", "/runs/r1/approve/x")] {
            #expect(!DashboardForms.isFormRoute(method, path), "\(method) \(path)")
        }
        #expect(!DashboardForms.isPage("GET", "/api/runs") && !DashboardForms.isPage("GET", "/metrics"))
        #expect(DashboardSessions.cookieValue("a=b; bis_session=XYZ; c=d") == "XYZ")
        #expect(DashboardSessions.cookieValue("bis_sessionx=1") == nil)
        #expect(DashboardSessions.setCookie("v", maxAge: 10, secure: true).hasSuffix("; Secure"))
        #expect(DashboardForms.parse("csrf=a%2Bb&token=x+y&empty=") == ["csrf": "a+b", "token": "x y", "empty": ""])
    }
}

/// The pages themselves: the pipelines page, the run page's workers and lineage.
@Suite struct DashboardPageTests {
    static let viewer = DashboardViewer(name: "ann", csrf: "TOKEN", canOperate: true, canApprove: false)

    @Test func pipelinesShowScheduleSquaresAndButtons() {
        var nightly = PipelineView(name: "nightly", version: 2, specSHA256: "s", paused: false, registeredAt: Date(), registeredBy: "ann")
        nightly.cron = "15 2 * * *"
        nightly.schedule = "at 02:15 every day"
        nightly.timezone = "Europe/Helsinki"
        nightly.nextSlot = "2026-11-10T00:15:00Z"
        var adhoc = PipelineView(name: "adhoc", version: 1, specSHA256: "t", paused: true, registeredAt: Date(), registeredBy: "ann")
        adhoc.queuedSlots = 0
        var runs: [RunView] = []
        for day in 1...35 {
            var r = sampleRun("nightly-\(day)", day == 35 ? .failed : .succeeded)
            r.pipeline = "nightly"
            r.slot = String(format: "2026-10-%02dT00:15:00Z", day % 31 + 1) + (day > 30 ? "x" : "")
            runs.append(r)
        }
        let html = Dashboard.pipelinesPage([adhoc, nightly], runs: runs, viewer: Self.viewer, now: Date())
        #expect(html.contains("at 02:15 every day") && html.contains("Europe/Helsinki") && html.contains("2026-11-10T00:15:00Z"))
        #expect(html.components(separatedBy: "class=\"slot ").count - 1 == 30, "the last 30 runs")
        #expect(html.contains(#"href="/runs/nightly-35" title="2026-10-05T00:15:00Zx · failed""#), "\(html)")
        #expect(html.contains(#"action="/pipelines/nightly/run""#) && html.contains(#"action="/pipelines/nightly/pause""#))
        #expect(html.contains(#"action="/pipelines/adhoc/resume""#) && !html.contains(#"action="/pipelines/adhoc/pause""#))
        #expect(html.contains(">paused<") && html.contains("no runs yet"))
        #expect(html.contains(#"name="csrf" value="TOKEN""#))
        let readOnly = Dashboard.pipelinesPage([nightly], runs: runs, viewer: nil, now: Date())
        #expect(!readOnly.contains("<form") && readOnly.contains(#"<a href="/signin">Sign in</a>"#))
    }

    @Test func aFinishedRunListsTheWorkersThatRanItAndPublishFeedsTheDatasets() {
        var r = sampleRun("orders-1", .succeeded)
        r.stages = Stage.pipeline.map { s in var v = StageView(stage: s); v.total = 1; v.succeeded = 1; return v }
        r.published = ["orders_clean": "v1"]
        r.finishedAt = r.submittedAt.addingTimeInterval(60)
        let executed = [RunWorkerView(worker: "h1:42:abc", host: "h1", pid: 42, executions: 7, succeeded: 7,
                                      stages: Stage.pipeline, lastFinished: r.finishedAt)]
        let html = Dashboard.run(r, quarantine: [], inputs: ["/in/a.csv"], workers: [], now: r.finishedAt!, executed: executed)
        #expect(!html.contains("no worker has reported yet"), "\(html)")
        #expect(html.contains("h1:42:abc") && html.contains(">7<"))
        #expect(html.contains(#"<path class="published" data-from="publish""#), "\(html)")
        // Without executions (a run not started), the old line stays.
        #expect(Dashboard.run(r, quarantine: [], inputs: [], workers: [], now: Date()).contains("no worker has reported yet"))
    }
}
