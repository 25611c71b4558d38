import Foundation
import TestSupport
import Testing

/// `bis chunk inspect` and `bis chunk cat` on a chunk that `bis stage run`
/// wrote: what an operator looks at when a number seems wrong.
@Suite struct ChunkCommandTests {
    @Test func catPrintsRowsAsCSVAndInspectShowsSchemaAndStatistics() throws {
        let ws = try Workspace()
        defer { ws.remove() }
        try ws.write("p.yml", ordersSpec)
        try ws.write("data/a.csv", "id,amount,day\n1,10.50,1969-12-31\n2,,2026-01-02\n3,-7.25,2026-01-03\n")
        #expect(try Bis.run(["stage", "run", "ingest", "--spec", "p.yml", "--out", "i"], in: ws.path).status == 0)
        let chunk = ws.path + "/i/orders-00000/ingest.parquet"

        let cat = try Bis.run(["chunk", "cat", chunk], in: ws.path)
        #expect(cat.status == 0, "\(cat.stderr)")
        // After the declared columns, each row's input file and line (ingest's provenance columns).
        let file = URL(fileURLWithPath: ws.path + "/data/a.csv").resolvingSymlinksInPath().path
        #expect(cat.stdout == "id,amount,day,_source_file,_source_line\n1,10.50,1969-12-31,\(file),2\n"
                + "2,,2026-01-02,\(file),3\n3,-7.25,2026-01-03,\(file),4\n")

        let limited = try Bis.run(["chunk", "cat", chunk, "--columns", "day,id", "--limit", "1"], in: ws.path)
        #expect(limited.stdout == "day,id\n1969-12-31,1\n")

        let inspect = try Bis.run(["chunk", "inspect", chunk, "--json"], in: ws.path)
        #expect(inspect.status == 0, "\(inspect.stderr)")
        #expect(inspect.stdout.contains("\"decimal(10,2)\""), "\(inspect.stdout)")
        #expect(inspect.stdout.contains("-7.25"), "the amount's minimum is in the statistics: \(inspect.stdout)")

        let missing = try Bis.run(["chunk", "cat", ws.path + "/nope.parquet"], in: ws.path)
        #expect(missing.status != 0)
        #expect(missing.stderr.contains("nope.parquet"), "\(missing.stderr)")
    }
}
