import FleetCore
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

extension PartialsFile {
    /// Reads partials files (in the order given: the merge order) into
    /// summary name → partials, checking each against the spec's summaries:
    /// a summary the spec does not name, a different grouping or aggregate
    /// list, or a summary without any partials is `PublishError.invalidInput`
    /// naming the file and the fix. `bis stage run publish` and the worker's
    /// publish task both read validate's partials through this.
    public static func collect(_ files: [String], summaries: [SummarySpec]) throws -> [String: [PartialAggregate]] {
        var partials: [String: [PartialAggregate]] = [:]
        for file in files {
            for (name, partial) in try read(file).sorted(by: { $0.key < $1.key }) {
                guard let expected = summaries.first(where: { $0.name == name }) else {
                    throw PublishError.invalidInput(
                        "\(file) holds partials of summary '\(name)', which the spec's publish section does not name "
                        + "(it has: \(summaries.map(\.name).joined(separator: ", ")))")
                }
                guard partial.groupBy == expected.groupBy, partial.aggregates.map(\.name) == expected.aggregates.map(\.name) else {
                    throw PublishError.invalidInput(
                        "\(file): the partials of summary '\(name)' group by \(partial.groupBy) into "
                        + "\(partial.aggregates.map(\.name)), the spec by \(expected.groupBy) into \(expected.aggregates.map(\.name))")
                }
                partials[name, default: []].append(partial)
            }
        }
        for s in summaries where partials[s.name] == nil {
            throw PublishError.invalidInput("no partial aggregates for summary '\(s.name)': pass the partials files validate wrote")
        }
        return partials
    }
}
