import Testing
@testable import Quantization

@Test func perChannelQuantizationFollowsTheFormula() {
    // Row 0: max 31.75 → Δ = 0.25 exactly; halves round away from zero. Row 1 all zero → Δ = 1.
    let w: [Float] = [31.75, -15.875, 0.125, 0.375, 0.1,
                      0, 0, 0, 0, 0]
    let q = WeightQuantizer.quantize(w, outputs: 2, inputs: 5)
    #expect(q.scales == [0.25, 1])
    #expect(q.values[0...4] == [127, -64, 1, 2, 0])
    #expect(q.values[5...9] == [0, 0, 0, 0, 0])
    #expect(q.dequantized()[0...4] == [31.75, -16, 0.25, 0.5, 0])
}

@Test func perTensorSharesOneScale() {
    let w: [Float] = [1, -0.5, 0.01, 0.02]
    let q = WeightQuantizer.quantize(w, outputs: 2, inputs: 2, granularity: .perTensor)
    #expect(q.scales == [Float(1) / 127, Float(1) / 127])
    #expect(q.values == [127, -64, 1, 3])
}

@Test func fourBitUsesSevenLevels() {
    let q = WeightQuantizer.quantize([7, -3.5, 1], outputs: 1, inputs: 3, bits: 4)
    #expect(q.scales == [1])
    #expect(q.values == [7, -4, 1])
}

@Test func sqnrIsTenLog10OfSignalOverNoise() {
    #expect(sqnrDB(reference: [3, 4], approximation: [3, 4]) == .infinity)
    // signal 25, noise 0.25 → 20 dB
    #expect(abs(sqnrDB(reference: [3, 4], approximation: [3.5, 4]) - 20) < 1e-12)
    #expect(sqnrDB(reference: [0, 0], approximation: [1, 0]) == -.infinity)
}

@Test func weightRangesRankOutliersAndShowPerChannelGain() {
    // 4 outputs × 3 inputs; input channel 2 is 10× louder; output row 3 is 100× quieter.
    let w: [Float] = [0.1, -0.2, 1.0,
                      0.2, 0.1, -2.0,
                      -0.1, 0.2, 1.5,
                      0.001, -0.002, 0.001]
    let stats = WeightRangeStatistics(weight: w, outputs: 4, inputs: 3)
    #expect(stats.outputMin == [-0.2, -2.0, -0.1, -0.002])
    #expect(stats.outputMax == [1.0, 0.2, 1.5, 0.001])
    #expect(stats.inputAbsMax == [0.2, 0.2, 2.0])
    #expect(stats.inputOutliers.first?.channel == 2)
    #expect(stats.inputOutliers.first?.ratio == 10)   // 2.0 / median(0.2, 0.2, 2.0)
    #expect(stats.outputOutliers.first?.channel == 1) // 2.0 / median(1, 2, 1.5, 0.002) = 2 / 1.25
    #expect(stats.outputOutliers.first?.ratio == 1.6)
    // The quiet row is crushed by one shared scale: per-channel is clearly better.
    #expect(stats.perChannelSQNRdB > stats.perTensorSQNRdB + 3)
}

/// Asymmetric weights, by hand: row [−1, 0, 3] at 8 bits spans [−1, 3], Δ = 4/255, z = −128 + 64 = −64
/// (round(1/Δ) = 64); zero is exact, the extremes land on −128 and 127.
@Test func asymmetricWeightsByHand() {
    let q = WeightQuantizer.quantizeAsymmetric([-1, 0, 3], outputs: 1, inputs: 3, bits: 8)
    #expect(q.scales == [Float(4) / 255])
    #expect(q.zeroPoints == [-64])
    #expect(q.values == [-128, -64, 127])
    #expect(q.dequantized()[1] == 0)
    // A one-signed row uses the whole grid, not half of it: error ≤ Δ/2 with Δ = max/(2^b − 1).
    let positive: [Float] = (0..<64).map { Float($0) / 63 }
    let a = WeightQuantizer.quantizeAsymmetric(positive, outputs: 1, inputs: 64, bits: 4)
    let s = WeightQuantizer.quantize(positive, outputs: 1, inputs: 64, bits: 4)
    func worst(_ q: QuantizedWeights) -> Float { zip(q.dequantized(), positive).map { abs($0 - $1) }.max()! }
    #expect(worst(a) <= a.scales[0] / 2 * 1.0001 && a.scales[0] == Float(1) / 15)
    #expect(worst(a) < worst(s))
    #expect(a.values.allSatisfy { (-8...7).contains($0) })
}
