import Testing
@testable import Columnar

/// Byte vectors from shared/reference/parquet.md, checked against pyarrow and DuckDB.
@Suite struct FormatVectorTests {
    func hex(_ s: String) -> [UInt8] {
        s.split(separator: " ").map { UInt8($0, radix: 16)! }
    }

    @Test func dataPageHeaderMatchesReference() throws {
        let bytes = ChunkEncoder.dataPageHeader(uncompressed: 1234, compressed: 567, numValues: 100, encoding: Encoding.plain)
        #expect(bytes == hex("15 00 15 a4 13 15 ee 08 2c 15 c8 01 15 00 15 06 15 06 00 00"))
        var r = CompactReader(bytes)
        let h = try r.pageHeader()
        #expect(h.type == PageType.data)
        #expect(h.uncompressedSize == 1234)
        #expect(h.compressedSize == 567)
        #expect(h.dataPage?.numValues == 100)
        #expect(h.dataPage?.encoding == Encoding.plain)
        #expect(r.remaining == 0)
    }

    func logical(_ type: ColumnType) -> [UInt8] {
        var w = CompactWriter()
        ParquetWriter.encodeLogicalType(type, into: &w)
        w.stop()
        return w.bytes
    }

    @Test func logicalTypesMatchReference() throws {
        #expect(logical(.timestamp) == hex("8c 11 1c 2c 00 00 00 00"))
        #expect(logical(.string) == hex("1c 00 00"))
        #expect(logical(.decimal(precision: 9, scale: 2)) == hex("5c 15 04 15 12 00 00"))
    }

    @Test func logicalTypesDecode() throws {
        var r = CompactReader(hex("8c 11 1c 2c 00 00 00 00"))
        #expect(try r.logicalType() == .timestamp(utc: true, unit: 2))
        r = CompactReader(hex("5c 15 04 15 12 00 00"))
        #expect(try r.logicalType() == .decimal(scale: 2, precision: 9))
        r = CompactReader(hex("1c 00 00"))
        #expect(try r.logicalType() == .string)
    }

    @Test func definitionLevelsDecodeFromRunsAndBitPacking() throws {
        let expected: [UInt32] = [0, 1, 1, 1, 1, 0, 1, 1, 1, 1]
        let runs = hex("08 00 00 00 02 00 08 01 02 00 08 01")
        #expect(ValueDecoding.readUInt32(runs, 0) == 8)
        #expect(try Hybrid.decode(runs, 4, runs.count, bitWidth: 1, count: 10).values == expected)
        let packed = hex("05 de 03")
        #expect(try Hybrid.decode(packed, 0, packed.count, bitWidth: 1, count: 10).values == expected)
    }

    @Test func definitionLevelsEncodeAsOneBitPackedRun() {
        var validity = [Bool](repeating: true, count: 10)
        validity[0] = false
        validity[5] = false
        var out: [UInt8] = []
        Hybrid.encodeLevels(validity, 0..<10, into: &out)
        #expect(out == hex("05 de 03"))
        out = []
        Hybrid.encodeLevels(nil, 0..<10, into: &out)
        #expect(out == hex("14 01"))
    }

    @Test func hybridRoundTripsMixedRuns() throws {
        var rng = SplitMix(seed: 7)
        for width in [1, 2, 3, 7, 8, 13, 20, 32] {
            var values = [UInt32]()
            let limit = width == 32 ? UInt64(UInt32.max) : (UInt64(1) << UInt64(width)) - 1
            for _ in 0..<50 {
                let v = UInt32(rng.next() % (limit + 1))
                let run = Int(rng.next() % 20) + 1
                values.append(contentsOf: repeatElement(v, count: run))
            }
            var out: [UInt8] = []
            values.withUnsafeBufferPointer { Hybrid.encode($0, bitWidth: width, into: &out) }
            let back = try Hybrid.decode(out, 0, out.count, bitWidth: width, count: values.count)
            #expect(back.values == values, "width \(width)")
            #expect(back.end == out.count)
        }
    }

    @Test func thriftIntegersUseZigzagVarints() throws {
        var w = CompactWriter()
        w.i64(1, -1)
        w.i64(2, Int64.max)
        w.i64(3, Int64.min)
        w.i32(20, 300)
        w.stop()
        // field 20 follows field 3 by 17: long form header.
        #expect(Array(w.bytes.prefix(2)) == [0x16, 0x01])
        var r = CompactReader(w.bytes)
        var got: [Int16: Int64] = [:]
        try r.readStruct { r, id, t in
            got[id] = try r.zigzag()
            return true
        }
        #expect(got == [1: -1, 2: Int64.max, 3: Int64.min, 20: 300])
    }

    @Test func thriftSkipsUnknownFieldsOfEveryType() throws {
        var w = CompactWriter()
        w.i32(1, 5)
        w.bool(2, true)
        w.binary(3, [1, 2, 3])
        w.listBegin(4, .i32, count: 20)
        for i in 0..<20 { w.elementI32(Int32(i)) }
        w.structBegin(5)
        w.i64(1, 9)
        w.structEnd()
        w.i32(9, 42)
        w.stop()
        var r = CompactReader(w.bytes)
        var value: Int32?
        try r.readStruct { r, id, t in
            guard id == 9 else { return false }
            value = try r.i32()
            return true
        }
        #expect(value == 42)
        #expect(r.remaining == 0)
    }

    @Test func thriftRejectsTruncatedInput() {
        let bytes = ChunkEncoder.dataPageHeader(uncompressed: 1234, compressed: 567, numValues: 100, encoding: 0)
        for cut in 0..<(bytes.count - 1) {
            var r = CompactReader(Array(bytes.prefix(cut)))
            #expect(throws: ColumnarError.self) { try r.pageHeader() }
        }
    }

    @Test func sha256MatchesKnownDigests() {
        #expect(Checksum.sha256([]) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(Checksum.sha256(Array("abc".utf8)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        let million = [UInt8](repeating: 0x61, count: 1_000_000)
        #expect(Checksum.sha256(million) == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
        // Streaming in odd pieces gives the same digest.
        var h = Checksum()
        var i = 0
        var step = 1
        while i < million.count {
            let end = min(million.count, i + step)
            h.update(Array(million[i..<end]))
            i = end
            step = step * 3 % 1000 + 1
        }
        #expect(h.finalize() == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    @Test func emptyInputStillGetsAZstdFrame() throws {
        let c = try ZstdCompressor(level: 3)
        var out: [UInt8] = []
        try c.compress(UnsafeRawBufferPointer(start: nil, count: 0), appendingTo: &out)
        #expect(out.count > 0)
        #expect(Array(out.prefix(4)) == [0x28, 0xb5, 0x2f, 0xfd])
        let d = try ZstdDecompressor()
        let back = try out.withUnsafeBytes { try d.decompress($0, size: 0) }
        #expect(back.isEmpty)
    }

    @Test func deltaBinaryPackedDecodesAHandBuiltBlock() throws {
        // block 128, 4 miniblocks, 5 values, first 7; deltas 1,1,1,1 → min delta 1, widths 0.
        var bytes: [UInt8] = [0x80, 0x01, 0x04, 0x05, 0x0e, 0x02, 0, 0, 0, 0]
        let (v, end) = try ValueDecoding.deltaBinaryPacked(bytes, 0, bytes.count, count: 5)
        #expect(v == [7, 8, 9, 10, 11])
        #expect(end == bytes.count)
        // Deltas -2, +3 (min -2, width 3: packed 0 and 5).
        bytes = [0x80, 0x01, 0x04, 0x03, 0x14, 0x03, 0x03, 0, 0, 0]
        bytes += [0b0010_1000] + [UInt8](repeating: 0, count: 11)
        let (w, _) = try ValueDecoding.deltaBinaryPacked(bytes, 0, bytes.count, count: 3)
        #expect(w == [10, 8, 11])
    }

    @Test func byteStreamSplitReinterleaves() throws {
        let data: [UInt8] = [1, 2, 3, 10, 20, 30]  // 3 values of 2 bytes
        let out = try ValueDecoding.byteStreamSplit(data, 0, data.count, count: 3, width: 2)
        #expect(out == [1, 10, 2, 20, 3, 30])
    }
}

/// A small deterministic generator so test failures reproduce.
struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
