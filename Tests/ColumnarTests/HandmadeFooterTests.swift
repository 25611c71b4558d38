import Foundation
import Testing
import TestSupport
@testable import Columnar

/// Footers no writer produces, made by hand (`HandmadeParquet`): each is
/// refused as corrupt, never a trap, since the coordinator opens source
/// files when it plans a run.
@Suite struct HandmadeFooterTests {
    static func write(_ dir: TempDir, _ name: String, _ bytes: [UInt8]) throws -> String {
        let path = dir.file(name)
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }

    /// Two row groups of 2^62 rows: their sum overflowed Int64 and trapped
    /// before the footer's total was compared.
    @Test func rowCountsThatOverflowAreCorrupt() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let path = try Self.write(dir, "overflow.parquet", HandmadeParquet.file(
            columns: [.init("a")], rowGroups: [1 << 62, 1 << 62], numRows: 5))
        #expect(throws: ColumnarError.self) { _ = try ParquetSourceReader(path: path) }
        #expect(throws: ColumnarError.self) { _ = try ParquetReader(path: path) }
        do {
            _ = try ParquetSourceReader(path: path)
        } catch {
            #expect("\(error)".contains("add up to more than"), "\(error)")
        }
    }

    /// A footer length of 65 MiB (a sparse file of that size): it was read
    /// and decoded whole, up to 4 GiB, in the coordinator's submit handler.
    @Test func footersAboveTheLimitAreRefusedBeforeReading() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let path = dir.file("long-footer.parquet")
        let footer = ParquetReader.maxFooterBytes + (1 << 20)
        #expect(FileManager.default.createFile(atPath: path, contents: Data("PAR1".utf8)))
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        try handle.seek(toOffset: UInt64(footer + 4))
        let n = UInt32(footer)
        try handle.write(contentsOf: Data([UInt8(n & 0xFF), UInt8((n >> 8) & 0xFF), UInt8((n >> 16) & 0xFF), UInt8(n >> 24)]) + Data("PAR1".utf8))
        try handle.close()
        for open in [{ _ = try ParquetSourceReader(path: path) }, { _ = try ParquetReader(path: path) }] as [() throws -> Void] {
            do {
                try open()
                Issue.record("opened a file with a footer of \(footer) bytes")
            } catch {
                #expect("\(error)".contains("footers of more than 67108864 bytes are refused"), "\(error)")
            }
        }
    }

    /// A column may not decode to more than `maxColumnBytes`: a page of a
    /// few hundred bytes of dictionary indices expands one 10 KB string
    /// 1000 times; the limit is checked before the memory is taken.
    @Test func columnsAreRefusedBeyondTheirByteLimit() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let schema = Schema([Field("s", .string, nullable: false)])
        let long = [UInt8](repeating: UInt8(ascii: "x"), count: 10_000)
        let column = try Column(.string, scalars: Array(repeating: Scalar.bytes(long), count: 1000))
        let path = dir.file("repeated.parquet")
        let writer = try ParquetWriter(path: path, schema: schema, options: WriterOptions())
        try writer.append(ColumnBatch(schema: schema, columns: [column]))
        _ = try writer.finish()
        #expect(try ParquetSourceReader(path: path).read(field: 0, rowGroup: 0).count == 1000)
        let reader = try ParquetSourceReader(path: path)
        reader.maxColumnBytes = 1 << 20
        do {
            _ = try reader.read(field: 0, rowGroup: 0)
            Issue.record("decoded 10 MB of strings under a limit of 1 MiB")
        } catch {
            #expect("\(error)".contains("more than 1048576 bytes, the limit for one column of one row group"), "\(error)")
        }
        // Fixed-width values: counted before each page is decoded.
        let ints = HandmadeParquet.file(columns: [.init("i", type: 2, plain: HandmadeParquet.le((0..<20).map { Int64($0) }))],
                                            rowGroups: [20])
        let intsPath = dir.file("ints.parquet")
        try Data(ints).write(to: URL(fileURLWithPath: intsPath))
        let small = try ParquetSourceReader(path: intsPath)
        #expect(try small.read(field: 0, rowGroup: 0).count == 20)
        small.maxColumnBytes = 100
        #expect(throws: ColumnarError.self) { _ = try small.read(field: 0, rowGroup: 0) }
    }

    /// Two columns of the same name: fieldIndex cannot tell which is meant.
    @Test func fieldIndexIsNilForDuplicatedNames() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let path = try Self.write(dir, "twice.parquet", HandmadeParquet.file(columns: [.init("a"), .init("a"), .init("b")], rowGroups: [0]))
        let reader = try ParquetSourceReader(path: path)
        #expect(reader.fieldIndex("a") == nil)
        #expect(reader.fieldIndex("b") == 2)
    }
}
