#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Columnar

/// Splits `path` into shards of about `shardSize` bytes whose ranges start
/// exactly at record starts, so that every record belongs to exactly one shard.
///
/// The rule: a shard owns the records that start inside its byte range. For
/// CSV a line feed inside quotes is not a record end, so "skip to the next
/// newline" would cut quoted fields. Instead the planner makes one sequential
/// pass over `[0, size)` counting quote bytes and line feeds (a branch-free
/// loop, far cheaper than parsing): at each target offset `k * shardSize` the
/// quote parity says whether it lies inside quotes, and from there it walks
/// forward, toggling at quotes, to the first line feed outside quotes; the
/// byte after it starts the next shard. This is the same toggle rule the CSV
/// scanner uses to end records (also for malformed quoting), so boundaries
/// and parser always agree. JSON Lines has no multi-line records: the
/// boundary is the byte after the next line feed. Each shard also gets the
/// physical line number it starts on, for quarantine reasons.
///
/// With a header, the header stays in the first shard; every shard reads it
/// again from the file start. `size` is the file's size (bytes past it are
/// not read). Shards are never empty; a file of at most `shardSize` bytes,
/// or an empty one, is one shard.
public func planShards(path: String, size: Int64, shardSize: Int64, source: IngestSource) throws -> [Shard] {
    guard shardSize > 0 else {
        throw IngestError.invalidSource(file: path, message: "the shard size must be positive, got \(shardSize)")
    }
    if source.format == .parquet { return try planParquetShards(path: path, source: source) }
    guard size > shardSize else { return [Shard(path: path, byteRange: 0..<max(0, size), firstLine: 1)] }
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { throw IngestError.io(file: path, message: "cannot open for reading", errno: errno) }
    defer { close(fd) }
    let blockBytes = 8 << 20
    let buffer = UnsafeMutablePointer<UInt8>.allocate(capacity: blockBytes)
    defer { buffer.deallocate() }
    let trackQuotes = source.format == .csv
    let quote = source.quote

    var shards = [Shard]()
    var shardStart: Int64 = 0
    var shardLine: Int64 = 1
    var nextTarget = shardSize
    // State at file offset `offset`: quote parity and line feeds before it.
    var offset: Int64 = 0
    var inQuote = false
    var lines: Int64 = 1
    /// Seeking: after a target, looking for the first line feed outside quotes.
    var seeking = false

    while offset < size {
        let want = Int(min(Int64(blockBytes), size - offset))
        let n = pread(fd, buffer, want, off_t(offset))
        if n < 0 {
            if errno == EINTR { continue }
            throw IngestError.io(file: path, message: "cannot read at byte \(offset)", errno: errno)
        }
        if n == 0 { break }
        var i = 0
        while i < n {
            if !seeking {
                // Count up to the next target (or the block end) without branches.
                let stop = Int(min(Int64(n), Int64(i) + nextTarget - offset))
                var quotes = 0
                var feeds = 0
                let b = buffer
                var k = i
                // Eight bytes at a time: a high bit marks each byte equal to
                // the quote (or line feed), and popcount counts them.
                let qs = UInt64(quote) &* 0x0101_0101_0101_0101
                let ls: UInt64 = 0x0A0A_0A0A_0A0A_0A0A
                while k + 8 <= stop {
                    let w = UnsafeRawPointer(b + k).loadUnaligned(as: UInt64.self)
                    quotes &+= zeroBytes(w ^ qs).nonzeroBitCount
                    feeds &+= zeroBytes(w ^ ls).nonzeroBitCount
                    k += 8
                }
                while k < stop {
                    let c = b[k]
                    quotes &+= c == quote ? 1 : 0
                    feeds &+= c == 10 ? 1 : 0
                    k += 1
                }
                if trackQuotes && quotes & 1 == 1 { inQuote.toggle() }
                lines += Int64(feeds)
                offset += Int64(stop - i)
                i = stop
                if offset == nextTarget { seeking = true }
                continue
            }
            // Walk to the first line feed outside quotes.
            let c = buffer[i]
            i += 1
            offset += 1
            if trackQuotes && c == quote {
                inQuote.toggle()
            } else if c == 10 {
                lines += 1
                if !inQuote {
                    seeking = false
                    if offset < size {
                        shards.append(Shard(path: path, byteRange: shardStart..<offset, firstLine: shardLine))
                        shardStart = offset
                        shardLine = lines
                    }
                    // The next target lies past this boundary.
                    nextTarget = max(offset, (offset / shardSize + 1) * shardSize)
                    if (offset % shardSize) == 0 { nextTarget = offset + shardSize }
                    nextTarget = min(nextTarget, Int64.max)
                }
            }
        }
    }
    shards.append(Shard(path: path, byteRange: shardStart..<size, firstLine: shardLine))
    return shards
}

/// A Parquet file's shards: one per row group, each with the 1-based file
/// row number its first row has as `firstLine`; a file without row groups
/// is one (empty) shard. Only the footer is read. With `source`, its
/// declared columns are checked against the file's first, so a missing,
/// extra, unsupported or unconvertible column, or a declared column whose
/// chunks use a codec the reader lacks (LZ4, BROTLI, LZO) or another
/// physical type than the schema's, is refused when the run is planned
/// rather than in every shard.
public func planParquetShards(path: String, source: IngestSource? = nil) throws -> [Shard] {
    let reader = try ParquetIngest.open(path)
    if let source {
        // Codecs and physical types are in the footer: a chunk no shard could read fails the plan, not every task.
        for i in try ParquetIngest.columns(reader, source: source, file: path).compactMap({ $0 }) {
            try reader.checkChunks(field: i)
        }
    }
    guard !reader.rowGroupRows.isEmpty else { return [Shard(path: path)] }
    var first: Int64 = 1
    var shards = [Shard]()
    for (g, rows) in reader.rowGroupRows.enumerated() {
        shards.append(Shard(path: path, firstLine: first, rowGroup: g))
        first += rows
    }
    return shards
}

/// 0x80 in each byte of `t` that is zero, 0 elsewhere (exact, no carries across bytes).
@inline(__always)
func zeroBytes(_ t: UInt64) -> UInt64 {
    let low: UInt64 = 0x7F7F_7F7F_7F7F_7F7F
    return ~(((t & low) &+ low) | t | low)
}
