import Testing
@testable import FleetCore

/// `_source_` names are reserved for the provenance columns ingest adds, and
/// `publish: {provenance: true}` asks to keep them.
@Suite struct SpecProvenanceTests {
    @Test func aSourceColumnWithTheReservedPrefixIsAnErrorNamingIt() {
        #expect(specErrors(baseSpec + "      _source_file: string\n") == [
            "spec.yml:11:7: source 'orders' declares column '_source_file': names starting with '_source_' are reserved "
                + "for the row provenance columns _source_file and _source_line that ingest adds; choose another name",
        ])
    }

    @Test func deriveOrRenameOntoTheReservedPrefixIsAnErrorNamingIt() {
        let derive = specErrors(baseSpec + "normalize:\n  - derive: {_source_id: \"id\"}\n")
        #expect(derive.count == 1)
        #expect(derive.first?.hasPrefix("spec.yml:12:") == true, "\(derive)")
        #expect(derive.first?.contains("derive '_source_id': names starting with '_source_' are reserved") == true, "\(derive)")

        let rename = specErrors(baseSpec + "normalize:\n  - rename: {name: _source_line}\n")
        #expect(rename.count == 1)
        #expect(rename.first?.hasPrefix("spec.yml:12:") == true, "\(rename)")
        #expect(rename.first?.contains("cannot rename 'name' to '_source_line': names starting with '_source_' are reserved")
                == true, "\(rename)")
    }

    @Test func otherNamesMerelyContainingSourceAreFine() {
        #expect(specErrors(baseSpec + "      source_file: string\n      x_source_line: int64\n") == [])
    }

    @Test func publishProvenanceIsABooleanDefaultingToFalse() throws {
        #expect(try parseSpec(baseSpec + "publish: {dataset: d}\n").publish?.provenance == false)
        #expect(try parseSpec(baseSpec + "publish: {dataset: d, provenance: true}\n").publish?.provenance == true)
        let errors = specErrors(baseSpec + "publish: {dataset: d, provenance: maybe}\n")
        #expect(errors.count == 1)
        #expect(errors.first?.contains("'provenance' in publish must be true or false") == true, "\(errors)")
    }
}
