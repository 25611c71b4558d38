// The stage operators: plain functions over chunks. Ingest, normalize (with the
// shuffle) and consolidate live in their own folders; this file only names the
// module's place in the design (see ../shared/DESIGN.md, "Data flow").
import Columnar
import FleetCore

/// The seven stages of a run, in order.
public enum StageName: String, CaseIterable, Sendable, Codable {
    case ingest, normalize, consolidate, validate, publish, report, deliver
}
