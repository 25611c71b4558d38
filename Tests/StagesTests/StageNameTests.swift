import Testing
@testable import Stages

@Test func stagesAreInRunOrder() {
    #expect(StageName.allCases.map(\.rawValue) ==
            ["ingest", "normalize", "consolidate", "validate", "publish", "report", "deliver"])
}

/// A stage name that is not one is an error naming it, never a fallback stage.
@Test func anUnknownStageNameIsAnErrorNamingIt() throws {
    #expect(try StageName(parsing: "validate") == .validate)
    let error = try #require(throws: StageInvocationError.self) { try StageName(parsing: "mangle") }
    #expect(error.message.hasPrefix("unknown stage 'mangle': this build runs ingest, normalize"), "\(error.message)")
    #expect(throws: StageInvocationError.self) { try StageName(parsing: "noop") }
}

/// Every stage that writes a quarantine says so (what `bis stage run` reports
/// a quarantined count for).
@Test func stagesDeclareTheKindsOfFileTheyWrite() {
    #expect(StageName.allCases.filter(\.quarantines) == [.ingest, .normalize, .validate])
    #expect(StageName.publish.outputKinds == [.result])
    #expect(StageName.deliver.outputKinds == [.delivery])
}
