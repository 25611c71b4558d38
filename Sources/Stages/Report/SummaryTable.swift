import Columnar
import Foundation

/// One published summary (a group-by table) as the report shows it: typed
/// cells, numbers as exact text.
public struct SummaryTable: Sendable, Hashable, Codable {
    /// The summary's name in the spec (`lineitem_by_status`); it names the CSV file.
    public var name: String
    /// The group-by columns (the bar chart's labels); every other column is an aggregate.
    public var groupBy: [String]
    public var columns: [SummaryColumn]
    /// One array per row, one cell per column.
    public var rows: [[ReportCell]]

    public init(name: String, groupBy: [String], columns: [SummaryColumn], rows: [[ReportCell]]) {
        self.name = name
        self.groupBy = groupBy
        self.columns = columns
        self.rows = rows
    }

    private enum CodingKeys: String, CodingKey { case name, groupBy = "group_by", columns, rows }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        name = try c.decode(String.self, forKey: .name)
        groupBy = try c.decodeIfPresent([String].self, forKey: .groupBy) ?? []
        columns = try c.decode([SummaryColumn].self, forKey: .columns)
        rows = try c.decodeIfPresent([[ReportCell]].self, forKey: .rows) ?? []
        for (i, row) in rows.enumerated() where row.count != columns.count {
            throw DecodingError.dataCorrupted(.init(codingPath: c.codingPath + [CodingKeys.rows],
                debugDescription: "summary '\(name)' row \(i + 1) has \(row.count) cells for \(columns.count) columns"))
        }
    }

    /// The aggregate columns: every column not in `groupBy`.
    public var aggregateColumns: [String] {
        columns.map(\.name).filter { !groupBy.contains($0) }
    }

    /// A summary from a result batch (`PartialAggregate.result()`, or a
    /// published summary chunk): int32/int64 → int, decimal and double →
    /// number (decimals as their exact text), date → date, timestamp → its
    /// ISO 8601 text, string and bool → string.
    public init(name: String, groupBy: [String], batch: ColumnBatch) {
        self.name = name
        self.groupBy = groupBy
        columns = batch.schema.fields.map { SummaryColumn(name: $0.name, type: ReportCellType($0.type)) }
        var rows: [[ReportCell]] = []
        rows.reserveCapacity(batch.rowCount)
        for r in 0..<batch.rowCount {
            rows.append(batch.columns.map { ReportCell($0.scalar(at: r), type: $0.type) })
        }
        self.rows = rows
    }
}

public struct SummaryColumn: Sendable, Hashable, Codable {
    public var name: String
    public var type: ReportCellType

    public init(name: String, type: ReportCellType) {
        self.name = name
        self.type = type
    }
}

/// A summary column's kind as the report's outputs know it.
public enum ReportCellType: String, Sendable, Hashable, Codable {
    case string, number, int, date

    public init(_ type: ColumnType) {
        switch type {
        case .int32, .int64: self = .int
        case .decimal, .double: self = .number
        case .date: self = .date
        case .timestamp, .string, .bool: self = .string
        }
    }
}

/// One value of a summary table. JSON: `{"string": "DE"}`, `{"number":
/// "1234.50"}` (exact decimal text), `{"int": 42}`, `{"date": "2026-11-26"}`,
/// or `null`.
public enum ReportCell: Sendable, Hashable, Codable {
    case string(String)
    /// Exact decimal text: optional `-`, digits, optional `.digits`, or a
    /// double's shortest text (which may use an exponent, `1e-05`).
    case number(String)
    case int(Int64)
    /// Days since 1970-01-01.
    case date(days: Int64)
    case null

    private enum CodingKeys: String, CodingKey { case string, number, int, date }

    /// A Columnar value of `type` as a cell.
    public init(_ value: Scalar?, type: ColumnType) {
        guard let value else { self = .null; return }
        switch (type, value) {
        case (.int32, .int(let v)), (.int64, .int(let v)): self = .int(v)
        case (.decimal(_, let s), .int(let v)): self = .number(ValueText.decimal(unscaled: v, scale: s))
        case (.double, .double(let d)): self = d.isFinite ? .number(Self.doubleText(d)) : .string(String(d))
        case (.date, .int(let v)): self = .date(days: v)
        default: self = .string(ValueText.format(value, as: type))
        }
    }

    /// A double's shortest round-trip text, without a trailing `.0`
    /// (`2.5`, `3`, `1e-05`): CSV readers and spreadsheets read it back exactly.
    static func doubleText(_ d: Double) -> String {
        let s = "\(d)"
        return s.hasSuffix(".0") ? String(s.dropLast(2)) : s
    }

    public init(from decoder: Decoder) throws {
        if let single = try? decoder.singleValueContainer(), single.decodeNil() {
            self = .null
            return
        }
        let c = try decoder.container(keyedBy: CodingKeys.self)
        guard c.allKeys.count == 1, let key = c.allKeys.first else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath,
                debugDescription: "a cell is null or one of {\"string\": …}, {\"number\": \"…\"}, {\"int\": …}, {\"date\": \"YYYY-MM-DD\"}"))
        }
        switch key {
        case .string: self = .string(try c.decode(String.self, forKey: .string))
        case .int: self = .int(try c.decode(Int64.self, forKey: .int))
        case .number:
            let text = try c.decode(String.self, forKey: .number)
            guard Double(text) != nil, text.allSatisfy({ "0123456789.-+eE".contains($0) }) else {
                throw DecodingError.dataCorruptedError(forKey: .number, in: c, debugDescription: "'\(text)' is not a number")
            }
            self = .number(text)
        case .date:
            let text = try c.decode(String.self, forKey: .date)
            guard let days = ReportDates.days(text) else {
                throw DecodingError.dataCorruptedError(forKey: .date, in: c, debugDescription: "'\(text)' is not a date YYYY-MM-DD")
            }
            self = .date(days: days)
        }
    }

    public func encode(to encoder: Encoder) throws {
        if case .null = self {
            var single = encoder.singleValueContainer()
            try single.encodeNil()
            return
        }
        var c = encoder.container(keyedBy: CodingKeys.self)
        switch self {
        case .string(let s): try c.encode(s, forKey: .string)
        case .number(let s): try c.encode(s, forKey: .number)
        case .int(let v): try c.encode(v, forKey: .int)
        case .date(let d): try c.encode(ValueText.date(days: d), forKey: .date)
        case .null: break
        }
    }

    /// The cell as text: exact numbers, ISO dates, empty for null.
    public var text: String {
        switch self {
        case .string(let s), .number(let s): return s
        case .int(let v): return String(v)
        case .date(let d): return ValueText.date(days: d)
        case .null: return ""
        }
    }

    /// The value for charts (approximate for long decimals); nil when not a number.
    public var doubleValue: Double? {
        switch self {
        case .int(let v): return Double(v)
        case .number(let s): return Double(s)
        default: return nil
        }
    }
}

enum ReportDates {
    /// YYYY-MM-DD → days since 1970-01-01; nil when not a real date.
    static func days(_ text: String) -> Int64? {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0].count == 4, parts[1].count == 2, parts[2].count == 2,
              let y = Int64(parts[0]), let m = Int64(parts[1]), let d = Int64(parts[2]),
              (1...12).contains(m), (1...31).contains(d) else { return nil }
        let days = CivilDate.days(year: y, month: m, day: d)
        return ValueText.date(days: days) == text ? days : nil
    }
}
