import Columnar
import Foundation
@testable import Stages

/// A data root with a run's report and manifest in it, as report and
/// publish leave them.
struct DeliverFixture {
    let dir: OpTempDir
    var root: String { dir.path }
    let report: String
    let manifest: String
    let run = "orders-20261126T181500Z-7f3a"
    let now = Date(timeIntervalSince1970: 1_795_000_000)

    init() throws {
        dir = try OpTempDir()
        let published = try dir.sub("published/orders/\(run)")
        let reports = try dir.sub("runs/\(run)/report")
        report = reports + "/report.html"
        manifest = published + "/_manifest.json"
        try "<html><body><h1>Orders</h1><p>1234 rows</p></body></html>\n".write(toFile: report, atomically: true, encoding: .utf8)
        try #"{"dataset": "orders", "files": [{"path": "part-0.parquet", "sha256": "ab"}]}"#
            .write(toFile: manifest, atomically: true, encoding: .utf8)
    }

    var files: [DeliveryFile] {
        [DeliveryFile(path: report), DeliveryFile(path: manifest, sha256: try? sha256(ofFile: manifest))]
    }

    /// `<root>/outbox/finance/<run>`.
    var outbox: String { root + "/outbox/finance/" + run }

    func deliverToOutbox(approval: Approval? = nil, requireApproval: Bool = false, at time: Date? = nil,
                         files: [DeliveryFile]? = nil) async throws -> DeliveryReceipt {
        try await deliver(files: files ?? self.files, run: run, dataset: "orders", version: run, approval: approval,
                          requireApproval: requireApproval, target: .directory("outbox/finance"), dataRoot: root,
                          now: time ?? now)
    }
}

/// The Python for the test endpoint: stdlib only, so any Python 3 will do.
enum DeliverPython {
    static let scripts = StagesPython.scripts

    static let interpreter: String? = {
        var candidates = [String]()
        if let p = ProcessInfo.processInfo.environment["BIS_PYTHON"], !p.isEmpty { candidates.append(p) }
        candidates += [StagesPython.packageRoot + "/.venv/bin/python", "/usr/bin/python3"]
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) }
    }()

    static var enabled: Bool { interpreter != nil || StagesPython.required }
}

/// `deliver_server.py`, running until `stop()`.
final class DeliveryEndpoint {
    let process = Process()
    let port: Int
    let recordFile: String

    init(recordFile: String) throws {
        self.recordFile = recordFile
        guard let python = DeliverPython.interpreter else { throw EndpointError("no Python: set BIS_PYTHON") }
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = [DeliverPython.scripts + "/deliver_server.py", recordFile]
        let out = Pipe()
        process.standardOutput = out
        try process.run()
        // The first line is the port.
        var line = Data()
        while !line.contains(UInt8(ascii: "\n")) {
            let chunk = out.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            line.append(chunk)
        }
        guard let port = Int(String(decoding: line, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)) else {
            process.terminate()
            throw EndpointError("deliver_server.py printed no port")
        }
        self.port = port
    }

    func url(_ path: String) -> URL { URL(string: "http://127.0.0.1:\(port)\(path)")! }

    struct Request: Decodable {
        var path: String
        var idempotency_key: String?
        var authorization: String?
        var content_type: String?
        var body: String
        var status: Int
    }

    func requests() throws -> [Request] {
        guard let text = try? String(contentsOfFile: recordFile, encoding: .utf8) else { return [] }
        return try text.split(separator: "\n").map { try JSONDecoder().decode(Request.self, from: Data($0.utf8)) }
    }

    func stop() {
        // SIGKILL: a child of the test process may inherit SIGTERM blocked.
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }
}

struct EndpointError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}
