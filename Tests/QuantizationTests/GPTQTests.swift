import Foundation
import Testing
@testable import Quantization

/// Deterministic pseudo-random values in [−1, 1).
private func values(_ count: Int, seed: UInt64) -> [Float] {
    var state = seed
    return (0..<count).map { _ in
        state = state &* 6364136223846793005 &+ 1442695040888963407
        return Float(state >> 40) / Float(1 << 23) - 1
    }
}

/// ‖X·Wᵀ − X·Q̂ᵀ‖² of a quantization on rows X.
private func outputError(_ w: [Float], _ q: QuantizedWeights, rows x: [Float]) -> Double {
    let (C, K) = (q.outputs, q.inputs), deq = q.dequantized()
    var e = 0.0
    for r in 0..<(x.count / K) {
        for c in 0..<C {
            var d = 0.0
            for k in 0..<K { d += Double(x[r * K + k]) * Double(w[c * K + k] - deq[c * K + k]) }
            e += d * d
        }
    }
    return e
}

/// Two input channels, worked by hand: the first column rounds to nearest; its error moves into
/// the second as OBQ's update says, `w₁ ← w₁ + (w₀ − q̂₀)·H₀₁/H₁₁` (H = XᵀX, no damping), and
/// the second rounds that.
@Test func gptqMovesAColumnsErrorIntoTheNextAsTheHessianSays() {
    // Rows (1, 1) and (1, 0.5): H = [[2, 1.5], [1.5, 1.25]]. Grid Δ = 0.05 given (codes ±7).
    let rows: [Float] = [1, 1, 1, 0.5]
    let w: [Float] = [0.12, 0.21]           // nearest: 2.4 → 2, 4.2 → 4
    let grid = QuantizedWeights(outputs: 1, inputs: 2, bits: 4, granularity: .perChannel, values: [2, 4], scales: [0.05])
    let g = GPTQ.round(w, quantized: grid, rows: rows, damping: 0)
    // Column 0 keeps its nearest code 2; its error 0.12 − 0.10 moves 0.02·1.5/1.25 = 0.024 into
    // column 1: 0.234 = 4.68 Δ → 5.
    #expect(g.values == [2, 5])
    #expect(g.scales == grid.scales && g.zeroPoints == grid.zeroPoints)
}

/// With uncorrelated inputs of equal energy (H ∝ I) no column's error can be compensated: GPTQ is
/// nearest rounding, code for code. Without rows it returns the input.
@Test func gptqOnAnIdentityHessianIsNearestRounding() {
    let (C, K) = (5, 8)
    let w = values(C * K, seed: 7)
    var rows = [Float](repeating: 0, count: K * K)
    for k in 0..<K { rows[k * K + k] = 3 }
    for symmetric in [true, false] {
        let nearest = symmetric ? WeightQuantizer.quantize(w, outputs: C, inputs: K, bits: 4)
            : WeightQuantizer.quantizeAsymmetric(w, outputs: C, inputs: K, bits: 4)
        #expect(GPTQ.round(w, quantized: nearest, rows: rows).values == nearest.values, "symmetric \(symmetric)")
        #expect(GPTQ.round(w, quantized: nearest, rows: []) == nearest)
    }
}

/// On correlated rows GPTQ lowers the output error the Hessian measures, at 3, 4 and 8 bits,
/// symmetric and asymmetric, keeping every code in its range.
@Test(arguments: [3, 4, 8])
func gptqLowersTheOutputErrorOnCorrelatedRows(bits: Int) {
    let (C, K, R) = (12, 24, 96)
    let w = values(C * K, seed: 11)
    let base = values(R * 4, seed: 12), noise = values(R * K, seed: 13)
    // Rows in a 4-dimensional subspace plus a little noise: strongly correlated channels.
    let rows = (0..<(R * K)).map { i in base[(i / K) * 4 + (i % K) % 4] + 0.05 * noise[i] }
    for symmetric in [true, false] {
        let nearest = symmetric ? WeightQuantizer.quantize(w, outputs: C, inputs: K, bits: bits)
            : WeightQuantizer.quantizeAsymmetric(w, outputs: C, inputs: K, bits: bits)
        let g = GPTQ.round(w, quantized: nearest, rows: rows)
        let before = outputError(w, nearest, rows: rows), after = outputError(w, g, rows: rows)
        #expect(after < 0.7 * before, "\(bits) bits, symmetric \(symmetric): \(after) vs nearest \(before)")
        let qmax = Int8((1 << (bits - 1)) - 1)
        #expect(g.values.allSatisfy { symmetric ? (-qmax...qmax).contains($0) : (-qmax - 1...qmax).contains($0) })
    }
}

/// The remembered rounding is the rounding: equal to `round` on first and repeated calls, and a
/// change of an input (here one input channel's rows) is not served from memory.
@Test func rememberedGPTQEqualsGPTQAndFollowsItsInputs() {
    let (C, K, R) = (6, 16, 40)
    let w = values(C * K, seed: 21)
    var rows = values(R * K, seed: 22).enumerated().map { $1 + 0.5 * values(R * K, seed: 23)[($0 / K) * K] }
    let nearest = WeightQuantizer.quantize(w, outputs: C, inputs: K, bits: 4)
    let direct = GPTQ.round(w, quantized: nearest, rows: rows)
    #expect(GPTQ.roundMemoized(w, quantized: nearest, rows: rows) == direct)
    #expect(GPTQ.roundMemoized(w, quantized: nearest, rows: rows) == direct)
    for r in 0..<R { rows[r * K] *= 10 }   // input channel 0 now dominates the Hessian
    let changed = GPTQ.round(w, quantized: nearest, rows: rows)
    #expect(changed != direct, "the change should move some code")
    #expect(GPTQ.roundMemoized(w, quantized: nearest, rows: rows) == changed)
}
