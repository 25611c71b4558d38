import Foundation
import Testing
import Columnar
@testable import Stages

@Suite struct IngestJSONLinesTests {
    static let columns = [
        Field("id", .int64, nullable: false), Field("name", .string), Field("price", .decimal(precision: 18, scale: 4)),
        Field("day", .date), Field("ok", .bool), Field("x", .double),
    ]

    func jsonl(_ columns: [Field] = columns, extra: IngestSource.ExtraColumns = .error) -> IngestSource {
        IngestSource(format: .jsonl, columns: columns, extraColumns: extra)
    }

    @Test func fieldsByNameMissingIsNullAndNumbersExact() throws {
        let text = """
            {"id": 1, "name": "a\\"b\\\\c\\n\\u00e9\\ud83d\\ude00", "price": 12345678901234.5678, "day": "2024-03-01", "ok": true, "x": 1.5e3}
            {"price": 0.1, "id": 2}
              {"id":3,"name":null,"ok":false,"x":-0}\r

            {"id":4,"name":"","day":"","price":"7.25"}
            """
        let r = try ingestText(text, jsonl())
        #expect(r.quarantine == [])
        #expect(r.values("id") == [.int(1), .int(2), .int(3), .int(4)])
        #expect(r.strings("name") == ["a\"b\\c\né😀", nil, nil, ""])
        #expect(r.values("price") == [.int(123_456_789_012_345_678), .int(1000), nil, .int(72500)])
        #expect(r.values("day") == [.int(19783), nil, nil, nil])
        #expect(r.values("ok") == [.bool(true), nil, .bool(false), nil])
        #expect(r.values("x") == [.double(1500), nil, .double(0), nil])
    }

    @Test func badRowsAreQuarantinedWithReasons() throws {
        let lines = [
            #"{"id": 1, "name": {"nested": true}}"#,
            #"{"id": 2, "name": [1, 2]}"#,
            #"{"id": 3, "price": 1.23456}"#,
            #"{"id": 4, "price": 12345678901234567}"#,
            #"{"name": "no id"}"#,
            #"{"id": null}"#,
            #"{"id": 7, "id": 8}"#,
            #"{"id": 9, "other": 1}"#,
            #"{"id": 10,}"#,
            #"[1, 2]"#,
            #"{"id": 11} trailing"#,
            #"{"id": "12a"}"#,
            #"{"id": 13, "name": "\ud800"}"#,
            #"{"id": 14, "day": "2024-13-01"}"#,
            #"{"id": 15, "x": 01}"#,
            #"{"id": 16"#,
            #"{"id": 17, "ok": "maybe"}"#,
            #"{"id": 18}"#,
        ]
        let r = try ingestText(lines.joined(separator: "\n"), jsonl())
        #expect(r.values("id") == [.int(18)])
        #expect(r.reasons == [
            "line 1, column name: a nested object is not a string value",
            "line 2, column name: a nested array is not a string value",
            "line 3, column price: '1.23456' has more than 4 digits after the point for decimal(18,4)",
            "line 4, column price: '12345678901234567' overflows decimal(18,4) (at most 14 digits before the point)",
            "line 5, column id: null in a non-nullable column (the field is missing)",
            "line 6, column id: null in a non-nullable column",
            "line 7, column id: the field appears twice in the object",
            "line 8: field other is not a declared column (declare it, or set extra columns to ignore)",
            "line 9: invalid JSON: expected a field name at byte 11",
            "line 10: not a JSON object (each line must hold one {...})",
            "line 11: invalid JSON: text after the object at byte 12",
            "line 12, column id: '12a' is not an int64",
            "line 13: invalid JSON: unpaired surrogate in \\u escape at byte 21",
            "line 14, column day: '2024-13-01' is not a date (YYYY-MM-DD)",
            "line 15: invalid JSON: bad value at byte 17",
            "line 16: invalid JSON: the object is not closed at byte 10",
            "line 17, column ok: 'maybe' is not a bool (true/false/1/0/t/f/yes/no)",
        ])
        #expect(r.quarantine.map(\.column) == ["name", "name", "price", "price", "id", "id", "id", nil, nil, nil, nil, "id", nil, "day", nil, nil, "ok"])
        #expect(r.quarantine.map(\.raw) == Array(lines.dropLast()))
        #expect(r.quarantine.map(\.line) == Array(1...17))
    }

    @Test func undeclaredFieldsMayBeIgnoredNestedOnesToo() throws {
        let r = try ingestText(#"{"skip": {"a": [1, {"b": "}"}]}, "id": 1, "more": [true, null, "x"]}"#, jsonl(extra: .ignore))
        #expect(r.quarantine == [])
        #expect(r.values("id") == [.int(1)])
    }

    @Test func invalidUTF8InAStringIsQuarantined() throws {
        let bytes = Array(#"{"id": 1, "name": "a"#.utf8) + [0xFF] + Array("\"}\n{\"id\": 2}\n".utf8)
        let r = try ingestBytes(bytes, jsonl())
        #expect(r.values("id") == [.int(2)])
        #expect(r.reasons == ["line 1, column name: invalid UTF-8"])
    }
}
