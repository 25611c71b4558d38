#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Columnar

/// The CSV side of `ingest`: header mapping, then records straight into the sinks.
struct CSVIngest {
    let run: IngestRun
    let source: IngestSource
    let shard: Shard
    let options: IngestOptions

    /// Null markers by byte length: bit n set when a marker has n bytes (63: any longer).
    private let markerLengths: UInt64
    private let markers: [[UInt8]]
    private let packed: PackedMarkers

    init(run: IngestRun, source: IngestSource, shard: Shard, options: IngestOptions) {
        self.run = run
        self.source = source
        self.shard = shard
        self.options = options
        markers = source.nullMarkers.map { Array($0.utf8) }
        markerLengths = markers.reduce(0) { $0 | (1 << UInt64(min($1.count, 63))) }
        var packed = PackedMarkers()
        let short = markers.filter { $0.count <= 8 }.prefix(4).map { m in
            (m.count, m.withUnsafeBufferPointer { PackedMarkers.pack($0.baseAddress ?? UnsafePointer(bitPattern: 1)!, m.count) })
        }
        for (k, (n, w)) in short.enumerated() {
            switch k {
            case 0: packed.lengths.0 = n; packed.words.0 = w
            case 1: packed.lengths.1 = n; packed.words.1 = w
            case 2: packed.lengths.2 = n; packed.words.2 = w
            default: packed.lengths.3 = n; packed.words.3 = w
            }
        }
        self.packed = packed
    }

    static func bomLength(_ b: UnsafePointer<UInt8>, _ n: Int) -> Int {
        n >= 3 && b[0] == 0xEF && b[1] == 0xBB && b[2] == 0xBF ? 3 : 0
    }

    struct Header {
        var names: [String]
        /// File offset just past the header record.
        var end: Int64
        /// Line feeds in the header record (its terminator included).
        var newlines: Int64
    }

    /// Reads the header record from the start of the file (every shard does).
    /// Nil for an empty file.
    func readHeader() throws -> Header? {
        let reader = try BlockReader(path: shard.path, start: 0, limit: 64 << 10, blockBytes: 64 << 10)
        let scanner = CSVScanner(delimiter: source.delimiter, quote: source.quote, capacity: 4096)
        defer { scanner.deallocate() }
        try reader.refill()
        while !reader.eof && reader.count < 3 { try reader.refill() }
        reader.pos = CSVIngest.bomLength(reader.buffer, reader.count)
        while reader.pos == reader.count && !reader.eof { try reader.refill() }
        if reader.pos == reader.count { return nil }
        var r = scanner.scan(reader.buffer, from: reader.pos, end: reader.count, eof: reader.eof)
        while r.incomplete {
            try reader.refill()
            r = scanner.scan(reader.buffer, from: reader.pos, end: reader.count, eof: reader.eof)
        }
        // Before the syntax check: CR-only line ends make the whole file one
        // record, which fails as a quote error or a repeated name otherwise.
        if CSVIngest.hasBareCR(UnsafeRawBufferPointer(start: reader.buffer + reader.pos, count: r.contentEnd - reader.pos),
                               quote: source.quote) {
            throw IngestError.invalidSource(file: shard.path, message: "the header (line 1) holds a carriage return "
                + "that does not end a line: " + CSVIngest.crOnly)
        }
        if let syntax = r.syntax {
            throw IngestError.invalidSource(file: shard.path, message: "the header (line 1) is not valid CSV: "
                + CSVIngest.describe(syntax))
        }
        guard r.fields <= scanner.capacity else {
            throw IngestError.invalidSource(file: shard.path, message: "the header has more than \(scanner.capacity) columns")
        }
        var names = [String]()
        for f in 0..<r.fields {
            var bytes = Array(UnsafeBufferPointer(start: reader.buffer + scanner.starts[f], count: scanner.ends[f] - scanner.starts[f]))
            if scanner.flags[f] & CSVScanner.escapedFlag != 0 {
                bytes = CSVIngest.unescape(bytes, quote: source.quote)
            }
            names.append(String(decoding: bytes, as: UTF8.self))
        }
        return Header(names: names, end: reader.base + Int64(r.next), newlines: Int64(r.newlines))
    }

    static let crOnly = "CR-only line ends (classic Mac OS) are not supported; convert them to LF or CRLF "
        + "(e.g. tr '\\r' '\\n')"

    /// Whether `record` (its text without the line end) holds a CR outside
    /// quotes: a lone CR is data to RFC 4180, but in a record that fails to
    /// parse, or in a header, it means the file's lines end with CR alone.
    static func hasBareCR(_ record: UnsafeRawBufferPointer, quote: UInt8) -> Bool {
        var quoted = false
        for b in record {
            if b == quote { quoted.toggle() } else if b == 13 && !quoted { return true }
        }
        return false
    }

    static func unescape(_ bytes: [UInt8], quote: UInt8) -> [UInt8] {
        var out = [UInt8]()
        var i = 0
        while i < bytes.count {
            out.append(bytes[i])
            i += bytes[i] == quote && i + 1 < bytes.count && bytes[i + 1] == quote ? 2 : 1
        }
        return out
    }

    static func describe(_ syntax: CSVScanner.Syntax) -> String {
        switch syntax {
        case .unterminatedQuote:
            return "unterminated quoted field (the file ends inside quotes)"
        case .afterClosingQuote(let field, let byte):
            let shown = byte >= 0x20 && byte < 0x7F ? "'\(Character(Unicode.Scalar(byte)))'" : "byte 0x\(String(byte, radix: 16))"
            return "\(shown) after the closing quote of field \(field) (a quote inside a quoted field must be doubled)"
        case .strayQuote(let field):
            return "a quote inside unquoted field \(field) (quote the whole field and double the quote)"
        }
    }

    /// Which column each field of a record feeds, and where the records start.
    struct FieldLayout {
        /// `fieldMap[i]`: the column field i feeds, or -1 to skip it.
        var fieldMap: [Int]
        /// Declared columns the header lacks: filled with nulls.
        var fillNull: [Int] = []
        /// File offset of the first record this shard reads.
        var start: Int64
        /// The physical line that record starts on.
        var line: Int64
    }

    func parse() throws {
        guard let layout = try fieldLayout() else { return }
        let end = shard.byteRange?.upperBound ?? Int64.max
        let reader = try openReader(at: layout.start, limit: end)
        var st = stat()
        let size = stat(shard.path, &st) == 0 ? Int64(st.st_size) : 0
        let all = min(end, size) - layout.start
        run.progress = { (reader.offset - layout.start, all) }
        defer { run.progress = nil }   // the closure holds the reader (fd and read block)
        let expected = layout.fieldMap.count
        let scanner = CSVScanner(delimiter: source.delimiter, quote: source.quote, capacity: expected + 1)
        defer { scanner.deallocate() }
        let map = UnsafeMutablePointer<Int>.allocate(capacity: expected)
        defer { map.deallocate() }
        for i in 0..<expected { map[i] = layout.fieldMap[i] }
        let fillNull = layout.fillNull
        var line = layout.line
        var scratch = [UInt8]()
        let sinks = run.sinks
        let quote = source.quote

        while true {
            if reader.pos >= reader.count {
                if reader.eof { break }
                try reader.refill()
                continue
            }
            if reader.offset >= end { break }
            let b = UnsafePointer(reader.buffer)
            let recordStart = reader.pos
            let r = scanner.scan(b, from: recordStart, end: reader.count, eof: reader.eof)
            if r.incomplete {
                if reader.count - recordStart >= options.maxRecordBytes {
                    try skipLongRecord(reader, line: &line, quote: quote)
                } else {
                    try reader.refill()
                }
                continue
            }
            let recordLine = line
            line += Int64(r.newlines)
            reader.pos = r.next
            // A blank line is not a record.
            if r.contentEnd == recordStart && r.fields == 1 && r.syntax == nil { continue }
            run.read()
            let raw = UnsafeRawBufferPointer(start: b + recordStart, count: r.contentEnd - recordStart)
            guard try checkShape(r, expected: expected, line: recordLine, raw: raw) else { continue }
            guard try appendFields(b, scanner, map: map, count: expected, sinks: sinks, scratch: &scratch,
                                   quote: quote, line: recordLine, raw: raw) else { continue }
            for c in fillNull { _ = sinks[c].appendNull() }
            try run.commitRow(line: recordLine)
        }
    }

    /// Maps the header's names to the declared columns (or, without a
    /// header, field i to column i) and finds where this shard's records
    /// start. Nil for an empty file.
    func fieldLayout() throws -> FieldLayout? {
        let columns = source.columns
        let start = shard.byteRange?.lowerBound ?? 0
        guard source.header else {
            return FieldLayout(fieldMap: Array(columns.indices), start: start, line: shard.firstLine)
        }
        guard let header = try readHeader() else { return nil }
        let declared = Dictionary(uniqueKeysWithValues: columns.enumerated().map { ($1.name, $0) })
        // An empty name would be reported as an undeclared column that does not show.
        if declared[""] == nil, source.extraColumns == .error, let i = header.names.firstIndex(of: "") {
            let trailing = i == header.names.count - 1 && i > 0 ? " (trailing comma?)" : ""
            throw IngestError.invalidSource(file: shard.path, message: "column \(i + 1) of the header is empty\(trailing); "
                + "name it, or skip such columns with extra_columns: ignore")
        }
        var seen = Set<String>()
        for name in header.names where !seen.insert(name).inserted {
            // Unnamed columns are all skipped (extra_columns: ignore): they may repeat.
            if name.isEmpty && declared[""] == nil { continue }
            throw IngestError.invalidSource(file: shard.path, message: "the header names column \(name) twice")
        }
        let missing = columns.map(\.name).filter { !seen.contains($0) }
        let extra = header.names.filter { declared[$0] == nil }
        let missingFails = !missing.isEmpty && source.missingColumns == .error
        let extraFails = !extra.isEmpty && source.extraColumns == .error
        if missingFails || extraFails {
            throw IngestError.schemaDrift(file: shard.path, missing: missingFails ? missing : [],
                                          extra: extraFails ? extra : [])
        }
        var layout = FieldLayout(fieldMap: header.names.map { declared[$0] ?? -1 }, start: start, line: shard.firstLine)
        for name in missing {
            let i = declared[name]!
            guard columns[i].nullable else {
                throw IngestError.invalidSource(
                    file: shard.path,
                    message: "the header lacks column \(name), which is not nullable and cannot be filled with nulls")
            }
            layout.fillNull.append(i)
        }
        if start == 0 {
            layout.start = header.end
            layout.line = 1 + header.newlines
        }
        return layout
    }

    /// A reader from `start`; at the file's start past a byte-order mark.
    private func openReader(at start: Int64, limit end: Int64) throws -> BlockReader {
        let reader = try BlockReader(path: shard.path, start: start, limit: end, blockBytes: options.readBlockBytes)
        if start == 0 {
            while !reader.eof && reader.count < 3 { try reader.refill() }
            reader.pos = CSVIngest.bomLength(reader.buffer, reader.count)
        }
        return reader
    }

    /// False (the record quarantined) when it is not valid CSV or has the
    /// wrong number of fields.
    @inline(__always)
    private func checkShape(_ r: CSVScanner.Record, expected: Int, line: Int64, raw: UnsafeRawBufferPointer) throws -> Bool {
        if let syntax = r.syntax {
            try run.reject(line: line, column: nil, reason: "line \(line): " + CSVIngest.describe(syntax) + crHint(raw),
                           raw: raw)
            return false
        }
        if r.fields != expected {
            try run.reject(line: line, column: nil,
                           reason: "line \(line): \(r.fields) field\(r.fields == 1 ? "" : "s"), expected \(expected)"
                               + crHint(raw),
                           raw: raw)
            return false
        }
        return true
    }

    /// Appends the record's fields to their columns' sinks (null markers
    /// as nulls, quoted fields unescaped). False (the record quarantined)
    /// at the first value its column refuses.
    @inline(__always)
    private func appendFields(_ b: UnsafePointer<UInt8>, _ scanner: CSVScanner, map: UnsafeMutablePointer<Int>, count expected: Int,
                              sinks: UnsafeMutablePointer<ColumnSink>, scratch: inout [UInt8], quote: UInt8,
                              line recordLine: Int64, raw: UnsafeRawBufferPointer) throws -> Bool {
        for f in 0..<expected {
            let c = map[f]
            if c < 0 { continue }
            let s = scanner.starts[f]
            let n = scanner.ends[f] - s
            let flag = scanner.flags[f]
            var failure: FieldFailure?
            var p = b + s
            var len = n
            if flag == 0 {
                if markerLengths & (1 << UInt64(min(n, 63))) != 0 && isNullMarker(p, n) {
                    failure = sinks[c].appendNull()
                } else {
                    failure = sinks[c].append(p, n)
                }
            } else if flag & CSVScanner.escapedFlag != 0 {
                scratch.removeAll(keepingCapacity: true)
                var i = 0
                while i < n {
                    scratch.append(p[i])
                    i += p[i] == quote ? 2 : 1
                }
                len = scratch.count
                failure = scratch.withUnsafeBufferPointer { sinks[c].append($0.baseAddress!, $0.count) }
                if failure != nil {
                    // Report the unescaped text.
                    let text = scratch
                    try text.withUnsafeBufferPointer { t in
                        p = t.baseAddress!
                        try rejectField(field: run.fields[c], failure: failure!, line: recordLine, p, len, raw: raw)
                    }
                    return false
                }
            } else if n == 0 && !sinks[c].isString {
                failure = sinks[c].appendNull()
            } else {
                failure = sinks[c].append(p, n)
            }
            if let failure {
                try rejectField(field: run.fields[c], failure: failure, line: recordLine, p, len, raw: raw)
                return false
            }
        }
        return true
    }

    /// For a record that failed to parse: what a CR inside it most likely means.
    private func crHint(_ raw: UnsafeRawBufferPointer) -> String {
        CSVIngest.hasBareCR(raw, quote: source.quote) ? " (it holds a CR that does not end a line: \(CSVIngest.crOnly))" : ""
    }

    /// Quarantines a record longer than `maxRecordBytes` without holding it.
    func skipLongRecord(_ reader: BlockReader, line: inout Int64, quote: UInt8?) throws {
        let recordLine = line
        let (prefix, newlines, length) = try reader.skipRecord(quote: quote, keep: options.quarantineRawLimit)
        line += Int64(newlines)
        run.read()
        try prefix.withUnsafeBytes { raw in
            try run.reject(line: recordLine, column: nil,
                           reason: "line \(recordLine): the record is longer than \(options.maxRecordBytes) bytes "
                               + "(\(length) bytes; an unterminated quote?)",
                           raw: raw, fullLength: length)
        }
    }

    private func rejectField(field: Field, failure: FieldFailure, line: Int64,
                             _ p: UnsafePointer<UInt8>, _ n: Int, raw: UnsafeRawBufferPointer) throws {
        try run.reject(line: line, column: field.name,
                       reason: Reasons.field(line: line, field: field, failure: failure, p, n), raw: raw)
    }

    /// Markers of at most 8 bytes packed into a word each: one compare per marker.
    struct PackedMarkers {
        var words: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
        var lengths: (Int, Int, Int, Int) = (-1, -1, -1, -1)

        static func pack(_ p: UnsafePointer<UInt8>, _ n: Int) -> UInt64 {
            var w: UInt64 = 0
            for i in 0..<n { w |= UInt64(p[i]) << (8 * UInt64(i)) }
            return w
        }

        @inline(__always)
        func matches(_ p: UnsafePointer<UInt8>, _ n: Int) -> Bool {
            let w = PackedMarkers.pack(p, n)
            return (lengths.0 == n && words.0 == w) || (lengths.1 == n && words.1 == w)
                || (lengths.2 == n && words.2 == w) || (lengths.3 == n && words.3 == w)
        }
    }

    @inline(__always)
    private func isNullMarker(_ p: UnsafePointer<UInt8>, _ n: Int) -> Bool {
        if n <= 8 && markers.count <= 4 { return packed.matches(p, n) }
        for m in markers where m.count == n {
            if n == 0 || m.withUnsafeBufferPointer({ memcmp($0.baseAddress!, p, n) == 0 }) { return true }
        }
        return false
    }
}
