import CoordinatorAPI
@testable import CoordinatorHTTP
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Testing

/// What a web page could make a browser send to a coordinator on loopback:
/// a form POST (no JSON) or a request under another host name (DNS rebinding).
@Suite struct RequestOriginTests {
    @Test func aPostThatIsNotJSONIs415AndDoesNothing() async throws {
        try await withServer { fake, http in
            var request = URLRequest(url: URL(string: http.base + "/api/runs")!)
            request.httpMethod = "POST"
            request.httpBody = Data(#"{"specPath":"/x.yml","submittedBy":"page"}"#.utf8)
            request.setValue("text/plain", forHTTPHeaderField: "Content-Type")
            let (data, response) = try await URLSession.shared.data(for: request)
            #expect((response as! HTTPURLResponse).statusCode == 415)
            #expect(String(decoding: data, as: UTF8.self).contains("application/json"))
            #expect(await fake.submitted.isEmpty)
        }
    }

    @Test func anotherHostNameIs403() async throws {
        try await withServer { _, http in
            var request = URLRequest(url: URL(string: http.base + "/api/runs")!)
            request.setValue("evil.example:8470", forHTTPHeaderField: "Host")
            let (data, response) = try await URLSession.shared.data(for: request)
            #expect((response as! HTTPURLResponse).statusCode == 403, "\(String(decoding: data, as: UTF8.self))")
            #expect(try await http.get("/api/runs").status == 200, "the coordinator's own address still works")
        }
    }

    @Test func allowedHostNames() {
        let loopback = AllowedHosts(listenHost: "127.0.0.1")
        for ok in ["127.0.0.1:8470", "localhost:8470", "LOCALHOST", "[::1]:8470", "localhost."] {
            #expect(loopback.allows(ok), "\(ok)")
        }
        for bad in ["evil.example:8470", "127.0.0.1.evil.example", "10.0.0.5:8470"] {
            #expect(!loopback.allows(bad), "\(bad)")
        }
        let published = AllowedHosts(listenHost: "0.0.0.0", publicHost: "bis.example.com")
        #expect(published.allows("bis.example.com:8470"))
        #expect(!published.allows("evil.example"))
        #expect(AllowedHosts(listenHost: "0.0.0.0").allows("anything"), "a wildcard listener cannot tell")
        let lan = AllowedHosts(listenHost: "192.0.2.7")
        #expect(lan.allows("192.0.2.7:8470"))
        #expect(!lan.allows("localhost:8470"))
    }

    @Test func contentTypes() {
        #expect(RequestOrigin.contentTypeProblem("application/json", hasBody: true) == nil)
        #expect(RequestOrigin.contentTypeProblem("application/json; charset=utf-8", hasBody: true) == nil)
        #expect(RequestOrigin.contentTypeProblem(nil, hasBody: false) == nil)
        #expect(RequestOrigin.contentTypeProblem(nil, hasBody: true) != nil)
        for form in ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"] {
            #expect(RequestOrigin.contentTypeProblem(form, hasBody: true) != nil, "\(form)")
        }
    }
}
