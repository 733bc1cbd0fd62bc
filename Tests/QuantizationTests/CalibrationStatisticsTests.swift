import Foundation
import Testing
@testable import Quantization

@Test func statisticsOfHandCheckableRows() {
    var stats = LayerStepStatistics(width: 3, reservoirCapacity: 2)
    let x: [Float] = [1, -2, 0,
                      -4, 0.5, 0.25,
                      2, 1, -0.125]
    x.withUnsafeBufferPointer { stats.observe($0.baseAddress!, rows: 3) }
    #expect(stats.channelAbsMax == [4, 2, 0.25])
    #expect(stats.minimum == -4 && stats.maximum == 2)
    #expect(stats.rows == 3)
    #expect(stats.histogram.reduce(0, +) == 9)
    #expect(stats.histogram[0] == 1)                                   // the one exact zero
    #expect(stats.histogram[LayerStepStatistics.bin(of: 2)] == 2)      // |−2| and 2 share a bin
    #expect(stats.reservoir.count == 2 * 3)                            // capacity rows, never more
}

@Test func histogramBinsAreLogSpacedWithEightPerOctave() {
    let one = LayerStepStatistics.bin(of: 1)
    #expect(LayerStepStatistics.bin(of: 2) == one + 8)
    #expect(LayerStepStatistics.bin(of: 1.09) == one)                  // 2^(1/8) ≈ 1.0905
    #expect(LayerStepStatistics.bin(of: 1.1) == one + 1)
    #expect(LayerStepStatistics.lowerEdge(of: one) == 1)
    #expect(LayerStepStatistics.bin(of: 1e30) == LayerStepStatistics.binCount - 1)
    #expect(LayerStepStatistics.bin(of: 1e-30) == 1)
}

@Test func reservoirIsAUniformSampleOfBoundedSize() {
    // 10,000 one-value rows 0…9999 into 100 slots: the kept mean is near 5000 and memory is fixed.
    var stats = LayerStepStatistics(width: 1, reservoirCapacity: 100, seed: 7)
    for i in 0..<10_000 { var v = Float(i); stats.observe(&v, rows: 1) }
    #expect(stats.reservoir.count == 100)
    let mean = stats.reservoir.reduce(0, +) / 100
    #expect(abs(mean - 5000) < 800, "reservoir mean \(mean)")
    #expect(Set(stats.reservoir).count == 100)
}

@Test func mergingAddsHistogramsAndTakesMaxima() {
    var a = LayerStepStatistics(width: 2), b = LayerStepStatistics(width: 2)
    var x: [Float] = [1, -3], y: [Float] = [-5, 2]
    a.observe(&x, rows: 1)
    b.observe(&y, rows: 1)
    a.merge(b)
    #expect(a.channelAbsMax == [5, 3] && a.minimum == -5 && a.maximum == 2 && a.rows == 2)
    #expect(a.histogram.reduce(0, +) == 4)
}

/// The bit-twiddled bin equals the log2 definition: exactly at every sub-octave threshold (one
/// mantissa step below it is the previous bin), and on random magnitudes over the whole range.
@Test func histogramBinsMatchTheLogDefinition() {
    let one = LayerStepStatistics.bin(of: 1)
    for (k, threshold) in LayerStepStatistics.subOctaveThresholds.enumerated() {
        let at = Float(bitPattern: (127 << 23) | threshold), below = Float(bitPattern: (127 << 23) | (threshold - 1))
        #expect(Double(at) >= pow(2, Double(k + 1) / 8) && Double(below) < pow(2, Double(k + 1) / 8))
        #expect(LayerStepStatistics.bin(of: at) == one + k + 1)
        #expect(LayerStepStatistics.bin(of: below) == one + k)
    }
    var state: UInt64 = 12345
    for _ in 0..<100_000 {
        state = state &* 6364136223846793005 &+ 1442695040888963407
        let a = Float(pow(2, Double(state >> 11) / Double(1 << 53) * 48 - 28))   // 2^-28 … 2^20
        let e = log2(Double(a))
        let reference = e >= 16 ? LayerStepStatistics.binCount - 1
            : 1 + min(max(Int(((e + 24) * 8).rounded(.down)), 0), LayerStepStatistics.binCount - 3)
        #expect(LayerStepStatistics.bin(of: a) == reference, "\(a)")
    }
    #expect(LayerStepStatistics.bin(of: .nan) == LayerStepStatistics.binCount - 1)
    #expect(LayerStepStatistics.bin(of: .infinity) == LayerStepStatistics.binCount - 1)
    #expect(LayerStepStatistics.bin(of: -0.0) == 0)
}
