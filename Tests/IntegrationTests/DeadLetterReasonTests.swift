import AMQP
import FleetAMQP
import Testing

/// `deadLetterReason` from what a hostile or odd `x-death` decodes to (see
/// AMQPTests' HostileDeathHeaderTests for the decoding): no broker needed.
@Suite struct DeadLetterReasonTests {
    private func reason(_ deaths: [Death], headers: [String: HeaderValue] = [:], limit: Int? = 2) -> String {
        var p = MessageProperties()
        p.deaths = deaths
        p.headers = headers
        return AMQPTransport.deadLetterReason(p, deliveryLimit: limit)
    }

    @Test func anEmptyQueueNameIsLeftOutNotShownAsABlank() {
        #expect(reason([Death(reason: "rejected", queue: "", count: 1)]) == "rejected: a worker rejected the task")
        #expect(reason([Death(reason: "expired", queue: "", count: 0)]) == "expired")
        #expect(reason([], headers: ["x-first-death-reason": .string("expired"), "x-first-death-queue": .string("")]) == "expired")
        #expect(!reason([Death(reason: "delivery_limit", queue: "", count: 0)]).contains("from  "))
    }

    @Test func missingOrEmptyReasonsReadUnknown() {
        #expect(reason([Death(reason: "", queue: "q", count: 1)]) == "unknown from q")
        #expect(reason([]) == "unknown")
        #expect(reason([], headers: ["x-first-death-reason": .int(3)]) == "unknown")
    }

    @Test func longHostileTextIsCut() {
        let long = String(repeating: "q", count: 100_000)
        let r = reason([Death(reason: long, queue: long, count: Int.max)])
        #expect(r.count < 500, "\(r.count) characters")
        #expect(r.hasSuffix("…"))
    }

    @Test func aHugeCountDoesNotChangeTheDeliveryLimitText() {
        let r = reason([Death(reason: "delivery_limit", queue: "bis.stage.ingest", count: Int.max)], limit: 2)
        #expect(r == "delivery_limit: delivery limit reached from bis.stage.ingest: the task was handed back 3 times without a result")
    }
}
