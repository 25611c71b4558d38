import Columnar
import FleetCore

/// Reads one shard (a row group, or every row group) of a Parquet file that
/// another system wrote, into the source's declared columns.
///
/// Columns are taken by name and converted to the declared types exactly,
/// as CSV fields are parsed: nothing is rounded or cut. A value that does not
/// fit (an integer out of range, a decimal with more digits than the declared
/// precision or scale, a fraction in an integer column, a timestamp with
/// sub-microsecond digits, a string that does not parse, invalid UTF-8, a
/// null in a non-nullable column) sends its row to the quarantine with the
/// file, `line` = the row's 1-based number in the file, the column, and a
/// reason that starts `row group G, row R` (row groups counted from 0 as
/// Parquet tools do, R from 1 within the group). The row's values as read
/// from the file are its `raw` text, as a JSON object.
///
/// `_source_line` of a written row is its 1-based row number in the file
/// (DuckDB's `file_row_number` + 1).
struct ParquetIngest {
    let run: IngestRun
    let source: IngestSource
    let shard: Shard
    let options: IngestOptions

    init(run: IngestRun, source: IngestSource, shard: Shard, options: IngestOptions = IngestOptions()) {
        self.run = run
        self.source = source
        self.shard = shard
        self.options = options
    }

    /// Rows of nulls written per batch when no declared column is in the file.
    static let nullSliceRows = 1 << 16

    /// Bytes a value of `kind` takes while a row group is ingested: as
    /// decoded, as converted, and as its output builder holds it (strings
    /// count their offsets; their bytes are limited while decoding).
    static func bytesPerValue(_ kind: SourceColumnKind) -> Int64 {
        switch kind {
        case .unsigned, .wideDecimal, .timestampNanos: return 56
        case .typed(let t):
            switch t.storage {
            case .bool: return 3
            case .int32: return 12
            default: return 24
            }
        }
    }

    private var file: String { shard.path }

    /// Opens `path`, an operating-system failure as `IngestError.io`.
    static func open(_ path: String) throws -> ParquetSourceReader {
        do {
            return try ParquetSourceReader(path: path)
        } catch let error as ColumnarError {
            if case .io(let message, let e) = error { throw IngestError.io(file: path, message: message, errno: e) }
            throw error
        }
    }

    func read() throws {
        let reader = try Self.open(file)
        let mapping = try Self.columns(reader, source: source, file: file)
        let groups: [Int]
        if let g = shard.rowGroup {
            guard reader.rowGroupRows.indices.contains(g) else {
                throw IngestError.invalidSource(file: file, message: "the shard names row group \(g), the file has \(reader.rowGroupRows.count)")
            }
            groups = [g]
        } else {
            groups = Array(reader.rowGroupRows.indices)
        }
        for g in groups {
            // The footer's count is the one source of row numbers; a planned
            // shard's firstLine must agree with it, or the file was
            // rewritten (to the same size) after the run was planned.
            let firstRow = reader.rowGroupRows[..<g].reduce(0, +)
            if shard.rowGroup != nil, shard.firstLine != 1 || g == 0, shard.firstLine != firstRow + 1 {
                throw IngestError.invalidSource(
                    file: file, message: "row group \(g) starts at row \(firstRow + 1), the shard planned it at row "
                        + "\(shard.firstLine): the file changed after the run was planned")
            }
            try readGroup(reader, g, firstRow: firstRow, mapping)
        }
    }

    /// Per declared column: the file's column index, nil when it is missing
    /// and filled with nulls. Refuses missing, extra, duplicated,
    /// unsupported and unconvertible columns, naming them.
    static func columns(_ reader: ParquetSourceReader, source: IngestSource, file: String) throws -> [Int?] {
        var byName = [String: Int]()
        var twice = Set<String>()
        for (i, f) in reader.fields.enumerated() {
            if byName[f.name] != nil { twice.insert(f.name) } else { byName[f.name] = i }
        }
        let declared = Set(source.columns.map(\.name))
        let fileNames = reader.fields.map(\.name)
        let missing = source.columns.map(\.name).filter { byName[$0] == nil }
        let extra = fileNames.filter { !declared.contains($0) }
        if !missing.isEmpty, source.missingColumns == .error {
            throw IngestError.invalidSource(
                file: file, message: "the Parquet file has no column\(missing.count == 1 ? "" : "s") "
                    + missing.map { "'\($0)'" }.joined(separator: ", ") + " (its columns: \(fileNames.joined(separator: ", "))); "
                    + "declare missing_columns: null to read \(missing.count == 1 ? "it" : "them") as null")
        }
        if !extra.isEmpty, source.extraColumns == .error {
            throw IngestError.invalidSource(
                file: file, message: "the Parquet file has undeclared column\(extra.count == 1 ? "" : "s") "
                    + extra.map { "'\($0)'" }.joined(separator: ", ") + "; declare them, or set extra_columns: ignore")
        }
        var out = [Int?]()
        for field in source.columns {
            guard let i = byName[field.name] else {
                guard field.nullable else {
                    throw IngestError.invalidSource(
                        file: file, message: "column \(field.name) is missing from the Parquet file and is not nullable, "
                            + "so missing_columns: null cannot fill it")
                }
                out.append(nil)
                continue
            }
            guard !twice.contains(field.name) else {
                throw IngestError.invalidSource(file: file, message: "the Parquet file has two columns named '\(field.name)'")
            }
            let f = reader.fields[i]
            guard let kind = f.kind else {
                throw ColumnarError.unsupported("\(file): column '\(f.name)' (\(f.fileType)) is \(f.unsupported ?? "not readable")")
            }
            guard ParquetConversion.allowed(kind, field.type) else {
                throw IngestError.invalidSource(
                    file: file, message: "column \(field.name) is \(f.fileType) in the Parquet file (\(kind)); it cannot be read as "
                        + "\(field.type) (it can be read as \(ParquetConversion.targets(kind)))")
            }
            out.append(i)
        }
        return out
    }

    private func readGroup(_ reader: ParquetSourceReader, _ g: Int, firstRow: Int64, _ mapping: [Int?]) throws {
        try ExecutionCancellation.check()   // a stage timeout: stop between row groups
        let claimed = reader.rowGroupRows[g]
        guard claimed <= options.maxParquetRowGroupRows else {
            throw IngestError.invalidSource(
                file: file, message: "row group \(g) claims \(claimed) rows; row groups of more than "
                    + "\(options.maxParquetRowGroupRows) rows are refused")
        }
        // Memory: the footer's rows times what each declared column in the
        // file takes per value (as decoded, converted and written), before
        // anything is decoded; then each column's share while decoding.
        let present = mapping.compactMap { $0 }
        let estimate = present.reduce(Int64(0)) { sum, i in
            let (m, o) = claimed.multipliedReportingOverflow(by: Self.bytesPerValue(reader.fields[i].kind!))
            return o ? .max : sum.addingReportingOverflow(m).overflow ? .max : sum + m
        }
        guard estimate <= options.maxParquetRowGroupBytes else {
            throw IngestError.invalidSource(
                file: file, message: "row group \(g): \(claimed) rows of \(present.count) declared columns need about "
                    + "\(estimate) bytes of memory, more than the limit of \(options.maxParquetRowGroupBytes)")
        }
        reader.maxColumnBytes = Int(options.maxParquetRowGroupBytes / Int64(max(1, present.count)))
        // The file's columns first: their decoded values, not the footer's
        // count, size the null columns of the declared columns it lacks.
        var sources = [SourceColumn?](repeating: nil, count: source.columns.count)
        var decoded = [Column?](repeating: nil, count: source.columns.count)
        /// The first failing column of each bad row, in declared order.
        var failures = [Int: (column: Int, reason: String)]()
        var decodedRows: Int?
        for (c, field) in source.columns.enumerated() {
            guard let i = mapping[c] else { continue }
            let values = try reader.read(field: i, rowGroup: g)
            guard Int64(values.count) == claimed, decodedRows == nil || decodedRows == values.count else {
                throw ColumnarError.corrupt("\(file): row group \(g), column '\(field.name)': \(values.count) values for \(claimed) rows")
            }
            decodedRows = values.count
            sources[c] = values
            let r = try ParquetConversion.convert(values, kind: reader.fields[i].kind!, float: reader.fields[i].isFloat, to: field)
            decoded[c] = r.column
            for (row, reason) in r.failures where failures[row] == nil {
                failures[row] = (c, reason)
            }
        }
        guard let rows = decodedRows else {
            // No declared column is in the file: nulls only, in bounded slices.
            var start: Int64 = 0
            while start < claimed {
                let n = Int(min(Int64(Self.nullSliceRows), claimed - start))
                let columns = source.columns.map { field -> Column in
                    var b = ColumnBuilder(field.type, capacity: n)
                    for _ in 0..<n { b.appendNull() }
                    return b.build()
                }
                try run.appendRows(columns, lines: (0..<Int64(n)).map { firstRow + start + $0 + 1 })
                start += Int64(n)
            }
            return
        }
        let converted = source.columns.indices.map { c -> Column in
            if let column = decoded[c] { return column }
            var b = ColumnBuilder(source.columns[c].type, capacity: rows)
            for _ in 0..<rows { b.appendNull() }
            return b.build()
        }
        if failures.isEmpty {
            try run.appendRows(converted, lines: (0..<Int64(rows)).map { firstRow + $0 + 1 })
            return
        }
        // Rows in order: runs of good rows are written, bad rows quarantined.
        var builders = source.columns.map { ColumnBuilder($0.type, capacity: rows - failures.count) }
        var lines = [Int64]()
        lines.reserveCapacity(rows - failures.count)
        var runStart = 0
        func writeRun(_ end: Int) {
            guard end > runStart else { return }
            for c in builders.indices { builders[c].append(converted[c], range: runStart..<end) }
            lines.append(contentsOf: (runStart..<end).map { firstRow + Int64($0) + 1 })
        }
        for row in failures.keys.sorted() {
            writeRun(row)
            runStart = row + 1
        }
        writeRun(rows)
        try run.appendRows(builders.map { $0.build() }, lines: lines)
        for row in failures.keys.sorted() {
            let (c, reason) = failures[row]!
            let name = source.columns[c].name
            try run.quarantineRow(
                line: firstRow + Int64(row) + 1, column: name,
                reason: "row group \(g), row \(row + 1), column \(name): \(reason)",
                raw: rawText(row, sources, reader, mapping))
        }
    }

    /// The row's declared columns as read from the file, as a JSON object.
    private func rawText(_ row: Int, _ sources: [SourceColumn?], _ reader: ParquetSourceReader, _ mapping: [Int?]) -> String {
        var parts = [String]()
        for (c, field) in source.columns.enumerated() {
            guard let i = mapping[c], let values = sources[c] else { continue }
            // Each value cut to the quarantine's limit before it is escaped:
            // the row's text is cut there anyway.
            parts.append(RowText.jsonString(field.name) + ": "
                         + ParquetConversion.json(values, row, kind: reader.fields[i].kind!, float: reader.fields[i].isFloat,
                                                  limit: options.quarantineRawLimit))
        }
        return "{" + parts.joined(separator: ", ") + "}"
    }
}
