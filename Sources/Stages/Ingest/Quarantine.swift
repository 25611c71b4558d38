import Columnar

/// Rows that did not fit, streamed into their own chunk with the schema
/// `file string, line int64, column string?, reason string, raw string`.
/// The writer is created at the first row, so a clean shard writes no file.
final class QuarantineSink {
    static let schema = Schema([
        Field("file", .string, nullable: false),
        Field("line", .int64, nullable: false),
        Field("column", .string),
        Field("reason", .string, nullable: false),
        Field("raw", .string, nullable: false),
    ])
    /// Rows gathered before a batch goes to the writer; raw text is bounded,
    /// so this bounds the memory too.
    static let batchRows = 4096

    let file: String
    let path: String
    let rawLimit: Int
    let writerOptions: WriterOptions
    private var writer: ParquetWriter?
    private var lines: [Int64] = []
    private var columns: [String?] = []
    private var reasons: [String] = []
    private var raws: [[UInt8]] = []
    private(set) var rows: Int64 = 0

    init(file: String, path: String, rawLimit: Int, writerOptions: WriterOptions) {
        self.file = file
        self.path = path
        self.rawLimit = max(16, rawLimit)
        self.writerOptions = writerOptions
    }

    /// Records one bad row. `raw` is the record as it appears in the file
    /// (without its line break), cut at `rawLimit` bytes on a UTF-8 character
    /// boundary with a marker; invalid UTF-8 in it becomes U+FFFD.
    /// `fullLength`: the record's length when `raw` is only its start.
    func add(line: Int64, column: String?, reason: String, raw: UnsafeRawBufferPointer, fullLength: Int64? = nil) throws {
        lines.append(line)
        columns.append(column)
        reasons.append(reason)
        raws.append(QuarantineSink.bounded(raw, limit: rawLimit, fullLength: fullLength))
        rows += 1
        if lines.count >= QuarantineSink.batchRows { try flush() }
    }

    static func bounded(_ raw: UnsafeRawBufferPointer, limit: Int, fullLength: Int64? = nil) -> [UInt8] {
        let bytes = raw.bindMemory(to: UInt8.self)
        let total = fullLength ?? Int64(bytes.count)
        if bytes.count <= limit && total == Int64(bytes.count) {
            return Array(String(decoding: bytes, as: UTF8.self).utf8)
        }
        let marker = "…[cut: \(total) bytes in all]"
        var cut = min(bytes.count, max(0, limit - marker.utf8.count))
        // Back off continuation bytes so no character is split.
        while cut > 0, cut < bytes.count, bytes[cut] & 0xC0 == 0x80 { cut -= 1 }
        return Array(String(decoding: UnsafeBufferPointer(rebasing: bytes[0..<cut]), as: UTF8.self).utf8)
            + Array(marker.utf8)
    }

    private func flush() throws {
        guard !lines.isEmpty else { return }
        if writer == nil {
            writer = try ParquetWriter(path: path, schema: QuarantineSink.schema, options: writerOptions.forQuarantine)
        }
        var fileCol = StringColumn()
        var colCol = StringColumn()
        var colValid = [Bool]()
        var reasonCol = StringColumn()
        var rawCol = StringColumn()
        for i in lines.indices {
            fileCol.append(file)
            if let c = columns[i] {
                colCol.append(c)
                colValid.append(true)
            } else {
                colCol.append(bytes: EmptyCollection<UInt8>())
                colValid.append(false)
            }
            reasonCol.append(reasons[i])
            rawCol.append(bytes: raws[i])
        }
        let batch = try ColumnBatch(schema: QuarantineSink.schema, columns: [
            try Column(.string, .bytes(fileCol)),
            try Column(.int64, .int64(lines)),
            try Column(.string, .bytes(colCol), validity: colValid),
            try Column(.string, .bytes(reasonCol)),
            try Column(.string, .bytes(rawCol)),
        ])
        try writer!.append(batch)
        lines.removeAll(keepingCapacity: true)
        columns.removeAll(keepingCapacity: true)
        reasons.removeAll(keepingCapacity: true)
        raws.removeAll(keepingCapacity: true)
    }

    /// Writes what is left and returns the chunk, or nil when no row was bad.
    func finish() throws -> WriteResult? {
        try flush()
        return try writer?.finish()
    }

    func abandon() {
        writer?.abandon()
    }
}

/// The reason texts users read: `line 17, column l_quantity: '12.3x' is not a decimal(15,2)`.
enum Reasons {
    /// The value as quoted in a reason: at most 64 bytes, then "…".
    static func quoted(_ p: UnsafePointer<UInt8>, _ n: Int) -> String {
        let shown = min(n, 64)
        var cut = shown
        if shown < n { while cut > 0, p[cut] & 0xC0 == 0x80 { cut -= 1 } }
        let text = String(decoding: UnsafeBufferPointer(start: p, count: cut), as: UTF8.self)
        return "'" + text + (cut < n ? "…" : "") + "'"
    }

    static func typeName(_ type: ColumnType) -> String {
        switch type {
        case .int64: return "an int64"
        case .int32: return "an int32"
        case .double: return "a double"
        case .bool: return "a bool (true/false/1/0/t/f/yes/no)"
        case .string: return "a string"
        case .date: return "a date (YYYY-MM-DD)"
        case .timestamp: return "a timestamp (YYYY-MM-DD[T ]HH:MM:SS[.ffffff][Z|±HH:MM])"
        case .decimal(let p, let s): return "a decimal(\(p),\(s))"
        }
    }

    static func field(line: Int64, field: Field, failure: FieldFailure, _ p: UnsafePointer<UInt8>, _ n: Int) -> String {
        let head = "line \(line), column \(field.name): "
        switch failure {
        case .notType:
            return head + "\(quoted(p, n)) is not \(typeName(field.type))"
        case .decimalOverflow:
            if case .decimal(let pr, let s) = field.type {
                return head + "\(quoted(p, n)) overflows decimal(\(pr),\(s)) (at most \(pr - s) digits before the point)"
            }
            return head + "\(quoted(p, n)) overflows \(field.type)"
        case .decimalScale:
            if case .decimal(let pr, let s) = field.type {
                return head + "\(quoted(p, n)) has more than \(s) digits after the point for decimal(\(pr),\(s))"
            }
            return head + "\(quoted(p, n)) has too many digits after the point"
        case .invalidUTF8:
            return head + "invalid UTF-8"
        case .nullInRequired:
            return head + "null in a non-nullable column"
        }
    }
}

extension WriterOptions {
    /// A quarantine chunk's options: the stage's, with row groups of at
    /// most 16,384 rows, so that showing its first rows (`bis quarantine
    /// --limit`, the dashboard) decodes one small row group, not the chunk.
    var forQuarantine: WriterOptions {
        var o = self
        o.rowGroupRows = Swift.min(o.rowGroupRows, 16_384)
        return o
    }
}
