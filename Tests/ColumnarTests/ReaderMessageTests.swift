import Foundation
import Testing
@testable import Columnar

/// Errors that named the wrong thing: each now names the field or the
/// annotation that is wrong.
@Suite struct ReaderMessageTests {
    /// Replaces the first page header's uncompressed_page_size (field 2, an
    /// i32 right after field 1) with `value`, as a varint of the same length
    /// (Thrift readers accept padded varints), so nothing after it moves.
    static func patchFirstPageUncompressedSize(_ file: [UInt8], at start: Int, to value: Int32) throws -> [UInt8] {
        var bytes = file
        try #require(bytes[start] == 0x15, "page header field 1 (i32) expected at \(start)")
        var p = start + 1
        while bytes[p] & 0x80 != 0 { p += 1 }
        p += 1
        try #require(bytes[p] == 0x15, "page header field 2 (i32) expected at \(p)")
        p += 1
        var length = 1
        while bytes[p + length - 1] & 0x80 != 0 { length += 1 }
        var z = UInt64(UInt32(bitPattern: (value << 1) ^ (value >> 31)))
        for k in 0..<length {
            var b = UInt8(z & 0x7F)
            z >>= 7
            if k < length - 1 { b |= 0x80 }
            bytes[p + k] = b
        }
        try #require(z == 0, "\(value) does not fit \(length) varint bytes")
        return bytes
    }

    static func writeOurs(_ dir: TempDir, compression: WriterOptions.Compression) throws -> String {
        let schema = Schema([Field("amount", .int64, nullable: false)])
        let column = try Column(.int64, scalars: (0..<1000).map { .int(Int64($0 * 7919 % 1000)) })
        var options = WriterOptions()
        options.compression = compression
        let path = dir.file("ours.parquet")
        let writer = try ParquetWriter(path: path, schema: schema, options: options)
        try writer.append(ColumnBatch(schema: schema, columns: [column]))
        _ = try writer.finish()
        return path
    }

    static func readError(_ bytes: [UInt8], _ path: String) -> String {
        do {
            try Data(bytes).write(to: URL(fileURLWithPath: path))
            _ = try ParquetReader(path: path).read()
            return "read without error"
        } catch {
            return "\(error)"
        }
    }

    /// A negative uncompressed size was reported as the compressed size
    /// ("page 0 of 1234 bytes overruns the column chunk").
    @Test(arguments: [WriterOptions.Compression.uncompressed, .zstd(level: 3)])
    func negativeUncompressedPageSizeIsNamed(compression: WriterOptions.Compression) throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let good = [UInt8](try Data(contentsOf: URL(fileURLWithPath: try Self.writeOurs(dir, compression: compression))))
        let bad = try Self.patchFirstPageUncompressedSize(good, at: 4, to: -5)
        let message = Self.readError(bad, dir.file("bad.parquet"))
        #expect(message.contains("corrupt Parquet data"), "\(message)")
        #expect(message.contains("column 'amount': page 0: uncompressed_page_size -5 is negative"), "\(message)")
        #expect(!message.contains("overruns"), "\(message)")
    }

    /// A wrong (not negative) uncompressed size in a SNAPPY file from
    /// another writer is corrupt, naming the field, the file and the column.
    @Test func wrongSnappyPageSizeNamesTheField() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let name = "datapage_v1-snappy-compressed-checksum.parquet"
        let good = [UInt8](try Data(contentsOf: URL(fileURLWithPath: ParquetTestingTests.path(name))))
        #expect(try ParquetReader(path: ParquetTestingTests.path(name)).read().rowCount == 5120)
        let path = dir.file(name)
        for value: Int32 in [1, 100, 1 << 19] {
            let bad = try Self.patchFirstPageUncompressedSize(good, at: 4, to: value)
            let message = Self.readError(bad, path)
            #expect(message.hasPrefix("corrupt Parquet data: \(path): row group 0, column 'a': page 0: "), "\(message)")
            #expect(message.contains("uncompressed_page_size"), "\(message)")
        }
    }

    /// Converted types printed as numbers ("converted type #6" is DATE).
    @Test func convertedTypesAreNamed() {
        let cases: [(PhysicalType, Int32, String)] = [
            (.byteArray, 6, "BYTE_ARRAY annotated DATE"),
            (.byteArray, 9, "BYTE_ARRAY annotated TIMESTAMP_MILLIS"),
            (.int32, 0, "INT32 annotated UTF8"),
            (.int64, 17, "INT64 annotated INT_32"),
            (.int32, 21, "INT32 annotated INTERVAL"),
        ]
        for (physical, converted, words) in cases {
            var e = SchemaElement()
            e.type = physical
            e.name = "c"
            e.repetition = 1
            e.convertedType = converted
            do {
                let plan = try ColumnPlan(e)
                Issue.record("\(physical.name) #\(converted): read as \(plan.type)")
            } catch {
                let text = "\(error)"
                #expect(text.contains(words), "\(text)")
                #expect(!text.contains("#"), "\(text)")
            }
        }
    }
}
