import CRabbitMQ
import Testing
@testable import AMQP

/// `x-death` comes in headers any publisher can set: whatever its shape,
/// decoding must not crash and must give something sensible.
@Suite struct HostileDeathHeaderTests {
    private func deaths(_ arena: CArena, _ entries: [(String, amqp_field_value_t)]) -> [Death] {
        decodeDeaths(arena.rawTable(entries))
    }

    private func array(_ arena: CArena, _ items: [amqp_field_value_t]) -> amqp_field_value_t {
        var v = amqp_field_value_t()
        v.kind = UInt8(AMQP_FIELD_KIND_ARRAY.rawValue)
        if items.isEmpty {
            v.value.array = amqp_array_t(num_entries: 0, entries: nil)
            return v
        }
        let p = UnsafeMutablePointer<amqp_field_value_t>.allocate(capacity: items.count)
        p.initialize(from: items, count: items.count)
        arenaKeep.append(p)
        v.value.array = amqp_array_t(num_entries: Int32(items.count), entries: p)
        return v
    }

    private func death(_ arena: CArena, _ fields: [(String, amqp_field_value_t)]) -> amqp_field_value_t {
        arena.tableField(arena.rawTable(fields))
    }

    private func raw(kind: amqp_field_value_kind_t, _ set: (inout amqp_field_value_t) -> Void) -> amqp_field_value_t {
        var v = amqp_field_value_t()
        v.kind = UInt8(kind.rawValue)
        set(&v)
        return v
    }

    // Arrays of field values are not an arena shape; kept alive for the test.
    private final class Keep { var items: [UnsafeMutablePointer<amqp_field_value_t>] = []; deinit { items.forEach { $0.deallocate() } } }
    private let keep = Keep()
    private var arenaKeep: [UnsafeMutablePointer<amqp_field_value_t>] {
        get { keep.items }
        nonmutating set { keep.items = newValue }
    }

    @Test func aWellFormedEntryIsRead() {
        let a = CArena()
        let d = deaths(a, [("x-death", array(a, [death(a, [("reason", a.field(.string("delivery_limit"))),
                                                           ("queue", a.field(.string("bis.stage.ingest"))),
                                                           ("count", a.field(.int(3)))])]))])
        #expect(d == [Death(reason: "delivery_limit", queue: "bis.stage.ingest", count: 3)])
    }

    @Test func xDeathOfTheWrongKindOrEmptyGivesNone() {
        let a = CArena()
        #expect(deaths(a, [("x-death", a.field(.string("delivery_limit")))]).isEmpty)
        #expect(deaths(a, [("x-death", a.field(.int(7)))]).isEmpty)
        #expect(deaths(a, [("x-death", a.field(.bytes([1, 2, 3])))]).isEmpty)
        #expect(deaths(a, [("x-death", array(a, []))]).isEmpty)
        #expect(deaths(a, [("x-death", a.tableField(a.rawTable([])))]).isEmpty)
        #expect(deaths(a, []).isEmpty)
    }

    @Test func entriesThatAreNotTablesAreSkipped() {
        let a = CArena()
        let d = deaths(a, [("x-death", array(a, [a.field(.string("rejected")), a.field(.int(1)),
                                                 array(a, [a.field(.string("nested"))]),
                                                 death(a, [("reason", a.field(.string("rejected")))])]))])
        #expect(d == [Death(reason: "rejected", queue: "", count: 1)])
    }

    @Test func missingOrMistypedFieldsGetDefaults() {
        let a = CArena()
        let d = deaths(a, [("x-death", array(a, [
            death(a, []),
            death(a, [("reason", a.field(.bytes(Array("expired".utf8)))), ("queue", a.field(.int(5))),
                      ("count", a.field(.string("many")))]),
            death(a, [("reason", a.field(.string(""))), ("queue", a.field(.bool(true))), ("count", a.field(.double(2.5)))]),
        ]))])
        #expect(d == [Death(reason: "unknown", queue: "", count: 1),
                      Death(reason: "unknown", queue: "", count: 1),
                      Death(reason: "unknown", queue: "", count: 1)])
    }

    @Test func hugeAndNegativeCountsDoNotTrap() {
        let a = CArena()
        let u64max = raw(kind: AMQP_FIELD_KIND_U64) { $0.value.u64 = .max }
        let i64max = raw(kind: AMQP_FIELD_KIND_I64) { $0.value.i64 = .max }
        let i64min = raw(kind: AMQP_FIELD_KIND_I64) { $0.value.i64 = .min }
        let u32max = raw(kind: AMQP_FIELD_KIND_U32) { $0.value.u32 = .max }
        let d = deaths(a, [("x-death", array(a, [u64max, i64max, i64min, u32max].map { count in
            death(a, [("reason", a.field(.string("rejected"))), ("queue", a.field(.string("q"))), ("count", count)])
        }))])
        #expect(d.map(\.count) == [0, Int(Int64.max), 0, Int(UInt32.max)])
        #expect(d.allSatisfy { $0.reason == "rejected" && $0.queue == "q" })
    }

    @Test func onlyTheFirstXDeathKeyCounts() {
        let a = CArena()
        let first = array(a, [death(a, [("reason", a.field(.string("expired"))), ("queue", a.field(.string("one")))])])
        let second = array(a, [death(a, [("reason", a.field(.string("rejected"))), ("queue", a.field(.string("two")))])])
        #expect(deaths(a, [("x-death", first), ("x-death", second)]) == [Death(reason: "expired", queue: "one", count: 1)])
        // A non-array first key hides a well-formed second one.
        #expect(deaths(a, [("x-death", a.field(.string("x"))), ("x-death", second)]).isEmpty)
    }

    /// Through `decodeProperties`, as a delivery's headers are read.
    @Test func aHostileHeaderThroughThePropertiesDecoder() {
        let a = CArena()
        var p = amqp_basic_properties_t()
        p._flags = UInt32(AMQP_BASIC_HEADERS_FLAG)
        p.headers = a.rawTable([("x-death", array(a, [death(a, [("count", raw(kind: AMQP_FIELD_KIND_U64) { $0.value.u64 = .max })])])),
                                ("x-first-death-reason", a.field(.int(1)))])
        let m = decodeProperties(p)
        #expect(m.deaths == [Death(reason: "unknown", queue: "", count: 0)])
        #expect(m.headers["x-death"] == nil, "arrays stay out of the plain headers")
    }
}
