/// Encodes one column of one row group into pages and writes them.
struct ColumnChunkRecord {
    var physicalType: PhysicalType
    var encodings: [Int32]
    var name: String
    var codec: Int32
    var numValues: Int64
    var totalUncompressed: Int64
    var totalCompressed: Int64
    var dataPageOffset: Int64
    var dictionaryPageOffset: Int64?
    var statistics: ChunkStatistics
}

final class ChunkEncoder {
    let options: WriterOptions
    private let compressor: ZstdCompressor?
    private var body: [UInt8] = []
    private var compressed: [UInt8] = []

    init(options: WriterOptions) throws {
        self.options = options
        if case .zstd(let level) = options.compression {
            compressor = try ZstdCompressor(level: level)
        } else {
            compressor = nil
        }
    }

    var codec: Int32 {
        compressor == nil ? Codec.uncompressed : Codec.zstd
    }

    /// The non-null values of `column`, contiguous.
    static func dense(_ column: Column) -> ColumnValues {
        guard let mask = column.validity else { return column.values }
        func gather<T>(_ v: [T]) -> [T] {
            var out = [T]()
            out.reserveCapacity(column.count - column.nullCount)
            for i in 0..<v.count where mask[i] { out.append(v[i]) }
            return out
        }
        switch column.values {
        case .int64(let v): return .int64(gather(v))
        case .int32(let v): return .int32(gather(v))
        case .double(let v): return .double(gather(v))
        case .bool(let v): return .bool(gather(v))
        case .bytes(let s):
            var out = StringColumn()
            out.reserveCapacity(values: column.count - column.nullCount, bytes: s.bytes.count)
            for i in 0..<s.count where mask[i] { out.append(bytes: s.bytes(at: i)) }
            return .bytes(out)
        }
    }

    /// Readers trust the declared precision, so an unscaled value with more
    /// digits would be misread; refuse it here (the extremes are in `stats`).
    static func checkDecimalRange(_ stats: ChunkStatistics, precision: Int, scale: Int) throws {
        var limit: Int64 = 1
        for _ in 0..<precision { limit *= 10 }
        limit -= 1
        for bytes in [stats.min, stats.max].compactMap({ $0 }) {
            var v: UInt64 = 0
            for (i, b) in bytes.enumerated() { v |= UInt64(b) << UInt64(8 * i) }
            let value = Int64(bitPattern: v)
            if value > limit || value < -limit {
                throw ColumnarError.invalidArgument(
                    "unscaled value \(value) has more than \(precision) digits for decimal(\(precision),\(scale)); widen the precision")
            }
        }
    }

    static func physicalType(_ type: ColumnType) -> PhysicalType {
        switch type.storage {
        case .int64: return .int64
        case .int32: return .int32
        case .double: return .double
        case .bool: return .boolean
        case .bytes: return .byteArray
        }
    }

    /// Row boundaries of pages so that each page's PLAIN values come to
    /// about `pageBytes`.
    func pageBounds(_ column: Column) -> [Int] {
        let n = column.count
        var bounds = [0]
        let target = max(1, options.pageBytes)
        if case .bytes(let s) = column.values {
            s.offsets.withUnsafeBufferPointer { o in
                var pageStart = 0
                for i in 0..<n where o[i + 1] - o[pageStart] + 4 * (i + 1 - pageStart) >= target {
                    bounds.append(i + 1)
                    pageStart = i + 1
                }
            }
        } else {
            let width: Int
            switch column.values {
            case .int64, .double: width = 8
            case .int32: width = 4
            default: width = 1
            }
            let rows = max(1, target / width)
            var r = rows
            while r < n {
                bounds.append(r)
                r += rows
            }
        }
        if bounds.last != n { bounds.append(n) }
        return bounds
    }

    func write(_ column: Column, field: Field, to sink: AtomicFileSink) throws -> ColumnChunkRecord {
        let dense = ChunkEncoder.dense(column)
        let nonNull = dense.count
        var dictionary: DictionaryEncoding?
        if options.dictionary && nonNull >= 2 {
            dictionary = DictionaryEncoding.build(
                dense, maxDistinct: nonNull / 2, maxBytes: options.dictionaryPageBytes)
        }
        // Statistics over the dictionary are the same and cheaper. A
        // scratch file's reader needs none, and its values were checked
        // when they were first written.
        let stats = options.scratch
            ? ChunkStatistics(min: nil, max: nil, nullCount: Int64(column.nullCount))
            : ChunkStatistics.compute(dictionary?.values ?? dense, nullCount: column.nullCount)
        if !options.scratch, case .decimal(let precision, let scale) = field.type {
            try ChunkEncoder.checkDecimalRange(stats, precision: precision, scale: scale)
        }
        var record = ColumnChunkRecord(
            physicalType: ChunkEncoder.physicalType(field.type), encodings: [],
            name: field.name, codec: codec, numValues: Int64(column.count),
            totalUncompressed: 0, totalCompressed: 0, dataPageOffset: 0,
            dictionaryPageOffset: nil, statistics: stats)

        if let dictionary {
            record.dictionaryPageOffset = sink.offset
            body.removeAll(keepingCapacity: true)
            appendPlain(dictionary.values, 0..<dictionary.count, to: &body)
            try writePage(dictionaryPage: Int32(dictionary.count), to: sink, record: &record)
            record.encodings = [Encoding.plain, Encoding.rle, Encoding.rleDictionary]
        } else {
            record.encodings = [Encoding.plain, Encoding.rle]
        }
        record.dataPageOffset = sink.offset

        let bitWidth = max(1, Hybrid.bitWidth(forMax: UInt64(max(0, (dictionary?.count ?? 1) - 1))))
        let bounds = pageBounds(column)
        var valueStart = 0
        for p in 0..<(bounds.count - 1) {
            let rows = bounds[p]..<bounds[p + 1]
            var valueCount = rows.count
            if let mask = column.validity {
                valueCount = 0
                for i in rows where mask[i] { valueCount += 1 }
            }
            let values = valueStart..<(valueStart + valueCount)
            valueStart += valueCount
            body.removeAll(keepingCapacity: true)
            if field.nullable {
                body.append(contentsOf: [0, 0, 0, 0])
                Hybrid.encodeLevels(column.validity, rows, into: &body)
                let len = UInt32(body.count - 4)
                for k in 0..<4 { body[k] = UInt8(truncatingIfNeeded: len >> UInt32(8 * k)) }
            }
            if let dictionary {
                body.append(UInt8(bitWidth))
                dictionary.indices.withUnsafeBufferPointer { idx in
                    Hybrid.encode(UnsafeBufferPointer(rebasing: idx[values]), bitWidth: bitWidth, into: &body)
                }
            } else {
                appendPlain(dense, values, to: &body)
            }
            try writePage(dataPage: Int32(rows.count),
                          encoding: dictionary == nil ? Encoding.plain : Encoding.rleDictionary,
                          to: sink, record: &record)
        }
        return record
    }

    /// PLAIN bytes of `values[range]`.
    func appendPlain(_ values: ColumnValues, _ range: Range<Int>, to out: inout [UInt8]) {
        func raw<T>(_ v: [T]) {
            v.withUnsafeBufferPointer { b in
                out.append(contentsOf: UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: b[range])))
            }
        }
        switch values {
        case .int64(let v): raw(v)
        case .int32(let v): raw(v)
        case .double(let v): raw(v)
        case .bool(let v):
            var byte: UInt8 = 0
            var bit = 0
            for i in range {
                if v[i] { byte |= 1 << UInt8(bit) }
                bit += 1
                if bit == 8 {
                    out.append(byte)
                    byte = 0
                    bit = 0
                }
            }
            if bit > 0 { out.append(byte) }
        case .bytes(let s):
            guard !range.isEmpty else { return }
            s.bytes.withUnsafeBufferPointer { b in
                s.offsets.withUnsafeBufferPointer { o in
                    let total = o[range.upperBound] - o[range.lowerBound] + 4 * range.count
                    let encoded = [UInt8](unsafeUninitializedCapacity: total) { dst, n in
                        let raw = UnsafeMutableRawPointer(dst.baseAddress!)
                        var q = 0
                        for i in range {
                            let len = o[i + 1] - o[i]
                            raw.storeBytes(of: UInt32(truncatingIfNeeded: len).littleEndian, toByteOffset: q, as: UInt32.self)
                            q += 4
                            if len > 0 {
                                (raw + q).copyMemory(from: b.baseAddress! + o[i], byteCount: len)
                                q += len
                            }
                        }
                        n = total
                    }
                    out.append(contentsOf: encoded)
                }
            }
        }
    }

    private func compressBody() throws -> Int {
        compressed.removeAll(keepingCapacity: true)
        guard let compressor else { return body.count }
        try body.withUnsafeBytes { try compressor.compress($0, appendingTo: &compressed) }
        return compressed.count
    }

    private func emit(header: [UInt8], to sink: AtomicFileSink, record: inout ColumnChunkRecord) throws {
        try sink.write(header)
        try sink.write(compressor == nil ? body : compressed)
        record.totalUncompressed += Int64(header.count + body.count)
        record.totalCompressed += Int64(header.count + (compressor == nil ? body.count : compressed.count))
    }

    private func checkedSize(_ n: Int) throws -> Int32 {
        guard let v = Int32(exactly: n) else {
            throw ColumnarError.invalidArgument("a page of \(n) bytes exceeds Parquet's 2 GiB limit")
        }
        return v
    }

    private func writePage(dictionaryPage count: Int32, to sink: AtomicFileSink, record: inout ColumnChunkRecord) throws {
        let csize = try compressBody()
        var w = CompactWriter()
        w.i32(1, PageType.dictionary)
        w.i32(2, try checkedSize(body.count))
        w.i32(3, try checkedSize(csize))
        w.structBegin(7)
        w.i32(1, count)
        w.i32(2, Encoding.plain)
        w.structEnd()
        w.stop()
        try emit(header: w.bytes, to: sink, record: &record)
    }

    private func writePage(dataPage count: Int32, encoding: Int32, to sink: AtomicFileSink, record: inout ColumnChunkRecord) throws {
        let csize = try compressBody()
        try emit(header: ChunkEncoder.dataPageHeader(
            uncompressed: try checkedSize(body.count), compressed: try checkedSize(csize),
            numValues: count, encoding: encoding), to: sink, record: &record)
    }

    static func dataPageHeader(uncompressed: Int32, compressed: Int32, numValues: Int32, encoding: Int32) -> [UInt8] {
        var w = CompactWriter()
        w.i32(1, PageType.data)
        w.i32(2, uncompressed)
        w.i32(3, compressed)
        w.structBegin(5)
        w.i32(1, numValues)
        w.i32(2, encoding)
        w.i32(3, Encoding.rle)
        w.i32(4, Encoding.rle)
        w.structEnd()
        w.stop()
        return w.bytes
    }
}
