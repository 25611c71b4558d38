import Yams

/// A YAML value with the place it came from, kept for the parts of a spec
/// that are typed elsewhere (validate rules, report, deliver). Unlike Yams'
/// `Node` it is `Sendable`, so it can travel inside a `PipelineSpec`.
///
/// Scalars keep their text as written (`5%`, `0.10`, `required`); whether a
/// scalar was quoted is kept too, because `"true"` is a string and `true`
/// is a boolean.
public indirect enum SpecValue: Sendable, Hashable {
    case scalar(String, quoted: Bool, at: SpecLocation)
    case sequence([SpecValue], at: SpecLocation)
    /// Keys in document order.
    case mapping([SpecEntry], at: SpecLocation)

    public var location: SpecLocation {
        switch self {
        case .scalar(_, _, let at), .sequence(_, let at), .mapping(_, let at): return at
        }
    }

    /// The text of a scalar; nil for a sequence or mapping.
    public var text: String? {
        if case .scalar(let text, _, _) = self { return text }
        return nil
    }

    /// The value under `key` when this is a mapping.
    public subscript(key: String) -> SpecValue? {
        if case .mapping(let entries, _) = self {
            return entries.first { $0.key == key }?.value
        }
        return nil
    }
}

/// One key of a `SpecValue.mapping`.
public struct SpecEntry: Sendable, Hashable {
    public var key: String
    public var keyLocation: SpecLocation
    public var value: SpecValue

    public init(key: String, keyLocation: SpecLocation, value: SpecValue) {
        self.key = key
        self.keyLocation = keyLocation
        self.value = value
    }
}

extension SpecLocation {
    init(_ mark: Mark?) {
        self.init(line: mark?.line ?? 1, column: mark?.column ?? 1)
    }
}

extension Node {
    var location: SpecLocation { SpecLocation(mark) }

    /// Short name of the node's kind for "must be a list, not a mapping".
    var kindName: String {
        switch self {
        case .scalar: return "a single value"
        case .mapping: return "a mapping"
        case .sequence: return "a list"
        case .alias: return "an alias"
        }
    }

    /// Whether a scalar was written with quotes or as a block (`|`, `>`),
    /// which makes it a string whatever it looks like.
    var isQuotedScalar: Bool {
        guard case .scalar(let s) = self else { return false }
        return s.style != .plain && s.style != .any
    }

    var specValue: SpecValue {
        switch self {
        case .scalar(let s):
            return .scalar(s.string, quoted: isQuotedScalar, at: location)
        case .sequence(let seq):
            return .sequence(seq.map(\.specValue), at: location)
        case .mapping(let map):
            return .mapping(map.map { key, value in
                SpecEntry(key: key.scalar?.string ?? "", keyLocation: key.location, value: value.specValue)
            }, at: location)
        case .alias:
            return .scalar("", quoted: false, at: location)
        }
    }
}
