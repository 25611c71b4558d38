import Columnar
import Testing
@testable import FleetCore

/// The spec checked with the real expression language: derived columns get
/// their types, and an expression's mistake is reported at its line and
/// column inside the YAML file.
@Suite struct SpecExpressionTests {
    let checker = ExpressionLanguageChecker()

    @Test func derivedColumnsAreTypedByTheLanguage() throws {
        let yaml = baseSpec + """
        normalize:
          - derive: {cents: "amount * 100", shout: "upper(name)", late: "day > date '2026-01-01'"}

        """
        let spec = try parseSpec(yaml, checker: checker)
        let types = Dictionary(uniqueKeysWithValues: spec.columns.map { ($0.name, $0.type) })
        #expect(types["shout"] == .string)
        #expect(types["late"] == .bool)
        guard case .decimal(_, let scale)? = types["cents"] else {
            Issue.record("cents is \(String(describing: types["cents"])), not a decimal")
            return
        }
        #expect(scale == 2)
    }

    @Test func anUnknownColumnInsideAnExpressionIsReportedAtItsPlace() {
        let yaml = baseSpec + """
        normalize:
          - filter: "amount > 0 and nam = 'x'"

        """
        let errors = specErrors(yaml, checker: checker)
        #expect(errors.count == 1)
        let line = yaml.split(separator: "\n", omittingEmptySubsequences: false)
            .firstIndex { $0.contains("filter:") }! + 1
        // The string starts after `  - filter: "`, column 14; `nam` is 15 bytes in.
        #expect(errors.first == "spec.yml:\(line):29: in filter: unknown column 'nam'; did you mean 'name'?")
    }

    @Test func aTypeMismatchIsASpecError() {
        let yaml = baseSpec + """
        normalize:
          - filter: "day <= 'soon'"

        """
        let errors = specErrors(yaml, checker: checker)
        #expect(errors.count == 1)
        #expect(errors.first?.contains("cannot compare date with string") == true, "\(errors)")
    }
}
