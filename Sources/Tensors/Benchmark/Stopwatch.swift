#if canImport(Glibc)
import Glibc
#endif

/// Monotonic wall-clock time in seconds.
public func monotonicSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}

/// Timing of repeated runs of one operation, after warm-up.
public struct TimingSamples: Sendable {
    public let seconds: [Double]

    public var median: Double {
        let sorted = seconds.sorted()
        let n = sorted.count
        return n % 2 == 1 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2
    }

    public var minimum: Double { seconds.min() ?? 0 }

    /// Runs `body` `warmup` times untimed, then times it at least `minRuns` times and until
    /// `minSeconds` have passed or `maxRuns` is reached.
    public static func measure(warmup: Int = 3, minRuns: Int = 5, maxRuns: Int = 200, minSeconds: Double = 0.5,
                               _ body: () throws -> Void) rethrows -> TimingSamples {
        for _ in 0..<warmup { try body() }
        var samples: [Double] = []
        let start = monotonicSeconds()
        while samples.count < minRuns || (samples.count < maxRuns && monotonicSeconds() - start < minSeconds) {
            let t0 = monotonicSeconds()
            try body()
            samples.append(monotonicSeconds() - t0)
        }
        return TimingSamples(seconds: samples)
    }
}
