/// Splits CSV records into fields, RFC 4180 style, over a byte buffer.
///
/// Record ends follow one rule, shared with `planShards`: every quote byte
/// toggles "inside quotes", and a line feed outside quotes ends the record.
/// Well-formed input reads exactly as RFC 4180 says (doubled quotes toggle
/// twice); malformed input (a stray quote in an unquoted field, text after
/// a closing quote) still ends where the rule says, so a shard boundary
/// planned by counting quotes is always a record start the parser agrees on.
struct CSVScanner {
    enum Syntax: Equatable {
        /// The file ends inside quotes.
        case unterminatedQuote
        /// A byte other than delimiter or line break after a closing quote.
        case afterClosingQuote(field: Int, byte: UInt8)
        /// A quote inside a field that did not start with one.
        case strayQuote(field: Int)
    }

    struct Record {
        /// Buffer index just past the record's line break (or the data end).
        var next = 0
        /// Buffer index where the record's text ends, before CR LF / LF.
        var contentEnd = 0
        /// Fields found (may exceed the stored capacity).
        var fields = 0
        /// Line feeds inside the record, its terminator included.
        var newlines = 0
        var syntax: Syntax?
        /// More bytes are needed to finish the record.
        var incomplete = false

        /// The record, ended with `fields` fields, its text up to `contentEnd`.
        @inline(__always)
        func ended(fields: Int, contentEnd: Int, next: Int) -> Record {
            var r = self
            r.fields = fields
            r.contentEnd = contentEnd
            r.next = next
            return r
        }
    }

    static let quotedFlag: UInt8 = 1
    static let escapedFlag: UInt8 = 2

    let delimiter: UInt8
    let quote: UInt8
    let capacity: Int
    let quoteWord: UInt64
    let delimiterWord: UInt64
    let starts: UnsafeMutablePointer<Int>
    let ends: UnsafeMutablePointer<Int>
    let flags: UnsafeMutablePointer<UInt8>
    /// 1 for the delimiter, line feed and quote: the bytes that stop an unquoted field.
    let special: UnsafeMutablePointer<UInt8>

    init(delimiter: UInt8, quote: UInt8, capacity: Int) {
        self.delimiter = delimiter
        self.quote = quote
        self.capacity = max(1, capacity)
        quoteWord = UInt64(quote) &* 0x0101_0101_0101_0101
        delimiterWord = UInt64(delimiter) &* 0x0101_0101_0101_0101
        starts = .allocate(capacity: self.capacity)
        ends = .allocate(capacity: self.capacity)
        flags = .allocate(capacity: self.capacity)
        special = .allocate(capacity: 256)
        special.initialize(repeating: 0, count: 256)
        special[Int(delimiter)] = 1
        special[Int(quote)] = 1
        special[10] = 1
    }

    func deallocate() {
        starts.deallocate()
        ends.deallocate()
        flags.deallocate()
        special.deallocate()
    }

    @inline(__always)
    private func store(_ k: Int, _ s: Int, _ e: Int, _ f: UInt8) {
        if k < capacity {
            starts[k] = s
            ends[k] = e
            flags[k] = f
        }
    }

    /// Scans the record starting at `from`. `end` is the number of valid
    /// bytes; `eof` says whether more can come. Field by field: a quoted
    /// field runs to its closing quote, an unquoted one to the next special
    /// byte; a delimiter after either starts the next field, anything else
    /// ends the record (or is a syntax error).
    @inline(__always)
    func scan(_ b: UnsafePointer<UInt8>, from: Int, end: Int, eof: Bool) -> Record {
        var r = Record()
        var i = from
        var k = 0
        while true {
            if i < end && b[i] == quote {
                let start = i + 1
                var f = CSVScanner.quotedFlag
                guard let j = closingQuote(b, from: start, end: end, eof: eof, flags: &f, newlines: &r.newlines) else {
                    r.incomplete = true
                    return r
                }
                if j >= end {
                    // The data ends inside the quotes.
                    store(k, start, end, f)
                    r.syntax = .unterminatedQuote
                    return r.ended(fields: k + 1, contentEnd: end, next: end)
                }
                store(k, start, j, f)
                k += 1
                i = j + 1
                if i < end && b[i] == delimiter {
                    i += 1
                    continue
                }
                return endAfterQuotedField(b, &r, at: i, end: end, eof: eof, fields: k)
            }
            let start = i
            i = unquotedFieldEnd(b, from: i, end: end)
            if i < end && b[i] == delimiter {
                store(k, start, i, 0)
                k += 1
                i += 1
                continue
            }
            return endAfterUnquotedField(b, &r, start: start, at: i, end: end, eof: eof, field: k)
        }
    }

    /// The index of the quote closing the quoted field whose text starts at
    /// `start` (doubled quotes inside are skipped and flagged `escapedFlag`),
    /// counting line feeds; `end` when the data ends inside the quotes; nil
    /// when more bytes must come first.
    @inline(__always)
    private func closingQuote(_ b: UnsafePointer<UInt8>, from start: Int, end: Int, eof: Bool,
                              flags f: inout UInt8, newlines: inout Int) -> Int? {
        var j = start
        while true {
            // Eight bytes at a time to the next quote, counting line feeds.
            while j + 8 <= end {
                let w = UnsafeRawPointer(b + j).loadUnaligned(as: UInt64.self)
                let mq = zeroBytes(w ^ quoteWord)
                let ml = zeroBytes(w ^ 0x0A0A_0A0A_0A0A_0A0A)
                if mq != 0 {
                    let tz = mq.trailingZeroBitCount
                    newlines += (ml & ((1 << UInt64(tz)) - 1)).nonzeroBitCount
                    j += tz >> 3
                    break
                }
                newlines += ml.nonzeroBitCount
                j += 8
            }
            while j < end && b[j] != quote {
                if b[j] == 10 { newlines += 1 }
                j += 1
            }
            if j >= end { return eof ? end : nil }
            if j + 1 >= end && !eof { return nil }
            if j + 1 < end && b[j + 1] == quote {
                f |= CSVScanner.escapedFlag
                j += 2
                continue
            }
            return j
        }
    }

    /// The index of the delimiter, line feed or quote that ends the unquoted
    /// field starting at `start`, or `end`.
    @inline(__always)
    private func unquotedFieldEnd(_ b: UnsafePointer<UInt8>, from start: Int, end: Int) -> Int {
        var i = start
        // Eight bytes at a time to the next delimiter, line feed or quote.
        while i + 8 <= end {
            let w = UnsafeRawPointer(b + i).loadUnaligned(as: UInt64.self)
            let m = zeroBytes(w ^ delimiterWord) | zeroBytes(w ^ 0x0A0A_0A0A_0A0A_0A0A) | zeroBytes(w ^ quoteWord)
            if m != 0 {
                i += m.trailingZeroBitCount >> 3
                break
            }
            i += 8
        }
        while i < end && special[Int(b[i])] == 0 { i += 1 }
        return i
    }

    /// After a closing quote at `at - 1`, not followed by a delimiter: the
    /// data's end, LF or CR LF end the record; anything else is a syntax error.
    @inline(__always)
    private func endAfterQuotedField(_ b: UnsafePointer<UInt8>, _ r: inout Record, at i: Int, end: Int, eof: Bool,
                                     fields k: Int) -> Record {
        if i >= end { return r.ended(fields: k, contentEnd: end, next: end) }
        let c = b[i]
        if c == 10 {
            r.newlines += 1
            return r.ended(fields: k, contentEnd: i, next: i + 1)
        }
        if c == 13 {
            if i + 1 >= end && !eof { r.incomplete = true; return r }
            if i + 1 >= end { return r.ended(fields: k, contentEnd: i, next: end) }
            if b[i + 1] == 10 {
                r.newlines += 1
                return r.ended(fields: k, contentEnd: i, next: i + 2)
            }
        }
        r.syntax = .afterClosingQuote(field: k, byte: c)
        return recover(b, &r, at: i, end: end, eof: eof, fields: k)
    }

    /// Field `k`, unquoted from `start`, stopped at `at` by something other
    /// than a delimiter: the data's end or a line feed ends the record (a CR
    /// before either is not content); a quote is a syntax error.
    @inline(__always)
    private func endAfterUnquotedField(_ b: UnsafePointer<UInt8>, _ r: inout Record, start: Int, at i: Int, end: Int,
                                       eof: Bool, field k: Int) -> Record {
        if i >= end {
            if !eof { r.incomplete = true; return r }
            var e = end
            if e > start && b[e - 1] == 13 { e -= 1 }
            store(k, start, e, 0)
            return r.ended(fields: k + 1, contentEnd: e, next: end)
        }
        if b[i] == 10 {
            var e = i
            if e > start && b[e - 1] == 13 { e -= 1 }
            store(k, start, e, 0)
            r.newlines += 1
            return r.ended(fields: k + 1, contentEnd: e, next: i + 1)
        }
        // A quote inside an unquoted field.
        r.syntax = .strayQuote(field: k + 1)
        return recover(b, &r, at: i, end: end, eof: eof, fields: k + 1)
    }

    /// After a syntax error: find the record's end by the toggle rule,
    /// starting outside quotes at `at`.
    private func recover(_ b: UnsafePointer<UInt8>, _ r: inout Record, at: Int, end: Int, eof: Bool, fields: Int) -> Record {
        var inQuote = false
        var i = at
        while i < end {
            let c = b[i]
            if c == quote {
                inQuote.toggle()
            } else if c == 10 {
                r.newlines += 1
                if !inQuote {
                    r.fields = fields
                    r.contentEnd = i > at && b[i - 1] == 13 ? i - 1 : i
                    r.next = i + 1
                    return r
                }
            }
            i += 1
        }
        if !eof {
            r.incomplete = true
            return r
        }
        r.fields = fields
        r.contentEnd = end
        r.next = end
        return r
    }
}
