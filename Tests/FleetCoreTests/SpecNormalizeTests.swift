import Columnar
import Testing
@testable import FleetCore

/// What a valid spec decodes to: steps in order and the columns after them.
@Suite struct SpecNormalizeTests {
    @Test func stepsDecodeAndTheSchemaFollowsThem() throws {
        let yaml = baseSpec + """
        normalize:
          - rename: {name: customer}
          - trim: [customer]
          - upper: [customer]
          - lower: [customer]
          - cast: {id: int32}
          - fill_null: {amount: "0.00", day: 1970-01-01}
          - derive:
              cents: {expr: "amount * 100", type: "decimal(14,0)"}
              flag: "id > 3"
          - filter: "amount > 0"
          - drop: [day]
          - select: [cents, id, customer, flag]

        """
        let spec = try parseSpec(yaml)
        let steps = spec.normalize.map(\.operation)
        #expect(steps.count == 10)
        #expect(steps[0] == .rename([ColumnRename(from: "name", to: "customer")]))
        #expect(steps[1] == .trim(["customer"]))
        #expect(steps[4] == .cast([ColumnCast(column: "id", type: .int32)]))
        #expect(steps[5] == .fillNull([
            FillNull(column: "amount", text: "0.00", value: .int(0)),
            FillNull(column: "day", text: "1970-01-01", value: .int(0)),
        ]))
        guard case .derive(let derived) = steps[6] else {
            Issue.record("step 7 is not derive")
            return
        }
        #expect(derived.map(\.name) == ["cents", "flag"])
        #expect(derived[0].declaredType == .decimal(precision: 14, scale: 0))
        #expect(derived[0].type == .decimal(precision: 14, scale: 0))
        #expect(derived[0].expression == SpecExpression("amount * 100", location: SpecLocation(line: 19, column: 21)))
        #expect(derived[1].type == nil)
        #expect(spec.normalize[6].location == SpecLocation(line: 18, column: 5))
        #expect(steps[9] == .select(["cents", "id", "customer", "flag"]))

        #expect(spec.inputColumns.map(\.name) == ["id", "name", "amount", "day"])
        #expect(spec.columns == [
            SpecColumn(name: "cents", type: .decimal(precision: 14, scale: 0)),
            SpecColumn(name: "id", type: .int32),
            SpecColumn(name: "customer", type: .string),
            SpecColumn(name: "flag", type: nil),
        ])
    }

    @Test func aCheckerTypesDerivedColumnsForLaterSteps() throws {
        let yaml = baseSpec + """
        normalize:
          - derive: {shout: "upper(name)", big: "amount * 2"}
          - trim: [shout, big]
          - filter: "big > 1"

        """
        // Without a checker the derived types are unknown, so trim cannot object.
        #expect(specErrors(yaml) == [])
        // With one, `big` is decimal and trim refuses it.
        #expect(specErrors(yaml, checker: FakeChecker()) == [
            "spec.yml:13:19: trim needs a string column, but 'big' is decimal(18,4); "
                + "cast it to string in an earlier step if that is what you mean",
        ])
        let spec = try parseSpec(baseSpec + "normalize:\n  - derive: {shout: \"upper(name)\"}\n", checker: FakeChecker())
        #expect(spec.outputSchema == Schema([
            Field("id", .int64), Field("name", .string), Field("amount", .decimal(precision: 12, scale: 2)),
            Field("day", .date), Field("shout", .string),
        ]))
    }

    @Test func theCheckerSeesTheColumnsAsEarlierStepsLeftThem() throws {
        final class Seen: @unchecked Sendable { var schemas: [[String]] = [] }
        let seen = Seen()
        let checker = ClosureExpressionChecker { _, schema in
            seen.schemas.append(schema.fields.map(\.name))
            return .bool
        }
        _ = try parseSpec(baseSpec + "normalize:\n  - drop: [day]\n  - rename: {id: key}\n  - filter: \"key > 0\"\n",
                          checker: checker)
        #expect(seen.schemas == [["key", "name", "amount"]])
    }

    @Test func sourceOptionsDecode() throws {
        let yaml = """
        pipeline: events
        sources:
          events:
            format: jsonl
            files: logs/*.jsonl
            missing_columns: "null"
            extra_columns: ignore
            shard_size: 1GB
            columns:
              id: {type: int64, nullable: false}
              at: timestamp
          legacy:
            format: csv
            files: [old/a.csv, old/b.csv]
            header: false
            delimiter: "\\t"
            quote: "'"
            nulls: ["", "-"]
            columns: {id: int64, at: timestamp}

        """
        let spec = try parseSpec(yaml)
        let events = spec.sources[0]
        #expect(events.format == .jsonl)
        #expect(events.csv == nil)
        #expect(events.missingColumns == .null)
        #expect(events.extraColumns == .ignore)
        #expect(events.shardSize == ByteSize(bytes: 1_000_000_000))
        #expect(events.schema == Schema([Field("id", .int64, nullable: false), Field("at", .timestamp)]))
        let legacy = spec.sources[1]
        #expect(legacy.files.map(\.pattern) == ["old/a.csv", "old/b.csv"])
        #expect(legacy.csv == CSVOptions(header: false, delimiter: 9, quote: UInt8(ascii: "'"), nulls: ["", "-"]))
        // Nullable when any source allows nulls.
        #expect(spec.inputColumns == [SpecColumn(name: "id", type: .int64, nullable: true),
                                      SpecColumn(name: "at", type: .timestamp)])
    }
}

@Test func emptyOptionalListsAreAllowed() throws {
    let spec = try parseSpec(baseSpec + "normalize:\nvalidate:\n")
    #expect(spec.normalize.isEmpty)
    #expect(spec.validate.isEmpty)
    #expect(spec.consolidate == nil)
    #expect(spec.columns == spec.inputColumns)
}
