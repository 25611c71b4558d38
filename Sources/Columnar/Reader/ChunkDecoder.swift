/// Values of one page (or a dictionary) as stored, before conversion.
enum StoredValues {
    case int32([Int32])
    case int64([Int64])
    case float([Float])
    case double([Double])
    case bool([Bool])
    case bytes(StringColumn)
    case fixed([UInt8], width: Int)

    var count: Int {
        switch self {
        case .int32(let v): return v.count
        case .int64(let v): return v.count
        case .float(let v): return v.count
        case .double(let v): return v.count
        case .bool(let v): return v.count
        case .bytes(let v): return v.count
        case .fixed(let v, let w): return w == 0 ? 0 : v.count / w
        }
    }
}

/// Decodes the pages of one column chunk into a Column.
struct ChunkDecoder {
    /// Pages claiming more values than this are refused before anything
    /// is allocated for them (writers use pages of at most a few million).
    static let maxPageValues: Int32 = 1 << 27

    let plan: ColumnPlan
    let meta: ColumnMetaData
    /// The reader's ZSTD context, made on first use (most readers of
    /// SNAPPY or uncompressed files, and planners, never need one).
    let decompressor: () throws -> ZstdDecompressor
    let typeLength: Int
    /// The most bytes the chunk may decode to (values as stored, strings'
    /// bytes included, and any one page as decompressed); more fails with
    /// `ColumnarError.unsupported` before the memory is allocated, so a
    /// few kilobytes of RLE runs or of a ZSTD bomb cannot claim gigabytes.
    var maxBytes: Int = .max

    /// Bytes one value takes in the column being built (strings: their
    /// offset; their bytes are counted when a dictionary expands them).
    private var valueWidth: Int {
        if case .wide = plan.conversion { return 24 }
        switch plan.type.storage {
        case .bool: return 1
        case .int32: return 4
        default: return 8
        }
    }

    private func overBudget(_ what: String) -> ColumnarError {
        .unsupported("\(what) more than \(maxBytes) bytes, the limit for one column of one row group")
    }

    func decode(_ bytes: [UInt8], rows: Int) throws -> Column {
        guard Codec.readable.contains(meta.codec) else {
            throw ColumnarError.unsupported(
                "codec \(Codec.name(meta.codec)); rewrite the file with ZSTD, SNAPPY, GZIP or no compression")
        }
        var builder = ColumnBuilder(plan.type, capacity: min(rows, 1 << 22))
        var dictionary: StoredValues?
        var pos = 0
        var seen: Int64 = 0
        var pageIndex = 0
        while seen < meta.numValues {
            let (header, body) = try nextPage(bytes, at: &pos, seen: seen, index: pageIndex)
            try withContext("page \(pageIndex)") {
                switch header.type {
                case PageType.dictionary:
                    dictionary = try dictionaryPage(header, bytes, body)
                case PageType.data:
                    seen += try dataPage(header, bytes, body, seen: seen, dictionary: dictionary, into: &builder)
                case PageType.dataV2:
                    seen += try dataPageV2(header, bytes, body, seen: seen, dictionary: dictionary, into: &builder)
                default:
                    break // index pages and unknown page types carry no values
                }
            }
            pageIndex += 1
            guard builder.strings.bytes.count <= maxBytes else { throw overBudget("the column's strings take") }
        }
        guard builder.count == rows else {
            throw ColumnarError.corrupt("column chunk holds \(builder.count) rows, row group has \(rows)")
        }
        return builder.build()
    }

    /// The header of the page at `pos` and where its body lies; moves `pos` past the page.
    private func nextPage(_ bytes: [UInt8], at pos: inout Int, seen: Int64, index: Int) throws -> (PageHeader, Range<Int>) {
        guard pos < bytes.count else {
            throw ColumnarError.corrupt("column chunk ends after \(seen) of \(meta.numValues) values")
        }
        var r = CompactReader(bytes, from: pos)
        let header = try r.pageHeader()
        pos = r.pos
        let size = Int(header.compressedSize)
        guard size >= 0 else {
            throw ColumnarError.corrupt("page \(index): compressed_page_size \(size) is negative")
        }
        guard header.uncompressedSize >= 0 else {
            throw ColumnarError.corrupt("page \(index): uncompressed_page_size \(header.uncompressedSize) is negative")
        }
        guard size <= bytes.count - pos else {
            throw ColumnarError.corrupt("page \(index) of \(size) bytes (compressed_page_size) overruns the column chunk")
        }
        let body = pos..<(pos + size)
        pos += size
        return (header, body)
    }

    private func dictionaryPage(_ header: PageHeader, _ bytes: [UInt8], _ body: Range<Int>) throws -> StoredValues {
        guard let d = header.dictionaryPage else { throw ColumnarError.corrupt("dictionary page without its header") }
        guard d.encoding == Encoding.plain || d.encoding == Encoding.plainDictionary else {
            throw ColumnarError.unsupported("dictionary page encoding \(Encoding.name(d.encoding))")
        }
        guard d.numValues >= 0, d.numValues <= ChunkDecoder.maxPageValues else {
            throw ColumnarError.corrupt("dictionary size \(d.numValues)")
        }
        let data = try decompress(bytes, body, size: Int(header.uncompressedSize))
        return try plain(data, 0, data.count, count: Int(d.numValues))
    }

    /// A page claiming more values than are left in the chunk is corrupt.
    private func checkValueCount(_ numValues: Int32, seen: Int64) throws {
        guard numValues >= 0, numValues <= ChunkDecoder.maxPageValues, Int64(numValues) <= meta.numValues - seen else {
            throw ColumnarError.corrupt("data page holds \(numValues) values, more than the chunk has left")
        }
        let (bytes, o) = (seen + Int64(numValues)).multipliedReportingOverflow(by: Int64(valueWidth))
        guard !o, bytes <= Int64(maxBytes) else {
            throw overBudget("\(seen + Int64(numValues)) values take")
        }
    }

    /// A v1 data page: levels and values compressed together. Returns its value count.
    private func dataPage(_ header: PageHeader, _ bytes: [UInt8], _ body: Range<Int>, seen: Int64,
                          dictionary: StoredValues?, into builder: inout ColumnBuilder) throws -> Int64 {
        guard let d = header.dataPage else { throw ColumnarError.corrupt("data page without its header") }
        try checkValueCount(d.numValues, seen: seen)
        let data = try decompress(bytes, body, size: Int(header.uncompressedSize))
        var start = 0
        var levels: [UInt8]?
        if plan.nullable {
            guard d.definitionLevelEncoding == Encoding.rle else {
                throw ColumnarError.unsupported("definition levels encoded as \(Encoding.name(d.definitionLevelEncoding))")
            }
            guard data.count >= 4 else { throw ColumnarError.corrupt("definition levels length missing") }
            let len = Int(ValueDecoding.readUInt32(data, 0))
            guard len <= data.count - 4 else { throw ColumnarError.corrupt("definition levels overrun the page") }
            levels = try decodeLevels(data, 4, 4 + len, count: Int(d.numValues))
            start = 4 + len
        }
        try decodeValues(d.encoding, data, start, data.count, levels: levels,
                         count: Int(d.numValues), dictionary: dictionary, into: &builder)
        return Int64(d.numValues)
    }

    /// A v2 data page: levels stored uncompressed before the values, which
    /// may be compressed. Returns its value count.
    private func dataPageV2(_ header: PageHeader, _ bytes: [UInt8], _ body: Range<Int>, seen: Int64,
                            dictionary: StoredValues?, into builder: inout ColumnBuilder) throws -> Int64 {
        guard let d = header.dataPageV2 else { throw ColumnarError.corrupt("v2 data page without its header") }
        try checkValueCount(d.numValues, seen: seen)
        // Only flat columns get here (the schema was checked): their
        // repetition levels are all 0 and carry nothing, but some writers
        // still store them (parquet-testing's rle_boolean_encoding.parquet).
        // They are skipped, as pyarrow does.
        let repLen = Int(d.repetitionLevelsByteLength), defLen = Int(d.definitionLevelsByteLength)
        guard repLen >= 0, defLen >= 0, repLen <= body.count - defLen, Int(header.uncompressedSize) >= repLen + defLen else {
            throw ColumnarError.corrupt("v2 page: repetition_levels_byte_length \(repLen) and definition_levels_byte_length "
                + "\(defLen) exceed the page (\(body.count) bytes stored, uncompressed_page_size \(header.uncompressedSize))")
        }
        let defStart = body.lowerBound + repLen
        var levels: [UInt8]?
        if plan.nullable {
            levels = try decodeLevels(bytes, defStart, defStart + defLen, count: Int(d.numValues))
        } else if defLen != 0 {
            throw ColumnarError.corrupt("definition levels in a REQUIRED column")
        }
        let valuesRange = (defStart + defLen)..<body.upperBound
        let valueSize = Int(header.uncompressedSize) - repLen - defLen
        let data: [UInt8]
        if d.isCompressed && meta.codec != Codec.uncompressed {
            data = try decompress(bytes, valuesRange, size: valueSize)
        } else {
            guard valueSize == valuesRange.count else {
                throw ColumnarError.corrupt("uncompressed v2 page: uncompressed_page_size \(header.uncompressedSize) leaves "
                    + "\(valueSize) bytes for values, \(valuesRange.count) are stored")
            }
            data = Array(bytes[valuesRange])
        }
        try decodeValues(d.encoding, data, 0, data.count, levels: levels,
                         count: Int(d.numValues), dictionary: dictionary, into: &builder)
        return Int64(d.numValues)
    }

    private func decompress(_ bytes: [UInt8], _ range: Range<Int>, size: Int) throws -> [UInt8] {
        guard size <= maxBytes else { throw overBudget("the page decompresses to") }
        if meta.codec == Codec.uncompressed {
            guard size == range.count else {
                throw ColumnarError.corrupt("uncompressed page sizes differ: uncompressed_page_size \(size), \(range.count) bytes stored")
            }
            return Array(bytes[range])
        }
        return try bytes.withUnsafeBytes { raw in
            let source = UnsafeRawBufferPointer(rebasing: raw[range])
            switch meta.codec {
            case Codec.snappy: return try PageCodecs.snappy(source, size: size)
            case Codec.gzip: return try PageCodecs.gzip(source, size: size)
            default: return try decompressor().decompress(source, size: size)
            }
        }
    }

    private func decodeLevels(_ data: [UInt8], _ start: Int, _ end: Int, count: Int) throws -> [UInt8] {
        let (v, _) = try Hybrid.decode(data, start, end, bitWidth: 1, count: count)
        return v.map { UInt8(truncatingIfNeeded: $0) }
    }

    private func plain(_ data: [UInt8], _ start: Int, _ end: Int, count: Int) throws -> StoredValues {
        switch plan.physical {
        case .boolean: return .bool(try ValueDecoding.plainBool(data, start, end, count: count))
        case .int32: return .int32(try ValueDecoding.plainFixed(data, start, end, count: count, as: Int32.self))
        case .int64: return .int64(try ValueDecoding.plainFixed(data, start, end, count: count, as: Int64.self))
        case .float: return .float(try ValueDecoding.plainFixed(data, start, end, count: count, as: Float.self))
        case .double: return .double(try ValueDecoding.plainFixed(data, start, end, count: count, as: Double.self))
        case .byteArray: return .bytes(try ValueDecoding.plainBytes(data, start, end, count: count).0)
        case .fixedLenByteArray:
            return .fixed(try ValueDecoding.plainFixedBytes(data, start, end, count: count, width: typeLength), width: typeLength)
        case .int96:
            // Only wide plans (`ParquetSourceReader`) reach here: 12 bytes a value.
            return .fixed(try ValueDecoding.plainFixedBytes(data, start, end, count: count, width: 12), width: 12)
        }
    }

    private func decodeValues(
        _ encoding: Int32, _ data: [UInt8], _ start: Int, _ end: Int, levels: [UInt8]?,
        count: Int, dictionary: StoredValues?, into builder: inout ColumnBuilder
    ) throws {
        var n = count
        if let levels {
            n = 0
            for l in levels where l != 0 {
                guard l == 1 else { throw ColumnarError.corrupt("definition level \(l) above 1") }
                n += 1
            }
        }
        let values: StoredValues
        switch encoding {
        case Encoding.plain:
            values = try plain(data, start, end, count: n)
        case Encoding.plainDictionary, Encoding.rleDictionary:
            guard let dictionary else { throw ColumnarError.corrupt("dictionary-encoded page without a dictionary page") }
            var indices: [UInt32] = []
            if n > 0 {
                guard start < end else { throw ColumnarError.corrupt("dictionary indices missing") }
                let width = Int(data[start])
                indices = try Hybrid.decode(data, start + 1, end, bitWidth: width, count: n).values
            }
            values = try gather(dictionary, indices)
        case Encoding.rle where plan.physical == .boolean:
            values = .bool(try ValueDecoding.rleBool(data, start, end, count: n))
        case Encoding.deltaBinaryPacked where plan.physical == .int32:
            let v = try ValueDecoding.deltaBinaryPacked(data, start, end, count: n).values
            values = .int32(v.map { Int32(truncatingIfNeeded: $0) })
        case Encoding.deltaBinaryPacked where plan.physical == .int64:
            values = .int64(try ValueDecoding.deltaBinaryPacked(data, start, end, count: n).values)
        case Encoding.deltaLengthByteArray where plan.physical == .byteArray:
            values = .bytes(try ValueDecoding.deltaLengthByteArray(data, start, end, count: n).0)
        case Encoding.deltaByteArray where plan.physical == .byteArray:
            values = .bytes(try ValueDecoding.deltaByteArray(data, start, end, count: n).0)
        case Encoding.deltaByteArray where plan.physical == .fixedLenByteArray:
            let s = try ValueDecoding.deltaByteArray(data, start, end, count: n).0
            guard s.bytes.count == n * typeLength else { throw ColumnarError.corrupt("DELTA_BYTE_ARRAY value lengths differ from the fixed length") }
            values = .fixed(s.bytes, width: typeLength)
        case Encoding.byteStreamSplit:
            let width: Int
            switch plan.physical {
            case .int32, .float: width = 4
            case .int64, .double: width = 8
            case .fixedLenByteArray: width = typeLength
            default: throw ColumnarError.unsupported("BYTE_STREAM_SPLIT for \(plan.physical.name)")
            }
            let raw = try ValueDecoding.byteStreamSplit(data, start, end, count: n, width: width)
            switch plan.physical {
            case .int32: values = .int32(try ValueDecoding.plainFixed(raw, 0, raw.count, count: n, as: Int32.self))
            case .int64: values = .int64(try ValueDecoding.plainFixed(raw, 0, raw.count, count: n, as: Int64.self))
            case .float: values = .float(try ValueDecoding.plainFixed(raw, 0, raw.count, count: n, as: Float.self))
            case .double: values = .double(try ValueDecoding.plainFixed(raw, 0, raw.count, count: n, as: Double.self))
            default: values = .fixed(raw, width: width)
            }
        default:
            throw ColumnarError.unsupported("encoding \(Encoding.name(encoding)) for \(plan.physical.name)")
        }
        guard values.count == n else {
            throw ColumnarError.corrupt("decoded \(values.count) values, expected \(n)")
        }
        try append(values, levels: levels, into: &builder)
    }

    private func gather(_ dictionary: StoredValues, _ indices: [UInt32]) throws -> StoredValues {
        let size = dictionary.count
        for i in indices where Int(i) >= size {
            throw ColumnarError.corrupt("dictionary index \(i) outside a dictionary of \(size)")
        }
        func pick<T>(_ d: [T]) -> [T] {
            d.withUnsafeBufferPointer { b in indices.map { b[Int($0)] } }
        }
        switch dictionary {
        case .int32(let d): return .int32(pick(d))
        case .int64(let d): return .int64(pick(d))
        case .float(let d): return .float(pick(d))
        case .double(let d): return .double(pick(d))
        case .bool(let d): return .bool(pick(d))
        case .bytes(let d):
            var total = 0
            d.offsets.withUnsafeBufferPointer { o in
                for i in indices { total += o[Int(i) + 1] - o[Int(i)] }
            }
            guard total <= maxBytes else { throw overBudget("the page's strings, from the dictionary, take") }
            return .bytes(ChunkDecoder.gatherBytes(d, indices))
        case .fixed(let d, let w):
            var out = [UInt8]()
            out.reserveCapacity(indices.count * w)
            for i in indices { out.append(contentsOf: d[(Int(i) * w)..<(Int(i) * w + w)]) }
            return .fixed(out, width: w)
        }
    }

    /// Dictionary strings by index, copied with one pass for offsets and one
    /// for bytes.
    static func gatherBytes(_ d: StringColumn, _ indices: [UInt32]) -> StringColumn {
        d.offsets.withUnsafeBufferPointer { o in
            var offsets = [Int]()
            offsets.reserveCapacity(indices.count + 1)
            offsets.append(0)
            var total = 0
            for i in indices {
                let k = Int(i)
                total += o[k + 1] - o[k]
                offsets.append(total)
            }
            let bytes = [UInt8](unsafeUninitializedCapacity: total) { out, n in
                d.bytes.withUnsafeBufferPointer { src in
                    var q = 0
                    for i in indices {
                        let k = Int(i)
                        let len = o[k + 1] - o[k]
                        if len > 0 {
                            (out.baseAddress! + q).update(from: src.baseAddress! + o[k], count: len)
                        }
                        q += len
                    }
                }
                n = total
            }
            return StringColumn(unchecked: offsets, bytes: bytes)
        }
    }

    /// Converts stored values to the column's storage and appends them.
    private func append(_ values: StoredValues, levels: [UInt8]?, into b: inout ColumnBuilder) throws {
        if case .wide(let kind) = plan.conversion {
            try b.appendDense(bytes: try WideValues.pack(values, kind), levels: levels)
            return
        }
        switch (plan.type.storage, values) {
        case (.int64, .int64(let v)):
            if case .millisToMicros = plan.conversion {
                var out = [Int64]()
                out.reserveCapacity(v.count)
                for x in v {
                    let (m, o) = x.multipliedReportingOverflow(by: 1000)
                    guard !o else { throw ColumnarError.unsupported("timestamp \(x) ms is out of the microsecond range") }
                    out.append(m)
                }
                try b.appendDense(int64: out, levels: levels)
            } else {
                try b.appendDense(int64: v, levels: levels)
            }
        case (.int64, .int32(let v)):
            try b.appendDense(int64: v.map { Int64($0) }, levels: levels)
        case (.int64, .fixed(let bytes, let w)):
            var out = [Int64]()
            out.reserveCapacity(bytes.count / max(w, 1))
            var i = 0
            while i < bytes.count {
                out.append(try ColumnPlan.decimalFromBigEndian(bytes[i..<(i + w)]))
                i += w
            }
            try b.appendDense(int64: out, levels: levels)
        case (.int32, .int32(let v)):
            try b.appendDense(int32: v, levels: levels)
        case (.double, .double(let v)):
            try b.appendDense(double: v, levels: levels)
        case (.double, .float(let v)):
            try b.appendDense(double: v.map { Double($0) }, levels: levels)
        case (.bool, .bool(let v)):
            try b.appendDense(bool: v, levels: levels)
        case (.bytes, .bytes(let v)):
            try b.appendDense(bytes: v, levels: levels)
        default:
            throw ColumnarError.corrupt("stored values do not match the column type \(plan.type)")
        }
    }
}
