import Foundation
import TestSupport
import Testing

/// The `bis` executable built beside the tests (the test target depends on it).
enum Bis {
    static var executable: String { BuiltProduct.path("bis") }

    struct Result {
        let status: Int32
        let stdout: String
        let stderr: String
    }

    static func run(_ args: [String], in dir: String) throws -> Result {
        try run(args, in: dir, environment: [:])
    }

    /// `run(_:in:)` with variables added to the environment.
    static func run(_ args: [String], in dir: String, environment: [String: String]) throws -> Result {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: executable)
        p.arguments = args
        p.currentDirectoryURL = URL(fileURLWithPath: dir)
        p.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return Result(status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self),
                      stderr: String(decoding: e, as: UTF8.self))
    }
}

/// The orders spec with a derived column (`Workspace` and `OrdersSpec` are in TestSupport).
let ordersSpec = OrdersSpec.derivingCents

let ordersCSV = """
id,amount,day
1,10.50,2026-01-01
2,oops,2026-01-02
3,7.25,2026-01-03

"""

@Suite struct StageRunTests {
    @Test func ingestReportsItsChunkAndTheQuarantinedRowAsJSON() throws {
        let ws = try Workspace()
        defer { ws.remove() }
        try ws.write("p.yml", ordersSpec)
        try ws.write("data/a.csv", ordersCSV)
        let r = try Bis.run(["stage", "run", "ingest", "--spec", "p.yml", "--out", "out", "--json"], in: ws.path)
        #expect(r.status == 0, "\(r.stderr)")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any], "\(r.stdout)")
        #expect(json["rowsIn"] as? Int == 3)
        #expect(json["rowsOut"] as? Int == 2)
        #expect(json["rowsQuarantined"] as? Int == 1)
        let outputs = try #require(json["outputs"] as? [[String: Any]])
        #expect(outputs.count == 1)
        let path = try #require(outputs.first?["path"] as? String)
        #expect(FileManager.default.fileExists(atPath: path))
        #expect((outputs.first?["sha256"] as? String)?.count == 64)
        #expect((json["quarantine"] as? [[String: Any]])?.first?["rows"] as? Int == 1)
    }

    @Test func theFirstThreeStagesChainByHand() throws {
        let ws = try Workspace()
        defer { ws.remove() }
        try ws.write("p.yml", ordersSpec)
        try ws.write("data/a.csv", ordersCSV)
        #expect(try Bis.run(["stage", "run", "ingest", "--spec", "p.yml", "--out", "i"], in: ws.path).status == 0)
        let n = try Bis.run(["stage", "run", "normalize", "--spec", "p.yml", "--input", "i", "--out", "n", "--json"], in: ws.path)
        #expect(n.status == 0, "\(n.stderr)")
        var rows = 0
        for p in 0..<2 {
            let c = try Bis.run(["stage", "run", "consolidate", "--spec", "p.yml", "--input", "n", "--partition", "\(p)",
                                 "--out", "c\(p)", "--json"], in: ws.path)
            #expect(c.status == 0, "\(c.stderr)")
            let json = try JSONSerialization.jsonObject(with: Data(c.stdout.utf8)) as? [String: Any]
            rows += json?["rowsOut"] as? Int ?? 0
        }
        #expect(rows == 2)
    }

    /// normalize quarantines a value its cast cannot convert; `bis stage run
    /// normalize` reports it like ingest and validate do (it once left the
    /// count out of its text: the CLI and the worker drove the operators
    /// separately and drifted apart).
    @Test func normalizeReportsTheRowsItsCastQuarantined() throws {
        let ws = try Workspace()
        defer { ws.remove() }
        try ws.write("p.yml", """
            pipeline: orders
            sources:
              orders:
                format: csv
                files: data/*.csv
                columns:
                  id: int64
                  amount: string
                  day: date
            normalize:
              - cast:
                  amount: decimal(10,2)
            consolidate:
              partition_by: [id]
              partitions: 2
              sort_by: [id]

            """)
        try ws.write("data/a.csv", ordersCSV)
        #expect(try Bis.run(["stage", "run", "ingest", "--spec", "p.yml", "--out", "i"], in: ws.path).status == 0)
        let text = try Bis.run(["stage", "run", "normalize", "--spec", "p.yml", "--input", "i", "--out", "n"], in: ws.path)
        #expect(text.status == 0, "\(text.stderr)")
        #expect(text.stdout.hasPrefix("normalize: 3 rows in, 2 out, 1 quarantined\n"), "\(text.stdout)")
        #expect(text.stdout.contains("\n  quarantine /") && text.stdout.contains("/n/quarantine.parquet  1 rows"), "\(text.stdout)")

        let json = try Bis.run(["stage", "run", "normalize", "--spec", "p.yml", "--input", "i", "--out", "n2", "--json"],
                               in: ws.path)
        #expect(json.status == 0, "\(json.stderr)")
        let report = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any], "\(json.stdout)")
        #expect(report["rowsQuarantined"] as? Int == 1)
        let quarantine = try #require(report["quarantine"] as? [[String: Any]])
        #expect(quarantine.count == 1)
        #expect(quarantine.first?["rows"] as? Int == 1)
        #expect((quarantine.first?["path"] as? String)?.hasSuffix("/n2/quarantine.parquet") == true)
        #expect((report["outputs"] as? [[String: Any]])?.reduce(0) { $0 + ($1["rows"] as? Int ?? 0) } == 2)
    }

    @Test func aSpecErrorExitsWith2AndNamesTheLineAndColumn() throws {
        let ws = try Workspace()
        defer { ws.remove() }
        try ws.write("p.yml", ordersSpec.replacingOccurrences(of: "  sort_by: [id]", with: "  sort_bye: [id]"))
        try ws.write("data/a.csv", ordersCSV)
        let r = try Bis.run(["spec", "check", "p.yml"], in: ws.path)
        #expect(r.status == 2)
        #expect(r.stderr.contains("p.yml:15:3: unknown key 'sort_bye' in consolidate; did you mean 'sort_by'?"), "\(r.stderr)")
        let s = try Bis.run(["stage", "run", "ingest", "--spec", "p.yml", "--out", "o"], in: ws.path)
        #expect(s.status == 2)
    }

    @Test func anInputOutsideTheSpecsFolderIsRefused() throws {
        let ws = try Workspace()
        let outside = try Workspace()
        defer { ws.remove(); outside.remove() }
        try ws.write("p.yml", ordersSpec)
        try ws.write("data/a.csv", ordersCSV)
        try outside.write("data/secret.csv", ordersCSV)
        let escape = "../" + (outside.path as NSString).lastPathComponent + "/data/secret.csv"
        let r = try Bis.run(["stage", "run", "ingest", "--spec", "p.yml", "--input", escape, "--out", "o"], in: ws.path)
        #expect(r.status == 2)
        #expect(r.stderr.contains("is outside the allowed input root"), "\(r.stderr)")

        // A symlink inside the folder that points out is refused the same way.
        try FileManager.default.createSymbolicLink(atPath: ws.path + "/data/link.csv", withDestinationPath: outside.path + "/data/secret.csv")
        let l = try Bis.run(["spec", "check", "p.yml"], in: ws.path)
        #expect(l.status == 2)
        // The error names the link (under the spec's folder), never where it leads.
        #expect(l.stderr.contains("/data/link.csv, a symlink that leads outside the allowed input root"), "\(l.stderr)")
        #expect(!l.stderr.contains(outside.path), "\(l.stderr)")

        // Allowing the other folder as an input root lets it in.
        let ok = try Bis.run(["stage", "run", "ingest", "--spec", "p.yml", "--input", escape, "--allow-root", outside.path,
                              "--out", "o"], in: ws.path)
        #expect(ok.status == 0, "\(ok.stderr)")
    }
}

@Suite struct UsageErrorTests {
    @Test func usageErrorsExitWith2() throws {
        let ws = try Workspace()
        defer { ws.remove() }
        try ws.write("p.yml", ordersSpec)
        try ws.write("data/a.csv", ordersCSV)
        let unknownStage = try Bis.run(["stage", "run", "mangle", "--spec", "p.yml", "--out", "o"], in: ws.path)
        #expect(unknownStage.status == 2)
        #expect(unknownStage.stderr.contains("unknown stage 'mangle'"), "\(unknownStage.stderr)")
        let zeroShards = try Bis.run(["stage", "run", "ingest", "--spec", "p.yml", "--shard-size", "0", "--out", "o"], in: ws.path)
        #expect(zeroShards.status == 2)
        let missingOption = try Bis.run(["stage", "run", "ingest", "--out", "o"], in: ws.path)
        #expect(missingOption.status == 2, "\(missingOption.stderr)")
        let help = try Bis.run(["stage", "run", "--help"], in: ws.path)
        #expect(help.status == 0)
        #expect(help.stdout.contains("USAGE"))
    }
}
