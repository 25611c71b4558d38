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
}
