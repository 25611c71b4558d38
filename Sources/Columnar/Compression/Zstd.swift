import CZstd

/// Turns a zstd return code into a value or a typed error.
@inline(__always)
func checkZstd(_ code: Int, _ what: String) throws -> Int {
    if ZSTD_isError(code) != 0 {
        let name = ZSTD_getErrorName(code).map { String(cString: $0) } ?? "unknown"
        throw ColumnarError.compression("zstd, \(what): \(name)")
    }
    return code
}

/// Owns one ZSTD_CCtx, reused for every page a writer compresses.
final class ZstdCompressor {
    private let context: OpaquePointer
    let level: Int32

    init(level: Int32) throws {
        guard let c = ZSTD_createCCtx() else { throw ColumnarError.compression("zstd: cannot create a compression context") }
        context = c
        self.level = level
    }

    deinit { ZSTD_freeCCtx(context) }

    /// Appends one complete frame (with content size) of `source` to `out`.
    func compress(_ source: UnsafeRawBufferPointer, appendingTo out: inout [UInt8]) throws {
        let bound = ZSTD_compressBound(source.count)
        let start = out.count
        out.reserveCapacity(start + bound)
        var written = 0
        var failure: ColumnarError?
        out.append(contentsOf: repeatElement(0, count: bound))
        out.withUnsafeMutableBytes { dst in
            let n = ZSTD_compressCCtx(context, dst.baseAddress! + start, bound, source.baseAddress, source.count, level)
            do { written = try checkZstd(n, "compressing a page") } catch { failure = error as? ColumnarError }
        }
        if let failure { throw failure }
        out.removeLast(bound - written)
    }
}

/// Owns one ZSTD_DCtx, reused for every page a reader decompresses.
final class ZstdDecompressor {
    private let context: OpaquePointer

    init() throws {
        guard let d = ZSTD_createDCtx() else { throw ColumnarError.compression("zstd: cannot create a decompression context") }
        context = d
    }

    deinit { ZSTD_freeDCtx(context) }

    /// Decompresses `source`, which must expand to exactly `size` bytes.
    func decompress(_ source: UnsafeRawBufferPointer, size: Int) throws -> [UInt8] {
        guard size >= 0 else { throw ColumnarError.corrupt("uncompressed_page_size \(size) is negative") }
        if let declared = declaredSize(source), declared != size {
            throw ColumnarError.corrupt("zstd frame holds \(declared) bytes, uncompressed_page_size says \(size)")
        }
        var failure: ColumnarError?
        let out = [UInt8](unsafeUninitializedCapacity: max(size, 1)) { buf, count in
            let n = ZSTD_decompressDCtx(context, buf.baseAddress, size, source.baseAddress, source.count)
            // A frame that does not decode is damaged data, as a SNAPPY or
            // GZIP page is: permanent, not retried. Only running out of
            // memory stays a (transient) compression error.
            if ZSTD_isError(n) != 0, ZSTD_getErrorCode(n) != ZSTD_error_memory_allocation {
                let name = ZSTD_getErrorName(n).map { String(cString: $0) } ?? "unknown"
                failure = .corrupt("zstd page is damaged (\(name))")
                count = 0
                return
            }
            do {
                let got = try checkZstd(n, "decompressing a page")
                if got != size { throw ColumnarError.corrupt("zstd page expanded to \(got) bytes, uncompressed_page_size says \(size)") }
                count = size
            } catch {
                failure = error as? ColumnarError
                count = 0
            }
        }
        if let failure { throw failure }
        return out
    }

    private func declaredSize(_ source: UnsafeRawBufferPointer) -> Int? {
        let n = ZSTD_getFrameContentSize(source.baseAddress, source.count)
        // ZSTD_CONTENTSIZE_UNKNOWN / _ERROR are the two largest values.
        if n >= UInt64.max - 1 { return nil }
        return Int(exactly: n)
    }
}
