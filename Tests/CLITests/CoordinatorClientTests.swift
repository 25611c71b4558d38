import Foundation
import TestSupport
import Testing

/// The coordinator commands where no coordinator is needed to judge them:
/// nothing listening, and a spec that `bis submit` refuses before sending.
@Suite struct CoordinatorClientTests {
    /// Port 1 on the loopback interface: nothing listens there.
    static let nowhere = "http://127.0.0.1:1"

    @Test func withNoCoordinatorEveryCommandExits3AndSaysWhatToDo() throws {
        let ws = try Workspace()
        defer { ws.remove() }
        try ws.write("p.yml", ordersSpec)
        try ws.write("data/a.csv", ordersCSV)
        let message = "cannot reach the coordinator at \(Self.nowhere): is `bis coordinator` running? "
            + "(set BIS_COORDINATOR to its address)"
        for args in [["status"], ["status", "r1"], ["runs"], ["workers"], ["approve", "r1"], ["retry", "r1"],
                     ["cancel", "r1"], ["submit", "p.yml"]] {
            let r = try Bis.run(args, in: ws.path, environment: ["BIS_COORDINATOR": Self.nowhere])
            #expect(r.status == 3, "\(args): \(r.stderr)")
            #expect(r.stderr.contains(message), "\(args): \(r.stderr)")
            #expect(r.stdout.isEmpty, "\(args)")
        }
        // --coordinator wins over the environment.
        let r = try Bis.run(["runs", "--coordinator", Self.nowhere], in: ws.path,
                            environment: ["BIS_COORDINATOR": "http://127.0.0.1:2"])
        #expect(r.status == 3)
        #expect(r.stderr.contains("at \(Self.nowhere):"), "\(r.stderr)")
    }

    @Test func submitChecksTheSpecBeforeCallingTheCoordinator() throws {
        let ws = try Workspace()
        defer { ws.remove() }
        try ws.write("bad.yml", ordersSpec.replacingOccurrences(of: "format: csv", with: "format: xml"))
        try ws.write("data/a.csv", ordersCSV)
        // Were the spec sent, this would be exit 3: nothing listens there.
        let r = try Bis.run(["submit", "bad.yml", "--wait"], in: ws.path, environment: ["BIS_COORDINATOR": Self.nowhere])
        #expect(r.status == 2, "\(r.stderr)")
        #expect(r.stderr.contains("bad.yml:"), "\(r.stderr)")
        #expect(r.stderr.contains("xml"), "\(r.stderr)")
        #expect(!r.stderr.contains("cannot reach"))
        #expect(r.stdout.isEmpty)

        let absent = try Bis.run(["submit", "absent.yml"], in: ws.path, environment: ["BIS_COORDINATOR": Self.nowhere])
        #expect(absent.status == 2)
        #expect(absent.stderr.contains("cannot read the spec"), "\(absent.stderr)")
    }

    @Test func aBadAddressIsAUsageError() throws {
        let ws = try Workspace()
        defer { ws.remove() }
        let r = try Bis.run(["runs"], in: ws.path, environment: ["BIS_COORDINATOR": "ftp://example"])
        #expect(r.status == 2)
        #expect(r.stderr.contains("'ftp://example' is not a coordinator address"), "\(r.stderr)")
    }

    @Test func theCommandsHaveHelpThatNamesTheirExitCodes() throws {
        let ws = try Workspace()
        defer { ws.remove() }
        for command in ["submit", "status", "runs", "workers", "approve", "retry", "cancel"] {
            let r = try Bis.run([command, "--help"], in: ws.path)
            #expect(r.status == 0, "\(command)")
            #expect(r.stdout.contains("Exit codes:"), "\(command)")
            #expect(r.stdout.contains("--coordinator"), "\(command)")
            #expect(r.stdout.contains("--json"), "\(command)")
        }
    }
}
