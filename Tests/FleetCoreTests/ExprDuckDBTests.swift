import Columnar
import Foundation
import Testing
import TestSupport
@testable import FleetCore

/// A Python with duckdb (see TestSupport's `PythonTool`): skipped when
/// absent unless BIS_REQUIRE_PYTHON=1, then failing.
enum ExprPython {
    static let packageRoot = PythonTool.packageRoot

    static let tool = PythonTool(importing: "duckdb")
    static var interpreter: String? { tool.interpreter }

    static var required: Bool { PythonTool.required }
    static var enabled: Bool { interpreter != nil || required }

    static func python() throws -> String {
        try #require(interpreter, "BIS_REQUIRE_PYTHON=1 but no Python with duckdb was found: set BIS_PYTHON")
    }

    static func run(_ executable: String, _ args: [String]) throws -> (status: Int32, output: String) {
        try PythonTool.run(executable, args)
    }

    /// Evaluates each SQL expression over the Parquet file, ordered by `seq`,
    /// and writes canonical values: n: exact numbers, f: doubles (repr),
    /// s: strings, b: bools, d: days since epoch, t: µs since epoch, null.
    /// Embedded rather than a .py file because FleetCoreTests does not
    /// exclude a python folder.
    static let script = #"""
    import datetime, decimal, json, sys
    import duckdb

    spec = json.load(open(sys.argv[1]))
    con = duckdb.connect()
    con.execute("SET threads=1")
    epoch_date = datetime.date(1970, 1, 1)
    epoch_ts = datetime.datetime(1970, 1, 1)

    def canon(v):
        if v is None:
            return None
        if isinstance(v, bool):
            return "b:" + ("true" if v else "false")
        if isinstance(v, int):
            return "n:" + str(v)
        if isinstance(v, decimal.Decimal):
            return "n:" + format(v, "f")
        if isinstance(v, float):
            return "f:" + repr(v)
        if isinstance(v, str):
            return "s:" + v
        if isinstance(v, datetime.datetime):
            if v.tzinfo is not None:
                v = v.astimezone(datetime.timezone.utc).replace(tzinfo=None)
            d = v - epoch_ts
            return "t:" + str((d.days * 86400 + d.seconds) * 1000000 + d.microseconds)
        if isinstance(v, datetime.date):
            return "d:" + str((v - epoch_date).days)
        return "?:" + repr(v)

    out = []
    for sql in spec["expressions"]:
        try:
            rows = con.execute(
                "SELECT (" + sql + ") AS v FROM read_parquet(?) ORDER BY seq", [spec["path"]]).fetchall()
            out.append({"values": [canon(r[0]) for r in rows]})
        except Exception as e:
            out.append({"error": str(e)})
    json.dump(out, open(sys.argv[2], "w"))
    """#
}

@Suite(.enabled(if: ExprPython.enabled, "no Python with duckdb (set BIS_PYTHON or create .venv)"))
struct ExprDuckDBTests {
    /// Our expression, and DuckDB's SQL when it is spelled differently.
    static let expressions: [(String, String?)] = [
        ("i + j", nil), ("i - j * 3", nil), ("i * j", nil), ("i / j", nil), ("i // 7", nil), ("i % 7", nil),
        ("-i", nil), ("j / 4", nil), ("f / (j % 3)", nil), ("f * 2 + j", nil), ("abs(i)", nil),
        ("price + disc", nil), ("price - 1", nil), ("price * (1 - disc)", nil), ("price * disc", nil),
        ("price / 3", nil), ("price > 500.5", nil), ("price = i", nil), ("disc between 0.02 and 0.05", nil),
        ("round(price * disc, 2)", nil), ("round(price, -1)", nil), ("round(f, 1)", nil), ("round(f)", nil),
        ("coalesce(i, j)", nil), ("coalesce(price, disc, 0)", nil),
        ("case when disc = 0 then null else price * disc end", nil),
        ("case when i > 0 then 'pos' when i < 0 then 'neg' else 'zero' end", nil),
        ("case when b then price else 0.5 end", nil),
        ("upper(s)", nil), ("lower(s)", nil), ("trim(s)", nil), ("length(s)", nil), ("substr(s, 2, 3)", nil),
        ("substr(s, -2)", nil), ("substr(s, 0, 2)", nil), ("s || '!'", nil), ("s < 'M'", nil),
        ("s in ('AIR', 'MAIL')", nil),
        ("year(day)", nil), ("month(ts)", nil), ("day(day)", nil), ("date_trunc('month', day)", nil),
        ("date_trunc('year', ts)", nil), ("date_trunc('day', ts)", nil), ("day <= date '1995-06-17'", nil),
        ("ts > timestamp '1995-01-01 00:00:00'", nil),
        ("day + 30", nil), ("day - j", nil), ("day - date '1995-01-01'", nil), ("day <= date '1998-12-01' - 90", nil), ("day = ts", nil),
        ("i between -10 and 500", nil), ("i not in (1, 2, 3, null)", nil), ("i in (5, 7, 11)", nil),
        ("b and i > 0", nil), ("b or i > 0", nil), ("not b", nil), ("i is null", nil),
        ("s is not null and length(s) > 3", nil), ("i <> j", "i != j"),
        ("cast(price as int64)", nil), ("cast(f as decimal(10,2))", nil), ("cast(i as string)", "cast(i as varchar)"),
        ("cast(day as timestamp)", nil), ("cast(ts as date)", nil), ("cast(j as double) / 3", nil),
        ("(f - f) / 0 = (f - f) / 0", nil), ("(f - f) / 0 > 1", nil), ("cast(price as string)", "cast(price as varchar)"),
    ]

    static func table(rows: Int) throws -> ColumnBatch {
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        func next(_ range: ClosedRange<Int64>) -> Int64 {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return range.lowerBound + Int64((state >> 33) % UInt64(range.upperBound - range.lowerBound + 1))
        }
        let strings = ["AIR", "MAIL", " ship ", "日本語", "naïve", "", "Truck", "e\u{301}x", "REG AIR"]
        let schema = Schema([
            Field("seq", .int64, nullable: false), Field("i", .int64), Field("j", .int32, nullable: false),
            Field("price", .decimal(precision: 15, scale: 2)), Field("disc", .decimal(precision: 15, scale: 2), nullable: false),
            Field("f", .double), Field("s", .string), Field("day", .date), Field("ts", .timestamp), Field("b", .bool),
        ])
        var columns = [[Scalar?]](repeating: [], count: schema.fields.count)
        for r in 0..<rows {
            let day = 8035 + next(0...2500)  // 1992-01-01 onwards
            let row: [Scalar?] = [
                .int(Int64(r)),
                r % 7 == 3 ? nil : .int(next(-1000...1000)),
                .int(next(-50...50)),
                r % 11 == 5 ? nil : .int(next(0...10_000_000)),
                .int(next(0...10)),
                r % 9 == 4 ? nil : .double(Double(next(-400...400)) / 8),
                r % 5 == 2 ? nil : .string(strings[Int(next(0...Int64(strings.count - 1)))]),
                r % 13 == 6 ? nil : .int(day),
                r % 6 == 1 ? nil : .int(day * 86_400_000_000 + next(0...86_399) * 1_000_000),
                r % 4 == 0 ? nil : .bool(next(0...1) == 1),
            ]
            for (k, v) in row.enumerated() { columns[k].append(v) }
        }
        return try ColumnBatch(schema: schema, columns: zip(schema.fields, columns).map { try Column($0.type, scalars: $1) })
    }

    /// Our value as DuckDB's script writes it.
    static func canonical(_ c: Column, _ row: Int) -> String? {
        guard let v = c.scalar(at: row) else { return nil }
        switch (c.type, v) {
        case (.decimal(_, let s), .int(let x)): return "n:" + normalized(ValueText.decimal(unscaled: x, scale: s))
        case (.date, .int(let x)): return "d:\(x)"
        case (.timestamp, .int(let x)): return "t:\(x)"
        case (_, .int(let x)): return "n:\(x)"
        case (_, .double(let x)): return "f:\(x)"
        case (_, .bool(let x)): return "b:\(x)"
        case (_, .bytes(let b)): return "s:" + String(decoding: b, as: UTF8.self)
        }
    }

    /// Exact numbers without trailing fraction zeros: 1.50 and 1.5 agree.
    static func normalized(_ text: String) -> String {
        guard text.contains(".") else { return text == "-0" ? "0" : text }
        var t = Substring(text)
        while t.hasSuffix("0") { t.removeLast() }
        if t.hasSuffix(".") { t.removeLast() }
        return t == "-0" ? "0" : String(t)
    }

    static func same(_ ours: String?, _ theirs: String?) -> Bool {
        guard let ours, let theirs else { return ours == nil && theirs == nil }
        if ours.hasPrefix("f:"), theirs.hasPrefix("f:"),
           let a = Double(ours.dropFirst(2)), let b = Double(theirs.dropFirst(2)) {
            return a == b || (a.isNaN && b.isNaN)
        }
        if ours.hasPrefix("n:"), theirs.hasPrefix("n:") {
            return normalized(String(ours.dropFirst(2))) == normalized(String(theirs.dropFirst(2)))
        }
        return ours == theirs
    }

    @Test func expressionsAgreeWithDuckDB() throws {
        let python = try ExprPython.python()
        let dir = NSTemporaryDirectory() + "expr-duckdb-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let table = try Self.table(rows: 120)
        let path = dir + "/table.parquet"
        let writer = try ParquetWriter(path: path, schema: table.schema)
        try writer.append(table)
        _ = try writer.finish()

        let spec: [String: Any] = ["path": path, "expressions": Self.expressions.map { $0.1 ?? $0.0 }]
        try JSONSerialization.data(withJSONObject: spec).write(to: URL(fileURLWithPath: dir + "/spec.json"))
        try Self.scriptText.write(toFile: dir + "/eval.py", atomically: true, encoding: .utf8)
        let r = try ExprPython.run(python, [dir + "/eval.py", dir + "/spec.json", dir + "/out.json"])
        try #require(r.status == 0, "\(r.output)")
        let results = try #require(
            JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/out.json"))) as? [[String: Any]])
        try #require(results.count == Self.expressions.count)

        for ((text, _), result) in zip(Self.expressions, results) {
            if let error = result["error"] {
                Issue.record("DuckDB failed on \(text): \(error)")
                continue
            }
            let theirs = (result["values"] as? [Any] ?? []).map { $0 as? String }
            let column = try Expression.parse(text).check(table.schema).evaluate(table)
            #expect(theirs.count == table.rowCount, "\(text)")
            var mismatches = [String]()
            for row in 0..<Swift.min(theirs.count, column.count) where !Self.same(Self.canonical(column, row), theirs[row]) {
                mismatches.append("row \(row): ours \(Self.canonical(column, row) ?? "null"), DuckDB \(theirs[row] ?? "null")")
            }
            #expect(mismatches.isEmpty, "\(text): \(mismatches.prefix(5).joined(separator: "; "))")
        }
    }

    static var scriptText: String { ExprPython.script }
}
