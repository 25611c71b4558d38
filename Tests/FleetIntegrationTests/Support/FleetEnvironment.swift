import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import TestSupport

/// What the fleet tests need from outside: the private RabbitMQ node that
/// `ops/broker` runs (through `ops/test`), the built `bis` and `bis-worker`,
/// and a Python with DuckDB.
///
/// The tests run when `BIS_TEST_AMQP_URL` is set. With `BIS_REQUIRE_BROKER=1`
/// (as `ops/test` and CI set it) a missing URL fails them instead of skipping.
enum FleetEnvironment {
    static let environment = ProcessInfo.processInfo.environment
    static var amqpURL: String? { environment["BIS_TEST_AMQP_URL"].flatMap { $0.isEmpty ? nil : $0 } }
    static var brokerRequired: Bool { environment["BIS_REQUIRE_BROKER"] == "1" }
    static let python = PythonTool(importing: "duckdb")
    static var enabled: Bool { (amqpURL != nil || brokerRequired) && python.enabled }

    struct Missing: Error, CustomStringConvertible {
        let what: String
        var description: String { what }
    }

    static func brokerURL() throws -> String {
        guard let amqpURL else {
            throw Missing(what: "BIS_TEST_AMQP_URL is not set: run the tests with ops/test, which starts the private broker")
        }
        return amqpURL
    }

    /// `ops/broker` (restart, status), as `BIS_TEST_BROKER_CTL` names it.
    static func brokerControl() throws -> String {
        guard let path = environment["BIS_TEST_BROKER_CTL"], !path.isEmpty else {
            throw Missing(what: "BIS_TEST_BROKER_CTL is not set: run the tests with ops/test")
        }
        return path
    }

    /// A built executable of this package: beside the test bundle (`swift
    /// test` builds every product into the same folder), else `.build/debug/`.
    static func executable(_ name: String) throws -> String {
        let bundle = Bundle.main.bundleURL
        let argv0 = URL(fileURLWithPath: CommandLine.arguments.first ?? "").deletingLastPathComponent()
        let candidates = [
            bundle.appendingPathComponent(name).path,
            bundle.deletingLastPathComponent().appendingPathComponent(name).path,
            argv0.appendingPathComponent(name).path,
            PythonTool.packageRoot + "/.build/debug/" + name,
        ]
        guard let found = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw Missing(what: "no built \(name) in \(candidates.joined(separator: ", ")): run `swift build --build-tests` first")
        }
        return found
    }

    static var checker: String { PythonTool.packageRoot + "/Tests/FleetIntegrationTests/python/check_fleet.py" }

    /// Deletes every queue whose name starts with `namespace.` through the
    /// broker's management API (best effort: the namespaces are unique per
    /// test, this only keeps the shared broker from filling up with quorum
    /// queues). The API is at `BIS_TEST_BROKER_MGMT_URL`, else on the AMQP
    /// host at `BIS_BROKER_MGMT_PORT` (ops/broker's default 15682), with the
    /// AMQP URL's user.
    static func deleteQueues(namespace: String) async {
        guard let amqpURL, let amqp = URLComponents(string: amqpURL) else { return }
        let base = environment["BIS_TEST_BROKER_MGMT_URL"]
            ?? "http://\(amqp.host ?? "127.0.0.1"):\(environment["BIS_BROKER_MGMT_PORT"] ?? "15682")"
        let user = amqp.user ?? "guest", password = amqp.password ?? "guest"
        let auth = "Basic " + Data("\(user):\(password)".utf8).base64EncodedString()
        func call(_ method: String, _ path: String) async -> Data? {
            guard let url = URL(string: base + path) else { return nil }
            var request = URLRequest(url: url)
            request.httpMethod = method
            request.timeoutInterval = 10
            request.setValue(auth, forHTTPHeaderField: "Authorization")
            guard let (data, response) = try? await URLSession.shared.data(for: request),
                  let http = response as? HTTPURLResponse, (200..<300).contains(http.statusCode) else { return nil }
            return data
        }
        guard let data = await call("GET", "/api/queues/%2F?columns=name"),
              let queues = try? JSONSerialization.jsonObject(with: data) as? [[String: Any]] else { return }
        for q in queues {
            guard let name = q["name"] as? String, name.hasPrefix(namespace + "."),
                  let escaped = name.addingPercentEncoding(withAllowedCharacters: .alphanumerics) else { continue }
            _ = await call("DELETE", "/api/queues/%2F/\(escaped)")
        }
        for exchange in ["tasks", "dead", "events", "rejected"] + (0...8).map({ "delay.\(250 << $0)" }) {
            _ = await call("DELETE", "/api/exchanges/%2F/\(namespace).\(exchange)")
        }
    }
}
