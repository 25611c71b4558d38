import Foundation
import TestSupport
import Testing

let validatedSpec = OrdersSpec.source + """
consolidate:
  partition_by: [id]
  partitions: 1
  sort_by: [id]
validate:
  - not_null: [amount]
  - range: {column: amount, min: 0, max: 100}
  - max_failure_rate: 10%
publish:
  dataset: orders
  summaries:
    by_day:
      group_by: [day]
      aggregates:
        total: sum(amount)

"""

@Suite struct StageValidateTests {
    @Test func validateQuarantinesWritesItsResultAndDecidesTheGate() throws {
        let ws = try Workspace()
        defer { ws.remove() }
        try ws.write("p.yml", validatedSpec)
        try ws.write("data/a.csv", "id,amount,day\n1,10.50,2026-01-01\n2,,2026-01-02\n3,250.00,2026-01-03\n4,7.25,2026-01-03\n")
        #expect(try Bis.run(["stage", "run", "ingest", "--spec", "p.yml", "--out", "i"], in: ws.path).status == 0)
        #expect(try Bis.run(["stage", "run", "normalize", "--spec", "p.yml", "--input", "i", "--out", "n"], in: ws.path).status == 0)
        #expect(try Bis.run(["stage", "run", "consolidate", "--spec", "p.yml", "--input", "n", "--partition", "0",
                             "--out", "c0"], in: ws.path).status == 0)

        let r = try Bis.run(["stage", "run", "validate", "--spec", "p.yml", "--input", "c0", "--partition", "0",
                             "--out", "v0", "--json"], in: ws.path)
        #expect(r.status == 0, "\(r.stderr)")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any], "\(r.stdout)")
        #expect(json["rowsIn"] as? Int == 4)
        #expect(json["rowsOut"] as? Int == 2)
        #expect(json["rowsQuarantined"] as? Int == 2)
        let outputs = try #require(json["outputs"] as? [[String: Any]])
        #expect(outputs.map { ($0["path"] as? String ?? "").hasSuffix("/v0/validated-00000.parquet") } == [true])
        #expect((json["quarantine"] as? [[String: Any]])?.first?["rows"] as? Int == 2)
        let gate = try #require(json["gate"] as? [String: Any])
        #expect(gate["passed"] as? Bool == false)
        #expect(gate["message"] as? String == "quality gate failed: 50.0% of 4 rows failed (max_failure_rate 10%): "
            + "not_null amount: 1 row, e.g. row {id: 2, amount: null} (amount is null); "
            + "range amount: 1 row, e.g. row {id: 3, amount: 250.00} (amount 250.00 is above max 100)")

        // The stored result: what the coordinator would keep, with the summary's partial.
        let resultPath = try #require(json["result"] as? String)
        let result = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: resultPath)))
            as? [String: Any])
        #expect(result["rowsPassed"] as? Int == 2)
        #expect((result["rules"] as? [[String: Any]])?.map { $0["failed"] as? Int } == [1, 1])
        #expect((result["summaries"] as? [[String: Any]])?.first?["name"] as? String == "by_day")

        // Without --json: the counts, the files and the decision.
        let text = try Bis.run(["stage", "run", "validate", "--spec", "p.yml", "--input", "c0", "--partition", "0",
                                "--out", "v1"], in: ws.path)
        #expect(text.status == 0, "\(text.stderr)")
        #expect(text.stdout.hasPrefix("validate: 4 rows in, 2 out, 2 quarantined\n"))
        #expect(text.stdout.contains("quality gate failed: 50.0% of 4 rows failed"))
    }

    @Test func validateNeedsAPartition() throws {
        let ws = try Workspace()
        defer { ws.remove() }
        try ws.write("p.yml", validatedSpec)
        let r = try Bis.run(["stage", "run", "validate", "--spec", "p.yml", "--input", "c0", "--out", "v"], in: ws.path)
        #expect(r.status == 2, "usage errors exit with 2")
        #expect(r.stderr.contains("validate needs --partition N"), "\(r.stderr)")
    }
}
