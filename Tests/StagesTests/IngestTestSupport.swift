import Foundation
import Testing
import Columnar
@testable import Stages

/// A fresh directory under the system temp dir, removed by `cleanup`.
struct IngestTempDir {
    let path: String

    init() throws {
        path = NSTemporaryDirectory() + "ingest-tests-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    func file(_ name: String) -> String { path + "/" + name }

    func write(_ name: String, _ bytes: [UInt8]) throws -> String {
        let p = file(name)
        try Data(bytes).write(to: URL(fileURLWithPath: p))
        return p
    }

    func write(_ name: String, _ text: String) throws -> String {
        try write(name, Array(text.utf8))
    }

    func cleanup() {
        try? FileManager.default.removeItem(atPath: path)
    }
}

/// One quarantine row, read back.
struct QuarantineRow: Equatable, CustomStringConvertible {
    var file: String
    var line: Int64
    var column: String?
    var reason: String
    var raw: String

    var description: String { "line \(line) [\(column ?? "-")] \(reason) | \(raw)" }
}

/// An ingest of some text, read back.
struct Ingested {
    var result: IngestResult
    var batch: ColumnBatch
    var quarantine: [QuarantineRow]
    var schema: Schema
    var rowGroupCount: Int

    /// Column `name` as optional scalars.
    func values(_ name: String) -> [Scalar?] {
        guard let c = batch[name] else { return [] }
        return (0..<c.count).map { c.scalar(at: $0) }
    }

    func strings(_ name: String) -> [String?] {
        values(name).map { $0.map { s -> String in
            if case .bytes(let b) = s { return String(decoding: b, as: UTF8.self) }
            return s.description
        } }
    }

    var reasons: [String] { quarantine.map(\.reason) }
}

func readQuarantine(_ path: String?) throws -> [QuarantineRow] {
    guard let path else { return [] }
    let b = try ParquetReader(path: path).read()
    let file = b["file"]!, line = b["line"]!, column = b["column"]!, reason = b["reason"]!, raw = b["raw"]!
    func text(_ c: Column, _ i: Int) -> String? {
        guard case .bytes(let v)? = c.scalar(at: i) else { return nil }
        return String(decoding: v, as: UTF8.self)
    }
    return (0..<b.rowCount).map { i in
        guard case .int(let l)? = line.scalar(at: i) else { fatalError("line is null") }
        return QuarantineRow(file: text(file, i)!, line: l, column: text(column, i), reason: text(reason, i)!, raw: text(raw, i)!)
    }
}

func ingestFile(_ path: String, _ source: IngestSource, shard: Shard? = nil, options: IngestOptions = IngestOptions(),
                dir: IngestTempDir, out: String = "out") throws -> Ingested {
    let result = try ingest(shard: shard ?? Shard(path: path), source: source, outputDir: dir.file(out), options: options)
    let reader = try ParquetReader(path: result.chunk.path)
    let batch = try reader.read()
    let q = try readQuarantine(result.quarantine?.path)
    #expect(result.rowsRead == result.rowsWritten + result.rowsQuarantined)
    #expect(Int64(batch.rowCount) == result.rowsWritten)
    #expect(Int64(q.count) == result.rowsQuarantined)
    return Ingested(result: result, batch: batch, quarantine: q, schema: reader.schema, rowGroupCount: reader.rowGroups.count)
}

func ingestText(_ text: String, _ source: IngestSource, options: IngestOptions = IngestOptions()) throws -> Ingested {
    try ingestBytes(Array(text.utf8), source, options: options)
}

func ingestBytes(_ bytes: [UInt8], _ source: IngestSource, options: IngestOptions = IngestOptions()) throws -> Ingested {
    let dir = try IngestTempDir()
    defer { dir.cleanup() }
    let path = try dir.write(source.format == .csv ? "input.csv" : "input.jsonl", bytes)
    return try ingestFile(path, source, options: options, dir: dir)
}

func csv(_ columns: [Field], header: Bool = true) -> IngestSource {
    IngestSource(format: .csv, columns: columns, header: header)
}
