import Foundation
import Testing
import Columnar
@testable import Stages

@Suite struct IngestShardTests {
    struct SplitMix: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    /// A CSV full of quoted line breaks, doubled quotes, CRLF and LF, quoted
    /// delimiters, null markers and some malformed rows.
    static func nastyCSV(rows: Int, header: Bool, seed: UInt64) -> String {
        var rng = SplitMix(state: seed)
        var text = header ? "\u{FEFF}id,text,amount\r\n" : ""
        let pieces = ["a", "\"\"", "\n", "\r\n", ",", " ", "é", "\"\"\n\"\"", "NA", "x\ny"]
        for i in 0..<rows {
            let eol = Bool.random(using: &rng) ? "\r\n" : "\n"
            var field = ""
            for _ in 0..<Int.random(in: 0...6, using: &rng) { field += pieces.randomElement(using: &rng)! }
            let quoted = "\"" + field + "\""
            switch Int.random(in: 0..<20, using: &rng) {
            case 0: text += "\(i),ab\"c\"d,1.00" + eol                 // two stray quotes: parity stays even
            case 1: text += "\(i),\"q\"x,2.00" + eol                   // text after a closing quote
            case 2: text += "\(i),\(quoted)" + eol                     // too few fields
            case 3: text += "\(i),\(quoted),12.345" + eol              // too many decimals
            case 4: text += eol                                        // blank line
            default: text += "\(i),\(quoted),\(Int.random(in: -999...999, using: &rng)).\(Int.random(in: 10...99, using: &rng))" + eol
            }
        }
        return text
    }

    static let columns = [Field("id", .int64, nullable: false), Field("text", .string), Field("amount", .decimal(precision: 9, scale: 2))]

    struct Combined: Equatable {
        var ids: [Scalar?] = []
        var texts: [Scalar?] = []
        var amounts: [Scalar?] = []
        var quarantine: [QuarantineRow] = []
        var read: Int64 = 0
    }

    static func run(_ path: String, _ shards: [Shard], _ source: IngestSource, dir: IngestTempDir, options: IngestOptions) throws -> Combined {
        var c = Combined()
        for (k, shard) in shards.enumerated() {
            let r = try ingestFile(path, source, shard: shard, options: options, dir: dir, out: "s\(k)-\(UUID().uuidString)")
            c.ids += r.values("id")
            c.texts += r.values("text")
            c.amounts += r.values("amount")
            c.quarantine += r.quarantine
            c.read += r.result.rowsRead
            try? FileManager.default.removeItem(atPath: (r.result.chunk.path as NSString).deletingLastPathComponent)
        }
        return c
    }

    @Test(arguments: [true, false])
    func randomShardSizesGiveExactlyTheSingleShardRecords(header: Bool) throws {
        let dir = try IngestTempDir()
        defer { dir.cleanup() }
        let text = Self.nastyCSV(rows: 250, header: header, seed: header ? 7 : 8)
        let path = try dir.write("nasty.csv", text)
        let size = Int64(text.utf8.count)
        var source = IngestSource(format: .csv, columns: Self.columns, header: header)
        source.nullMarkers = ["NA"]
        var options = IngestOptions()
        options.readBlockBytes = 4096
        let whole = try Self.run(path, [Shard(path: path)], source, dir: dir, options: options)
        #expect(whole.ids.count > 150)
        #expect(whole.quarantine.count > 20)
        #expect(whole.texts.contains { $0.map { "\($0)".contains("\r\n") } ?? false })
        var rng = SplitMix(state: 42)
        var sizes: [Int64] = [1, 2, 3, 5, 17, 64, size - 1, size, size + 1]
        for _ in 0..<16 { sizes.append(Int64.random(in: 1...(size / 2), using: &rng)) }
        for shardSize in sizes {
            let shards = try planShards(path: path, size: size, shardSize: shardSize, source: source)
            // Contiguous, non-empty ranges covering the file.
            #expect(shards.first?.byteRange?.lowerBound == 0)
            #expect(shards.last?.byteRange?.upperBound == size)
            for (a, b) in zip(shards, shards.dropFirst()) { #expect(a.byteRange!.upperBound == b.byteRange!.lowerBound) }
            #expect(shards.allSatisfy { !$0.byteRange!.isEmpty })
            let split = try Self.run(path, shards, source, dir: dir, options: options)
            #expect(split == whole, "shard size \(shardSize): \(shards.count) shards")
        }
    }

    @Test func jsonLinesShardsToo() throws {
        let dir = try IngestTempDir()
        defer { dir.cleanup() }
        var text = ""
        for i in 0..<200 {
            text += i % 13 == 0 ? "{\"id\": \(i), \"text\": [1]}\n" : "{\"id\":\(i),\"text\":\"l\\n\(i)\",\"amount\":\(i).5}\r\n"
            if i % 17 == 0 { text += "\n" }
        }
        let path = try dir.write("a.jsonl", text)
        let size = Int64(text.utf8.count)
        let source = IngestSource(format: .jsonl, columns: Self.columns)
        let whole = try Self.run(path, [Shard(path: path)], source, dir: dir, options: IngestOptions())
        #expect(whole.ids.count == 184)
        for shardSize: Int64 in [1, 7, 100, 999, size] {
            let shards = try planShards(path: path, size: size, shardSize: shardSize, source: source)
            #expect(try Self.run(path, shards, source, dir: dir, options: IngestOptions()) == whole)
        }
    }

    @Test func plannedBoundariesAreRecordStartsWithTheirLineNumbers() throws {
        let dir = try IngestTempDir()
        defer { dir.cleanup() }
        // Offsets: header 0..<4, r1 4..<13 (a quoted newline), r2 13..<17, r3 17..<21.
        let text = "a,b\n1,\"x\ny,\"\n2,z\n3,w\n"
        let path = try dir.write("p.csv", text)
        let source = IngestSource(format: .csv, columns: [Field("a", .int64), Field("b", .string)])
        let shards = try planShards(path: path, size: 21, shardSize: 4, source: source)
        // A newline-only planner would have cut at 9, inside the quotes.
        #expect(shards.map(\.byteRange) == [0..<13, 13..<17, 17..<21])
        #expect(shards.map(\.firstLine) == [1, 4, 5])
        #expect(try planShards(path: path, size: 21, shardSize: 6, source: source).map(\.byteRange) == [0..<13, 13..<21])
        #expect(try planShards(path: path, size: 21, shardSize: 100, source: source).map(\.byteRange) == [0..<21])
        #expect(throws: IngestError.self) { try planShards(path: path, size: 21, shardSize: 0, source: source) }
    }
}
