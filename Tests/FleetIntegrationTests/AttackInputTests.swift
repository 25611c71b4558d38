import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import TestSupport
import Testing

/// Issue 12, items 3 and 9, against the real `bis coordinator` (with
/// `--input-root`), its workers and the broker: a client cannot make the
/// coordinator read outside its input roots, widen them, or list what lies
/// outside them through glob errors; a narrowed submit still runs.
@Suite(.serialized, .usesBroker, .enabled(if: FleetEnvironment.enabled,
                                          "no broker (BIS_TEST_AMQP_URL; run ops/test) or no Python with duckdb (BIS_PYTHON)"))
struct AttackInputTests {
    /// `POST /api/runs` with `body` as JSON, as any HTTP client would send it.
    static func post(_ fleet: Fleet, _ body: [String: Any], timeout: Double = 20) async throws -> (status: Int, error: String) {
        var request = URLRequest(url: URL(string: fleet.address + "/api/runs")!)
        request.httpMethod = "POST"
        request.timeoutInterval = timeout
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        request.httpBody = try JSONSerialization.data(withJSONObject: body)
        let (data, response) = try await URLSession.shared.data(for: request)
        let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
        return ((response as! HTTPURLResponse).statusCode, object?["error"] as? String ?? String(decoding: data, as: UTF8.self))
    }

    /// Names under `/` that a listing of the file system would show.
    static let systemNames = ["/etc", "/usr", "/proc", "/var", "/bin", "/home", "/root"]

    @Test func theCoordinatorReadsOnlyUnderItsInputRoots() async throws {
        // One worker: the narrowed submit at the end runs to the end.
        try await withFleet("attack-input", FleetOptions(workers: [WorkerSpec()])) { fleet in
            // A folder beside the fleet's (outside its input root) with what an attacker is after.
            let outside = fleet.dir + "-outside"
            try FileManager.default.createDirectory(atPath: outside + "/deeper", withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: outside) }
            try "id,secret\n1,hunter2\n".write(toFile: outside + "/secret-ledger.csv", atomically: true, encoding: .utf8)
            try "id\n1\n".write(toFile: outside + "/deeper/hidden-file.csv", atomically: true, encoding: .utf8)
            let pipeline = "attack-\(randomHex(6))"
            let specText = FleetData.spec(pipeline: pipeline, dataset: "orders", summary: "orders_by_region")
            try specText.write(toFile: outside + "/p.yml", atomically: true, encoding: .utf8)
            // A FIFO outside: a coordinator that opened it to read would hang, so a prompt answer proves it was not read.
            fleet.check(mkfifo(outside + "/spec.fifo", 0o600) == 0, "mkfifo")
            let spec = try fleet.writeSpec(pipeline: pipeline, dataset: "orders", summary: "orders_by_region")
            let root = URL(fileURLWithPath: fleet.dir).resolvingSymlinksInPath().path
            let policy = "this coordinator reads specs and input files only under its input root \(root) (bis coordinator --input-root)"
            let secrets = ["secret-ledger", "hidden-file", "hunter2", "spec.fifo", "deeper"]
            func leaks(_ text: String) -> [String] {
                secrets.filter { text.contains($0) } + Self.systemNames.filter { text.contains($0 + "/") || text.hasSuffix($0) }
            }

            // 1. The whole file system as an allowed root.
            let wide = try await Self.post(fleet, ["specPath": spec, "specText": specText, "allowedRoots": ["/"], "submittedBy": "eve@host"])
            fleet.check(wide.status == 403, "allowedRoots [\"/\"] should be refused with 403: \(wide)")
            fleet.check(wide.error == "the allowed root / is not a folder under the coordinator's input roots "
                        + "(a client may only narrow them): \(policy)", "the refusal should name / and the roots: \(wide.error)")

            // 2. A spec path outside the roots without text: refused, and not read (a FIFO would block the reader).
            let started = Date()
            let fifo = try await Self.post(fleet, ["specPath": outside + "/spec.fifo", "allowedRoots": [], "submittedBy": "eve@host"], timeout: 10)
            fleet.check(fifo.status == 403, "a spec outside the roots should be refused with 403: \(fifo)")
            fleet.check(Date().timeIntervalSince(started) < 5, "the refusal should come at once, without opening the file")
            fleet.check(fifo.error == "the spec's folder \(outside) is not a folder under the coordinator's input roots: \(policy)",
                        "\(fifo.error)")
            let file = try await Self.post(fleet, ["specPath": outside + "/p.yml", "allowedRoots": [], "submittedBy": "eve@host"])
            fleet.check(file.status == 403 && !file.error.contains(pipeline), "the spec outside should be refused unread: \(file)")

            // 3. Inline text naming a folder outside.
            let inline = try await Self.post(fleet, ["specPath": outside + "/x.yml", "specText": specText, "allowedRoots": [],
                                                     "submittedBy": "eve@host"])
            fleet.check(inline.status == 403, "inline text with a folder outside should be refused with 403: \(inline)")
            fleet.check(inline.error == "the spec's folder \(outside) is not a folder under the coordinator's input roots: \(policy)",
                        "\(inline.error)")

            // 4. A glob of the whole file system: refused at once, listing nothing.
            let everything = specText.replacingOccurrences(of: "files: data/*.csv", with: "files: '/**'")
            let t0 = Date()
            let all = try await Self.post(fleet, ["specPath": spec, "specText": everything, "allowedRoots": [], "submittedBy": "eve@host"])
            fleet.check(Date().timeIntervalSince(t0) < 2, "'/**' should be refused without a walk")
            fleet.check(all.status == 403, "'/**' should be refused with 403: \(all)")
            fleet.check(all.error.contains("'/**' in source 'orders' is outside the allowed input root \(root)"), "\(all.error)")
            fleet.check(leaks(all.error).isEmpty, "the refusal of '/**' names something outside the roots: \(leaks(all.error)): \(all.error)")

            // 5. Globs that reach outside: through `..`, through a symlink, by wildcards past a symlink.
            //    The errors name the globs, the roots and at most the link (under the root), never what lies beyond.
            try FileManager.default.createSymbolicLink(atPath: fleet.dir + "/door", withDestinationPath: outside)
            let outsideName = (outside as NSString).lastPathComponent
            let globs = "['../\(outsideName)/*.csv', 'door/*.csv', 'door/*/*.csv', '*/*.csv', 'door/nothing/*.csv']"
            let probing = specText.replacingOccurrences(of: "files: data/*.csv", with: "files: \(globs)")
            let probe = try await Self.post(fleet, ["specPath": spec, "specText": probing, "allowedRoots": [], "submittedBy": "eve@host"])
            fleet.check(probe.status == 403, "globs reaching outside should be refused with 403: \(probe)")
            fleet.check(leaks(probe.error).isEmpty, "a glob error names something outside the roots: \(leaks(probe.error)): \(probe.error)")
            fleet.check(probe.error.contains("'../\(outsideName)/*.csv' in source 'orders' is outside the allowed input root \(root)")
                        && probe.error.contains("'door/*.csv' in source 'orders' reaches \(root)/door, a symlink that leads outside")
                        && probe.error.contains("'door/nothing/*.csv' in source 'orders' reaches \(root)/door"),
                        "each glob should be named with the root: \(probe.error)")
            // A glob under the roots that matches nothing names the glob and the roots only.
            let none = specText.replacingOccurrences(of: "files: data/*.csv", with: "files: 'data/*.tsv'")
            let empty = try await Self.post(fleet, ["specPath": spec, "specText": none, "allowedRoots": [], "submittedBy": "eve@host"])
            fleet.check(empty.status == 400 && empty.error.contains("no file matches 'data/*.tsv' in source 'orders' under the allowed input root \(root)"),
                        "\(empty)")
            fleet.check(leaks(empty.error).isEmpty, "\(empty.error)")

            // 6. The CLI is refused the same way: --allow-root cannot widen the coordinator's roots.
            let cli = try await fleet.bis(["submit", spec, "--allow-root", "/"], timeout: 60)
            fleet.check(cli.exitCode == 4 && cli.stderr.contains("the allowed root / is not a folder under the coordinator's input roots"),
                        "bis submit --allow-root / should be refused with exit 4 (not allowed): \(cli)")

            // 6b. The coordinator's own files under its input root (here as with the defaults: the
            // data root, with the fleet key, and the store lie under it) are no spec's input, nor a spec.
            let key = try String(contentsOfFile: fleet.dataRoot + "/fleet.key", encoding: .utf8)
                .trimmingCharacters(in: .whitespacesAndNewlines)
            for files in ["root/fleet.key", "store/bis.db", "'root/fleet*'"] {
                let own = specText.replacingOccurrences(of: "files: data/*.csv", with: "files: \(files)")
                let r = try await Self.post(fleet, ["specPath": spec, "specText": own, "allowedRoots": [], "submittedBy": "eve@host"])
                fleet.check(r.status == 403 && r.error.contains("is one of the coordinator's own files"),
                            "a spec reading \(files) should be refused with 403: \(r)")
                fleet.check(!r.error.contains(key.prefix(16)), "the refusal shows the fleet key: \(r.error)")
            }
            let asSpec = try await Self.post(fleet, ["specPath": fleet.dataRoot + "/fleet.key", "allowedRoots": [], "submittedBy": "eve@host"])
            fleet.check(asSpec.status == 403 && !asSpec.error.contains(key.prefix(16)),
                        "the fleet key as the spec file should be refused unread: \(asSpec)")

            // 7. A legitimate narrowed submit still runs to the end.
            let ok = try await fleet.bis(["submit", spec, "--allow-root", fleet.dir + "/data", "--wait"])
            fleet.check(ok.exitCode == 0, "a submit under the roots, narrowed to data/, should succeed: \(ok)")
            let runs = try await fleet.bis(["runs", "--json"])
            let listed = (try? JSONSerialization.jsonObject(with: Data(runs.stdout.utf8)) as? [[String: Any]]) ?? []
            fleet.check(listed.count == 1, "only the legitimate submit should have made a run: \(runs.stdout)")
        }
    }

    @Test func theCoordinatorRefusesToStartWithoutAUsableInputRoot() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("bis-roots-\(randomHex())").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let bis = try FleetEnvironment.executable("bis")
        func start(_ shell: String) async throws -> (Termination?, String) {
            var env = ProcessInfo.processInfo.environment
            env["BIS_TOKEN"] = nil
            let p = try ChildProcess(name: "coordinator", executable: "/bin/sh", arguments: ["-c", shell], environment: env,
                                     stdout: dir + "/out", stderr: dir + "/err")
            let t = await p.wait(seconds: 30)
            if t == nil { await p.kill9() }
            return (t, p.stderr)
        }
        let common = "'\(bis)' coordinator --amqp amqp://nobody@127.0.0.1:1/%2F --connect-timeout 1 --data-root '\(dir)/root' --http 127.0.0.1:0"
        // Started in / (as systemd starts a service) without --input-root: the whole file system would be a root.
        let (rootDir, rootErr) = try await start("cd / && exec \(common)")
        #expect(rootDir?.exitCode == 2, "\(rootErr)")
        #expect(rootErr.contains("no input root: the working directory is /"), "\(rootErr)")
        let (missing, missingErr) = try await start("exec \(common) --input-root '\(dir)/nope'")
        #expect(missing?.exitCode == 2, "\(missingErr)")
        #expect(missingErr.contains("the input root \(dir)/nope does not exist (--input-root)"), "\(missingErr)")
    }
}
