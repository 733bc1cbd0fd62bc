import Foundation
import Tensors

/// Turning calibration data into encodings: min-max, percentile of |x| and an MSE clip search.
public enum ActivationRangeEstimator {
    /// The `p`-th percentile (0…100) of |x| as a symmetric range, or of x for the asymmetric
    /// lower/upper ends (`100 − p` and `p`), from sampled values.
    public static func percentile(_ samples: [Float], p: Double, kind: ActivationEncoding.Kind) -> ActivationEncoding {
        precondition(!samples.isEmpty && p > 0 && p <= 100, "percentile needs samples and 0 < p ≤ 100")
        func quantile(_ sorted: [Float], _ q: Double) -> Float {
            let position = q / 100 * Double(sorted.count - 1)
            let i = Int(position.rounded(.down)), f = Float(position - Double(i))
            return i + 1 < sorted.count ? sorted[i] * (1 - f) + sorted[i + 1] * f : sorted[i]
        }
        switch kind {
        case .symmetricInt8:
            let a = quantile(samples.map(abs).sorted(), p)
            return .covering(min: -a, max: a, kind: kind)
        case .asymmetricUInt8:
            let sorted = samples.sorted()
            return .covering(min: quantile(sorted, 100 - p), max: quantile(sorted, p), kind: kind)
        }
    }

    /// The clip ratio r in {1, 0.99, …, 0.5} of the min-max range minimising ‖x − Q(x)‖² on the samples.
    public static func mse(_ samples: [Float], min lo: Float, max hi: Float, kind: ActivationEncoding.Kind) -> ActivationEncoding {
        var best = ActivationEncoding.covering(min: lo, max: hi, kind: kind)
        var bestError = Double.infinity
        for step in 0...50 {
            let r = 1 - Float(step) / 100
            let candidate = ActivationEncoding.covering(min: lo * r, max: hi * r, kind: kind)
            var error = 0.0
            for x in samples { let d = Double(x - candidate.fakeQuantize(x)); error += d * d }
            if error < bestError { (best, bestError) = (candidate, error) }
        }
        return best
    }
}

/// ViDiT-Q's dynamic per-token baseline: each row gets its own symmetric int8 scale
/// `max|x_row| / 127`, computed at run time (not deployable on static-only hardware).
public enum DynamicPerTokenQuantizer {
    /// `x` `[rows, width]` → quantize-dequantize each row with its own encoding: symmetric int8
    /// covering max|x| of the row, or asymmetric uint8 covering the row's [min, max] (with 0,
    /// as `ActivationEncoding.covering`), ViDiT-Q's `sym: False`.
    public static func fakeQuantize(_ x: [Float], rows: Int, width: Int, kind: ActivationEncoding.Kind = .symmetricInt8) -> [Float] {
        var out = x
        for r in 0..<rows {
            var lo: Float = 0, hi: Float = 0
            for i in 0..<width {
                lo = min(lo, x[r * width + i])
                hi = max(hi, x[r * width + i])
            }
            let m = max(-lo, hi)
            let encoding = kind == .symmetricInt8 ? ActivationEncoding.covering(min: -m, max: m, kind: kind)
                : ActivationEncoding.covering(min: lo, max: hi, kind: kind)
            for i in 0..<width { out[r * width + i] = encoding.fakeQuantize(x[r * width + i]) }
        }
        return out
    }
}
