import Foundation
import Testing
@testable import Stages

/// Delivery to a real HTTP endpoint: Tests/StagesTests/python/deliver_server.py.
@Suite(.enabled(if: DeliverPython.enabled, "no Python for the test endpoint (set BIS_PYTHON)"))
struct DeliverHTTPTests {
    let token = "s3cret-token-42"

    func deliverTo(_ url: URL, _ f: DeliverFixture, at time: Date? = nil, env: [String: String]? = nil) async throws -> DeliveryReceipt {
        try await deliver(files: f.files, run: f.run, dataset: "orders", version: f.run,
                          approval: Approval(approver: "ana", approvedAt: f.now), requireApproval: true,
                          target: .http(url: url, tokenEnv: "FINANCE_TOKEN"), dataRoot: f.root, now: time ?? f.now,
                          environment: env ?? ["FINANCE_TOKEN": token])
    }

    @Test func postsTheReceiptWithKeyAndTokenAndARetryCountsAsDelivered() async throws {
        let f = try DeliverFixture()
        let endpoint = try DeliveryEndpoint(recordFile: f.dir.file("requests.jsonl"))
        defer { endpoint.stop(); f.dir.cleanup() }

        let receipt = try await deliverTo(endpoint.url("/receipts?sig=abc"), f)
        var requests = try endpoint.requests()
        try #require(requests.count == 1)
        let first = requests[0]
        #expect(first.path == "/receipts?sig=abc")
        #expect(first.status == 201)
        #expect(first.idempotency_key == receipt.idempotencyKey)
        #expect(first.authorization == "Bearer \(token)")
        #expect(first.content_type == "application/json")
        #expect(try DeliveryReceipt.decode(Data(first.body.utf8)) == receipt)
        #expect(receipt.approval?.approver == "ana")
        #expect(receipt.target == "http://127.0.0.1:\(endpoint.port)/receipts")   // no query: it may hold secrets
        #expect(!first.body.contains(token))
        #expect(!FileManager.default.fileExists(atPath: f.root + "/outbox"))

        // A retry an hour later: same key, the server answers 409, which is success.
        let retried = try await deliverTo(endpoint.url("/receipts?sig=abc"), f, at: f.now + 3600)
        requests = try endpoint.requests()
        try #require(requests.count == 2)
        #expect(requests[1].idempotency_key == receipt.idempotencyKey)
        #expect(requests[1].status == 409)
        #expect(retried.idempotencyKey == receipt.idempotencyKey)
    }

    @Test func aServerErrorIsAClearBoundedErrorWithoutTheToken() async throws {
        let f = try DeliverFixture()
        let endpoint = try DeliveryEndpoint(recordFile: f.dir.file("requests.jsonl"))
        defer { endpoint.stop(); f.dir.cleanup() }

        let error = await #expect(throws: DeliveryError.self) { try await deliverTo(endpoint.url("/fail"), f) }
        guard case .httpStatus(let url, let status, let excerpt) = error else {
            Issue.record("expected httpStatus, got \(String(describing: error))")
            return
        }
        #expect(status == 500)
        #expect(url == "http://127.0.0.1:\(endpoint.port)/fail")
        #expect(excerpt.hasPrefix("database is down"))
        #expect(excerpt.utf8.count < HTTPDelivery.excerptLimit + 40)
        let message = error?.description ?? ""
        #expect(message.contains("HTTP 500") && message.contains("database is down"))
        #expect(!message.contains(token))
        #expect(error?.isTransient == true)
        #expect(try endpoint.requests().count == 1)
    }

    @Test func aRedirectIsNotFollowed() async throws {
        let f = try DeliverFixture()
        let endpoint = try DeliveryEndpoint(recordFile: f.dir.file("requests.jsonl"))
        defer { endpoint.stop(); f.dir.cleanup() }
        let error = await #expect(throws: DeliveryError.self) { try await deliverTo(endpoint.url("/redirect"), f) }
        guard case .httpStatus(_, let status, _) = error else {
            Issue.record("expected httpStatus, got \(String(describing: error))")
            return
        }
        #expect(status == 307)
        #expect(try endpoint.requests().map(\.path) == ["/redirect"])
    }

    @Test func aMissingTokenIsRefusedBeforeAnythingIsSent() async throws {
        let f = try DeliverFixture()
        let endpoint = try DeliveryEndpoint(recordFile: f.dir.file("requests.jsonl"))
        defer { endpoint.stop(); f.dir.cleanup() }
        let error = await #expect(throws: DeliveryError.self) { try await deliverTo(endpoint.url("/receipts"), f, env: [:]) }
        #expect(error?.description.contains("FINANCE_TOKEN") == true)
        #expect(try endpoint.requests().isEmpty)
    }

    @Test func anUnreachableEndpointIsATransportError() async throws {
        let f = try DeliverFixture()
        defer { f.dir.cleanup() }
        // Port 9 (discard) on loopback: nobody listens there in a test machine.
        let error = await #expect(throws: DeliveryError.self) { try await deliverTo(URL(string: "http://127.0.0.1:9/x")!, f) }
        guard case .transport = error else {
            Issue.record("expected transport, got \(String(describing: error))")
            return
        }
        #expect(!(error?.description.contains(token) ?? true))
    }
}
