import CRabbitMQ
import Testing
@testable import AMQP

@Suite struct FieldTableTests {
    @Test func headersSurviveTheCRoundTrip() {
        let arena = CArena()
        let values: [(String, HeaderValue)] = [
            ("s", .string("grüße")), ("i", .int(-42)), ("b", .bool(true)), ("d", .double(2.5)),
            ("raw", .bytes([0, 1, 255])), ("empty", .string("")),
        ]
        let table = arena.table(values)
        #expect(table.num_entries == Int32(values.count))
        let back = decodeTable(table)
        #expect(back == Dictionary(uniqueKeysWithValues: values))
    }

    @Test func propertiesCarryPersistenceAndIDs() {
        let arena = CArena()
        var m = OutgoingMessage("x")
        m.messageID = "m-1"
        m.correlationID = "c-1"
        m.headers = ["run": .string("r1")]
        let p = arena.properties(m, extraHeaders: [("seq", .int(7))])
        let back = decodeProperties(p)
        #expect(back.persistent)
        #expect(back.messageID == "m-1" && back.correlationID == "c-1" && back.contentType == "text/plain")
        #expect(back.headers == ["run": .string("r1"), "seq": .int(7)])

        m.persistent = false
        m.headers = [:]
        let transient = decodeProperties(arena.properties(m, extraHeaders: []))
        #expect(!transient.persistent && transient.headers.isEmpty)
    }
}
