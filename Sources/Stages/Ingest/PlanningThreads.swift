import Dispatch

/// Where `planShardsOffPool` runs: a few dedicated threads, so that reading
/// Parquet footers and scanning CSV files for record starts (blocking file
/// I/O, seconds for a large file) never occupies Swift's cooperative pool,
/// which a server's request handlers share.
enum PlanningThreads {
    /// Files planned at once; more requests wait their turn.
    static let limit = 2
    static let queue = DispatchQueue(label: "bis.planning", attributes: .concurrent)
    static let slots = DispatchSemaphore(value: limit)
}

/// `planShards` on one of at most `PlanningThreads.limit` dedicated
/// threads; the caller's task is suspended, not blocked, while it runs.
public func planShardsOffPool(path: String, size: Int64, shardSize: Int64, source: IngestSource) async throws -> [Shard] {
    try await withCheckedThrowingContinuation { continuation in
        PlanningThreads.queue.async {
            PlanningThreads.slots.wait()
            defer { PlanningThreads.slots.signal() }
            continuation.resume(with: Result { try planShards(path: path, size: size, shardSize: shardSize, source: source) })
        }
    }
}

/// Other blocking work of planning a run (a source file's checksum: seconds
/// for a large file) on the same dedicated threads, under the same limit.
public func offPlanningThreads<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        PlanningThreads.queue.async {
            PlanningThreads.slots.wait()
            defer { PlanningThreads.slots.signal() }
            continuation.resume(with: Result { try body() })
        }
    }
}
