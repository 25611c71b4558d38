import Synchronization

/// The emptied column builders of finished writers, kept for the next writer
/// in this process. A worker writes one chunk after another; without this
/// each writer grows a row group's buffers afresh and the kernel faults in
/// and zeroes every page again (perf over eight 96 MB CSV ingests: about a
/// sixth of the CPU in page faults, against a twentieth for one 766 MB
/// file, whose six row groups share one set). Holds at most `maxBytes` of
/// capacity; a writer takes builders by storage, so memory stays bounded
/// by the row groups in progress plus this cap.
final class BuilderPool: Sendable {
    static let shared = BuilderPool()
    static let maxBytes = 256 << 20

    private struct State {
        var spare: [ColumnType.Storage: [ColumnBuilder]] = [:]
        var bytes = 0
    }

    private let state = Mutex(State())

    /// A builder for `type`: a spare one of the same storage, or a new one.
    func take(_ type: ColumnType) -> ColumnBuilder {
        let found = state.withLock { s -> ColumnBuilder? in
            guard let b = s.spare[type.storage]?.popLast() else { return nil }
            s.bytes -= b.capacityBytes
            return b
        }
        guard var builder = found else { return ColumnBuilder(type) }
        builder.reuse(for: type)
        return builder
    }

    /// Keeps `builders` (emptied, their buffers referenced nowhere else) for
    /// later writers, as many as fit under `maxBytes`.
    func give(_ builders: [ColumnBuilder]) {
        state.withLock { s in
            for b in builders {
                let n = b.capacityBytes
                guard n > 0, s.bytes + n <= BuilderPool.maxBytes else { continue }
                s.spare[b.type.storage, default: []].append(b)
                s.bytes += n
            }
        }
    }

    /// Drops every spare builder (for tests).
    func drain() {
        state.withLock { $0 = State() }
    }
}
