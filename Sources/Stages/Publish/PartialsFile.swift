import Foundation

/// A `*.partials.json` file: one partition's partial aggregates, handed from
/// validate to publish. One JSON object, summary name → that summary's
/// `PartialAggregate` in its own JSON form (`PartialAggregate.jsonBytes()`),
/// keys sorted, NaN and infinities as the strings "nan", "inf", "-inf":
///
/// ```json
/// {"lineitem_by_status": {"aggregates": [...], "argumentTypes": [...], "groupBy": [...],
///                         "groupTypes": [...], "keys": [...], "states": [...]}}
/// ```
///
/// Equal partials give equal bytes, so the file's sha256 identifies it.
public enum PartialsFile {
    public static func encode(_ partials: [String: PartialAggregate]) throws -> [UInt8] {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        e.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return Array(try e.encode(partials)) + [0x0A]
    }

    public static func decode(_ bytes: [UInt8]) throws -> [String: PartialAggregate] {
        let d = JSONDecoder()
        d.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return try d.decode([String: PartialAggregate].self, from: Data(bytes))
    }

    /// Writes the file atomically (temp, fsync, rename, fsync of the folder).
    public static func write(_ partials: [String: PartialAggregate], to path: String) throws {
        try DurableFiles.replace(path, with: try encode(partials))
    }

    /// Reads a file; errors name it.
    public static func read(_ path: String) throws -> [String: PartialAggregate] {
        guard let bytes = DurableFiles.readBytes(path) else {
            throw PublishError.io("cannot read \(path)", errno: 0)
        }
        do {
            return try decode(bytes)
        } catch {
            throw PublishError.invalidInput("\(path) is not a partials file (a JSON object of summary name → partial aggregate): \(error)")
        }
    }
}
