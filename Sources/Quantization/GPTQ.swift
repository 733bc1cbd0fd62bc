import Foundation

/// GPTQ rounding (Frantar et al., "GPTQ: Accurate Post-Training Quantization for Generative
/// Pre-trained Transformers", 2023): the integer codes of a weight matrix chosen column by column
/// so that the layer's *output* on calibration rows stays close, each column's rounding error
/// spread over the columns not yet rounded through the inverse Hessian of `‖X·Wᵀ − X·Qᵀ‖²`.
///
/// The quantization grid is kept as given — the per-channel Δ and zero points of the nearest-
/// rounding quantizer (min-max or MSE clip) — so the result is still a static per-channel integer
/// weight, deployed like any other; only which grid point each weight takes changes.
public enum GPTQ {
    /// Re-rounds `quantized` (the nearest-rounding quantization of `weight`) with GPTQ.
    /// - Parameters:
    ///   - weight: `[C, K]` float weights the codes stand for.
    ///   - rows: `[R, K]` inputs of the layer as the product sees them (after any `1/s` and shift).
    ///   - damping: added to the Hessian's diagonal as a fraction of its mean (GPTQ's 1%).
    /// - Returns: the same Δ and zero points with the GPTQ codes; `quantized` itself when `rows` is empty.
    public static func round(_ weight: [Float], quantized: QuantizedWeights, rows: [Float], damping: Double = 0.01) -> QuantizedWeights {
        let (C, K) = (quantized.outputs, quantized.inputs)
        precondition(weight.count == C * K && rows.count % K == 0, "GPTQ: weight [\(C), \(K)] and rows of \(rows.count) values")
        let R = rows.count / K
        guard R > 0 else { return quantized }

        // H = XᵀX (the factor 2 of the gradient cancels), damped; a silent input channel gets 1.
        var h = [Double](repeating: 0, count: K * K)
        for r in 0..<R {
            for i in 0..<K {
                let xi = Double(rows[r * K + i])
                guard xi != 0 else { continue }
                for j in i..<K { h[i * K + j] += xi * Double(rows[r * K + j]) }
            }
        }
        for i in 0..<K { for j in 0..<i { h[i * K + j] = h[j * K + i] } }
        for i in 0..<K where h[i * K + i] == 0 { h[i * K + i] = 1 }
        let mean = (0..<K).reduce(0.0) { $0 + h[$1 * K + $1] } / Double(K)
        for i in 0..<K { h[i * K + i] += damping * mean }

        // U: the upper Cholesky factor of H⁻¹ (H⁻¹ = UᵀU), as GPTQ uses it.
        guard let l = cholesky(h, K), let u = upperCholeskyOfInverse(lower: l, K) else { return quantized }

        let symmetric = quantized.isSymmetric
        let qmax = Double((1 << (quantized.bits - 1)) - 1)
        let (lo, hi) = symmetric ? (-qmax, qmax) : (-qmax - 1, qmax)
        var w = weight.map(Double.init)
        var codes = [Int8](repeating: 0, count: C * K)
        var error = [Double](repeating: 0, count: C)
        for i in 0..<K {
            let d = u[i * K + i]
            for c in 0..<C {
                let s = Double(quantized.scales[c]), z = Double(quantized.zeroPoints[c])
                let x = w[c * K + i]
                let q = min(max((x / s).rounded(.toNearestOrAwayFromZero) + z, lo), hi)
                codes[c * K + i] = Int8(q)
                error[c] = (x - s * (q - z)) / d
            }
            for j in (i + 1)..<K {
                let f = u[i * K + j]
                guard f != 0 else { continue }
                for c in 0..<C { w[c * K + j] -= error[c] * f }
            }
        }
        return QuantizedWeights(outputs: C, inputs: K, bits: quantized.bits, granularity: quantized.granularity, values: codes,
                                scales: quantized.scales, zeroPoints: quantized.zeroPoints)
    }

    /// `round`, remembered: a workbench edit rebuilds the whole model, but only the edited block's
    /// weights, grids or rows change, so every other layer's codes come from here instead of being
    /// searched again (seconds per model on the demo). Keyed by the FNV-1a of every input's bytes
    /// (weights, grid, rows, damping); the most recent `memoCapacity` results are kept.
    public static func roundMemoized(_ weight: [Float], quantized: QuantizedWeights, rows: [Float], damping: Double = 0.01) -> QuantizedWeights {
        func digest<T>(_ values: [T]) -> UInt64 { values.withUnsafeBytes { (bytes: UnsafeRawBufferPointer) -> UInt64 in fnv1a(bytes) } }
        let parts: [UInt64] = [digest(weight), digest(quantized.scales), digest(quantized.zeroPoints), UInt64(quantized.bits),
                               UInt64(quantized.outputs), digest(rows), damping.bitPattern]
        let key = digest(parts)
        if let hit = memo.lookup(key), hit.values.count == quantized.values.count { return hit }
        let result = round(weight, quantized: quantized, rows: rows, damping: damping)
        memo.store(key, result)
        return result
    }

    static let memoCapacity = 512
    private static let memo = Memo()

    private final class Memo: @unchecked Sendable {
        private let lock = NSLock()
        private var entries: [UInt64: QuantizedWeights] = [:]
        private var order: [UInt64] = []

        func lookup(_ key: UInt64) -> QuantizedWeights? { lock.withLock { entries[key] } }

        func store(_ key: UInt64, _ value: QuantizedWeights) {
            lock.withLock {
                if entries.updateValue(value, forKey: key) == nil { order.append(key) }
                while order.count > GPTQ.memoCapacity { entries[order.removeFirst()] = nil }
            }
        }
    }

    /// Lower L with L·Lᵀ = A (`[n, n]` symmetric positive definite), nil if it is not.
    static func cholesky(_ a: [Double], _ n: Int) -> [Double]? {
        var l = [Double](repeating: 0, count: n * n)
        for i in 0..<n {
            for j in 0...i {
                var sum = a[i * n + j]
                for k in 0..<j { sum -= l[i * n + k] * l[j * n + k] }
                if i == j {
                    guard sum > 0 else { return nil }
                    l[i * n + i] = sum.squareRoot()
                } else {
                    l[i * n + j] = sum / l[j * n + j]
                }
            }
        }
        return l
    }

    /// U upper with UᵀU = (L·Lᵀ)⁻¹, from the lower Cholesky factor L of A.
    static func upperCholeskyOfInverse(lower l: [Double], _ n: Int) -> [Double]? {
        // M = L⁻¹ (lower), then A⁻¹ = MᵀM and U = chol(A⁻¹)ᵀ.
        var m = [Double](repeating: 0, count: n * n)
        for i in 0..<n {
            m[i * n + i] = 1 / l[i * n + i]
            for j in 0..<i {
                var sum = 0.0
                for k in j..<i { sum -= l[i * n + k] * m[k * n + j] }
                m[i * n + j] = sum / l[i * n + i]
            }
        }
        var inverse = [Double](repeating: 0, count: n * n)
        for i in 0..<n {
            for j in i..<n {
                var sum = 0.0
                for k in j..<n { sum += m[k * n + i] * m[k * n + j] }
                inverse[i * n + j] = sum
                inverse[j * n + i] = sum
            }
        }
        guard let lower = cholesky(inverse, n) else { return nil }
        var u = [Double](repeating: 0, count: n * n)
        for i in 0..<n { for j in i..<n { u[i * n + j] = lower[j * n + i] } }
        return u
    }
}
