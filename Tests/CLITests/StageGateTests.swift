import Foundation
import TestSupport
import Testing

/// validate per partition, then `bis stage gate` over all of them (exit 1 on
/// a failed gate), then publish from validate's outputs: the back half of a
/// run chained by hand.
@Suite struct StageGateTests {
    @Test func theGateIsDecidedOverEveryPartitionAndPublishReadsValidatesOutput() throws {
        let ws = try Workspace()
        defer { ws.remove() }
        // Two partitions; 1 bad row of 6 passes a 20% gate over the run, though
        // the bad row's partition alone would fail it.
        try ws.write("p.yml", validatedSpec
            .replacingOccurrences(of: "partitions: 1", with: "partitions: 2")
            .replacingOccurrences(of: "max_failure_rate: 10%", with: "max_failure_rate: 20%"))
        try ws.write("data/a.csv", "id,amount,day\n1,10.50,2026-01-01\n2,20.00,2026-01-02\n3,250.00,2026-01-03\n"
            + "4,7.25,2026-01-03\n5,1.00,2026-01-04\n6,2.00,2026-01-04\n")
        #expect(try Bis.run(["stage", "run", "ingest", "--spec", "p.yml", "--out", "i"], in: ws.path).status == 0)
        #expect(try Bis.run(["stage", "run", "normalize", "--spec", "p.yml", "--input", "i", "--out", "n"], in: ws.path).status == 0)
        for p in 0..<2 {
            #expect(try Bis.run(["stage", "run", "consolidate", "--spec", "p.yml", "--input", "n", "--partition", "\(p)",
                                 "--out", "c\(p)"], in: ws.path).status == 0)
            #expect(try Bis.run(["stage", "run", "validate", "--spec", "p.yml", "--input", "c\(p)", "--partition", "\(p)",
                                 "--out", "v\(p)"], in: ws.path).status == 0)
        }
        let gate = try Bis.run(["stage", "gate", "--spec", "p.yml", "--input", "v0", "v1", "--json"], in: ws.path)
        #expect(gate.status == 0, "\(gate.stdout) \(gate.stderr)")
        let decision = try JSONSerialization.jsonObject(with: Data(gate.stdout.utf8)) as? [String: Any]
        #expect(decision?["passed"] as? Bool == true)
        #expect(decision?["partitions"] as? Int == 2)
        #expect((decision?["message"] as? String)?.contains("6 rows in 2 partitions, 5 passed, 1 failed") == true, "\(gate.stdout)")

        // The partition holding the bad row fails the gate on its own: exit 1.
        let bad = (0..<2).first { p in
            let data = try? Data(contentsOf: URL(fileURLWithPath: ws.path + "/v\(p)/validate-result.json"))
            let result = data.flatMap { try? JSONSerialization.jsonObject(with: $0) as? [String: Any] }
            return result?["rowsFailed"] as? Int == 1
        }
        let alone = try Bis.run(["stage", "gate", "--spec", "p.yml", "--input", "v\(try #require(bad))"], in: ws.path)
        #expect(alone.status == 1)
        #expect(alone.stdout.hasPrefix("quality gate failed:"), "\(alone.stdout)")

        // Publish takes validate's chunks and partials as they are.
        let pub = try Bis.run(["stage", "run", "publish", "--spec", "p.yml", "--input", "v0", "v1", "--out", "root",
                               "--run", "r1", "--json"], in: ws.path)
        #expect(pub.status == 0, "\(pub.stderr)")
        #expect(FileManager.default.fileExists(atPath: ws.path + "/root/published/by_day/r1/_manifest.json"))
        let current = try String(contentsOfFile: ws.path + "/root/published/orders/CURRENT", encoding: .utf8)
        #expect(current.trimmingCharacters(in: .whitespacesAndNewlines) == "r1")
    }
}
