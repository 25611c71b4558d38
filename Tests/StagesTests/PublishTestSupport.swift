import Columnar
import Foundation
import Testing
@testable import Stages

/// A data root with validated chunks and their partials, as validate leaves them.
struct PublishFixture {
    let dir: OpTempDir
    var root: String { dir.path + "/root" }

    static let summaryColumns: [AggregateColumn] = [
        AggregateColumn("rows", .count), AggregateColumn("amount_sum", .sum("amount")),
        AggregateColumn("names", .countDistinct("name")), AggregateColumn("min_name", .min("name")),
        AggregateColumn("max_amount", .max("amount")), AggregateColumn("avg_price", .avg("price")),
        AggregateColumn("amounts", .countNonNull("amount")),
    ]
    /// The same aggregates as DuckDB writes them, in order.
    static let duckdbAggregates = "count(*);sum(amount);count(DISTINCT name);min(name);max(amount);avg(price);count(amount)"

    init() throws {
        dir = try OpTempDir()
    }

    /// `count` chunks of validated rows with ids starting at `firstID`.
    func chunks(_ label: String, count: Int = 3, rows: Int = 200, firstID: Int64 = 0, seed: UInt64 = 1) throws -> [String] {
        var rng = OpRandom(seed: seed)
        let names = ["alpha", "beta", "ä", "日本", ""]
        var id = firstID
        return try (0..<count).map { c in
            let batch = try opBatch([
                ("id", .int64, (0..<rows).map { _ -> Scalar? in defer { id += 1 }; return .int(id) }),
                ("flag", .string, (0..<rows).map { _ in rng.chance(0.05) ? nil : .string(["A", "N", "R"][rng.int(0...2)]) }),
                ("amount", .decimal(precision: 10, scale: 2), (0..<rows).map { _ in rng.chance(0.1) ? nil : .int(Int64(rng.int(-50_000...900_000))) }),
                ("price", .double, (0..<rows).map { _ in rng.chance(0.1) ? nil : .double(Double(rng.int(-100_000...100_000)) / 64) }),
                ("name", .string, (0..<rows).map { _ in rng.chance(0.1) ? nil : .string(names[rng.int(0...names.count - 1)]) }),
            ])
            let path = try dir.sub("validated-\(label)") + "/validated-" + String(format: "%05d", c) + ".parquet"
            return try opWriteChunk(path, [batch]).path
        }
    }

    /// One partial per chunk (as validate computes one per partition), for summary `by_flag`.
    func partials(_ chunks: [String]) throws -> [String: [PartialAggregate]] {
        ["by_flag": try chunks.map { try #require(try partialAggregate(chunks: [$0], groupBy: ["flag"], aggregates: Self.summaryColumns)) }]
    }

    func publishRun(_ run: String, _ chunks: [String], at seconds: TimeInterval = 0, retention: Int = 3,
                    faults: PublishFaults = .none) throws -> PublishResult {
        try publish(dataset: "orders", run: run, pipeline: "orders-daily", chunks: chunks, summaries: try partials(chunks),
                    root: root, retention: retention, now: Date(timeIntervalSince1970: 1_795_000_000 + seconds), faults: faults)
    }

    var published: String { root + "/published" }

    func text(_ relative: String) -> String? {
        FileManager.default.contents(atPath: published + "/" + relative).map { String(decoding: $0, as: UTF8.self) }
    }

    /// Every file under the root (hidden ones too) with its bytes and modification time.
    func snapshot() throws -> [String: (Data, Date)] {
        var all: [String: (Data, Date)] = [:]
        for sub in FileManager.default.subpaths(atPath: root) ?? [] {
            let path = root + "/" + sub
            let attributes = try FileManager.default.attributesOfItem(atPath: path)
            guard attributes[.type] as? FileAttributeType == .typeRegular else { continue }
            all[sub] = (try Data(contentsOf: URL(fileURLWithPath: path)), attributes[.modificationDate] as? Date ?? .distantPast)
        }
        return all
    }

    func entries(_ dataset: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: published + "/" + dataset)) ?? []).sorted()
    }

    func manifest(_ dataset: String, _ run: String) throws -> PublishManifest {
        try PublishManifest(json: Array(try Data(contentsOf: URL(fileURLWithPath: published + "/\(dataset)/\(run)/_manifest.json"))))
    }

    /// The view's rows through DuckDB: (rows, ids).
    func duckdbView(_ dataset: String) throws -> (rows: Int, ids: [Int]) {
        let r = try StagesPython.script("check_publish.py", ["view", published + "/\(dataset)/view.sql", dataset])
        guard r.status == 0,
              let json = try JSONSerialization.jsonObject(with: Data(r.output.utf8)) as? [String: Any] else {
            throw PublishTestError("check_publish.py failed: \(r.output)")
        }
        return (json["rows"] as? Int ?? -1, json["ids"] as? [Int] ?? [])
    }
}

struct PublishTestError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

struct InjectedCrash: Error {}
