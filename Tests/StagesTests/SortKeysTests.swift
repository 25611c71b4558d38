import Columnar
import Testing
@testable import Stages

/// The sort permutation (with its prefix shortcut) against a plain
/// comparison sort, over every storage with the edge values.
@Suite struct SortKeysTests {
    static func column(_ type: ColumnType, rows: Int, rng: inout OpRandom) throws -> Column {
        try Column(type, scalars: (0..<rows).map { _ -> Scalar? in
            if rng.chance(0.15) { return nil }
            switch type {
            case .int64: return .int([Int64.min, Int64.max, 0, -1, 1, Int64(rng.int(-3...3))][rng.int(0...5)])
            case .int32: return .int([Int64(Int32.min), Int64(Int32.max), Int64(rng.int(-3...3))][rng.int(0...2)])
            case .double: return .double([-.infinity, .infinity, -0.0, 0.0, .nan, -1.5, 2.25, -Double.greatestFiniteMagnitude][rng.int(0...7)])
            case .bool: return .bool(rng.chance(0.5))
            default: return .string(["", "a", "a\u{0}", "abcdefgh", "abcdefghi", "abcdefgh\u{0}", "ä", "\u{7f}", "zz"][rng.int(0...8)])
            }
        })
    }

    @Test(arguments: [ColumnType.int64, .int32, .double, .bool, .string])
    func permutationMatchesAPlainSort(type: ColumnType) throws {
        var rng = OpRandom(seed: 7)
        for _ in 0..<20 {
            let first = try Self.column(type, rows: 300, rng: &rng)
            let second = try Self.column(.int64, rows: 300, rng: &rng)
            let keys = SortKeys([first, second])
            let got = keys.sortedPermutation(count: 300)
            let want = (0..<300).sorted { a, b in
                let c = keys.compare(a, keys, b)
                return c != 0 ? c < 0 : a < b
            }
            #expect(got == want)
            // And the order is the documented one: nulls first, NaN last among numbers.
            if first.nullCount > 0 { #expect(first.isNull(got[0])) }
        }
    }
}
