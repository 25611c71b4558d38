import CRabbitMQ

/// Owns the C memory behind `amqp_table_t`s and `amqp_bytes_t`s handed to
/// rabbitmq-c (which keeps pointers, never copies). Everything is freed when
/// the arena goes away, so an arena lives exactly as long as one call.
final class CArena {
    private var allocations: [UnsafeMutableRawPointer] = []

    deinit {
        for p in allocations { p.deallocate() }
    }

    func bytes(_ string: String) -> amqp_bytes_t {
        bytes(Array(string.utf8))
    }

    func bytes(_ array: [UInt8]) -> amqp_bytes_t {
        if array.isEmpty { return amqp_bytes_t(len: 0, bytes: nil) }
        let p = UnsafeMutableRawPointer.allocate(byteCount: array.count, alignment: 1)
        allocations.append(p)
        array.withUnsafeBytes { p.copyMemory(from: $0.baseAddress!, byteCount: array.count) }
        return amqp_bytes_t(len: array.count, bytes: p)
    }

    /// A NUL-terminated C string owned by the arena.
    func cString(_ string: String) -> UnsafePointer<CChar> {
        let utf8 = Array(string.utf8CString)
        let p = UnsafeMutablePointer<CChar>.allocate(capacity: utf8.count)
        allocations.append(UnsafeMutableRawPointer(p))
        p.initialize(from: utf8, count: utf8.count)
        return UnsafePointer(p)
    }

    func table(_ entries: [(String, HeaderValue)]) -> amqp_table_t {
        rawTable(entries.map { ($0.0, field($0.1)) })
    }

    func rawTable(_ entries: [(String, amqp_field_value_t)]) -> amqp_table_t {
        if entries.isEmpty { return amqp_table_t(num_entries: 0, entries: nil) }
        let p = UnsafeMutablePointer<amqp_table_entry_t>.allocate(capacity: entries.count)
        allocations.append(UnsafeMutableRawPointer(p))
        for (i, (key, value)) in entries.enumerated() {
            (p + i).initialize(to: amqp_table_entry_t(key: bytes(key), value: value))
        }
        return amqp_table_t(num_entries: Int32(entries.count), entries: p)
    }

    func tableField(_ table: amqp_table_t) -> amqp_field_value_t {
        var v = amqp_field_value_t()
        v.kind = UInt8(AMQP_FIELD_KIND_TABLE.rawValue)
        v.value.table = table
        return v
    }

    func field(_ value: HeaderValue) -> amqp_field_value_t {
        var v = amqp_field_value_t()
        switch value {
        case let .string(s):
            v.kind = UInt8(AMQP_FIELD_KIND_UTF8.rawValue)
            v.value.bytes = bytes(s)
        case let .int(i):
            v.kind = UInt8(AMQP_FIELD_KIND_I64.rawValue)
            v.value.i64 = i
        case let .bool(b):
            v.kind = UInt8(AMQP_FIELD_KIND_BOOLEAN.rawValue)
            v.value.boolean = b ? 1 : 0
        case let .double(d):
            v.kind = UInt8(AMQP_FIELD_KIND_F64.rawValue)
            v.value.f64 = d
        case let .bytes(b):
            v.kind = UInt8(AMQP_FIELD_KIND_BYTES.rawValue)
            v.value.bytes = bytes(b)
        }
        return v
    }

    /// rabbitmq-c properties for an outgoing message.
    func properties(_ message: OutgoingMessage, extraHeaders: [(String, HeaderValue)]) -> amqp_basic_properties_t {
        var p = amqp_basic_properties_t()
        var flags: UInt32 = 0
        if message.persistent {
            flags |= UInt32(AMQP_BASIC_DELIVERY_MODE_FLAG)
            p.delivery_mode = 2
        }
        if let v = message.contentType {
            flags |= UInt32(AMQP_BASIC_CONTENT_TYPE_FLAG)
            p.content_type = bytes(v)
        }
        if let v = message.messageID {
            flags |= UInt32(AMQP_BASIC_MESSAGE_ID_FLAG)
            p.message_id = bytes(v)
        }
        if let v = message.correlationID {
            flags |= UInt32(AMQP_BASIC_CORRELATION_ID_FLAG)
            p.correlation_id = bytes(v)
        }
        if let v = message.expirationMilliseconds {
            flags |= UInt32(AMQP_BASIC_EXPIRATION_FLAG)
            p.expiration = bytes(String(v))
        }
        let headers = message.headers.sorted { $0.key < $1.key }.map { ($0.key, $0.value) } + extraHeaders
        if !headers.isEmpty {
            flags |= UInt32(AMQP_BASIC_HEADERS_FLAG)
            p.headers = table(headers)
        }
        p._flags = flags
        return p
    }
}

/// Copies a received table into Swift values. Kinds we do not model
/// (arrays, nested tables, decimals) are left out.
func decodeTable(_ table: amqp_table_t) -> [String: HeaderValue] {
    var out: [String: HeaderValue] = [:]
    guard table.num_entries > 0, let entries = table.entries else { return out }
    for i in 0..<Int(table.num_entries) {
        let e = entries[i]
        if let v = decodeField(e.value) { out[e.key.string] = v }
    }
    return out
}

func decodeField(_ f: amqp_field_value_t) -> HeaderValue? {
    switch UInt32(f.kind) {
    case AMQP_FIELD_KIND_UTF8.rawValue: return .string(f.value.bytes.string)
    case AMQP_FIELD_KIND_BYTES.rawValue: return .bytes(f.value.bytes.array)
    case AMQP_FIELD_KIND_BOOLEAN.rawValue: return .bool(f.value.boolean != 0)
    case AMQP_FIELD_KIND_I8.rawValue: return .int(Int64(f.value.i8))
    case AMQP_FIELD_KIND_U8.rawValue: return .int(Int64(f.value.u8))
    case AMQP_FIELD_KIND_I16.rawValue: return .int(Int64(f.value.i16))
    case AMQP_FIELD_KIND_U16.rawValue: return .int(Int64(f.value.u16))
    case AMQP_FIELD_KIND_I32.rawValue: return .int(Int64(f.value.i32))
    case AMQP_FIELD_KIND_U32.rawValue: return .int(Int64(f.value.u32))
    case AMQP_FIELD_KIND_I64.rawValue: return .int(f.value.i64)
    case AMQP_FIELD_KIND_U64.rawValue, AMQP_FIELD_KIND_TIMESTAMP.rawValue:
        return .int(Int64(truncatingIfNeeded: f.value.u64))
    case AMQP_FIELD_KIND_F32.rawValue: return .double(Double(f.value.f32))
    case AMQP_FIELD_KIND_F64.rawValue: return .double(f.value.f64)
    default: return nil
    }
}

func decodeProperties(_ p: amqp_basic_properties_t) -> MessageProperties {
    var m = MessageProperties()
    let flags = p._flags
    if flags & UInt32(AMQP_BASIC_CONTENT_TYPE_FLAG) != 0 { m.contentType = p.content_type.string }
    if flags & UInt32(AMQP_BASIC_MESSAGE_ID_FLAG) != 0 { m.messageID = p.message_id.string }
    if flags & UInt32(AMQP_BASIC_CORRELATION_ID_FLAG) != 0 { m.correlationID = p.correlation_id.string }
    if flags & UInt32(AMQP_BASIC_DELIVERY_MODE_FLAG) != 0 { m.persistent = p.delivery_mode == 2 }
    if flags & UInt32(AMQP_BASIC_HEADERS_FLAG) != 0 {
        m.headers = decodeTable(p.headers)
        m.deaths = decodeDeaths(p.headers)
    }
    return m
}

/// The `x-death` array of a dead letter's headers, in the broker's order
/// (most recent first). Any publisher can set the header, so nothing is
/// trusted: a non-array `x-death` gives none, entries that are not tables
/// are skipped, a missing or non-string (or empty) `reason` reads "unknown",
/// a missing `queue` "", a missing `count` 1 and a negative one 0. Only the
/// first `x-death` key counts.
func decodeDeaths(_ table: amqp_table_t) -> [Death] {
    guard table.num_entries > 0, let entries = table.entries else { return [] }
    for i in 0..<Int(table.num_entries) where entries[i].key.string == "x-death" {
        let f = entries[i].value
        guard UInt32(f.kind) == AMQP_FIELD_KIND_ARRAY.rawValue else { return [] }
        let array = f.value.array
        guard array.num_entries > 0, let items = array.entries else { return [] }
        var out: [Death] = []
        for j in 0..<Int(array.num_entries) where UInt32(items[j].kind) == AMQP_FIELD_KIND_TABLE.rawValue {
            let t = decodeTable(items[j].value.table)
            let reason = t["reason"]?.stringValue ?? ""
            out.append(Death(reason: reason.isEmpty ? "unknown" : reason, queue: t["queue"]?.stringValue ?? "",
                             count: Int(max(0, t["count"]?.intValue ?? 1))))
        }
        return out
    }
    return []
}
