import Columnar
import FleetCore
import Foundation
import TestSupport
@testable import Stages

/// A fresh directory under the system temp dir, removed by `cleanup`.
struct OpTempDir {
    let path: String

    init() throws {
        path = NSTemporaryDirectory() + "stages-tests-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    func file(_ name: String) -> String { path + "/" + name }

    func sub(_ name: String) throws -> String {
        let p = path + "/" + name
        try FileManager.default.createDirectory(atPath: p, withIntermediateDirectories: true)
        return p
    }

    func entries(_ sub: String? = nil) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: sub.map { path + "/" + $0 } ?? path)) ?? []).sorted()
    }

    func cleanup() { try? FileManager.default.removeItem(atPath: path) }
}

/// The seeded generator of the operator tests.
typealias OpRandom = SeededRandom

func opBatch(_ fields: [(String, ColumnType, [Scalar?])]) throws -> ColumnBatch {
    try ColumnBatch(schema: Schema(fields.map { Field($0.0, $0.1) }),
                    columns: fields.map { try Column($0.1, scalars: $0.2) })
}

func opWriteChunk(_ path: String, _ batches: [ColumnBatch], rowGroupRows: Int = 1 << 20) throws -> WriteResult {
    var o = WriterOptions()
    o.rowGroupRows = rowGroupRows
    let w = try ParquetWriter(path: path, schema: batches[0].schema, options: o)
    for b in batches { try w.append(b) }
    return try w.finish()
}

/// Every row of the chunks, read back through ParquetReader, as scalars.
func opReadRows(_ paths: [String]) throws -> [[Scalar?]] {
    var rows = [[Scalar?]]()
    for p in paths {
        let b = try ParquetReader(path: p).read()
        for r in 0..<b.rowCount { rows.append(b.columns.map { $0.scalar(at: r) }) }
    }
    return rows
}

func opStrings(_ column: Column?) -> [String?] {
    guard let column else { return [] }
    return (0..<column.count).map { r in
        column.scalar(at: r).map { s in if case .bytes(let b) = s { return String(decoding: b, as: UTF8.self) }; return s.description }
    }
}

func opInts(_ column: Column?) -> [Int64?] {
    guard let column else { return [] }
    return (0..<column.count).map { r in
        if case .int(let v)? = column.scalar(at: r) { return v }
        return nil
    }
}

/// The message of the error `body` throws, or "" when it does not throw.
func opErrorText(_ body: () throws -> Void) -> String {
    do { try body() } catch { return String(describing: error) }
    return ""
}

/// Normalize of every shard chunk by `spec` into `partitions` partitions
/// under `root/normalize/N`: each partition's chunks, in shard order.
func normalizeShards(_ shardChunks: [String], spec: PipelineSpec, partitions: Int, root: String) throws -> [Int: [String]] {
    let compiled = try SpecOperators.normalize(spec)
    let partitionBy = SpecOperators.consolidate(spec)?.partitionBy ?? []
    var byPartition: [Int: [String]] = [:]
    for (n, chunk) in shardChunks.enumerated() {
        let r = try normalize(inputChunks: [chunk], steps: compiled.ops, caster: compiled.caster,
                              partitionBy: partitionBy, partitions: partitions, outputDir: root + "/normalize/\(n)")
        for p in r.partitions { byPartition[p.partition, default: []].append(p.chunk.path) }
    }
    return byPartition
}
