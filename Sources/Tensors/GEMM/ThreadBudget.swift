#if canImport(Glibc)
import Glibc
#endif

/// How many threads oneDNN runs with, adapted to the load of the machine.
///
/// oneDNN's OpenMP threads split each call's work statically and wait for each other at its end.
/// When another process keeps a CPU busy, the thread sharing that CPU holds the others up at every
/// one of the thousands of small calls of a video, and the video takes 3× its quiet time (2-core
/// machine, one busy process: PLATFORM.md). So every quarter second the budget looks at how much
/// CPU time *other* processes took (`/proc/stat` minus this process's own CPU time) and gives
/// oneDNN the CPUs left free: all of them when the machine is quiet, fewer under load. It moves
/// down when others take ≥ 0.5 CPU beyond a whole one and back up below 0.25 (hysteresis).
///
/// Results must not depend on the load, so they must not depend on the thread count. int8 sums
/// are exact integers whatever the split; fp32 products are split by rows and columns, except
/// that oneDNN's AVX2 `gemm:jit` also splits the sum over K when a product has few rows and
/// columns (e.g. 1×256 · 256×128), so such small products always run on one thread
/// (`LinearFP32`). `selftest` checks the products the models use at 1 and all threads, bit for bit.
/// Primitives bake their thread count in, so caches of primitives are keyed by it.
///
/// `OMP_NUM_THREADS`, when set, fixes the count and turns adaptation off.
final class ThreadBudget {
    /// The current budget, 1…`maximum`.
    private(set) var threads: Int
    /// All CPUs of the process, or `OMP_NUM_THREADS`.
    let maximum: Int
    let adaptive: Bool

    private typealias SetThreads = @convention(c) (Int32) -> Void
    private let setThreads: SetThreads?
    private static let interval = 0.25
    private var last: (wall: Double, ownCPU: Double, busyTicks: UInt64)?
    private let ticksPerSecond = Double(sysconf(Int32(_SC_CLK_TCK)))

    init() {
        let fixed = getenv("OMP_NUM_THREADS").flatMap { Int(String(cString: $0)) }.flatMap { $0 > 0 ? $0 : nil }
        maximum = fixed ?? max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
        adaptive = fixed == nil && maximum > 1 && Self.busyTicks() != nil
        threads = maximum
        // libgomp is loaded with oneDNN; looked up at run time so nothing links against it directly.
        setThreads = dlsym(nil, "omp_set_num_threads")   // nil: RTLD_DEFAULT, every loaded library
            .map { unsafeBitCast($0, to: SetThreads.self) }
    }

    /// Re-measures the load when the interval has passed and sets the calling thread's OpenMP
    /// thread count (an OpenMP setting is per thread) to the budget, at most `limit`; returns the
    /// count set. Called with the oneDNN lock held.
    func apply(limit: Int) -> Int {
        if adaptive { update(wall: monotonicSeconds()) }
        let n = max(1, min(threads, limit))
        setThreads?(Int32(n))
        return n
    }

    private func update(wall: Double) {
        if let last, wall - last.wall < Self.interval { return }
        guard let busy = Self.busyTicks() else { return }
        let own = Self.processCPUSeconds()
        defer { last = (wall, own, busy) }
        guard let last else { return }
        let others = max(0, (Double(busy &- last.busyTicks) / ticksPerSecond - (own - last.ownCPU)) / (wall - last.wall))
        let free = Double(maximum) - others
        let lower = Int((free + 0.5).rounded(.down)), higher = Int((free + 0.25).rounded(.down))
        if lower < threads {
            threads = max(1, lower)
        } else if higher > threads {
            threads = min(maximum, higher)
        }
    }

    /// CPU time of this process, all threads, in seconds.
    private static func processCPUSeconds() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    }

    /// Busy clock ticks of all CPUs since boot (`/proc/stat`: user, nice, system, irq, softirq,
    /// steal); nil where the file cannot be read.
    private static func busyTicks() -> UInt64? {
        guard let file = fopen("/proc/stat", "r") else { return nil }
        defer { fclose(file) }
        var buffer = [CChar](repeating: 0, count: 512)
        guard fgets(&buffer, Int32(buffer.count), file) != nil else { return nil }
        let fields = String(cString: buffer).split(whereSeparator: { $0 == " " || $0 == "\n" })
        guard fields.first == "cpu", fields.count >= 9 else { return nil }
        let values = fields.dropFirst().prefix(8).compactMap { UInt64($0) }
        guard values.count == 8 else { return nil }
        // user nice system idle iowait irq softirq steal
        return values[0] + values[1] + values[2] + values[5] + values[6] + values[7]
    }
}
