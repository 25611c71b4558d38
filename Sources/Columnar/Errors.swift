/// Every failure the Columnar module reports. Each case carries a message that
/// names what was unsupported or wrong and where (file, column, page).
public enum ColumnarError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The file is valid Parquet but uses a feature this module does not read
    /// (a codec, an encoding, a nested or unknown type). Convert the file, or
    /// extend the reader.
    case unsupported(String)
    /// The bytes contradict the format: truncated, out of bounds, bad sizes.
    case corrupt(String)
    /// The caller passed something inconsistent (lengths, types, options).
    case invalidArgument(String)
    /// An operating-system call failed.
    case io(String, errno: Int32)
    /// A codec library (zstd, zlib) refused to compress or decompress, or
    /// could not start; damaged compressed data is `corrupt`.
    case compression(String)

    public var description: String {
        switch self {
        case .unsupported(let m): return "unsupported Parquet feature: \(m)"
        case .corrupt(let m): return "corrupt Parquet data: \(m)"
        case .invalidArgument(let m): return "invalid argument: \(m)"
        case .io(let m, let e): return "I/O error: \(m) (errno \(e))"
        case .compression(let m): return "compression error: \(m)"
        }
    }

    /// The same error with a location prefixed to its message.
    func context(_ where: String) -> ColumnarError {
        switch self {
        case .unsupported(let m): return .unsupported("\(`where`): \(m)")
        case .corrupt(let m): return .corrupt("\(`where`): \(m)")
        case .invalidArgument(let m): return .invalidArgument("\(`where`): \(m)")
        case .io(let m, let e): return .io("\(`where`): \(m)", errno: e)
        case .compression(let m): return .compression("\(`where`): \(m)")
        }
    }
}

/// Runs `body`, prefixing any ColumnarError with `location`.
@inline(__always)
func withContext<T>(_ location: @autoclosure () -> String, _ body: () throws -> T) throws -> T {
    do {
        return try body()
    } catch let error as ColumnarError {
        throw error.context(location())
    }
}
