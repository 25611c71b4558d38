import Foundation
import Testing
@testable import FleetCore

/// A fresh folder under the system temp dir, removed by `remove()`.
struct TempDir {
    let path: String

    init() throws {
        let url = FileManager.default.temporaryDirectory
            .appendingPathComponent("bis-spec-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        path = url.path
    }

    /// Writes `contents` at `relative`, creating folders.
    @discardableResult
    func write(_ relative: String, _ contents: String = "") throws -> String {
        let full = path + "/" + relative
        let folder = (full as NSString).deletingLastPathComponent
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        try contents.write(toFile: full, atomically: true, encoding: .utf8)
        return full
    }

    func remove() {
        try? FileManager.default.removeItem(atPath: path)
    }
}

/// Runs `body` with a temp dir that is removed afterwards, even on failure.
func withTempDir<T>(_ body: (TempDir) throws -> T) throws -> T {
    let dir = try TempDir()
    defer { dir.remove() }
    return try body(dir)
}

/// Parses without touching files; the spec's folder is a path that need not exist.
func parseSpec(_ yaml: String, checker: (any ExpressionChecker)? = nil) throws(SpecErrors) -> PipelineSpec {
    try PipelineSpec.parse(yaml: yaml, file: "spec.yml", directory: "/nonexistent/specs", expressionChecker: checker)
}

/// The error lines a spec produces; empty when it parses.
func specErrors(_ yaml: String, checker: (any ExpressionChecker)? = nil) -> [String] {
    do {
        _ = try parseSpec(yaml, checker: checker)
        return []
    } catch {
        return error.errors.map(\.description)
    }
}

/// A small valid spec to which tests append or in which they replace lines.
/// Line numbers matter to the tests: `columns:` entries are lines 6 to 9.
let baseSpec = """
pipeline: orders
sources:
  orders:
    format: csv
    files: data/*.csv
    columns:
      id: int64
      name: string
      amount: decimal(12,2)
      day: date

"""

/// The example spec from DESIGN.md, verbatim.
let designExampleSpec = """
pipeline: lineitem-daily
sources:
  lineitem:
    format: csv
    files: data/lineitem/*.csv
    header: true
    columns:
      l_orderkey: int64
      l_linenumber: int64
      l_quantity: decimal(15,2)
      l_extendedprice: decimal(15,2)
      l_discount: decimal(15,2)
      l_returnflag: string
      l_linestatus: string
      l_shipdate: date
      l_commitdate: date
normalize:
  - derive: { revenue: "l_extendedprice * (1 - l_discount)" }
  - filter: "l_shipdate <= date '1998-09-02'"
consolidate:
  partition_by: [l_orderkey]
  partitions: 4
  dedupe: { key: [l_orderkey, l_linenumber], keep: latest, by: l_commitdate }
  sort_by: [l_orderkey, l_linenumber]
validate:
  - not_null: [l_orderkey]
  - unique: [l_orderkey, l_linenumber]
  - range: { column: l_discount, min: 0, max: 0.10 }
  - max_failure_rate: 5%
publish:
  dataset: lineitem
  summaries:
    lineitem_by_status:
      group_by: [l_returnflag, l_linestatus]
      aggregates:
        sum_qty: sum(l_quantity)
        revenue: sum(revenue)
        orders: count()
report: { title: Lineitem summary }
deliver: { to: outbox/finance, approval: required }

"""
