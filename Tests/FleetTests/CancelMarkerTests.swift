import Foundation
import Testing
@testable import FleetWire

/// The cancel marker (`runs/<run>/CANCELLED`) is written whole by a rename,
/// never in place (issue 12, item 11): a worker never reads half of it, and
/// a file planted where the marker goes is replaced, not written through.
@Suite struct CancelMarkerTests {
    /// A symlink planted at the marker's path, pointing outside the data root:
    /// an in-place write would overwrite its target; the rename replaces the
    /// link itself.
    @Test func plantedSymlinkIsReplacedNotWrittenThrough() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("bis-cancel-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = ChunkStore(root: dir + "/root")
        let outside = dir + "/outside.txt"
        try FileManager.default.createDirectory(atPath: dir + "/root/runs/r1", withIntermediateDirectories: true)
        try "keep me\n".write(toFile: outside, atomically: false, encoding: .utf8)
        try FileManager.default.createSymbolicLink(atPath: dir + "/root/" + store.cancelMarker(run: "r1"), withDestinationPath: outside)

        store.markCancelled(run: "r1")

        #expect(try String(contentsOfFile: outside, encoding: .utf8) == "keep me\n")
        let marker = dir + "/root/" + store.cancelMarker(run: "r1")
        #expect((try? FileManager.default.destinationOfSymbolicLink(atPath: marker)) == nil, "the marker should be a file of its own")
        #expect(try String(contentsOfFile: marker, encoding: .utf8) == "cancelled\n")
        #expect(store.isCancelled(run: "r1"))
        // Nothing but the marker is left in the run folder (no temporary file).
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir + "/root/runs/r1") == ["CANCELLED"])
    }
}
