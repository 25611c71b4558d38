import Foundation

/// SplitMix64: a seeded generator, so every run of a test sees the same data.
public struct SeededRandom: RandomNumberGenerator {
    public var state: UInt64
    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    public mutating func int(_ r: ClosedRange<Int>) -> Int { Int.random(in: r, using: &self) }
    public mutating func chance(_ p: Double) -> Bool { Double.random(in: 0..<1, using: &self) < p }
}

/// The orders input the pipeline cross-checks (StagesTests) and the fleet
/// tests run over: three CSV files of 400 rows (the second with CRLF record
/// ends) with the mess a real export has — stray spaces and odd case in
/// `region`, `NA`, `NULL` and empty values, quoted line breaks and doubled
/// quotes in `note`, values that do not type (quarantined by ingest),
/// non-positive quantities, ids repeated across files (days are unique per
/// row, so a dedupe by day has no ties) and amounts of 500 and more.
public enum MessyOrders {
    /// Writes `data/part0.csv` … `data/part2.csv` under `dir`; returns the
    /// files and how many rows carry a value that cannot be typed (ingest
    /// must quarantine exactly those).
    public static func writeInputs(to dir: String) throws -> (files: [String], dirty: Int) {
        try FileManager.default.createDirectory(atPath: dir + "/data", withIntermediateDirectories: true)
        var rng = SeededRandom(seed: 20261127)
        let regions = ["  north ", "south", " east", "west  ", "café", "NA", "", "South"]
        var dirty = 0
        var day = 0
        var files: [String] = []
        let epoch = Date(timeIntervalSince1970: 0)
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyy-MM-dd"
        for file in 0..<3 {
            let eol = file == 1 ? "\r\n" : "\n"
            var text = "id,region,amount,qty,day,note" + eol
            for _ in 0..<400 {
                day += 1
                let id = String(rng.int(1...300))
                let region = regions[rng.int(0...regions.count - 1)]
                var amount = rng.chance(0.1) ? "" : "\(rng.int(0...999)).\(String(format: "%02d", rng.int(0...99)))"
                var qty = rng.chance(0.1) ? "NULL" : String(rng.int(-3...20))
                var date = formatter.string(from: epoch.addingTimeInterval(Double(17_000 + day) * 86_400))
                switch rng.int(0...40) {
                case 0: amount = "1.2.3"; dirty += 1
                case 1: qty = "7x"; dirty += 1
                case 2: date = "2026-13-01"; dirty += 1
                default: break
                }
                let note: String
                switch rng.int(0...3) {
                case 0: note = "\"line one\nline two\""
                case 1: note = "\"says \"\"hi\"\", twice\""
                case 2: note = "plain"
                default: note = "\"\""
                }
                text += [id, region, amount, qty, date, note].joined(separator: ",") + eol
            }
            let path = dir + "/data/part\(file).csv"
            try text.write(toFile: path, atomically: true, encoding: .utf8)
            files.append(path)
        }
        return (files, dirty)
    }

    /// The spec's sources, normalize and consolidate sections for these
    /// files (the steps `check_fleet.py` and `check_pipeline.py` compute in
    /// DuckDB); `consolidateExtra` lines go at the end of `consolidate`.
    public static func specHead(pipeline: String, consolidateExtra: [String] = []) -> String {
        """
        pipeline: \(pipeline)
        sources:
          orders:
            format: csv
            files: data/*.csv
            shard_size: 2KiB
            columns:
              id: int64
              region: string
              amount: decimal(12,2)
              qty: int64
              day: date
              note: string
        normalize:
          - trim: [region]
          - upper: [region]
          - derive:
              total: "amount * qty"
              tier: "case when amount >= 500 then 'high' when amount is null then 'none' else 'low' end"
          - filter: "qty is null or qty > 0"
        consolidate:
          partition_by: [id]
          partitions: 4
          sort_by: [id]
          dedupe: {key: [id], keep: latest, by: day}

        """ + consolidateExtra.map { "  \($0)\n" }.joined()
    }
}
