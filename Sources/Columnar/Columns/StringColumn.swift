/// Variable-length values packed Arrow-style: value `i` is
/// `bytes[offsets[i] ..< offsets[i + 1]]`. No String is made per value.
public struct StringColumn: Sendable, Hashable {
    /// `count + 1` ascending positions into `bytes`, starting at 0.
    public private(set) var offsets: [Int]
    public private(set) var bytes: [UInt8]

    public init() {
        offsets = [0]
        bytes = []
    }

    /// Checks that the offsets start at 0, ascend and end at `bytes.count`.
    public init(offsets: [Int], bytes: [UInt8]) throws {
        guard let first = offsets.first, first == 0, offsets.last == bytes.count else {
            throw ColumnarError.invalidArgument("string offsets must start at 0 and end at the byte count")
        }
        for i in 1..<offsets.count where offsets[i] < offsets[i - 1] {
            throw ColumnarError.invalidArgument("string offsets must not decrease (at \(i))")
        }
        self.offsets = offsets
        self.bytes = bytes
    }

    init(unchecked offsets: [Int], bytes: [UInt8]) {
        self.offsets = offsets
        self.bytes = bytes
    }

    public var count: Int { offsets.count - 1 }

    public mutating func reserveCapacity(values: Int, bytes byteCount: Int) {
        offsets.reserveCapacity(values + 1)
        bytes.reserveCapacity(byteCount)
    }

    public mutating func append(_ string: String) {
        var s = string
        s.withUTF8 { bytes.append(contentsOf: $0) }
        offsets.append(bytes.count)
    }

    public mutating func append<C: Collection>(bytes value: C) where C.Element == UInt8 {
        bytes.append(contentsOf: value)
        offsets.append(bytes.count)
    }

    public func bytes(at i: Int) -> ArraySlice<UInt8> {
        bytes[offsets[i]..<offsets[i + 1]]
    }

    public func length(at i: Int) -> Int {
        offsets[i + 1] - offsets[i]
    }

    /// Decodes value `i` as UTF-8 (invalid sequences become U+FFFD). For
    /// display and tests, not for hot loops.
    public func string(at i: Int) -> String {
        String(decoding: bytes(at: i), as: UTF8.self)
    }

    /// Appends values `range` of `other`, rebasing their offsets: two
    /// block copies and one add per offset.
    public mutating func append(contentsOf other: StringColumn, range: Range<Int>) {
        guard !range.isEmpty else { return }
        let start = other.offsets[range.lowerBound]
        let end = other.offsets[range.upperBound]
        let shift = bytes.count - start
        if end > start {
            other.bytes.withUnsafeBufferPointer { src in
                bytes.append(contentsOf: UnsafeBufferPointer(rebasing: src[start..<end]))
            }
        }
        let base = offsets.count
        other.offsets.withUnsafeBufferPointer { src in
            offsets.append(contentsOf: UnsafeBufferPointer(rebasing: src[(range.lowerBound + 1)...range.upperBound]))
        }
        if shift != 0 {
            offsets.withUnsafeMutableBufferPointer { o in
                for i in base..<o.count { o[i] &+= shift }
            }
        }
    }

    /// Empties the column, keeping its buffers for reuse.
    public mutating func removeAll(keepingCapacity: Bool = false) {
        offsets.removeAll(keepingCapacity: keepingCapacity)
        offsets.append(0)
        bytes.removeAll(keepingCapacity: keepingCapacity)
    }

    /// Appends `n` empty values (the slots under nulls).
    mutating func appendEmpty(_ n: Int) {
        offsets.append(contentsOf: repeatElement(bytes.count, count: n))
    }
}
