import Foundation
import TestSupport
import Testing

/// `bis run --local` ends with the run's first quarantined rows, ingest's and
/// validate's alike, each with its input file and line.
@Suite struct RunLocalTests {
    @Test func theSummaryListsQuarantinedRowsWithFileAndLine() throws {
        let ws = try Workspace()
        defer { ws.remove() }
        try ws.write("p.yml", """
            pipeline: orders
            sources:
              orders:
                format: csv
                files: data/*.csv
                columns: {id: int64, amount: "decimal(10,2)", day: date}
            validate:
              - range: {column: amount, max: 100}
            publish:
              dataset: orders

            """)
        try ws.write("data/a.csv", "id,amount,day\n1,10.50,2026-01-01\n2,oops,2026-01-02\n3,\"700.00\",2026-01-03\n")
        let r = try Bis.run(["run", "--local", "p.yml", "--data-root", ws.path + "/root"], in: ws.path)
        #expect(r.status == 0, "\(r.stderr)\n\(r.stdout)")
        let file = URL(fileURLWithPath: ws.path + "/data/a.csv").resolvingSymlinksInPath().path
        let lines = r.stdout.split(separator: "\n").map(String.init)
        #expect(lines.contains { $0.hasPrefix("  quarantined rows:") }, "\(r.stdout)")
        let parse = lines.first { $0.contains(" parse ") }
        let range = lines.first { $0.contains(" range amount ") }
        // file, line, rule, … separated by runs of spaces.
        func leading(_ row: String?) -> [String] { (row ?? "").split(separator: " ").prefix(2).map(String.init) }
        #expect(leading(parse) == [file, "3"], "\(r.stdout)")
        #expect(leading(range) == [file, "4"], "\(r.stdout)")
        #expect(range?.contains(#""id":3"#) == true, "\(r.stdout)")
    }

    /// With no coordinator staying up, each local run ends with a retention
    /// pass: `publish.keep` holds (the planner has publish keep every version).
    @Test func localRunsKeepOnlyPublishKeepVersions() throws {
        let ws = try Workspace()
        defer { ws.remove() }
        try ws.write("p.yml", """
            pipeline: orders
            sources:
              orders:
                format: csv
                files: data/*.csv
                columns: {id: int64, amount: "decimal(10,2)"}
            publish:
              dataset: orders
              keep: 1

            """)
        try ws.write("data/a.csv", "id,amount\n1,10.50\n2,3.25\n")
        var runs: [String] = []
        for _ in 0..<3 {
            let r = try Bis.run(["run", "--local", "p.yml", "--data-root", ws.path + "/root", "--json"], in: ws.path)
            #expect(r.status == 0, "\(r.stderr)\n\(r.stdout)")
            let view = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]
            runs.append(try #require(view?["id"] as? String))
            Thread.sleep(forTimeInterval: 1.1)   // manifests' `created` is to the second
        }
        let folder = ws.path + "/root/published/orders"
        let versions = try FileManager.default.contentsOfDirectory(atPath: folder).filter { !$0.hasPrefix(".") && $0 != "CURRENT" && $0 != "view.sql" }
        #expect(versions == [runs[2]], "\(versions)")
        #expect(try String(contentsOfFile: folder + "/CURRENT", encoding: .utf8) == runs[2] + "\n")
    }
}
