import Foundation
import Testing
import Quantization
import Tensors
@testable import Workbench

// The numbers the activation screen reads off the statistics, on inputs computed by hand.

@Test func outlierChannelsRankByTheirWorstStepOverTheMedian() {
    // 2 steps × 5 channels. Medians: step 0 → 1, step 1 → 2.
    let absMax: [[Float]] = [[1, 1, 8, 0.5, 3],
                             [2, 2, 4, 10, 2]]
    let ranked = ActivationAnalysis.outlierChannels(absMax, count: 3)
    // ch 2: 8/1 at step 0; ch 3: 10/2 = 5 at step 1; ch 4: 3/1 at step 0.
    #expect(ranked.map(\.channel) == [2, 3, 4])
    #expect(ranked.map(\.peakStep) == [0, 1, 0])
    #expect(ranked.map(\.ratio) == [8, 5, 3])
    #expect(ranked[1].peak == 10)
}

@Test func clippedFractionCountsTheBinsAboveTheThreshold() {
    var histogram = [UInt64](repeating: 0, count: LayerStepStatistics.binCount)
    // 10 zeros, 30 values in the bin of 1.0, 60 in the bin of 4.0: 100 values.
    histogram[0] = 10
    histogram[LayerStepStatistics.bin(of: 1)] = 30
    histogram[LayerStepStatistics.bin(of: 4)] = 60
    #expect(ActivationAnalysis.clippedFraction(histogram, above: 8) == 0)
    #expect(ActivationAnalysis.clippedFraction(histogram, above: 2) == 0.6)
    // A threshold at the lower edge of 4's bin clips all of it; at its upper edge, none of it.
    #expect(ActivationAnalysis.clippedFraction(histogram, above: 4) == 0.6)
    #expect(abs(ActivationAnalysis.clippedFraction(histogram, above: 4 * Float(pow(2.0, 1.0 / 8)) * 0.9999) - 0) < 0.001)
    #expect(ActivationAnalysis.clippedFraction(histogram, above: 0) == 0.9)
}

@Test func clipThresholdIsTheLargestRepresentedMagnitude() {
    #expect(ActivationAnalysis.clipThreshold(ActivationEncoding(kind: .symmetricInt8, scale: 0.5, zeroPoint: 0)) == 63.5)
    // uint8, z = 200: 55 codes above zero, 200 below.
    #expect(ActivationAnalysis.clipThreshold(ActivationEncoding(kind: .asymmetricUInt8, scale: 0.1, zeroPoint: 200)) == 20)
}
