/// Symmetric integer quantization of a weight matrix `W` `[C, K]` (QUANTIZATION.md, "Weights"):
/// `Δ = max|W| / qmax` with `qmax = 2^(b−1) − 1`, `q = clamp(round(W / Δ), −qmax, qmax)`,
/// rounding half away from zero. Per output channel (one Δ per row, the method's default) or per
/// tensor (one Δ for all rows, shown for comparison).
public struct QuantizedWeights: Sendable, Equatable {
    public enum Granularity: String, Sendable, CaseIterable { case perChannel = "per-channel", perTensor = "per-tensor" }

    public let outputs: Int
    public let inputs: Int
    public let bits: Int
    public let granularity: Granularity
    /// `[C, K]` integers in `[−qmax, qmax]`.
    public let values: [Int8]
    /// Δ per output channel (`C` values; all equal for per-tensor).
    public let scales: [Float]

    /// Row-major `[C, K]` floats `Δ[c] · q[c, k]`.
    public func dequantized() -> [Float] {
        var out = [Float](repeating: 0, count: values.count)
        for c in 0..<outputs {
            let s = scales[c]
            for k in 0..<inputs { out[c * inputs + k] = s * Float(values[c * inputs + k]) }
        }
        return out
    }
}

public enum WeightQuantizer {
    /// How the range of a channel is chosen: its max|W| (min-max), or the clip ratio r in
    /// {1, 0.99, …, 0.5} of it minimising ‖W − Q(W)‖² of that channel (MSE).
    public enum Clip: String, Sendable, CaseIterable { case minmax, mse }

    /// The scalar reference quantizer.
    /// - Parameters:
    ///   - weight: `[C, K]` row-major.
    ///   - bits: 2…8.
    public static func quantize(_ weight: UnsafeBufferPointer<Float>, outputs: Int, inputs: Int, bits: Int = 8,
                                granularity: QuantizedWeights.Granularity = .perChannel, clip: Clip = .minmax) -> QuantizedWeights {
        precondition((2...8).contains(bits), "weight bits must be 2…8, got \(bits)")
        precondition(weight.count == outputs * inputs, "weight holds \(weight.count) values, expected \(outputs)×\(inputs)")
        let qmax = Float((1 << (bits - 1)) - 1)
        var absMax = [Float](repeating: 0, count: outputs)
        for c in 0..<outputs {
            var m: Float = 0
            for k in 0..<inputs { m = max(m, abs(weight[c * inputs + k])) }
            absMax[c] = m
        }
        if granularity == .perTensor {
            let m = absMax.max() ?? 0
            absMax = [Float](repeating: m, count: outputs)
        }
        if clip == .mse { absMax = mseClipped(weight, outputs: outputs, inputs: inputs, absMax: absMax, qmax: qmax, granularity: granularity) }
        // An all-zero channel gets Δ = 1 (any positive value reproduces the zeros exactly).
        let scales = absMax.map { $0 > 0 ? $0 / qmax : 1 }
        var values = [Int8](repeating: 0, count: outputs * inputs)
        for c in 0..<outputs {
            let s = scales[c]
            for k in 0..<inputs {
                let q = (weight[c * inputs + k] / s).rounded(.toNearestOrAwayFromZero)
                values[c * inputs + k] = Int8(min(max(q, -qmax), qmax))
            }
        }
        return QuantizedWeights(outputs: outputs, inputs: inputs, bits: bits, granularity: granularity,
                                values: values, scales: scales)
    }

    public static func quantize(_ weight: [Float], outputs: Int, inputs: Int, bits: Int = 8,
                                granularity: QuantizedWeights.Granularity = .perChannel, clip: Clip = .minmax) -> QuantizedWeights {
        weight.withUnsafeBufferPointer { quantize($0, outputs: outputs, inputs: inputs, bits: bits, granularity: granularity, clip: clip) }
    }

    /// The clipped range per channel (per tensor: one shared ratio, errors summed over all rows).
    static func mseClipped(_ weight: UnsafeBufferPointer<Float>, outputs: Int, inputs: Int, absMax: [Float], qmax: Float,
                           granularity: QuantizedWeights.Granularity) -> [Float] {
        func error(row c: Int, range: Float) -> Double {
            guard range > 0 else { return 0 }
            let s = range / qmax
            var e = 0.0
            for k in 0..<inputs {
                let w = weight[c * inputs + k]
                let q = min(max((w / s).rounded(.toNearestOrAwayFromZero), -qmax), qmax)
                let d = Double(w - q * s)
                e += d * d
            }
            return e
        }
        let ratios = (0...50).map { 1 - Float($0) / 100 }
        switch granularity {
        case .perChannel:
            return (0..<outputs).map { c in
                var best = absMax[c], bestError = Double.infinity
                for r in ratios {
                    let e = error(row: c, range: absMax[c] * r)
                    if e < bestError { (best, bestError) = (absMax[c] * r, e) }
                }
                return best
            }
        case .perTensor:
            var best = absMax.first ?? 0, bestError = Double.infinity
            for r in ratios {
                let e = (0..<outputs).reduce(0.0) { $0 + error(row: $1, range: (absMax.first ?? 0) * r) }
                if e < bestError { (best, bestError) = ((absMax.first ?? 0) * r, e) }
            }
            return [Float](repeating: best, count: outputs)
        }
    }
}
