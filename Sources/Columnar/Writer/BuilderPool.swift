import Synchronization

/// The emptied column builders of finished writers, kept for the next writer
/// in this process. A worker writes one chunk after another; without this
/// each writer grows a row group's buffers afresh and the kernel faults in
/// and zeroes every page again (perf over eight 96 MB CSV ingests: about a
/// sixth of the CPU in page faults, against a twentieth for one 766 MB
/// file, whose six row groups share one set).
///
/// Memory: the pool holds at most one writer's builders. A spare is kept
/// under its column (field name and storage), so a writer of the same
/// schema gets each column's own buffer back; a column with no spare of its
/// own takes any left over of the same storage. After each `give` the pool
/// keeps at most `min(capBytes, the largest set given since the last
/// drain)` of capacity, dropping the spares of older writers first, so what
/// it holds while idle is bounded by one row group's builders (which that
/// writer held anyway while it ran), not by the data or by a fixed cap.
public final class BuilderPool: Sendable {
    public static let shared = BuilderPool()
    /// The default of `capBytes`: above one lineitem row group's builders at
    /// the default 128 MiB row groups, so that set is kept whole.
    public static let defaultCapBytes = 256 << 20

    struct Key: Hashable {
        var name: String
        var storage: ColumnType.Storage
    }

    struct Spare {
        var builder: ColumnBuilder
        var bytes: Int
        /// Which `give` brought it (older ones are dropped first).
        var generation: Int
    }

    struct State {
        var spare: [Key: Spare] = [:]
        var bytes = 0
        var capBytes = BuilderPool.defaultCapBytes
        var largestSet = 0
        var generation = 0
        /// Builders handed out from the pool rather than made new (for tests).
        var reused = 0
    }

    private let state = Mutex(State())

    public init() {}

    /// The most capacity the pool keeps (default `defaultCapBytes`); 0 turns
    /// the pool off.
    public var capBytes: Int {
        get { state.withLock { $0.capBytes } }
        set {
            state.withLock { s in
                s.capBytes = max(0, newValue)
                BuilderPool.trim(&s)
            }
        }
    }

    /// Bytes of capacity held now.
    var bytes: Int { state.withLock { $0.bytes } }
    /// Builders reused so far.
    var reusedCount: Int { state.withLock { $0.reused } }

    /// One builder for each of `fields`: the spare kept under that column if
    /// its storage matches, else a spare of the same storage left over, else
    /// a new one.
    func take(_ fields: [Field]) -> [ColumnBuilder] {
        var found = [ColumnBuilder?](repeating: nil, count: fields.count)
        state.withLock { s in
            guard !s.spare.isEmpty else { return }
            for (i, f) in fields.enumerated() {
                if let sp = s.spare.removeValue(forKey: Key(name: f.name, storage: f.type.storage)) {
                    s.bytes -= sp.bytes
                    found[i] = sp.builder
                }
            }
            for (i, f) in fields.enumerated() where found[i] == nil {
                // Largest first: a column that is not its own spare's gets
                // the most room there is for its storage.
                guard let key = s.spare.filter({ $0.key.storage == f.type.storage })
                    .max(by: { ($0.value.bytes, $0.key.name) < ($1.value.bytes, $1.key.name) })?.key,
                    let sp = s.spare.removeValue(forKey: key) else { continue }
                s.bytes -= sp.bytes
                found[i] = sp.builder
            }
            s.reused += found.reduce(0) { $0 + ($1 == nil ? 0 : 1) }
        }
        // Moved out of `found` before `reuse` empties it: a second reference
        // would make `removeAll(keepingCapacity:)` allocate fresh buffers
        // (untouched pages again) and free the old ones.
        return fields.indices.map { i in
            guard var b = found[i].take() else { return ColumnBuilder(fields[i].type) }
            b.reuse(for: fields[i].type)
            return b
        }
    }

    /// Keeps a writer's builders (emptied, their buffers referenced nowhere
    /// else, in the order of `fields`) for later writers, within the limit.
    func give(_ builders: [ColumnBuilder], fields: [Field]) {
        precondition(builders.count == fields.count, "one builder per field")
        state.withLock { s in
            guard s.capBytes > 0 else { return }
            s.generation += 1
            var set = 0
            for (b, f) in zip(builders, fields) {
                let n = b.capacityBytes
                guard n > 0 else { continue }
                set += n
                let key = Key(name: f.name, storage: b.type.storage)
                if let old = s.spare.updateValue(Spare(builder: b, bytes: n, generation: s.generation), forKey: key) {
                    s.bytes -= old.bytes
                }
                s.bytes += n
            }
            s.largestSet = max(s.largestSet, set)
            BuilderPool.trim(&s)
        }
    }

    /// Drops spares until the pool holds at most `min(capBytes, largestSet)`:
    /// older writers' first, then the smallest of the newest.
    private static func trim(_ s: inout State) {
        let limit = min(s.capBytes, s.largestSet)
        guard s.bytes > limit else { return }
        let order = s.spare.sorted { a, b in
            (a.value.generation, a.value.bytes, a.key.name) < (b.value.generation, b.value.bytes, b.key.name)
        }
        for (key, sp) in order where s.bytes > limit {
            s.spare[key] = nil
            s.bytes -= sp.bytes
        }
    }

    /// Drops every spare builder and forgets the sizes seen; for tests, and
    /// for a process that wants the memory back now (the next writers fault
    /// their row groups in again).
    public func drain() {
        state.withLock { s in
            let cap = s.capBytes, reused = s.reused
            s = State()
            s.capBytes = cap
            s.reused = reused
        }
    }
}
