import FleetCore
import Stages
#if canImport(Glibc)
import Glibc
#endif

/// BIS_FUZZ_PRINT=1: print what the loader said (when running single inputs).
let verbose = getenv("BIS_FUZZ_PRINT") != nil

/// The spec loader: the input is a spec's YAML text (invalid UTF-8 repaired:
/// `String(contentsOf:)` refuses it before the loader sees it). Parses and
/// checks it with the real expression checker, as `bis spec check`, the
/// coordinator's submit and every worker task do. No input files are
/// resolved. Throwing `SpecErrors` is fine; a trap, a sanitizer report, a
/// hang (the loader must answer well within a second however the text nests
/// or aliases: SpecSize, the expression depth) or a huge allocation is a
/// defect.
///
/// For an accepted spec, what the later stages build from it must build too
/// (the loader's checks promise it): the typed report and deliver sections and
/// the compiled normalize steps. A failure there is reported as a crash.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSpec(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let yaml = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    let spec: PipelineSpec
    do {
        spec = try PipelineSpec.parse(yaml: yaml, file: "fuzz.yml", directory: "/nonexistent/bis-fuzz")
    } catch {
        if verbose { print(error) }
        return 0
    }
    if verbose { print("accepted: \(spec.columns.count) columns") }
    do {
        _ = try spec.reportSpec()
        _ = try spec.deliverSpec()
        _ = try SpecOperators.normalize(spec)
    } catch {
        fatalError("the loader accepted a spec that the stages refuse: \(error)")
    }
    _ = SpecOperators.datasetSchema(spec)
    _ = SpecOperators.consolidate(spec)
    for source in spec.sources { _ = SpecOperators.ingestSource(source) }
    return 0
}
