/// A number of bytes written with an optional unit: `65536`, `64MiB`,
/// `1GB`, `512 KiB`. Decimal units (kB, KB, MB, GB, TB) are powers of 1000;
/// binary units (KiB, MiB, GiB, TiB) are powers of 1024; `B` is bytes.
/// Units are matched without regard to case.
public struct ByteSize: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var bytes: Int

    public init(bytes: Int) {
        self.bytes = bytes
    }

    public static func mebibytes(_ n: Int) -> ByteSize { ByteSize(bytes: n << 20) }

    public static func < (a: ByteSize, b: ByteSize) -> Bool { a.bytes < b.bytes }

    static let units: [(String, Int)] = [
        ("b", 1),
        ("kb", 1_000), ("mb", 1_000_000), ("gb", 1_000_000_000), ("tb", 1_000_000_000_000),
        ("kib", 1 << 10), ("mib", 1 << 20), ("gib", 1 << 30), ("tib", 1 << 40),
    ]

    /// Parses `64MiB` and the like; nil when the text is not a size.
    /// Fractions are allowed with a unit (`1.5GiB`) and rounded down to a byte.
    public init?(parsing text: String) {
        let trimmed = text.trimmingSpaces()
        let digits = trimmed.prefix { $0.isASCII && ($0.isNumber || $0 == ".") }
        let unit = trimmed.dropFirst(digits.count).trimmingSpaces().lowercased()
        guard !digits.isEmpty, let number = Double(digits), number.isFinite else { return nil }
        let multiplier: Int
        if unit.isEmpty {
            guard let whole = Int(digits) else { return nil }
            self.bytes = whole
            return
        } else if let found = ByteSize.units.first(where: { $0.0 == unit }) {
            multiplier = found.1
        } else {
            return nil
        }
        let value = number * Double(multiplier)
        guard value < 9.0e18 else { return nil }
        self.bytes = Int(value)
    }

    /// The shortest exact spelling: `64MiB`, `1GB`, `1000`.
    public var description: String {
        for (name, size) in [("TiB", 1 << 40), ("TB", 1_000_000_000_000), ("GiB", 1 << 30), ("GB", 1_000_000_000),
                             ("MiB", 1 << 20), ("MB", 1_000_000), ("KiB", 1 << 10), ("kB", 1_000)]
        where bytes >= size && bytes % size == 0 {
            return "\(bytes / size)\(name)"
        }
        return "\(bytes)"
    }
}
