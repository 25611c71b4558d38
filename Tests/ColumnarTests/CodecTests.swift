import CSnappy
import CGzip
import Testing
@testable import Columnar

/// SNAPPY and GZIP pages: exact expansion, and every wrong, negative or
/// implausible uncompressed_page_size refused as corrupt naming the field.
@Suite struct CodecTests {
    static func snappy(_ data: [UInt8]) -> [UInt8] {
        var length = snappy_max_compressed_length(data.count)
        var out = [CChar](repeating: 0, count: length)
        let status = data.withUnsafeBufferPointer { src in
            src.withMemoryRebound(to: CChar.self) { snappy_compress($0.baseAddress, data.count, &out, &length) }
        }
        precondition(status == SNAPPY_OK)
        return out.prefix(length).map { UInt8(bitPattern: $0) }
    }

    /// One gzip member (window bits 15 + 16).
    static func gzip(_ data: [UInt8]) -> [UInt8] {
        var stream = z_stream()
        precondition(bis_deflate_init2(&stream, 6, 15 + 16) == Z_OK)
        defer { deflateEnd(&stream) }
        let bound = Int(deflateBound(&stream, UInt(data.count))) + 32
        var out = [UInt8](repeating: 0, count: bound)
        var input = data
        let written = input.withUnsafeMutableBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                stream.next_in = src.baseAddress
                stream.avail_in = UInt32(src.count)
                stream.next_out = dst.baseAddress
                stream.avail_out = UInt32(dst.count)
                precondition(deflate(&stream, Z_FINISH) == Z_STREAM_END)
                return dst.count - Int(stream.avail_out)
            }
        }
        return Array(out.prefix(written))
    }

    static func sample(_ n: Int, seed: UInt64) -> [UInt8] {
        var rng = SplitMix(seed: seed)
        // Compressible: runs and a small alphabet, with some noise.
        return (0..<n).map { i in i % 97 < 60 ? UInt8(i / 13 % 7) : UInt8.random(in: 0...255, using: &rng) }
    }

    static func expand(_ codec: Int32, _ body: [UInt8], size: Int) throws -> [UInt8] {
        try body.withUnsafeBytes { raw in
            codec == Codec.snappy ? try PageCodecs.snappy(raw, size: size) : try PageCodecs.gzip(raw, size: size)
        }
    }

    static func compress(_ codec: Int32, _ data: [UInt8]) -> [UInt8] {
        codec == Codec.snappy ? snappy(data) : gzip(data)
    }

    static func corruptMessage(_ body: () throws -> Any) -> String? {
        do {
            _ = try body()
            return nil
        } catch ColumnarError.corrupt(let m) {
            return m
        } catch {
            return "not corrupt: \(error)"
        }
    }

    @Test(arguments: [Codec.snappy, Codec.gzip], [0, 1, 100, 65_536, 1_000_003])
    func roundTrip(codec: Int32, size: Int) throws {
        let data = Self.sample(size, seed: UInt64(size))
        let body = Self.compress(codec, data)
        #expect(try Self.expand(codec, body, size: size) == data)
    }

    @Test(arguments: [Codec.snappy, Codec.gzip])
    func wrongSizesAreCorruptNamingTheField(codec: Int32) throws {
        let data = Self.sample(10_000, seed: 9)
        let body = Self.compress(codec, data)
        for size in [9_999, 10_001, 0, 1, -1, -10_000, Int(Int32.max)] {
            let m = Self.corruptMessage { try Self.expand(codec, body, size: size) }
            #expect(m?.contains("uncompressed_page_size") == true, "\(Codec.name(codec)) size \(size): \(m ?? "read")")
            if size < 0 { #expect(m?.contains("negative") == true, "\(m ?? "")") }
        }
    }

    @Test(arguments: [Codec.snappy, Codec.gzip])
    func damagedAndTruncatedBodiesAreCorrupt(codec: Int32) throws {
        let data = Self.sample(50_000, seed: 3)
        let body = Self.compress(codec, data)
        for cut in [1, body.count / 2, body.count - 1] {
            let m = Self.corruptMessage { try Self.expand(codec, Array(body.prefix(cut)), size: data.count) }
            #expect(m != nil && !m!.hasPrefix("not corrupt"), "\(Codec.name(codec)) cut at \(cut): \(m ?? "read")")
        }
        #expect(Self.corruptMessage { try Self.expand(codec, [], size: 10) } != nil)
        var rng = SplitMix(seed: 5)
        for _ in 0..<200 {
            var damaged = body
            for _ in 0..<3 { damaged[Int.random(in: 0..<damaged.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng) }
            do {
                let out = try Self.expand(codec, damaged, size: data.count)
                #expect(out.count == data.count)
            } catch let error as ColumnarError {
                if case .corrupt = error {} else { Issue.record("\(error) is not 'corrupt'") }
            }
        }
    }

    /// Some writers concatenate gzip members in one page.
    @Test func gzipMembersOneAfterAnother() throws {
        let a = Self.sample(3000, seed: 1), b = Self.sample(5000, seed: 2)
        let body = Self.gzip(a) + Self.gzip(b)
        #expect(try Self.expand(Codec.gzip, body, size: a.count + b.count) == a + b)
        #expect(Self.corruptMessage { try Self.expand(Codec.gzip, body, size: a.count) }?.contains("uncompressed_page_size") == true)
    }

    @Test func plausibilityBoundsComeBeforeAllocation() {
        // 10 bytes cannot expand to 1 GiB in either codec.
        let body = [UInt8](repeating: 0, count: 10)
        let gz = Self.corruptMessage { try Self.expand(Codec.gzip, body, size: 1 << 30) }
        #expect(gz?.contains("more than GZIP can expand") == true, "\(gz ?? "")")
        // A snappy stream whose own length prefix claims 1 GiB.
        var claim: [UInt8] = [0x80, 0x80, 0x80, 0x80, 0x04]   // varint 1 << 30
        claim += [0, 0, 0]
        let sn = Self.corruptMessage { try Self.expand(Codec.snappy, claim, size: 1 << 30) }
        #expect(sn?.contains("more than SNAPPY can expand") == true, "\(sn ?? "")")
    }
}
