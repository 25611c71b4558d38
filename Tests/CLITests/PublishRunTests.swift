import Foundation
import TestSupport
import Testing

private let publishSpec = ordersSpec + """
publish:
  dataset: orders

"""

@Suite struct PublishRunTests {
    /// ingest → normalize → consolidate by hand, then publish the
    /// consolidated chunks (standing in for validated ones) into a data root.
    @Test func publishWritesTheDatasetCurrentAndViewAndIsIdempotent() throws {
        let ws = try Workspace()
        defer { ws.remove() }
        try ws.write("p.yml", publishSpec)
        try ws.write("data/a.csv", ordersCSV)
        #expect(try Bis.run(["stage", "run", "ingest", "--spec", "p.yml", "--out", "i"], in: ws.path).status == 0)
        #expect(try Bis.run(["stage", "run", "normalize", "--spec", "p.yml", "--input", "i", "--out", "n"], in: ws.path).status == 0)
        var chunks: [String] = []
        for p in 0..<2 {
            let c = try Bis.run(["stage", "run", "consolidate", "--spec", "p.yml", "--input", "n", "--partition", "\(p)",
                                 "--out", "c\(p)", "--json"], in: ws.path)
            let json = try JSONSerialization.jsonObject(with: Data(c.stdout.utf8)) as? [String: Any]
            chunks += (json?["outputs"] as? [[String: Any]] ?? []).compactMap { $0["path"] as? String }
        }
        #expect(chunks.count == 2)

        let args = ["stage", "run", "publish", "--spec", "p.yml", "--input"] + chunks + ["--out", "root", "--run", "orders-1", "--json"]
        let r = try Bis.run(args, in: ws.path)
        #expect(r.status == 0, "\(r.stderr)")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any], "\(r.stdout)")
        #expect(json["stage"] as? String == "publish")
        #expect(json["rowsOut"] as? Int == 2)
        let published = try #require((json["published"] as? [[String: Any]])?.first)
        #expect(published["dataset"] as? String == "orders" && published["current"] as? String == "orders-1")
        #expect(published["reused"] as? Bool == false)
        let root = ws.path + "/root/published/orders"
        #expect(try String(contentsOfFile: root + "/CURRENT", encoding: .utf8) == "orders-1\n")
        #expect(FileManager.default.fileExists(atPath: root + "/orders-1/_manifest.json"))
        #expect(FileManager.default.fileExists(atPath: root + "/orders-1/part-00001.parquet"))
        #expect(try String(contentsOfFile: root + "/view.sql", encoding: .utf8).contains("CREATE OR REPLACE VIEW \"orders\""))

        let again = try Bis.run(args, in: ws.path)
        #expect(again.status == 0, "\(again.stderr)")
        #expect(again.stdout.contains("\"reused\" : true"), "\(again.stdout)")

        // A default run id has the documented shape; that run becomes current.
        let fresh = try Bis.run(["stage", "run", "publish", "--spec", "p.yml", "--input"] + chunks + ["--out", "root"], in: ws.path)
        #expect(fresh.status == 0, "\(fresh.stderr)")
        let current = try String(contentsOfFile: root + "/CURRENT", encoding: .utf8)
        #expect(current.range(of: #"^orders-\d{8}T\d{6}Z-[0-9a-f]{4}\n$"#, options: .regularExpression) != nil, "\(current)")
        #expect(fresh.stdout.contains("published orders run \(current.dropLast())"), "\(fresh.stdout)")
    }

    @Test func aBadRunIdOrMissingPartialsAreUsageErrors() throws {
        let ws = try Workspace()
        defer { ws.remove() }
        try ws.write("p.yml", publishSpec.replacingOccurrences(
            of: "  dataset: orders\n",
            with: "  dataset: orders\n  summaries:\n    by_day:\n      group_by: [day]\n      aggregates:\n        total: sum(amount)\n"))
        try ws.write("data/a.csv", ordersCSV)
        try ws.write("x.parquet", "not parquet")
        let bad = try Bis.run(["stage", "run", "publish", "--spec", "p.yml", "--input", "x.parquet", "--out", "root", "--run", "../up"],
                              in: ws.path)
        #expect(bad.status == 2)
        #expect(bad.stderr.contains("run name '../up' is not allowed"), "\(bad.stderr)")

        let missing = try Bis.run(["stage", "run", "publish", "--spec", "p.yml", "--input", "x.parquet", "--out", "root"], in: ws.path)
        #expect(missing.status == 2, "\(missing.stderr)")
        #expect(missing.stderr.contains("no partial aggregates for summary 'by_day'"), "\(missing.stderr)")
        #expect(!FileManager.default.fileExists(atPath: ws.path + "/root/published"))
    }
}

/// A partials file as validate writes it (see docs/publish.md): summary
/// `by_day` over one day's rows, `total: sum(amount)` as unscaled cents.
private func partialsJSON(day: Int, cents: Int) -> String {
    """
    {"by_day":{"aggregates":[{"function":{"sum":{"_0":"amount"}},"name":"total"}],"argumentTypes":["decimal(10,2)"],\
    "groupBy":["day"],"groupTypes":["date"],"keys":[[{"int":{"_0":\(day)}}]],"states":[[{"kind":"sum_exact","value":\(cents)}]]}}

    """
}

extension PublishRunTests {
    @Test func summariesArePublishedFromPartialsFiles() throws {
        let ws = try Workspace()
        defer { ws.remove() }
        try ws.write("p.yml", publishSpec.replacingOccurrences(
            of: "  dataset: orders\n",
            with: "  dataset: orders\n  summaries:\n    by_day:\n      group_by: [day]\n      aggregates:\n        total: sum(amount)\n"))
        try ws.write("data/a.csv", ordersCSV)
        #expect(try Bis.run(["stage", "run", "ingest", "--spec", "p.yml", "--out", "i"], in: ws.path).status == 0)
        #expect(try Bis.run(["stage", "run", "normalize", "--spec", "p.yml", "--input", "i", "--out", "n"], in: ws.path).status == 0)
        // Stand-ins for validate's output: the consolidated chunks renamed
        // validated-*.parquet, and one partials file per partition.
        try FileManager.default.createDirectory(atPath: ws.path + "/v", withIntermediateDirectories: true)
        for p in 0..<2 {
            let c = try Bis.run(["stage", "run", "consolidate", "--spec", "p.yml", "--input", "n", "--partition", "\(p)",
                                 "--out", "c\(p)"], in: ws.path)
            #expect(c.status == 0, "\(c.stderr)")
            for (k, file) in try FileManager.default.contentsOfDirectory(atPath: ws.path + "/c\(p)").sorted().enumerated() {
                try FileManager.default.copyItem(atPath: ws.path + "/c\(p)/" + file, toPath: ws.path + "/v/validated-\(p)\(k).parquet")
            }
        }
        try ws.write("v/p0.partials.json", partialsJSON(day: 20454, cents: 1050))
        try ws.write("v/p1.partials.json", partialsJSON(day: 20456, cents: 725))

        let r = try Bis.run(["stage", "run", "publish", "--spec", "p.yml", "--input", "v", "--out", "root", "--run", "r1", "--json"],
                            in: ws.path)
        #expect(r.status == 0, "\(r.stderr)")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any], "\(r.stdout)")
        #expect(json["rowsOut"] as? Int == 2)
        let published = try #require(json["published"] as? [[String: Any]])
        #expect(published.map { $0["dataset"] as? String } == ["orders", "by_day"])
        #expect(published.last?["rows"] as? Int == 2)

        let part = ws.path + "/root/published/by_day/r1/part-00000.parquet"
        let cat = try Bis.run(["chunk", "cat", part], in: ws.path)
        #expect(cat.status == 0, "\(cat.stderr)")
        #expect(cat.stdout.contains("2026-01-01") && cat.stdout.contains("10.50"), "\(cat.stdout)")
        #expect(cat.stdout.contains("2026-01-03") && cat.stdout.contains("7.25"), "\(cat.stdout)")

        // Partials of another shape than the spec's summary are refused.
        try ws.write("v/p1.partials.json", partialsJSON(day: 20456, cents: 725).replacingOccurrences(of: "\"total\"", with: "\"sum\""))
        let wrong = try Bis.run(["stage", "run", "publish", "--spec", "p.yml", "--input", "v", "--out", "root", "--run", "r2"], in: ws.path)
        #expect(wrong.status == 2)
        #expect(wrong.stderr.contains("p1.partials.json: the partials of summary 'by_day'"), "\(wrong.stderr)")
    }
}
