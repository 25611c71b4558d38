import Testing
@testable import FleetCore

/// What a hostile or careless spec can make the loader do: never more than a
/// bounded amount of work, always an error with a position.
@Suite struct SpecBoundsTests {
    /// Nine levels of ten-fold aliases (a "billion laughs") under `report:`,
    /// 532 bytes of the kind that took 945 MB at seven levels and killed the
    /// process at nine: refused where the expansion passes the bound.
    @Test func nestedAliasesAreRefusedWithAPosition() {
        var yaml = baseSpec + "report:\n  title: t\n  l0: &l0 [x, x, x, x, x, x, x, x, x, x]\n"
        for level in 1...9 {
            yaml += "  l\(level): &l\(level) [" + Array(repeating: "*l\(level - 1)", count: 10).joined(separator: ", ") + "]\n"
        }
        let errors = specErrors(yaml)
        #expect(errors.count == 1)
        #expect(errors.first?.hasPrefix("spec.yml:") == true)
        #expect(errors.first?.contains("expands to more than 100000 YAML values") == true, "\(errors)")
    }

    /// A spec that uses an anchor a few times the ordinary way still loads.
    @Test func ordinaryAliasesStillWork() {
        let yaml = baseSpec + "report:\n  title: &t Orders\n  subtitle: *t\n"
        #expect(!specErrors(yaml).contains { $0.contains("expands to more than") })
    }
}
