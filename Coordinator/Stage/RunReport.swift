import FleetCore
import Foundation
import Stages

extension StageCommand.Run {
    /// `bis stage run report --input SUMMARY.json --out DIR`: the run's
    /// report (report.html, one CSV per summary, report.xlsx) from a
    /// `RunSummary` as JSON. The spec supplies the title and the chart's
    /// main aggregate where the summary leaves them out.
    func runReport(_ pipeline: PipelineSpec) throws -> StageReport {
        guard inputs.count == 1, let input = inputs.first else {
            throw UsageError("report needs exactly one --input: the run summary JSON (got \(inputs.count))")
        }
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: input))
        } catch {
            throw UsageError("--input \(input): cannot read it: \(error.localizedDescription)")
        }
        let summary: RunSummary
        do {
            summary = try RunSummary(json: data)
        } catch {
            throw UsageError("--input \(input) is not a run summary: \(describe(error))")
        }
        guard summary.pipeline == pipeline.name else {
            throw UsageError("--input \(input) summarizes pipeline '\(summary.pipeline)', but the spec is '\(pipeline.name)'")
        }
        let r: StageInvocationResult
        do {
            r = try StageInvocation.report(pipeline, summary: summary, publishedSummaries: nil, outputDir: out)
        } catch let error as ReportError {
            throw UsageError(error.description)
        }
        var report = StageReport(stage: "report")
        report.rowsIn = r.rowsIn
        report.rowsOut = r.rowsOut
        report.outputs = r.outputs(.report).map { StageReport.Output($0, input: $0.name) }
        return report
    }

    private func describe(_ error: any Error) -> String {
        guard let e = error as? DecodingError else { return "\(error)" }
        func path(_ c: DecodingError.Context) -> String {
            let p = c.codingPath.map { $0.intValue.map { "[\($0)]" } ?? "." + $0.stringValue }.joined()
            return p.isEmpty ? "" : " at \(p.hasPrefix(".") ? String(p.dropFirst()) : p)"
        }
        switch e {
        case .keyNotFound(let key, let c): return "missing '\(key.stringValue)'\(path(c))"
        case .typeMismatch(_, let c), .valueNotFound(_, let c), .dataCorrupted(let c):
            return c.debugDescription + path(c)
        @unknown default: return "\(error)"
        }
    }
}
