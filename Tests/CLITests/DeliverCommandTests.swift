import Foundation
import TestSupport
import Testing

@Suite struct DeliverCommandTests {
    static let spec = ordersSpec + "publish: {dataset: orders}\ndeliver: {to: outbox/finance, approval: required}\n"

    @Test func deliverWaitsForApprovalThenDeliversOnceAsJSON() throws {
        let ws = try Workspace()
        defer { ws.remove() }
        try ws.write("p.yml", Self.spec)
        try ws.write("data/a.csv", ordersCSV)
        try FileManager.default.createDirectory(atPath: ws.path + "/root/reports", withIntermediateDirectories: true)
        try ws.write("root/reports/report.html", "<html>orders</html>\n")
        try ws.write("root/reports/_manifest.json", "{\"files\": []}\n")
        let args = ["stage", "run", "deliver", "--spec", "p.yml", "--run", "r1", "--out", "root",
                    "--input", "root/reports/report.html", "root/reports/_manifest.json"]

        let refused = try Bis.run(args, in: ws.path)
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("run r1 needs approval: run bis approve r1"), "\(refused.stderr)")
        #expect(!FileManager.default.fileExists(atPath: ws.path + "/root/outbox"))

        let done = try Bis.run(args + ["--approved-by", "ana", "--json"], in: ws.path)
        #expect(done.status == 0, "\(done.stderr)")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(done.stdout.utf8)) as? [String: Any], "\(done.stdout)")
        let delivery = try #require(json["delivery"] as? [String: Any])
        #expect(delivery["dataset"] as? String == "orders")
        #expect(delivery["run"] as? String == "r1")
        #expect((delivery["approval"] as? [String: Any])?["approver"] as? String == "ana")
        #expect(json["alreadyDelivered"] as? Bool == false)
        let outputs = try #require(json["outputs"] as? [[String: Any]])
        #expect(outputs.count == 2)
        for o in outputs { #expect(FileManager.default.fileExists(atPath: o["path"] as? String ?? "")) }
        let receipt = ws.path + "/root/outbox/finance/r1/receipt.json"
        let before = try Data(contentsOf: URL(fileURLWithPath: receipt))

        let again = try Bis.run(args + ["--approved-by", "ana"], in: ws.path)
        #expect(again.status == 0, "\(again.stderr)")
        #expect(again.stdout.contains("was already delivered to outbox/finance; nothing changed"), "\(again.stdout)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: receipt)) == before)
    }

    @Test func aSpecWithoutDeliverOrABadTargetExitsWith2() throws {
        let ws = try Workspace()
        defer { ws.remove() }
        try ws.write("p.yml", ordersSpec)
        try ws.write("data/a.csv", ordersCSV)
        let none = try Bis.run(["stage", "run", "deliver", "--spec", "p.yml", "--run", "r1", "--out", "root",
                                "--input", "data/a.csv"], in: ws.path)
        #expect(none.status == 2)
        #expect(none.stderr.contains("no deliver section"), "\(none.stderr)")

        try ws.write("p.yml", ordersSpec + "deliver: {to: ../../etc}\n")
        let bad = try Bis.run(["spec", "check", "p.yml"], in: ws.path)
        #expect(bad.status == 2)
        #expect(bad.stderr.contains("p.yml:16:15: deliver to must be a folder under the data root"), "\(bad.stderr)")
    }
}
