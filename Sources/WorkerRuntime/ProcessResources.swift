#if canImport(Glibc)
import Glibc
#if os(Linux)
import CMalloc
#endif
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// The worker process' CPU time and resident memory, for its heartbeats
/// (the coordinator shows them as `bis_worker_cpu_seconds_total` and
/// `bis_worker_resident_memory_bytes`).
///
/// Linux: `/proc/self/stat` (utime + stime, in clock ticks) and
/// `/proc/self/statm` (resident pages). Elsewhere, or when /proc cannot be
/// read: `getrusage` for the CPU time and no resident memory.
public struct ProcessResources: Sendable, Hashable {
    public var cpuSeconds: Double
    public var residentBytes: Int64?

    public init(cpuSeconds: Double, residentBytes: Int64?) {
        self.cpuSeconds = cpuSeconds
        self.residentBytes = residentBytes
    }

    /// Has glibc map every buffer of `bytes` or more on its own, handed
    /// back to the system when freed, instead of serving it from its heap.
    /// By default glibc raises that threshold to the largest buffer freed so
    /// far (up to 32 MiB), after which row-group-sized buffers come from the
    /// heap, which fragments over many tasks. Measured with `ops/bench/e2e`
    /// (three runs in the same two workers; the larger worker's peak after
    /// each run): without it SF1 about 584, 911, 1,008 MiB and SF5 969,
    /// 1,019, 1,019 MiB; with 4 MiB, SF1 at most 524-671 MiB in three
    /// benches and SF5 690, 838, 839 MiB: less growth, not none. 16 MiB let
    /// SF5 reach 950 MiB. Left to the environment when
    /// `MALLOC_MMAP_THRESHOLD_` is set. Returns false when glibc refused the
    /// setting.
    @discardableResult
    public static func boundHeapRetention(mmapThreshold bytes: Int32 = 4 << 20) -> Bool {
        #if os(Linux)
        guard getenv("MALLOC_MMAP_THRESHOLD_") == nil else { return true }
        return bis_set_mmap_threshold(bytes) == 1
        #else
        return true
        #endif
    }

    /// This process' now; nil when nothing can be read.
    public static func current() -> ProcessResources? {
        let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
        let page = Int64(sysconf(Int32(_SC_PAGESIZE)))
        let stat = try? String(contentsOfFile: "/proc/self/stat", encoding: .utf8)
        let statm = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8)
        let cpu = stat.flatMap { cpuSeconds(stat: $0, ticksPerSecond: ticks) } ?? rusageCPUSeconds()
        guard let cpu else { return nil }
        return ProcessResources(cpuSeconds: cpu, residentBytes: statm.flatMap { residentBytes(statm: $0, pageSize: page) })
    }

    /// utime + stime (fields 14 and 15 of `/proc/PID/stat`) in seconds. The
    /// second field, the command name in parentheses, may hold spaces and
    /// parentheses itself: fields are counted after its last `)`.
    public static func cpuSeconds(stat: String, ticksPerSecond: Double) -> Double? {
        guard ticksPerSecond > 0, let close = stat.lastIndex(of: ")") else { return nil }
        let fields = stat[stat.index(after: close)...].split(whereSeparator: { $0 == " " || $0 == "\n" })
        // fields[0] is field 3 (state): utime is field 14, stime field 15.
        guard fields.count > 12, let utime = UInt64(fields[11]), let stime = UInt64(fields[12]) else { return nil }
        return Double(utime + stime) / ticksPerSecond
    }

    /// Resident pages (the second field of `/proc/PID/statm`) in bytes.
    public static func residentBytes(statm: String, pageSize: Int64) -> Int64? {
        let fields = statm.split(whereSeparator: { $0 == " " || $0 == "\n" })
        guard pageSize > 0, fields.count > 1, let pages = Int64(fields[1]) else { return nil }
        let (bytes, overflow) = pages.multipliedReportingOverflow(by: pageSize)
        return overflow ? nil : bytes
    }

    static func rusageCPUSeconds() -> Double? {
        var usage = rusage()
        #if canImport(Glibc)
        let who = __rusage_who_t(RUSAGE_SELF.rawValue)
        #else
        let who = RUSAGE_SELF
        #endif
        guard getrusage(who, &usage) == 0 else { return nil }
        func seconds(_ t: timeval) -> Double { Double(t.tv_sec) + Double(t.tv_usec) / 1e6 }
        return seconds(usage.ru_utime) + seconds(usage.ru_stime)
    }
}
