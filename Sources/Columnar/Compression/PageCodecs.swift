import CSnappy
import CGzip

/// The codecs the reader decompresses besides ZSTD: SNAPPY (Spark's and
/// pyarrow's default) and GZIP. Each expands one page body to exactly the
/// page header's `uncompressed_page_size`; any other outcome is
/// `ColumnarError.corrupt` naming that field. Before allocating, a size more
/// than the codec could expand the stored bytes to is refused, so a damaged
/// header cannot make the reader allocate gigabytes for a small page.
enum PageCodecs {
    /// SNAPPY's densest element is a 3-byte copy of 64 bytes (21.3x); the
    /// stream starts with a varint of the length (at most 5 bytes).
    static func snappyLimit(_ compressed: Int) -> Int { compressed * 22 + 64 }

    /// Deflate expands at most 1032:1; a gzip member adds 18 bytes of
    /// header and trailer.
    static func gzipLimit(_ compressed: Int) -> Int { compressed * 1032 + 1024 }

    static func snappy(_ source: UnsafeRawBufferPointer, size: Int) throws -> [UInt8] {
        guard size >= 0 else { throw ColumnarError.corrupt("uncompressed_page_size \(size) is negative") }
        if source.isEmpty && size == 0 { return [] }
        guard let input = source.baseAddress?.assumingMemoryBound(to: CChar.self) else {
            throw ColumnarError.corrupt("SNAPPY page is empty, uncompressed_page_size says \(size)")
        }
        var declared = 0
        guard snappy_uncompressed_length(input, source.count, &declared) == SNAPPY_OK else {
            throw ColumnarError.corrupt("SNAPPY page does not start with a valid length")
        }
        guard declared == size else {
            throw ColumnarError.corrupt("SNAPPY page holds \(declared) bytes, uncompressed_page_size says \(size)")
        }
        guard size <= snappyLimit(source.count) else {
            throw ColumnarError.corrupt("uncompressed_page_size \(size) is more than SNAPPY can expand \(source.count) bytes to")
        }
        var failure: ColumnarError?
        let out = [UInt8](unsafeUninitializedCapacity: max(size, 1)) { buf, count in
            var length = size
            let status = buf.baseAddress!.withMemoryRebound(to: CChar.self, capacity: max(size, 1)) {
                snappy_uncompress(input, source.count, $0, &length)
            }
            if status != SNAPPY_OK {
                failure = .corrupt("SNAPPY data is damaged (snappy status \(status.rawValue))")
                count = 0
            } else if length != size {
                failure = .corrupt("SNAPPY page expanded to \(length) bytes, uncompressed_page_size says \(size)")
                count = 0
            } else {
                count = size
            }
        }
        if let failure { throw failure }
        return out
    }

    /// A gzip stream (RFC 1952), possibly several members one after another
    /// (some writers concatenate them); zlib-wrapped deflate is accepted too.
    static func gzip(_ source: UnsafeRawBufferPointer, size: Int) throws -> [UInt8] {
        guard size >= 0 else { throw ColumnarError.corrupt("uncompressed_page_size \(size) is negative") }
        if source.isEmpty && size == 0 { return [] }
        guard let input = source.baseAddress?.assumingMemoryBound(to: UInt8.self) else {
            throw ColumnarError.corrupt("GZIP page is empty, uncompressed_page_size says \(size)")
        }
        guard size <= gzipLimit(source.count) else {
            throw ColumnarError.corrupt("uncompressed_page_size \(size) is more than GZIP can expand \(source.count) bytes to")
        }
        guard source.count <= Int(UInt32.max) else { throw ColumnarError.corrupt("GZIP page of \(source.count) bytes") }
        var stream = z_stream()
        // 15 + 32: the largest window, gzip or zlib header detected.
        guard bis_inflate_init2(&stream, 15 + 32) == Z_OK else {
            throw ColumnarError.compression("cannot create a GZIP decompression stream")
        }
        defer { inflateEnd(&stream) }
        var failure: ColumnarError?
        // One byte more than declared: a stream that fills it is too long.
        let out = [UInt8](unsafeUninitializedCapacity: size + 1) { buf, count in
            stream.next_in = UnsafeMutablePointer(mutating: input)
            stream.avail_in = UInt32(source.count)
            stream.next_out = buf.baseAddress!
            stream.avail_out = UInt32(size + 1)
            func produced() -> Int { size + 1 - Int(stream.avail_out) }
            loop: while true {
                let status = inflate(&stream, Z_NO_FLUSH)
                switch status {
                case Z_STREAM_END:
                    if stream.avail_in == 0 { break loop }
                    // Another member follows.
                    guard inflateReset(&stream) == Z_OK else {
                        failure = .compression("cannot restart the GZIP stream")
                        break loop
                    }
                case Z_OK where stream.avail_out > 0:
                    continue
                case Z_OK, Z_BUF_ERROR:
                    if stream.avail_out == 0 {
                        failure = .corrupt("GZIP page expands past uncompressed_page_size \(size)")
                    } else {
                        failure = .corrupt("GZIP data ends after \(produced()) bytes, before the end of its stream")
                    }
                    break loop
                default:
                    let message = stream.msg.map { String(cString: $0) } ?? "zlib status \(status)"
                    failure = .corrupt("GZIP data is damaged: \(message)")
                    break loop
                }
            }
            if failure == nil && produced() != size {
                failure = .corrupt("GZIP page expanded to \(produced()) bytes, uncompressed_page_size says \(size)")
            }
            count = failure == nil ? size : 0
        }
        if let failure { throw failure }
        return out
    }
}
