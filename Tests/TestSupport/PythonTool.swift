import Foundation

/// The Python interpreter the cross-check tests run (pyarrow, DuckDB,
/// openpyxl …): `$BIS_PYTHON`, else the package's `.venv/bin/python` that
/// ops/setup makes, provided it can import `modules`. Tests skip when none is
/// found, unless `BIS_REQUIRE_PYTHON=1` (ops/test sets it): then they fail.
public struct PythonTool: Sendable {
    /// The package root, from this file's place in `Tests/TestSupport/`.
    public static let packageRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

    public static var required: Bool { ProcessInfo.processInfo.environment["BIS_REQUIRE_PYTHON"] == "1" }

    /// What the interpreter must import, as a Python import list ("pyarrow, duckdb").
    public let modules: String
    /// Nil when no candidate imports `modules`.
    public let interpreter: String?

    public init(importing modules: String) {
        self.modules = modules
        var candidates = [String]()
        if let p = ProcessInfo.processInfo.environment["BIS_PYTHON"], !p.isEmpty { candidates.append(p) }
        candidates.append(Self.packageRoot + "/.venv/bin/python")
        interpreter = candidates.first { c in
            FileManager.default.isExecutableFile(atPath: c)
                && (try? Self.run(c, ["-c", "import " + modules]))?.status == 0
        }
    }

    /// Run the tests when a Python is there, or when one is required (then they fail).
    public var enabled: Bool { interpreter != nil || Self.required }

    /// The interpreter, or an error that says how to get one.
    public func python() throws -> String {
        guard let interpreter else { throw Missing(modules: modules) }
        return interpreter
    }

    /// Runs `script` (a path) with `args`; stdout and stderr together.
    public func script(_ script: String, _ args: [String]) throws -> (status: Int32, output: String) {
        try Self.run(try python(), [script] + args)
    }

    /// Runs a program and waits; stdout and stderr together.
    public static func run(_ executable: String, _ args: [String]) throws -> (status: Int32, output: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: executable)
        p.arguments = args
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = pipe
        try p.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    public struct Missing: Error, CustomStringConvertible {
        public let modules: String
        public var description: String {
            "BIS_REQUIRE_PYTHON=1 but no Python that imports \(modules) was found: run ops/setup (it makes .venv), or set BIS_PYTHON"
        }
    }
}
