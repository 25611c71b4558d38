import Coordination
import CoordinatorHTTP
import FleetCore
import Foundation

/// What the fake service answers for quarantine, lineage and OpenLineage:
/// small, but shaped as the engine's answers are.
enum Fixtures {
    static let inputSHA = String(repeating: "1f", count: 32)

    static let quarantine: [QuarantinedRow] = [
        QuarantinedRow(stage: .ingest, file: "/data/orders/a.csv", line: 17, column: "amount", rule: "parse",
                       reason: "'12,5' is not a decimal(10,2)", row: "17,12,5,2026-01-01",
                       chunk: "runs/r1/ingest/0/x1/quarantine.parquet"),
        QuarantinedRow(stage: .validate, file: nil, line: nil, column: nil, rule: "not_null id; unique id, day",
                       reason: "id is null; (null, 2026-01-02) seen before",
                       row: #"{"amount":"3.00","day":"2026-01-02","id":null,"note":"\#(String(repeating: "x", count: 200))"}"#,
                       chunk: "runs/r1/validate/1/x2/quarantine.parquet"),
        QuarantinedRow(stage: .validate, file: nil, line: nil, column: nil, rule: "range amount",
                       reason: "amount 900.00 is above 500", row: #"{"amount":"900.00","day":"2026-01-03","id":9}"#,
                       chunk: "runs/r1/validate/0/x3/quarantine.parquet"),
    ]

    /// published manifest ← validate ← (consolidate of two normalize chunks ← one ingest ← the input file).
    static var trace: LineageNode {
        let input = LineageNode(kind: .source, path: "/data/orders/a.csv", sha256: inputSHA, rows: 0, bytes: 64,
                                name: "orders", producedBy: nil, inputs: [])
        func by(_ stage: Stage, _ index: Int, _ x: String) -> LineageNode.ProducedBy {
            .init(run: "r1", stage: stage, task: "r1/\(stage.rawValue)/\(index)", execution: x, worker: "node-a:1", attempt: 1)
        }
        let ingest = LineageNode(kind: .data, path: "runs/r1/ingest/0/x1/part-00000.parquet", sha256: String(repeating: "a", count: 64),
                                 rows: 2, bytes: 900, name: nil, producedBy: by(.ingest, 0, "x1"), inputs: [input])
        let normalize0 = LineageNode(kind: .data, path: "runs/r1/normalize/0/x4/p0.parquet", sha256: String(repeating: "b", count: 64),
                                     rows: 1, bytes: 800, name: nil, producedBy: by(.normalize, 0, "x4"), inputs: [ingest])
        let normalize1 = LineageNode(kind: .data, path: "runs/r1/normalize/0/x4/p1.parquet", sha256: String(repeating: "c", count: 64),
                                     rows: 1, bytes: 800, name: nil, producedBy: by(.normalize, 0, "x4"), inputs: [ingest])
        let validate = LineageNode(kind: .data, path: "runs/r1/validate/0/x5/validated-00000.parquet",
                                   sha256: String(repeating: "d", count: 64), rows: 2, bytes: 1000, name: nil,
                                   producedBy: by(.validate, 0, "x5"), inputs: [normalize0, normalize1])
        return LineageNode(kind: .result, path: "published/orders/r1/_manifest.json", sha256: String(repeating: "e", count: 64),
                           rows: 2, bytes: 300, name: "orders", producedBy: by(.publish, 0, "x6"), inputs: [validate])
    }

    static let impact = ImpactReport(query: inputSHA, runs: [
        .init(run: "r1", pipeline: "orders", state: .succeeded, file: "/data/orders/a.csv", sha256: inputSHA,
              datasets: ["orders": "published/orders/r1", "orders_by_day": "published/orders_by_day/r1"],
              deliveries: ["runs/r1/deliver/0/x7/receipt.json"]),
        .init(run: "r2", pipeline: "orders", state: .failed, file: "/data/orders/a.csv", sha256: inputSHA,
              datasets: [:], deliveries: []),
    ])

    /// Two executions' events, decoded as a client would (the type has no public memberwise init).
    static var events: [OpenLineageEvent] {
        let parent = #"{"_producer":"https://github.com/bis-fleet/bis/tree/test","_schemaURL":"https://openlineage.io/spec/facets/1-0-1/ParentRunFacet.json#/$defs/ParentRunFacet","job":{"name":"orders","namespace":"bis"},"run":{"runId":"3f1b6c1e-8a39-4c7e-9d7e-0a8f7f1c2b3d"}}"#
        func facet(_ x: String, _ state: String) -> String {
            #"{"_producer":"https://github.com/bis-fleet/bis/tree/test","_schemaURL":"https://github.com/bis-fleet/bis/blob/main/docs/openlineage.md#bis_execution","attempt":1,"execution":"\#(x)","state":"\#(state)","task":"r1/ingest/0","worker":"node-a:1"}"#
        }
        func event(_ type: String, _ x: String, _ runId: String, _ state: String, outputs: String) -> String {
            #"{"eventTime":"2026-11-27T05:00:0\#(type == "START" ? 1 : 2).000Z","eventType":"\#(type)","inputs":[{"name":"/data/orders/a.csv","namespace":"file"}],"job":{"name":"orders.ingest","namespace":"bis"},"outputs":\#(outputs),"producer":"https://github.com/bis-fleet/bis/tree/test","run":{"facets":{"bis_execution":\#(facet(x, state)),"parent":\#(parent)},"runId":"\#(runId)"},"schemaURL":"https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"}"#
        }
        let out = #"[{"name":"/data/root/runs/r1/ingest/0/x1/part-00000.parquet","namespace":"file"}]"#
        let lines = [
            event("START", "x1", "5d0e1a52-6c1f-4e0b-8a43-2b9d3c4e5f60", "succeeded", outputs: "[]"),
            event("COMPLETE", "x1", "5d0e1a52-6c1f-4e0b-8a43-2b9d3c4e5f60", "succeeded", outputs: out),
        ]
        return lines.map { try! APICoding.decoder().decode(OpenLineageEvent.self, from: Data($0.utf8)) }
    }

    /// Whole seconds, fixed once: the same progress gives equal views, as the API's millisecond dates do.
    static let recently = Date(timeIntervalSince1970: (Date().timeIntervalSince1970 - 30).rounded(.down))

    /// A run at `done` of 4 ingest tasks, settling as `final` after the last.
    static func progressing(_ id: String, done: Int, final: RunState) -> RunView {
        var run = RunView(id: id, pipeline: "orders", state: done < 4 ? .running : final, specSHA256: String(repeating: "b", count: 64),
                          submittedBy: "ann@host", submittedAt: recently)
        var ingest = StageView(stage: .ingest)
        ingest.total = 4
        ingest.succeeded = done
        ingest.running = done < 4 ? 1 : 0
        ingest.queued = max(0, 4 - done - 1)
        ingest.rowsIn = Int64(done * 100)
        ingest.rowsOut = Int64(done * 98)
        ingest.rowsQuarantined = Int64(done * 2)
        ingest.startedAt = recently.addingTimeInterval(10)
        if done == 4 && final == .failed {
            ingest.succeeded = 3
            ingest.failed = 1
            ingest.lastError = "ingest of shard 3 (a.csv): not_null id: 12 rows"
            run.message = "task ingest 3 failed: not_null id: 12 rows"
        }
        run.stages = [ingest]
        return run
    }
}
