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
    /// Integer zero point per output channel: all 0 when symmetric.
    public let zeroPoints: [Int32]

    public var isSymmetric: Bool { zeroPoints.allSatisfy { $0 == 0 } }

    public init(outputs: Int, inputs: Int, bits: Int, granularity: Granularity, values: [Int8], scales: [Float], zeroPoints: [Int32]? = nil) {
        self.outputs = outputs
        self.inputs = inputs
        self.bits = bits
        self.granularity = granularity
        self.values = values
        self.scales = scales
        self.zeroPoints = zeroPoints ?? [Int32](repeating: 0, count: outputs)
    }

    /// Row-major `[C, K]` floats `Δ[c] · (q[c, k] − z[c])`.
    public func dequantized() -> [Float] {
        var out = [Float](repeating: 0, count: values.count)
        for c in 0..<outputs {
            let s = scales[c], z = zeroPoints[c]
            for k in 0..<inputs { out[c * inputs + k] = s * Float(Int32(values[c * inputs + k]) - z) }
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

    /// The asymmetric variant (scalar reference): per channel (or tensor) the range
    /// `[min(W, 0), max(W, 0)]` (clipped by `r` under MSE), `Δ = range / (2^b − 1)`, an integer
    /// zero point z so that `q = clamp(round(W/Δ) + z, −2^(b−1), 2^(b−1) − 1)` (stored in int8)
    /// and W ≈ Δ·(q − z).
    public static func quantizeAsymmetric(_ weight: [Float], outputs: Int, inputs: Int, bits: Int = 8,
                                          granularity: QuantizedWeights.Granularity = .perChannel, clip: Clip = .minmax) -> QuantizedWeights {
        precondition((2...8).contains(bits), "weight bits must be 2…8, got \(bits)")
        precondition(weight.count == outputs * inputs, "weight holds \(weight.count) values, expected \(outputs)×\(inputs)")
        let qmin = -Float(1 << (bits - 1)), qmax = Float((1 << (bits - 1)) - 1)
        func encode(_ lo: Float, _ hi: Float) -> (scale: Float, zero: Float) {
            let range = hi - lo
            guard range > 0 else { return (1, 0) }
            let scale = range / (qmax - qmin)
            return (scale, min(max(qmin - (lo / scale).rounded(.toNearestOrAwayFromZero), qmin), qmax))
        }
        func code(_ w: Float, _ e: (scale: Float, zero: Float)) -> Float {
            min(max((w / e.scale).rounded(.toNearestOrAwayFromZero) + e.zero, qmin), qmax)
        }
        func rowError(_ rows: Range<Int>, _ e: (scale: Float, zero: Float)) -> Double {
            var total = 0.0
            for c in rows { for k in 0..<inputs {
                let w = weight[c * inputs + k], d = Double(w - e.scale * (code(w, e) - e.zero))
                total += d * d
            } }
            return total
        }
        var lows = [Float](repeating: 0, count: outputs), highs = lows
        for c in 0..<outputs { for k in 0..<inputs {
            lows[c] = min(lows[c], weight[c * inputs + k])
            highs[c] = max(highs[c], weight[c * inputs + k])
        } }
        let groups: [Range<Int>] = granularity == .perChannel ? (0..<outputs).map { $0..<($0 + 1) } : [0..<outputs]
        var encodings = [(scale: Float, zero: Float)](repeating: (1, 0), count: outputs)
        for rows in groups {
            let lo = rows.map { lows[$0] }.min() ?? 0, hi = rows.map { highs[$0] }.max() ?? 0
            var best = encode(lo, hi)
            if clip == .mse {
                var bestError = Double.infinity
                for step in 0...50 {
                    let r = 1 - Float(step) / 100
                    let e = encode(lo * r, hi * r)
                    let error = rowError(rows, e)
                    if error < bestError { (best, bestError) = (e, error) }
                }
            }
            for c in rows { encodings[c] = best }
        }
        var values = [Int8](repeating: 0, count: outputs * inputs)
        for c in 0..<outputs { for k in 0..<inputs { values[c * inputs + k] = Int8(code(weight[c * inputs + k], encodings[c])) } }
        return QuantizedWeights(outputs: outputs, inputs: inputs, bits: bits, granularity: granularity, values: values,
                                scales: encodings.map(\.scale), zeroPoints: encodings.map { Int32($0.zero) })
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
