import Crypto
import Foundation
import TestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Issue 12, item 4, against the real `bis coordinator`: principals and
/// roles (`--auth`), who is recorded, self-approval, the audit log, TLS on
/// the API and the refusal to listen beyond loopback unprotected.
@Suite(.serialized, .usesBroker, .enabled(if: FleetEnvironment.enabled,
                             "no broker (BIS_TEST_AMQP_URL; run ops/test) or no Python with duckdb (BIS_PYTHON)"))
struct AttackAuthTests {
    static let tokens = ["vera": "tok-viewer-\(randomHex())", "ann": "tok-operator-\(randomHex())",
                         "bob": "tok-approver-\(randomHex())", "root": "tok-admin-\(randomHex())"]
    static let roles = ["vera": "viewer", "ann": "operator", "bob": "approver", "root": "admin"]

    static func hash(_ token: String) -> String {
        SHA256.hash(data: Data(token.utf8)).map { String(format: "%02x", $0) }.joined()
    }

    /// Writes the `--auth` file into `dir`.
    static func writeAuthFile(in dir: String) throws -> String {
        let path = dir + "/auth.txt"
        let lines = ["# test principals"] + tokens.keys.sorted().map { "\($0) \(roles[$0]!) \(hash(tokens[$0]!))" }
        try (lines.joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    static func env(_ name: String?) -> [String: String] { ["BIS_TOKEN": name.map { tokens[$0]! } ?? ""] }

    @Test func rolesRefusalsSelfApprovalAndTheAuditLog() async throws {
        let authDir = FileManager.default.temporaryDirectory.appendingPathComponent("bis-auth-\(randomHex())").path
        try FileManager.default.createDirectory(atPath: authDir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: authDir) }
        let auth = try Self.writeAuthFile(in: authDir)
        let options = FleetOptions(coordinatorArguments: ["--auth", auth], harnessToken: Self.tokens["root"])
        try await withFleet("auth", options) { fleet in
            let pipeline = "auth-\(randomHex(6))"
            let spec = try fleet.writeSpec(pipeline: pipeline, dataset: "orders", summary: "orders_by_region", approval: "required")

            // No token: 401, exit 4, for a read and a write.
            for args in [["runs"], ["submit", spec]] {
                let r = try await fleet.bis(args, environment: Self.env(nil))
                fleet.check(r.exitCode == 4, "`bis \(args[0])` without a token should exit 4: \(r)")
                fleet.check(r.stderr.contains("refused: not authenticated"), "the message should say why: \(r)")
            }
            // A viewer's POST: 403, exit 4, naming the role needed.
            let viewer = try await fleet.bis(["submit", spec], environment: Self.env("vera"))
            fleet.check(viewer.exitCode == 4, "a viewer's submit should exit 4: \(viewer)")
            fleet.check(viewer.stderr.contains("refused: not allowed: vera is a viewer: submitting a run needs the operator or admin role"),
                        "the message should say which role is needed: \(viewer)")

            // The operator submits; the run is theirs whatever the client claims.
            let submitted = try await fleet.bis(["submit", spec], environment: Self.env("ann").merging(["USER": "mallory"]) { $1 })
            fleet.check(submitted.exitCode == 0, "ann's submit should work: \(submitted)")
            let run = submitted.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            let waiting = try await fleet.waitForRun(run, timeout: 180)
            fleet.check(waiting.state == "awaiting_approval", "the run should wait for approval:\n\(waiting)")
            fleet.check(waiting.submittedBy == "ann", "the submitter recorded is the principal: \(waiting.submittedBy)")

            // The operator cannot approve (role); an admin who submitted could not either (below); the approver can.
            let operatorApproves = try await fleet.bis(["approve", run], environment: Self.env("ann"))
            fleet.check(operatorApproves.exitCode == 4 && operatorApproves.stderr.contains("needs the approver or admin role"),
                        "an operator's approve should be refused: \(operatorApproves)")

            // Self-approval: root submits a run and cannot approve it.
            let rootSubmit = try await fleet.bis(["submit", spec], environment: Self.env("root"))
            fleet.check(rootSubmit.exitCode == 0, "root's submit should work: \(rootSubmit)")
            let rootRun = rootSubmit.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            let selfApprove = try await fleet.bis(["approve", rootRun], environment: Self.env("root"))
            fleet.check(selfApprove.exitCode == 4, "approving one's own run should exit 4: \(selfApprove)")
            fleet.check(selfApprove.stderr.contains("refused: not allowed: root submitted run \(rootRun) and cannot approve it too"),
                        "the message should say why: \(selfApprove)")

            let approved = try await fleet.bis(["approve", run], environment: Self.env("bob").merging(["USER": "mallory"]) { $1 })
            fleet.check(approved.exitCode == 0, "bob's approve should work: \(approved)")
            let done = try await fleet.waitForRun(run, timeout: 180)
            fleet.check(done.state == "succeeded", "the approved run should deliver and succeed:\n\(done)")
            fleet.check(done.approvedBy == "bob", "the approver recorded is the principal, not a claim: \(done.approvedBy ?? "nil")")

            // whoami and the audit log show the principals.
            let who = try await fleet.bis(["whoami"], environment: Self.env("bob"))
            fleet.check(who.exitCode == 0 && who.stdout == "bob (approver)\n", "whoami: \(who)")
            let audit = try await fleet.bis(["audit", "--run", run, "--json"], environment: Self.env("vera"))
            fleet.check(audit.exitCode == 0, "a viewer reads the audit log: \(audit)")
            let rows = (try? JSONSerialization.jsonObject(with: Data(audit.stdout.utf8)) as? [[String: Any]]) ?? []
            let summary = rows.map { "\($0["action"] as? String ?? "?") \($0["principal"] as? String ?? "-") \($0["outcome"] as? String ?? "-")" }
            for expected in ["run.submitted ann ok", "request.refused ann 403", "run.approved bob ok"] {
                fleet.check(summary.contains(expected), "the audit log of \(run) should have '\(expected)': \(summary)")
            }
            let all = try await fleet.bis(["audit", "--run", rootRun], environment: Self.env("vera"))
            fleet.check(all.stdout.contains("request.refused") && all.stdout.contains("403") && all.stdout.contains("root"),
                        "the refused self-approval is in the audit log: \(all)")
        }
    }

    @Test func listeningBeyondLoopbackWithoutTLSAndAuthIsRefused() async throws {
        let bis = try FleetEnvironment.executable("bis")
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("bis-listen-\(randomHex())").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let port = try freePort()
        var env = ProcessInfo.processInfo.environment
        env["BIS_TOKEN"] = nil
        env["BIS_AMQP_URL"] = try FleetEnvironment.brokerURL()   // the broker password stays out of argv
        let args = ["coordinator", "--data-root", dir + "/root",
                    "--http", "0.0.0.0:\(port)", "--namespace", "t" + randomHex()]
        let p = try ChildProcess(name: "coordinator", executable: bis, arguments: args, environment: env,
                                 stdout: dir + "/out", stderr: dir + "/err")
        guard let t = await p.wait(seconds: 60) else {
            await p.kill9()
            Issue.record("the coordinator listened on 0.0.0.0 without TLS and auth:\n\(p.stderr)")
            return
        }
        #expect(t == .exited(2), "\(p.stderr)")
        #expect(p.stderr.contains("listens beyond loopback without TLS (--tls-cert FILE --tls-key FILE) and auth (--auth FILE or BIS_TOKEN)"),
                "\(p.stderr)")

        // A bad --auth file stops it too, naming the file and line.
        let bad = dir + "/auth.txt"
        try "# principals\nann operator not-a-hash\n".write(toFile: bad, atomically: true, encoding: .utf8)
        let q = try ChildProcess(name: "coordinator", executable: bis,
                                 arguments: args.map { $0 == "0.0.0.0:\(port)" ? "127.0.0.1:\(port)" : $0 } + ["--auth", bad],
                                 environment: env, stdout: dir + "/out2", stderr: dir + "/err2")
        guard let u = await q.wait(seconds: 60) else {
            await q.kill9()
            Issue.record("the coordinator started with a bad --auth file:\n\(q.stderr)")
            return
        }
        #expect(u == .exited(2), "\(q.stderr)")
        #expect(q.stderr.contains("bad --auth file: \(bad):2: 'not-a-hash' is not a SHA-256 in hex"), "\(q.stderr)")
    }

    @Test func bisOverTLSVerifiesWithBIS_CA_FILE() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("bis-tls-\(randomHex())").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Self.makeCertificates(in: dir)
        let auth = try Self.writeAuthFile(in: dir)
        let bis = try FleetEnvironment.executable("bis")
        let port = try freePort()
        var env = ProcessInfo.processInfo.environment
        for key in ["BIS_TOKEN", "BIS_COORDINATOR", "BIS_CA_FILE"] { env[key] = nil }
        let namespace = "t" + randomHex()
        env["BIS_AMQP_URL"] = try FleetEnvironment.brokerURL()   // the broker password stays out of argv
        let args = ["coordinator", "--data-root", dir + "/root",
                    "--http", "127.0.0.1:\(port)", "--namespace", namespace, "--auth", auth,
                    "--tls-cert", dir + "/server.pem", "--tls-key", dir + "/server-key.pem"]
        let coordinator = try ChildProcess(name: "coordinator", executable: bis, arguments: args, environment: env,
                                           stdout: dir + "/coordinator.out", stderr: dir + "/coordinator.log")
        do {
            try await Self.checkTLS(coordinator: coordinator, bis: bis, env: env, dir: dir, port: port)
        } catch {
            Issue.record("\(error)\n\(coordinator.stderr)")
        }
        _ = await coordinator.stop(grace: 10)
        await FleetEnvironment.deleteQueues(namespace: namespace)
    }

    static func checkTLS(coordinator: ChildProcess, bis: String, env: [String: String], dir: String, port: Int) async throws {

        func bisCommand(_ args: [String], ca: String?, address: String = "https://127.0.0.1:\(port)") async throws -> (Termination, String, String) {
            var e = env
            e["BIS_COORDINATOR"] = address
            e["BIS_TOKEN"] = Self.tokens["vera"]
            e["BIS_CA_FILE"] = ca
            let n = randomHex()
            let p = try ChildProcess(name: "bis", executable: bis, arguments: args, environment: e,
                                     stdout: dir + "/cli-\(n).out", stderr: dir + "/cli-\(n).err")
            guard let t = await p.wait(seconds: 60) else {
                await p.kill9()
                throw FleetError("bis \(args) did not end")
            }
            return (t, p.stdout, p.stderr)
        }

        // The right CA: whoami answers (wait for the coordinator to listen).
        var last = ""
        var up = false
        for _ in 0..<300 {
            if let t = coordinator.termination {
                Issue.record("the TLS coordinator ended: \(t)\n\(coordinator.stderr)")
                return
            }
            let (t, out, err) = try await bisCommand(["whoami"], ca: dir + "/ca.pem")
            if t == .exited(0) {
                #expect(out == "vera (viewer)\n")
                up = true
                break
            }
            last = err
            try await Task.sleep(for: .milliseconds(300))
        }
        guard up else {
            Issue.record("bis whoami over TLS never worked: \(last)\n\(coordinator.stderr)")
            return
        }
        // By name too (the certificate names localhost).
        let (byName, _, byNameErr) = try await bisCommand(["runs"], ca: dir + "/ca.pem", address: "https://localhost:\(port)")
        #expect(byName == .exited(0), "\(byNameErr)")

        // A wrong CA: exit 3, naming the TLS verification failure.
        let (t, _, err) = try await bisCommand(["runs"], ca: dir + "/other-ca.pem")
        #expect(t == .exited(3), "\(err)")
        #expect(err.contains("TLS verification of the coordinator at https://127.0.0.1:\(port) failed"), "\(err)")
        #expect(err.contains("CERTIFICATE_VERIFY_FAILED") || err.contains("certificate verify failed"), "\(err)")

        // Plain HTTP to the TLS port gets no API answer.
        let (plain, _, plainErr) = try await bisCommand(["runs"], ca: nil, address: "http://127.0.0.1:\(port)")
        #expect(plain != .exited(0), "\(plainErr)")
    }

    /// A throwaway CA and a server certificate for 127.0.0.1 and localhost
    /// (as ops/broker makes the broker's), and a second CA that signed nothing.
    static func makeCertificates(in dir: String) throws {
        let script = """
            set -e
            cd "\(dir)"
            openssl req -x509 -newkey rsa:2048 -nodes -days 2 -sha256 -keyout ca-key.pem -out ca.pem \
                -subj "/CN=bis test API CA" -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
            openssl req -x509 -newkey rsa:2048 -nodes -days 2 -sha256 -keyout other-ca-key.pem -out other-ca.pem \
                -subj "/CN=bis test other CA" -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
            openssl req -newkey rsa:2048 -nodes -sha256 -keyout server-key.pem -out server.csr -subj "/CN=localhost"
            printf '%s\\n' "basicConstraints=CA:FALSE" "keyUsage=critical,digitalSignature,keyEncipherment" \
                "extendedKeyUsage=serverAuth" "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1" > server.ext
            openssl x509 -req -in server.csr -CA ca.pem -CAkey ca-key.pem -set_serial "0x$(openssl rand -hex 16)" \
                -days 2 -sha256 -extfile server.ext -out server.pem
            """
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/sh")
        p.arguments = ["-c", script]
        let log = FileHandle(forWritingAtPath: "/dev/null")
        p.standardOutput = log
        p.standardError = log
        try p.run()
        p.waitUntilExit()
        guard p.terminationStatus == 0, FileManager.default.fileExists(atPath: dir + "/server.pem") else {
            throw FleetError("openssl could not make the test certificates in \(dir) (is openssl installed? ops/setup)")
        }
    }
}
