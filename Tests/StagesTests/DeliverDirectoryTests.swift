import Columnar
import Foundation
import Testing
@testable import Stages

@Suite struct DeliverDirectoryTests {
    @Test func copiesFilesAndWritesReceiptWithTheirChecksums() async throws {
        let f = try DeliverFixture()
        defer { f.dir.cleanup() }
        let receipt = try await f.deliverToOutbox()

        #expect(try FileManager.default.contentsOfDirectory(atPath: f.outbox).sorted()
                == ["_manifest.json", "receipt.json", "report.html"])   // no temp files left
        for (name, source) in [("report.html", f.report), ("_manifest.json", f.manifest)] {
            let delivered = f.outbox + "/" + name
            #expect(try Data(contentsOf: URL(fileURLWithPath: delivered)) == Data(contentsOf: URL(fileURLWithPath: source)))
            let entry = try #require(receipt.files.first { $0.name == name })
            #expect(entry.sha256 == (try sha256(ofFile: source)))
            #expect(entry.sha256 == (try sha256(ofFile: delivered)))
            #expect(entry.bytes == Int64(try Data(contentsOf: URL(fileURLWithPath: source)).count))
        }
        #expect(receipt.files.map(\.name) == ["report.html", "_manifest.json"])
        #expect(receipt.run == f.run)
        #expect(receipt.dataset == "orders")
        #expect(receipt.version == f.run)
        #expect(receipt.approval == nil)
        #expect(receipt.deliveredAt == f.now)
        #expect(receipt.target == "outbox/finance")

        let onDisk = try Data(contentsOf: URL(fileURLWithPath: f.outbox + "/receipt.json"))
        #expect(try DeliveryReceipt.decode(onDisk) == receipt)
        let json = try #require(try JSONSerialization.jsonObject(with: onDisk) as? [String: Any])
        #expect(json["deliveredAt"] as? String == "2026-11-18T11:06:40Z")
        #expect(json["format"] as? String == "bis.delivery-receipt/1")
    }

    @Test func deliveringAgainIsANoOp() async throws {
        let f = try DeliverFixture()
        defer { f.dir.cleanup() }
        let first = try await f.deliverToOutbox(approval: Approval(approver: "ana", approvedAt: f.now), requireApproval: true)
        let names = ["report.html", "_manifest.json", "receipt.json"]
        func stamps() throws -> [String] {
            try names.map {
                let a = try FileManager.default.attributesOfItem(atPath: f.outbox + "/" + $0)
                return "\(a[.modificationDate] as? Date ?? .distantPast) \(a[.systemFileNumber] ?? 0)"
            }
        }
        let before = try stamps()
        let receiptBytes = try Data(contentsOf: URL(fileURLWithPath: f.outbox + "/receipt.json"))

        // Later, approved again, files given in another order: the same delivery.
        let again = try await f.deliverToOutbox(approval: Approval(approver: "bo", approvedAt: f.now + 3600),
                                                requireApproval: true, at: f.now + 7200, files: f.files.reversed())
        #expect(again == first)
        #expect(again.deliveredAt == f.now)
        #expect(again.approval?.approver == "ana")
        #expect(try stamps() == before)
        #expect(try Data(contentsOf: URL(fileURLWithPath: f.outbox + "/receipt.json")) == receiptBytes)
        #expect(try FileManager.default.contentsOfDirectory(atPath: f.outbox).count == 3)
    }

    @Test func anInterruptedDeliveryIsCompleted() async throws {
        let f = try DeliverFixture()
        defer { f.dir.cleanup() }
        // A first attempt copied the report, then died before the manifest and receipt.
        try FileManager.default.createDirectory(atPath: f.outbox, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: f.report, toPath: f.outbox + "/report.html")
        let receipt = try await f.deliverToOutbox()
        #expect(try sha256(ofFile: f.outbox + "/_manifest.json") == (try sha256(ofFile: f.manifest)))
        #expect(try DeliveryReceipt.decode(Data(contentsOf: URL(fileURLWithPath: f.outbox + "/receipt.json"))) == receipt)
    }

    @Test func aTamperedTargetFileIsReportedWithBothHashesAndKept() async throws {
        let f = try DeliverFixture()
        defer { f.dir.cleanup() }
        _ = try await f.deliverToOutbox()
        let target = f.outbox + "/report.html"
        try "<html>edited by hand</html>\n".write(toFile: target, atomically: true, encoding: .utf8)
        let tampered = try sha256(ofFile: target)
        let original = try sha256(ofFile: f.report)

        let error = await #expect(throws: DeliveryError.self) { try await f.deliverToOutbox(at: f.now + 60) }
        #expect(error == .targetFileDiffers(path: target, expected: original, found: tampered))
        let message = error?.description ?? ""
        #expect(message.contains("report.html") && message.contains(original) && message.contains(tampered))
        #expect(try sha256(ofFile: target) == tampered)   // not overwritten
    }

    @Test func aConflictingFileBeforeTheFirstDeliveryWritesNothing() async throws {
        let f = try DeliverFixture()
        defer { f.dir.cleanup() }
        try FileManager.default.createDirectory(atPath: f.outbox, withIntermediateDirectories: true)
        try "someone else's manifest".write(toFile: f.outbox + "/_manifest.json", atomically: true, encoding: .utf8)
        await #expect(throws: DeliveryError.self) { try await f.deliverToOutbox() }
        #expect(try FileManager.default.contentsOfDirectory(atPath: f.outbox) == ["_manifest.json"])
    }

    @Test func aDifferentDeliveryOfTheSameRunIsRefused() async throws {
        let f = try DeliverFixture()
        defer { f.dir.cleanup() }
        _ = try await f.deliverToOutbox()
        let extra = f.dir.file("summary.csv")
        try "a,b\n1,2\n".write(toFile: extra, atomically: true, encoding: .utf8)
        let error = await #expect(throws: DeliveryError.self) {
            try await f.deliverToOutbox(files: f.files + [DeliveryFile(path: extra)])
        }
        guard case .receiptDiffers(let path, _, _) = error else {
            Issue.record("expected receiptDiffers, got \(String(describing: error))")
            return
        }
        #expect(path == f.outbox + "/receipt.json")
        #expect(!FileManager.default.fileExists(atPath: f.outbox + "/summary.csv"))
    }

    @Test func aRunThatNeedsApprovalAndHasNoneIsRefused() async throws {
        let f = try DeliverFixture()
        defer { f.dir.cleanup() }
        let error = await #expect(throws: DeliveryError.self) { try await f.deliverToOutbox(requireApproval: true) }
        #expect(error?.description == "run \(f.run) needs approval: run bis approve \(f.run)")
        #expect(!FileManager.default.fileExists(atPath: f.root + "/outbox"))

        let approved = try await f.deliverToOutbox(approval: Approval(approver: "ana", approvedAt: f.now - 0.5),
                                                   requireApproval: true)
        #expect(approved.approval == Approval(approver: "ana", approvedAt: f.now - 1))
        let json = try String(contentsOfFile: f.outbox + "/receipt.json", encoding: .utf8)
        #expect(json.contains(#""approver" : "ana""#))
        #expect(json.contains(#""approvedAt" : "2026-11-18T11:06:39Z""#))
    }

    @Test func anInputThatIsNotWhatTheManifestSaysIsRefused() async throws {
        let f = try DeliverFixture()
        defer { f.dir.cleanup() }
        let wrong = String(repeating: "0", count: 64)
        let error = await #expect(throws: DeliveryError.self) {
            try await f.deliverToOutbox(files: [DeliveryFile(path: f.manifest, sha256: wrong)])
        }
        #expect(error?.description.contains(wrong) == true)
        #expect(!FileManager.default.fileExists(atPath: f.root + "/outbox"))
    }

    @Test(arguments: ["../elsewhere", "outbox/../../elsewhere", "/etc/bis-outbox", ".", ""])
    func targetsOutsideTheDataRootAreRefused(_ folder: String) async throws {
        let f = try DeliverFixture()
        defer { f.dir.cleanup() }
        await #expect(throws: DeliveryError.self) {
            try await deliver(files: f.files, run: f.run, dataset: "orders", version: f.run, approval: nil,
                              requireApproval: false, target: .directory(folder), dataRoot: f.root, now: f.now)
        }
    }

    @Test func aSymlinkOutOfTheDataRootIsRefused() async throws {
        let f = try DeliverFixture()
        let outside = try OpTempDir()
        defer { f.dir.cleanup(); outside.cleanup() }
        try FileManager.default.createSymbolicLink(atPath: f.root + "/outbox", withDestinationPath: outside.path)
        await #expect(throws: DeliveryError.self) { try await f.deliverToOutbox() }
        #expect(outside.entries() == [])
    }

    @Test func anAbsoluteTargetInsideTheDataRootIsAccepted() async throws {
        let f = try DeliverFixture()
        defer { f.dir.cleanup() }
        let folder = (realpath(f.root, nil).map { p in defer { free(p) }; return String(cString: p) } ?? f.root) + "/outbox/abs"
        let receipt = try await deliver(files: f.files, run: f.run, dataset: "orders", version: f.run, approval: nil,
                                        requireApproval: false, target: .directory(folder), dataRoot: f.root, now: f.now)
        #expect(FileManager.default.fileExists(atPath: folder + "/" + f.run + "/receipt.json"))
        #expect(receipt.target == folder)
    }

    @Test func badRunIdsAndNamesAreRefused() async throws {
        let f = try DeliverFixture()
        defer { f.dir.cleanup() }
        await #expect(throws: DeliveryError.self) {
            try await deliver(files: f.files, run: "../x", dataset: "orders", version: "v", approval: nil,
                              requireApproval: false, target: .directory("outbox"), dataRoot: f.root, now: f.now)
        }
        await #expect(throws: DeliveryError.self) {
            try await f.deliverToOutbox(files: [DeliveryFile(path: f.report, name: "receipt.json")])
        }
        await #expect(throws: DeliveryError.self) {
            try await f.deliverToOutbox(files: [DeliveryFile(path: f.report), DeliveryFile(path: f.manifest, name: "report.html")])
        }
    }
}

@Suite struct DeliverKeyTests {
    @Test func sha256MatchesKnownVectorsAndTheFileHash() throws {
        #expect(Checksum.sha256([]) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(Checksum.sha256(Array("abc".utf8)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        let dir = try OpTempDir()
        defer { dir.cleanup() }
        var rng = OpRandom(seed: 7)
        for length in [55, 56, 63, 64, 65, 119, 1000] {
            let bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &rng) }
            let path = dir.file("b\(length)")
            try Data(bytes).write(to: URL(fileURLWithPath: path))
            #expect(Checksum.sha256(bytes) == (try sha256(ofFile: path)), "length \(length)")
        }
    }

    @Test func theIdempotencyKeyDependsOnContentsNotOnOrderOrTime() {
        let a = DeliveryReceipt.File(name: "report.html", bytes: 10, sha256: "aa")
        let b = DeliveryReceipt.File(name: "_manifest.json", bytes: 20, sha256: "bb")
        let one = DeliveryReceipt(run: "r", dataset: "d", version: "v", files: [a, b], approval: nil,
                                  deliveredAt: Date(timeIntervalSince1970: 0), target: "t")
        let two = DeliveryReceipt(run: "r", dataset: "d", version: "v", files: [b, a],
                                  approval: Approval(approver: "x", approvedAt: Date()), deliveredAt: Date(), target: "u")
        #expect(one.idempotencyKey == two.idempotencyKey)
        #expect(one.idempotencyKey.hasPrefix("bis-") && one.idempotencyKey.count == 68)
        var changed = b
        changed.sha256 = "bc"
        #expect(DeliveryReceipt.idempotencyKey(run: "r", dataset: "d", version: "v", files: [a, changed]) != one.idempotencyKey)
        #expect(DeliveryReceipt.idempotencyKey(run: "r", dataset: "d", version: "v2", files: [a, b]) != one.idempotencyKey)
    }
}

/// Two deliveries of the same run with different contents, racing (a
/// duplicated task after a change): one wins, the other is refused, and the
/// receipt on the target always describes the files beside it.
@Test func racingDeliveriesOfOneRunNeverLeaveAMismatchedReceipt() async throws {
    for round in 0..<20 {
        let f = try DeliverFixture()
        defer { f.dir.cleanup() }
        let other = f.root + "/other-report.html"
        try "<html><body><p>round \(round), other content</p></body></html>\n"
            .write(toFile: other, atomically: true, encoding: .utf8)
        let otherFiles = [DeliveryFile(path: other, name: "report.html"), f.files[1]]
        async let a: DeliveryReceipt? = try? f.deliverToOutbox()
        async let b: DeliveryReceipt? = try? f.deliverToOutbox(files: otherFiles)
        let results = await [a, b].compactMap { $0 }
        #expect(results.count == 1, "round \(round): exactly one of two conflicting deliveries succeeds")
        let onDisk = try DeliveryReceipt.decode(Data(contentsOf: URL(fileURLWithPath: f.outbox + "/receipt.json")))
        for file in onDisk.files {
            #expect(try sha256(ofFile: f.outbox + "/" + file.name) == file.sha256, "round \(round): \(file.name)")
        }
    }
}
