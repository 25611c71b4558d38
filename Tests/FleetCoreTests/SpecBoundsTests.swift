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

    /// Found by fuzzing (the CI's smoke run, 737 bytes): the same aliases, the
    /// last one used as a mapping key (`*l8:`). Yams hashes every key of a
    /// mapping while composing it, before any check of ours could run, and
    /// hashing that key walked the whole expanded tree (over 10 s). Refused
    /// from libyaml's events, before Yams builds anything.
    @Test func anAliasOfNestedAliasesAsAKeyIsRefusedBeforeComposing() {
        var yaml = baseSpec + "report:\n  title: t\n  l0: &l0 [x, x, x, x, x, x, x, x, x, x]\n"
        for level in 1...8 {
            yaml += "  l\(level): &l\(level) [" + Array(repeating: "*l\(level - 1)", count: 10).joined(separator: ", ") + "]\n"
        }
        yaml += "  l9: {*l8: x}\n"
        let errors = specErrors(yaml)
        #expect(errors.count == 1)
        #expect(errors.first?.contains("expands to more than 100000 YAML values") == true, "\(errors)")
        #expect(SpecSize.aliasOverflow(yaml) != nil)
        // With a placeholder, the run parameters' header is read first (from
        // the text as it is): bounded there too.
        let withPlaceholder = specErrors(yaml + "# ${date}\n")
        #expect(withPlaceholder.count == 1)
        #expect(withPlaceholder.first?.contains("expands to more than 100000 YAML values") == true, "\(withPlaceholder)")
    }

    /// The event count agrees with the tree walk on ordinary documents: an
    /// anchor used a few times stays far below the bound, and a bound of a
    /// handful of values is passed at the value that passes it.
    @Test func aliasBudgetCountsExpandedValues() {
        let yaml = "a: &a [1, 2, 3]\nb: [*a, *a]\n"
        #expect(SpecSize.aliasOverflow(yaml) == nil)
        // a's 3 scalars + 1 key, then key b: 5; the first *a: 9 values (its
        // three scalars and the sequence itself); the second passes 10.
        #expect(SpecSize.aliasOverflow(yaml, limit: 10) == SpecLocation(line: 2, column: 9))
        #expect(SpecSize.aliasOverflow("a: [unclosed", limit: 10) == nil)
    }

    /// A spec that uses an anchor a few times the ordinary way still loads.
    @Test func ordinaryAliasesStillWork() {
        let yaml = baseSpec + "report:\n  title: &t Orders\n  subtitle: *t\n"
        #expect(!specErrors(yaml).contains { $0.contains("expands to more than") })
    }

    /// Found by fuzzing (ops/fuzz spec, then the same shape made large): one
    /// derive step with thousands of columns made checking the spec and
    /// compiling its normalize steps quadratic (20,000 columns in 430 KB kept
    /// the loader busy for minutes). Refused at the step that passes the bound.
    @Test func tooManyDerivedColumnsAreRefused() {
        let derived = (0..<3_000).map { "      c\($0): \"id + 1\"\n" }.joined()
        let errors = specErrors(baseSpec + "normalize:\n  - derive:\n" + derived, checker: ExpressionLanguageChecker())
        #expect(errors == ["spec.yml:12:5: normalize has more than 1000 operations (each derived, cast, filled or "
                           + "renamed column counts as one); split the pipeline"], "\(errors)")
    }

    /// The same through many small steps, each deriving a new column.
    @Test func tooManyNormalizeStepsAreRefused() {
        let steps = (0..<3_000).map { "  - derive: {c\($0): \"id\"}\n" }.joined()
        let errors = specErrors(baseSpec + "normalize:\n" + steps, checker: ExpressionLanguageChecker())
        #expect(errors.count == 1)
        #expect(errors.first?.hasPrefix("spec.yml:1012:5: normalize has more than 1000 operations") == true, "\(errors)")
    }

    /// A source that declares more columns than the bound.
    @Test func tooManySourceColumnsAreRefused() {
        let columns = (0..<1_500).map { "      c\($0): int64\n" }.joined()
        let yaml = "pipeline: wide\nsources:\n  s:\n    format: csv\n    files: data/*.csv\n    columns:\n" + columns
        let errors = specErrors(yaml)
        #expect(errors == ["spec.yml:1007:7: 'columns' in source 's' declares 1500 columns, more than the 1000 a source may have"],
                "\(errors)")
    }
}
