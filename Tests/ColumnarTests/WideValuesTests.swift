import Testing
@testable import Columnar

/// `WideValues`: INT96 timestamps and big-endian decimals, from bytes
/// made by hand (no Python needed).
@Suite struct WideValuesTests {
    @Test func int96AndBigEndianDecimals() throws {
        // 2020-01-01T00:00:00.000000123Z: Julian day 2458850, 123 ns into the day.
        var b = [UInt8](repeating: 0, count: 12)
        for k in 0..<8 { b[k] = UInt8((UInt64(123) >> UInt64(8 * k)) & 0xFF) }
        let day: UInt32 = 2_458_850
        for k in 0..<4 { b[8 + k] = UInt8((day >> UInt32(8 * k)) & 0xFF) }
        #expect(WideValues.int96Nanos(b, 0) == Int128(1_577_836_800) * 1_000_000_000 + 123)
        #expect(try WideValues.bigEndian([0xFF, 0xFF][...]) == -1)
        #expect(try WideValues.bigEndian([0x00, 0x80][...]) == 128)
        #expect(try WideValues.bigEndian([UInt8](repeating: 0xFF, count: 20)[...]) == -1)
        #expect(throws: ColumnarError.self) { try WideValues.bigEndian(([0x01] + [UInt8](repeating: 0, count: 16))[...]) }
    }

    /// Nanoseconds of the day beyond the day are added as pyarrow adds
    /// them (Spark writes such values), not refused.
    @Test func int96TimeOfDayBeyondTheDayIsKept() throws {
        var b = [UInt8](repeating: 0, count: 12)
        let nanos: UInt64 = 86_400_000_000_001
        for k in 0..<8 { b[k] = UInt8((nanos >> UInt64(8 * k)) & 0xFF) }
        let day: UInt32 = 2_440_588
        for k in 0..<4 { b[8 + k] = UInt8((day >> UInt32(8 * k)) & 0xFF) }
        #expect(WideValues.int96Nanos(b, 0) == 86_400_000_000_001)
    }

    /// A ZSTD page that does not decode is damaged data (permanent), like a
    /// SNAPPY or GZIP one, not a transient compression error.
    @Test func damagedZstdPagesAreCorrupt() throws {
        let garbage = Array("not a zstd frame at all".utf8)
        do {
            _ = try garbage.withUnsafeBytes { try ZstdDecompressor().decompress($0, size: 100) }
            Issue.record("garbage decompressed")
        } catch let error as ColumnarError {
            guard case .corrupt = error else {
                Issue.record("\(error) is not corrupt")
                return
            }
        }
    }
}
