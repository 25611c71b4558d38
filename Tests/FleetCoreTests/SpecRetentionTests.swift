import Testing
@testable import FleetCore

/// `publish: {keep: N}`: versions the coordinator's retention keeps per dataset.
@Suite struct SpecRetentionTests {
    @Test func keepDefaultsToFiveAndTakesAWholeNumber() throws {
        #expect(try parseSpec(baseSpec + "publish: {dataset: d}\n").publish?.keep == 5)
        #expect(try parseSpec(baseSpec + "publish: {dataset: d, keep: 1}\n").publish?.keep == 1)
        #expect(try parseSpec(baseSpec + "publish:\n  dataset: d\n  keep: 30\n").publish?.keep == 30)
    }

    @Test func aBadKeepIsAnErrorAtItsLineAndColumn() {
        let line = baseSpec.split(separator: "\n", omittingEmptySubsequences: false).count
        for bad in ["0", "-2", "many", "1.5", "10001"] {
            let errors = specErrors(baseSpec + "publish:\n  dataset: d\n  keep: \(bad)\n")
            #expect(errors == ["spec.yml:\(line + 2):9: 'keep' in publish must be a whole number from 1 to 10000, not '\(bad)'"],
                    "\(bad)")
        }
    }
}
