import Foundation

/// One static per-tensor activation encoding (QUANTIZATION.md, "Activations"): scale Δx and zero
/// point z; `xq = clamp(round(x / Δx) + z, qmin, qmax)` with rounding half away from zero.
/// Symmetric int8 uses z = 0 and [−127, 127]; asymmetric uint8 uses [0, 255].
public struct ActivationEncoding: Sendable, Equatable, Hashable {
    public enum Kind: String, Sendable, Hashable { case symmetricInt8 = "int8", asymmetricUInt8 = "uint8" }

    public let kind: Kind
    public let scale: Float
    public let zeroPoint: Int32

    public var qmin: Int32 { kind == .symmetricInt8 ? -127 : 0 }
    public var qmax: Int32 { kind == .symmetricInt8 ? 127 : 255 }

    public init(kind: Kind, scale: Float, zeroPoint: Int32) {
        precondition(scale > 0 && scale.isFinite, "activation scale must be positive and finite, got \(scale)")
        self.kind = kind
        self.scale = scale
        self.zeroPoint = zeroPoint
    }

    /// The encoding covering [min, max] (min-max estimator). The range always includes 0, so 0 is exact.
    ///
    /// Never traps on bad statistics: a NaN bound counts as 0, an infinite one as ±`Float.greatestFiniteMagnitude / 2`
    /// (so `max − min` stays finite), and a range too small for a normal scale gets the smallest positive one.
    public static func covering(min lo: Float, max hi: Float, kind: Kind) -> ActivationEncoding {
        let limit = Float.greatestFiniteMagnitude / 2
        func bounded(_ v: Float) -> Float { v.isNaN ? 0 : Swift.min(Swift.max(v, -limit), limit) }
        func step(_ range: Float, levels: Float) -> Float { range > 0 ? Swift.max(range / levels, .leastNonzeroMagnitude) : 1 }
        let lo = Swift.min(bounded(lo), 0), hi = Swift.max(bounded(hi), 0)
        switch kind {
        case .symmetricInt8:
            return ActivationEncoding(kind: kind, scale: step(Swift.max(abs(lo), abs(hi)), levels: 127), zeroPoint: 0)
        case .asymmetricUInt8:
            let scale = step(hi - lo, levels: 255)
            let zero = Int32(Swift.min(Swift.max((-lo / scale).rounded(.toNearestOrAwayFromZero), 0), 255))
            return ActivationEncoding(kind: kind, scale: scale, zeroPoint: zero)
        }
    }

    /// The integer code of one value (scalar reference). NaN codes to the zero point (dequantizes to 0).
    @inline(__always)
    public func code(_ x: Float) -> Int32 {
        if x.isNaN { return zeroPoint }
        let q = (x / scale).rounded(.toNearestOrAwayFromZero)
        // Clamp in float first: a huge |x| must not trap on the integer conversion.
        let clamped = Swift.min(Swift.max(q, Float(qmin - zeroPoint)), Float(qmax - zeroPoint))
        return Int32(clamped) + zeroPoint
    }

    /// Quantize → dequantize: `(xq − z)·Δx`.
    @inline(__always)
    public func fakeQuantize(_ x: Float) -> Float { Float(code(x) - zeroPoint) * scale }
}

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
    /// `x` `[rows, width]` → quantize-dequantize each row with its own scale.
    public static func fakeQuantize(_ x: [Float], rows: Int, width: Int) -> [Float] {
        var out = x
        for r in 0..<rows {
            var m: Float = 0
            for i in 0..<width { m = max(m, abs(x[r * width + i])) }
            let encoding = ActivationEncoding.covering(min: -m, max: m, kind: .symmetricInt8)
            for i in 0..<width { out[r * width + i] = encoding.fakeQuantize(x[r * width + i]) }
        }
        return out
    }
}
