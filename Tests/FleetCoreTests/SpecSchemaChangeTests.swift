import Testing
@testable import FleetCore

/// `publish: {schema_change: none | additive | any}`: the schema contract's setting.
@Suite struct SpecSchemaChangeTests {
    @Test func schemaChangeDefaultsToNoneAndTakesTheThreeWords() throws {
        #expect(try parseSpec(baseSpec + "publish: {dataset: d}\n").publish?.schemaChange == PublishSpec.SchemaChange.none)
        for word in ["none", "additive", "any"] {
            #expect(try parseSpec(baseSpec + "publish: {dataset: d, schema_change: \(word)}\n").publish?.schemaChange.rawValue == word)
        }
    }

    @Test func anotherWordIsAnErrorWithFileLineAndColumn() {
        let errors = specErrors(baseSpec + "publish:\n  dataset: d\n  schema_change: additve\n")
        #expect(errors.count == 1)
        #expect(errors.first?.hasPrefix("spec.yml:13:18: 'schema_change' in publish must be none, additive or any, not 'additve'")
                == true, "\(errors)")
        let list = specErrors(baseSpec + "publish: {dataset: d, schema_change: [any]}\n")
        #expect(list.count == 1 && list.first?.contains("'schema_change' in publish must be a single value") == true, "\(list)")
    }

    @Test func aMisspelledKeyIsSuggested() {
        let errors = specErrors(baseSpec + "publish: {dataset: d, schema_changes: any}\n")
        #expect(errors.first?.contains("unknown key 'schema_changes' in publish; did you mean 'schema_change'?") == true, "\(errors)")
    }
}
