import Testing
@testable import Stages

@Test func stagesAreInRunOrder() {
    #expect(StageName.allCases.map(\.rawValue) ==
            ["ingest", "normalize", "consolidate", "validate", "publish", "report", "deliver"])
}
