import Columnar
import Testing
@testable import Stages

@Suite struct ColumnOperationsTests {
    static func sample() throws -> ColumnBatch {
        try opBatch([
            ("id", .int64, [.int(1), .int(2), nil]),
            ("name", .string, [.string("  Ann\t"), nil, .string("\n straße ")]),
            ("city", .string, [.string("Zürich"), .string("ΣΑΣ"), .string("")]),
        ])
    }

    @Test func renameKeepsPlaceAndValues() throws {
        let out = try ColumnOperations.rename(try Self.sample(), [(from: "name", to: "full_name"), (from: "id", to: "key")])
        #expect(out.schema.fields.map(\.name) == ["key", "full_name", "city"])
        #expect(opInts(out["key"]) == [1, 2, nil])
    }

    @Test func renameSwapIsAllowed() throws {
        let out = try ColumnOperations.rename(try Self.sample(), [(from: "name", to: "city"), (from: "city", to: "name")])
        #expect(out.schema.fields.map(\.name) == ["id", "city", "name"])
        #expect(opStrings(out["name"]) == ["Zürich", "ΣΑΣ", ""])
    }

    @Test func renameErrorsNameTheColumn() throws {
        let b = try Self.sample()
        let unknown = opErrorText { _ = try ColumnOperations.rename(b, [(from: "nme", to: "x")]) }
        #expect(unknown.contains("'nme'") && unknown.contains("id, name, city"))
        let clash = opErrorText { _ = try ColumnOperations.rename(b, [(from: "name", to: "city")]) }
        #expect(clash.contains("'city'") && clash.contains("twice"))
    }

    @Test func selectAndDrop() throws {
        let b = try Self.sample()
        let s = try ColumnOperations.select(b, ["city", "id"])
        #expect(s.schema.fields.map(\.name) == ["city", "id"])
        #expect(opInts(s["id"]) == [1, 2, nil])
        let d = try ColumnOperations.drop(b, ["name"])
        #expect(d.schema.fields.map(\.name) == ["id", "city"])
        #expect(opErrorText { _ = try ColumnOperations.drop(b, ["zip"]) }.contains("'zip'"))
        #expect(opErrorText { _ = try ColumnOperations.select(b, ["id", "id"]) }.contains("'id'"))
    }

    @Test func trimRemovesASCIIWhitespaceOnlyAndKeepsNulls() throws {
        let b = try opBatch([("s", .string, [.string(" \t a b \r\n"), nil, .string("\u{00A0}x\u{00A0}"), .string("   "), .string("")])])
        let out = try ColumnOperations.trim(b, ["s"])
        #expect(opStrings(out["s"]) == ["a b", nil, "\u{00A0}x\u{00A0}", "", ""])
        #expect(out["s"]!.nullCount == 1)
    }

    @Test func upperAndLowerAreUnicodeCorrect() throws {
        let b = try opBatch([("s", .string, [.string("abc-XYZ 1"), .string("straße"), .string("Ünïcödé"), nil, .string("ΣΑΣ")])])
        #expect(opStrings(try ColumnOperations.upper(b, ["s"])["s"]) == ["ABC-XYZ 1", "STRASSE", "ÜNÏCÖDÉ", nil, "ΣΑΣ"])
        #expect(opStrings(try ColumnOperations.lower(b, ["s"])["s"]) == ["abc-xyz 1", "straße", "ünïcödé", nil, "σασ"])
    }

    @Test func stringOperationsRefuseOtherTypes() throws {
        let text = opErrorText { _ = try ColumnOperations.upper(try Self.sample(), ["id"]) }
        #expect(text.contains("'id'") && text.contains("int64") && text.contains("string"))
    }

    @Test func fillNullPerType() throws {
        let b = try opBatch([
            ("i", .int64, [nil, .int(5)]),
            ("d", .date, [.int(3), nil]),
            ("m", .decimal(precision: 5, scale: 2), [nil, .int(150)]),
            ("s", .string, [nil, .string("x")]),
            ("f", .double, [nil, .double(1.5)]),
        ])
        var out = try ColumnOperations.fillNull(b, column: "i", with: .int(0))
        out = try ColumnOperations.fillNull(out, column: "d", with: .int(19000))
        out = try ColumnOperations.fillNull(out, column: "m", with: .int(-99))
        out = try ColumnOperations.fillNull(out, column: "s", with: .string("unknown"))
        out = try ColumnOperations.fillNull(out, column: "f", with: .double(0))
        #expect(opInts(out["i"]) == [0, 5])
        #expect(opInts(out["d"]) == [3, 19000])
        #expect(opInts(out["m"]) == [-99, 150])
        #expect(opStrings(out["s"]) == ["unknown", "x"])
        #expect(out.columns.allSatisfy { $0.nullCount == 0 })
        #expect(opErrorText { _ = try ColumnOperations.fillNull(b, column: "i", with: .string("x")) }.contains("'i'"))
        #expect(opErrorText { _ = try ColumnOperations.fillNull(b, column: "m", with: .int(100_000)) }.contains("'m'"))
        #expect(opErrorText { _ = try ColumnOperations.fillNull(b, column: "q", with: .int(1)) }.contains("'q'"))
    }

    @Test func emptyBatchesPassThrough() throws {
        let empty = ColumnBatch.empty(try Self.sample().schema)
        #expect(try ColumnOperations.trim(empty, ["name"]).rowCount == 0)
        #expect(try ColumnOperations.upper(empty, ["city"]).rowCount == 0)
        #expect(try ColumnOperations.fillNull(empty, column: "id", with: .int(1)).rowCount == 0)
    }
}

/// A test expression: `column * factor` over int64 buffers.
struct TimesExpression: BatchExpression {
    let column: String
    let factor: Int64
    var type: ColumnType { .int64 }
    func evaluate(_ batch: ColumnBatch) throws -> Column {
        let c = batch[column]!
        guard case .int64(let v) = c.values else { throw OperatorError.invalidSetting("not int64") }
        return try Column(.int64, .int64(v.map { $0 &* factor }), validity: c.validity)
    }
}

/// A test predicate: `column > bound` (null when the column is null).
struct GreaterExpression: BatchExpression {
    let column: String
    let bound: Int64
    var type: ColumnType { .bool }
    func evaluate(_ batch: ColumnBatch) throws -> Column {
        let c = batch[column]!
        guard case .int64(let v) = c.values else { throw OperatorError.invalidSetting("not int64") }
        return try Column(.bool, .bool(v.map { $0 > bound }), validity: c.validity)
    }
}

@Suite struct NormalizerTests {
    @Test func stepsApplyInOrder() throws {
        let input = try opBatch([
            ("id", .int64, [.int(1), .int(2), .int(3), nil]),
            ("Name", .string, [.string(" a "), .string("b"), nil, .string("d ")]),
        ])
        let caster = ClosureCaster { column, type, _ in
            guard case .int64(let v) = column.values, type == .double else { throw OperatorError.invalidSetting("cast") }
            return try Column(.double, .double(v.map(Double.init)), validity: column.validity)
        }
        let n = Normalizer(steps: [
            .rename([(from: "Name", to: "name")]),
            .trim(["name"]), .upper(["name"]),
            .derive(name: "twice", TimesExpression(column: "id", factor: 2)),
            .filter(GreaterExpression(column: "id", bound: 1)),
            .fillNull(column: "name", value: .string("?")),
            .cast(column: "id", to: .double),
            .drop(["twice"]),
        ], caster: caster)
        let out = try n.apply(input)
        #expect(out.schema.fields.map(\.name) == ["id", "name"])
        #expect(out.schema.fields[0].type == .double)
        #expect(opStrings(out["name"]) == ["B", "?"])
        #expect(out["id"]!.scalar(at: 0) == .double(2) && out["id"]!.scalar(at: 1) == .double(3))
    }

    @Test func filterDropsNullAndFalse() throws {
        let input = try opBatch([("id", .int64, [nil, .int(5), .int(0), .int(7)])])
        let out = try Normalizer(steps: [.filter(GreaterExpression(column: "id", bound: 1))]).apply(input)
        #expect(opInts(out["id"]) == [5, 7])
    }

    @Test func deriveReplacesAnExistingColumnInPlace() throws {
        let input = try opBatch([("a", .int64, [.int(1)]), ("b", .int64, [.int(2)])])
        let out = try Normalizer(steps: [.derive(name: "a", TimesExpression(column: "b", factor: 10))]).apply(input)
        #expect(out.schema.fields.map(\.name) == ["a", "b"])
        #expect(opInts(out["a"]) == [20])
    }

    @Test func castWithoutCasterIsAnErrorNamingTheColumn() throws {
        let input = try opBatch([("a", .int64, [.int(1)])])
        #expect(opErrorText { _ = try Normalizer(steps: [.cast(column: "a", to: .double)]).apply(input) }.contains("'a'"))
    }
}
