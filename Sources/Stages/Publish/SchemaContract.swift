import Columnar
import FleetCore
import Foundation

/// The schema contract of a published dataset: a new version's columns
/// (names, types, nullability, order) must equal those of the version
/// `CURRENT` names, unless the spec's `publish: {schema_change: …}` allows
/// the difference (`PublishSpec.SchemaChange`). The first version of a
/// dataset sets the contract.
public enum SchemaContract {
    /// The schema hash: SHA-256 (lowercase hex) of the columns as compact
    /// JSON, in column order, each object's keys sorted, no whitespace —
    /// exactly what `jq -cSj .schema _manifest.json | sha256sum` hashes:
    /// `[{"name":"id","nullable":false,"type":"int64"},…]`.
    public static func hash(_ columns: [PublishManifest.Column]) -> String {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let bytes = (try? e.encode(columns)).map { Array($0) } ?? Array(canonicalFallback(columns).utf8)
        return Checksum.sha256(bytes)
    }

    private static func canonicalFallback(_ columns: [PublishManifest.Column]) -> String {
        columns.map { "\($0.name)\t\($0.type)\t\($0.nullable)" }.joined(separator: "\n")
    }

    /// One difference between two schemas, as a person reads it.
    public struct Difference: Sendable, Equatable, CustomStringConvertible {
        public var text: String
        /// A new nullable column after every existing one: what `additive` allows.
        public var additive: Bool
        public var description: String { text }
    }

    /// Every difference from `old` to `new`: first the old columns in their
    /// order (removed, or type or nullability changed), then the added
    /// columns in the new order, then a changed order of the columns both
    /// have. Empty when the schemas are equal.
    ///
    /// `column revenue: decimal(18,4) → double`, `column region removed`,
    /// `column note added (string, nullable)`, `column id: not null → nullable`,
    /// `column order: a, b → b, a`.
    public static func differences(from old: [PublishManifest.Column], to new: [PublishManifest.Column]) -> [Difference] {
        var out: [Difference] = []
        let newByName = Dictionary(new.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        let oldNames = Set(old.map(\.name))
        for o in old {
            guard let n = newByName[o.name] else {
                out.append(Difference(text: "column \(o.name) removed", additive: false))
                continue
            }
            switch (o.type == n.type, o.nullable == n.nullable) {
            case (true, true): continue
            case (false, true):
                out.append(Difference(text: "column \(o.name): \(o.type) → \(n.type)", additive: false))
            case (true, false):
                out.append(Difference(text: "column \(o.name): \(nullability(o)) → \(nullability(n))", additive: false))
            case (false, false):
                out.append(Difference(text: "column \(o.name): \(o.type) \(nullability(o)) → \(n.type) \(nullability(n))",
                                      additive: false))
            }
        }
        // The position after which an added column counts as "at the end".
        let lastOld = new.lastIndex { oldNames.contains($0.name) } ?? -1
        for (i, n) in new.enumerated() where !oldNames.contains(n.name) {
            let atEnd = i > lastOld
            var text = "column \(n.name) added (\(n.type), \(nullability(n)))"
            if !atEnd {
                let before = new[(i + 1)...].first { oldNames.contains($0.name) }?.name ?? ""
                text = "column \(n.name) added before existing column \(before) (\(n.type), \(nullability(n)))"
            }
            out.append(Difference(text: text, additive: atEnd && n.nullable))
        }
        let newNames = Set(new.map(\.name))
        let oldOrder = old.map(\.name).filter { newNames.contains($0) }
        let newOrder = new.map(\.name).filter { oldNames.contains($0) }
        if oldOrder != newOrder {
            out.append(Difference(text: "column order: \(oldOrder.joined(separator: ", ")) → \(newOrder.joined(separator: ", "))",
                                  additive: false))
        }
        return out
    }

    /// What `policy` does not allow of the change from `old` to `new`, as
    /// one line (differences joined with `; `); nil when it is allowed.
    public static func violation(from old: [PublishManifest.Column], to new: [PublishManifest.Column],
                                 policy: PublishSpec.SchemaChange) -> String? {
        let found: [Difference]
        switch policy {
        case .any: return nil
        case .none: found = differences(from: old, to: new)
        case .additive: found = differences(from: old, to: new).filter { !$0.additive }
        }
        return found.isEmpty ? nil : found.map(\.text).joined(separator: "; ")
    }

    static func nullability(_ c: PublishManifest.Column) -> String { c.nullable ? "nullable" : "not null" }
}

extension PublishManifest {
    /// `SchemaContract.hash` of this version's columns.
    public var schemaSHA256: String { SchemaContract.hash(schema) }
}
