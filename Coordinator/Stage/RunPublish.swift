import Columnar
import FleetCore
import Foundation
import Stages

/// One published dataset version, as `bis stage run publish` reports it.
struct PublishedReport: Encodable {
    var dataset: String
    var run: String
    /// The version folder.
    var path: String
    var manifest: String
    var rows: Int64
    /// The run `CURRENT` names afterwards.
    var current: String
    /// An identical version was already in place; nothing was written.
    var reused: Bool
    /// SHA-256 of the version's schema (`SchemaContract.hash`).
    var schemaSHA256: String
}

extension StageCommand.Run {
    /// `bis stage run publish`: `--input` names validated chunks and
    /// `*.partials.json` files (see `PartialsFile`), or directories searched
    /// for `validated-*.parquet` and `*.partials.json`; `--out` is the data
    /// root, written under `<out>/published/`.
    func runPublish(_ pipeline: PipelineSpec) throws -> StageReport {
        guard pipeline.publish != nil else { throw UsageError("the spec has no publish section") }
        if let runID {
            do {
                try PublishNames.check(runID, kind: "run")
            } catch {
                throw UsageError("--run: \(error)")
            }
        }
        guard retention >= 1 else { throw UsageError("--retention \(retention): keep at least 1 version") }
        guard !inputs.isEmpty else {
            throw UsageError("publish needs --input: validated chunks and *.partials.json files, "
                             + "or directories holding validated-*.parquet and *.partials.json")
        }
        var chunks: [String] = []
        var partialFiles: [String] = []
        for input in inputs {
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: input, isDirectory: &isDir) else {
                throw UsageError("--input \(input): no such file or directory")
            }
            if !isDir.boolValue {
                if input.hasSuffix(".partials.json") { partialFiles.append(input) } else { chunks.append(input) }
                continue
            }
            for sub in (FileManager.default.subpaths(atPath: input) ?? []).sorted() {
                let name = (sub as NSString).lastPathComponent
                if name.hasPrefix("validated-"), name.hasSuffix(".parquet") { chunks.append(input + "/" + sub) }
                if name.hasSuffix(".partials.json"), !name.hasPrefix(".") { partialFiles.append(input + "/" + sub) }
            }
        }

        // Partials in file order (sorted within a directory): the merge order.
        let run = runID ?? Self.newRunID(pipeline: pipeline.name, now: Date())
        let r = try StageInvocation.publish(pipeline, run: run, chunks: chunks, partialFiles: partialFiles, root: out,
                                            retention: retention, now: Date())
        guard let result = r.published else { throw UsageError("publish published nothing") }

        var report = StageReport(stage: "publish")
        report.rowsIn = r.rowsIn
        report.rowsOut = r.rowsOut
        // Every file of every version, not only the manifests handed on.
        report.outputs = result.versions.flatMap { v in
            v.manifest.files.map { StageReport.Output(path: v.path + "/" + $0.name, sha256: $0.sha256, rows: $0.rows, bytes: $0.bytes) }
        }
        report.published = result.versions.map { v in
            PublishedReport(dataset: v.dataset, run: v.run, path: v.path, manifest: v.manifestPath, rows: v.manifest.rows,
                            current: result.current[v.dataset] ?? v.run, reused: v.reused,
                            schemaSHA256: v.manifest.schemaSHA256)
        }
        return report
    }

    /// `<pipeline>-<UTC yyyyMMdd'T'HHmmss'Z'>-<4 hex>`, e.g. `orders-20261127T034000Z-7f3a`.
    static func newRunID(pipeline: String, now: Date) -> String {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "UTC")
        f.dateFormat = "yyyyMMdd'T'HHmmss'Z'"
        return pipeline + "-" + f.string(from: now) + "-" + String(format: "%04x", UInt16.random(in: .min ... .max))
    }
}

extension StageReport.Output {
    init(path: String, sha256: String, rows: Int64, bytes: Int64) {
        self.path = path
        self.sha256 = sha256
        self.rows = rows
        self.bytes = bytes
    }
}
