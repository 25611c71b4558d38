import Foundation
@testable import Columnar

/// A fresh directory under the system temp dir, removed by `cleanup`.
struct TempDir {
    let path: String

    init() throws {
        path = NSTemporaryDirectory() + "columnar-tests-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    func file(_ name: String) -> String { path + "/" + name }

    func entries() -> [String] {
        (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
    }

    func cleanup() {
        try? FileManager.default.removeItem(atPath: path)
    }
}

/// Random values that stress the edges: extremes, NaN, ±0.0, empty and
/// multi-byte strings, dates before 1970, negative decimals.
struct TableGenerator {
    var rng: SplitMix

    init(seed: UInt64) { rng = SplitMix(seed: seed) }

    mutating func int(_ range: ClosedRange<Int>) -> Int { Int.random(in: range, using: &rng) }
    mutating func chance(_ p: Double) -> Bool { Double.random(in: 0..<1, using: &rng) < p }

    mutating func type() -> ColumnType {
        switch int(0...7) {
        case 0: return .int64
        case 1: return .int32
        case 2: return .double
        case 3: return .bool
        case 4: return .string
        case 5: return .date
        case 6: return .timestamp
        default:
            let p = int(1...18)
            return .decimal(precision: p, scale: int(0...p))
        }
    }

    mutating func schema() -> Schema {
        let n = int(1...7)
        return Schema((0..<n).map { i in Field("c\(i)_\(int(0...999))", type(), nullable: chance(0.6)) })
    }

    static let strings = ["", "a", "é", "日本語", "🎉 party", "naïve café", "\u{0}", "zz", "ABC", String(repeating: "x", count: 300)]

    mutating func value(_ type: ColumnType, pool: [Scalar]?) -> Scalar {
        if let pool, chance(0.9) { return pool[int(0...(pool.count - 1))] }
        switch type {
        case .int64:
            if chance(0.3) { return .int([Int64.min, Int64.max, 0, -1].randomElement(using: &rng)!) }
            return .int(Int64.random(in: Int64.min...Int64.max, using: &rng))
        case .int32:
            return chance(0.3) ? .int(Int64([Int32.min, Int32.max, 0, -1].randomElement(using: &rng)!))
                : .int(Int64(Int32.random(in: Int32.min...Int32.max, using: &rng)))
        case .double:
            if chance(0.4) {
                return .double([Double.nan, -0.0, 0.0, .infinity, -.infinity, .leastNonzeroMagnitude,
                                -.greatestFiniteMagnitude, 1e300].randomElement(using: &rng)!)
            }
            return .double(Double.random(in: -1e6...1e6, using: &rng))
        case .bool:
            return .bool(chance(0.5))
        case .string:
            if chance(0.5) { return .string(TableGenerator.strings.randomElement(using: &rng)!) }
            let len = int(0...20)
            var s = ""
            for _ in 0..<len {
                s.unicodeScalars.append(Unicode.Scalar([0x41, 0x7A, 0xE9, 0x4E2D, 0x1F600].randomElement(using: &rng)! + UInt32(int(0...5)))!)
            }
            return .string(s)
        case .date:
            return .int(Int64(int(-800_000...800_000)))
        case .timestamp:
            return .int(Int64(int(-9_000_000_000_000_000...9_000_000_000_000_000)))
        case .decimal(let p, _):
            var limit: Int64 = 1
            for _ in 0..<p { limit *= 10 }
            limit -= 1
            return .int(chance(0.2) ? [limit, -limit, 0].randomElement(using: &rng)! : Int64.random(in: -limit...limit, using: &rng))
        }
    }

    mutating func column(_ field: Field, rows: Int) throws -> Column {
        let nullRate = field.nullable ? [0.0, 0.1, 0.5, 1.0].randomElement(using: &rng)! : 0
        var pool: [Scalar]?
        if chance(0.5) {
            pool = (0..<int(1...6)).map { _ in value(field.type, pool: nil) }
        }
        var scalars = [Scalar?]()
        for _ in 0..<rows {
            scalars.append(chance(nullRate) ? nil : value(field.type, pool: pool))
        }
        return try Column(field.type, scalars: scalars)
    }

    mutating func batch(_ schema: Schema, rows: Int) throws -> ColumnBatch {
        try ColumnBatch(schema: schema, columns: schema.fields.map { try column($0, rows: rows) })
    }
}

func concatenate(_ batches: [ColumnBatch], schema: Schema) throws -> ColumnBatch {
    var builders = schema.fields.map { ColumnBuilder($0.type) }
    for b in batches {
        for i in builders.indices { builders[i].append(b.columns[i], range: 0..<b.rowCount) }
    }
    return try ColumnBatch(schema: schema, columns: builders.map { $0.build() })
}
