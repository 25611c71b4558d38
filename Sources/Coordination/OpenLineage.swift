import Crypto
import FleetCore
import Foundation
import GRDB

/// The engine's side of the OpenLineage export (the event type is in
/// CoordinatorAPI): who produced the events, their schema, and stable run ids.
extension OpenLineageEvent {
    static let producer = "https://github.com/bis-fleet/bis/tree/\(FleetVersion.string)"
    static let schema = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"

    /// A stable UUID (v4 layout) from any id.
    static func uuid(_ id: String) -> String {
        var b = Array(SHA256.hash(data: Array(id.utf8)).prefix(16))
        b[6] = (b[6] & 0x0f) | 0x40
        b[8] = (b[8] & 0x3f) | 0x80
        let hex = b.map { String(format: "%02x", $0) }.joined()
        let c = Array(hex)
        return "\(String(c[0..<8]))-\(String(c[8..<12]))-\(String(c[12..<16]))-\(String(c[16..<20]))-\(String(c[20..<32]))"
    }
}

extension CoordinatorEngine {
    public func openLineage(_ run: String) async throws -> [OpenLineageEvent] {
        let root = chunkStore.root
        let now = clock.seconds
        return try await store.read { db in
            guard let record = try RunRecord.fetch(db, run) else { throw ServiceError.notFound("no run \(run)") }
            let formatter = ISO8601DateFormatter()
            formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
            func time(_ t: Double?) -> String { formatter.string(from: Date(timeIntervalSince1970: t ?? record.submittedAt)) }
            let namespace = "bis"
            let parentJob = OpenLineageEvent.JobRef(namespace: namespace, name: record.pipeline)
            let parent = OpenLineageEvent.ParentFacet(
                _producer: OpenLineageEvent.producer,
                _schemaURL: "https://openlineage.io/spec/facets/1-0-1/ParentRunFacet.json#/$defs/ParentRunFacet",
                run: .init(runId: OpenLineageEvent.uuid(run)), job: parentJob)
            func dataset(_ path: String) -> OpenLineageEvent.Dataset {
                .init(namespace: "file", name: path.hasPrefix("/") ? path : root + "/" + path)
            }
            var events: [OpenLineageEvent] = []
            let runJob = OpenLineageEvent.Job(namespace: namespace, name: record.pipeline)
            let runID = OpenLineageEvent.uuid(run)
            events.append(OpenLineageEvent(eventType: "START", eventTime: time(record.submittedAt),
                                           run: .init(runId: runID, facets: .init(parent: nil, errorMessage: nil, bis_execution: nil)),
                                           job: runJob, inputs: [], outputs: [], producer: OpenLineageEvent.producer,
                                           schemaURL: OpenLineageEvent.schema))
            for x in try Row.fetchAll(db, sql: """
                SELECT x.*, t.stage, t.idx, t.id AS task_id FROM executions x JOIN tasks t ON t.id = x.task
                WHERE t.run = ? ORDER BY x.started_at, x.id
                """, arguments: [run]) {
                let execution: String = x["id"]
                let stage = try x.decode(Stage.self, "stage", table: "tasks", row: "of execution \(execution)")
                let state: String = x["state"]
                let taskID = FleetIDs.taskID(run: run, stage: stage, index: x["idx"])
                let inputs = try String.fetchAll(db, sql: """
                    SELECT c.path FROM task_inputs i JOIN chunks c ON c.id = i.chunk WHERE i.task = ? ORDER BY c.id
                    """, arguments: [x["task_id"] as Int64]).map(dataset)
                let outputs = try String.fetchAll(db, sql: """
                    SELECT c.path FROM edges e JOIN chunks c ON c.id = e.chunk WHERE e.execution = ? AND e.direction = 'out' ORDER BY c.id
                    """, arguments: [execution]).map(dataset)
                let facet = OpenLineageEvent.ExecutionFacet(
                    _producer: OpenLineageEvent.producer,
                    _schemaURL: "https://github.com/bis-fleet/bis/blob/main/docs/openlineage.md#bis_execution",
                    task: taskID, execution: execution, attempt: x["attempt"], state: state, worker: x["worker"])
                let job = OpenLineageEvent.Job(namespace: namespace, name: "\(record.pipeline).\(stage.rawValue)")
                let olRun = OpenLineageEvent.uuid(execution)
                events.append(OpenLineageEvent(eventType: "START", eventTime: time(x["started_at"]),
                                               run: .init(runId: olRun, facets: .init(parent: parent, errorMessage: nil, bis_execution: facet)),
                                               job: job, inputs: inputs, outputs: [], producer: OpenLineageEvent.producer,
                                               schemaURL: OpenLineageEvent.schema))
                guard state != "running" else { continue }
                let ok = state == "succeeded"
                let error: OpenLineageEvent.ErrorFacet? = (x["error"] as String?).map {
                    .init(_producer: OpenLineageEvent.producer,
                          _schemaURL: "https://openlineage.io/spec/facets/1-0-0/ErrorMessageRunFacet.json#/$defs/ErrorMessageRunFacet",
                          message: $0, programmingLanguage: "Swift")
                }
                // A duplicate did its work but was not used: COMPLETE with no
                // outputs; an abandoned one never reported: ABORT; a lost or
                // failed one: FAIL.
                let end = ok || state == "duplicate" ? "COMPLETE" : state == "abandoned" ? "ABORT" : "FAIL"
                events.append(OpenLineageEvent(eventType: end,
                                               eventTime: time(x["finished_at"]),
                                               run: .init(runId: olRun, facets: .init(parent: parent, errorMessage: error, bis_execution: facet)),
                                               job: job, inputs: inputs, outputs: ok ? outputs : [], producer: OpenLineageEvent.producer,
                                               schemaURL: OpenLineageEvent.schema))
            }
            // The BIS run's end, once it has one: awaiting approval is not an end.
            let end: String? = switch record.state {
            case .succeeded: "COMPLETE"
            case .failed: "FAIL"
            case .cancelled: "ABORT"
            case .pending, .running, .awaitingApproval: nil
            }
            if let end {
                let error: OpenLineageEvent.ErrorFacet? = record.state == .failed
                    ? .init(_producer: OpenLineageEvent.producer,
                            _schemaURL: "https://openlineage.io/spec/facets/1-0-0/ErrorMessageRunFacet.json#/$defs/ErrorMessageRunFacet",
                            message: record.message ?? "the run failed", programmingLanguage: "Swift")
                    : nil
                events.append(OpenLineageEvent(eventType: end, eventTime: time(record.finishedAt ?? now),
                                               run: .init(runId: runID, facets: .init(parent: nil, errorMessage: error, bis_execution: nil)),
                                               job: runJob, inputs: [], outputs: [], producer: OpenLineageEvent.producer,
                                               schemaURL: OpenLineageEvent.schema))
            }
            return events
        }
    }
}
