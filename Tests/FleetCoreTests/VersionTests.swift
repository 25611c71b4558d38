import Testing
@testable import FleetCore

@Test func createdByNamesTheProject() {
    #expect(FleetVersion.createdBy.hasPrefix("bis-fleet version "))
    #expect(!FleetVersion.createdBy.contains("parquet-mr"))
}
