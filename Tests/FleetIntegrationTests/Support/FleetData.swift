import Foundation
import TestSupport

/// The input every fleet test runs over, and the spec that reads it.
///
/// Three CSV files of 400 rows (the second with CRLF record ends) with the
/// mess a real export has: stray spaces and odd case in `region`, `NA`,
/// `NULL` and empty values, quoted line breaks and doubled quotes in
/// `note`, values that do not type (quarantined by ingest), non-positive
/// quantities (filtered by normalize), ids repeated across files (deduped
/// by consolidate, latest `day` wins) and amounts of 500 and more (tier
/// 'high', quarantined by validate). `shard_size: 2KiB` cuts each file into
/// several ingest tasks. `check_fleet.py` computes the same in DuckDB.
enum FleetData {
    /// The input: `MessyOrders` (TestSupport), the same files the
    /// pipeline cross-checks of StagesTests use.
    static func writeInputs(to dir: String) throws -> (files: [String], dirty: Int) {
        try MessyOrders.writeInputs(to: dir)
    }

    /// The pipeline spec. `dataset` and `summary` name what publish writes
    /// (distinct per pipeline when two runs share a data root).
    static func spec(pipeline: String, dataset: String, summary: String, approval: String = "none") -> String {
        MessyOrders.specHead(pipeline: pipeline) + """
        validate:
          - allowed: {column: tier, values: [low, none]}
          - max_failure_rate: 90%
        publish:
          dataset: \(dataset)
          summaries:
            \(summary):
              group_by: [region]
              aggregates:
                lines: count()
                total_qty: sum(qty)
        report: {title: "Fleet test \(pipeline)"}
        deliver: {to: outbox/\(pipeline), approval: \(approval)}

        """
    }
}

/// A short random hex string for names no other test uses.
func randomHex(_ digits: Int = 8) -> String {
    String((0..<digits).map { _ in "0123456789abcdef".randomElement()! })
}
