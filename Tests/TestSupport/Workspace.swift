import Foundation

/// A temp folder a test writes a spec and its input files into (with an
/// empty `data/`), removed afterwards: the layout the CLI and HTTP tests
/// run `bis` in.
public struct Workspace: Sendable {
    public let path: String

    public init() throws {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("bis-ws-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path + "/data", withIntermediateDirectories: true)
    }

    /// Writes `text` to `relative` (its folder must exist).
    public func write(_ relative: String, _ text: String) throws {
        try text.write(toFile: path + "/" + relative, atomically: true, encoding: .utf8)
    }

    public func remove() { try? FileManager.default.removeItem(atPath: path) }

    /// A workspace holding `orders.yml` (`OrdersSpec.plain`) and one CSV file it reads.
    public static func withOrders() throws -> Workspace {
        let ws = try Workspace()
        try ws.write("orders.yml", OrdersSpec.plain)
        try ws.write("data/a.csv", "id,amount,day\n1,10.50,2026-01-01\n2,3.00,2026-01-02\n")
        return ws
    }
}

/// The small orders pipeline the CLI and HTTP tests run and submit: one CSV
/// source under `data/` (`id`, `amount`, `day`), consolidated into two
/// partitions by `id`. Tests append the sections they need.
public enum OrdersSpec {
    public static let source = """
        pipeline: orders
        sources:
          orders:
            format: csv
            files: data/*.csv
            columns:
              id: int64
              amount: decimal(10,2)
              day: date

        """

    public static let consolidate = """
        consolidate:
          partition_by: [id]
          partitions: 2
          sort_by: [id]

        """

    /// Source and consolidate.
    public static let plain = source + consolidate

    /// With a normalize step deriving `cents` between them.
    public static let derivingCents = source + """
        normalize:
          - derive: {cents: "amount * 100"}

        """ + consolidate
}

/// The executables built beside the tests (a test target that runs one
/// depends on it).
public enum BuiltProduct {
    /// The package root, from this file's place in `Tests/TestSupport/`.
    public static let packageRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

    /// The path of executable `name`: the test bundle sits in the same build
    /// folder as the executables.
    public static func path(_ name: String) -> String {
        let bundleDir = Bundle.main.bundleURL.deletingLastPathComponent().path
        for candidate in [bundleDir + "/" + name, Bundle.main.bundlePath + "/../" + name, packageRoot + "/.build/debug/" + name]
        where FileManager.default.isExecutableFile(atPath: candidate) {
            return candidate
        }
        return packageRoot + "/.build/debug/" + name
    }
}
