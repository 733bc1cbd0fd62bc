import Foundation
import Quantization
import Tensors

/// What the activation screen reads off the statistics, as plain values (computed per frame:
/// a few thousand operations for the demo model).
public enum ActivationAnalysis {
    /// One input channel's behaviour over the sampler steps.
    public struct ChannelOverSteps: Sendable, Equatable {
        public let channel: Int
        /// Its largest max|x| over the steps, and the step where it peaks.
        public let peak: Float
        public let peakStep: Int
        /// `peak` over the median channel's max|x| at that step.
        public let ratio: Float
    }

    /// Input channels ranked by how far they stand above the median channel at their worst step.
    public static func outlierChannels(_ absMax: [[Float]], count: Int = 16) -> [ChannelOverSteps] {
        guard let width = absMax.first?.count, width > 0 else { return [] }
        let medians = absMax.map { step -> Float in step.sorted()[width / 2] }
        let ranked = (0..<width).map { j -> ChannelOverSteps in
            var best = ChannelOverSteps(channel: j, peak: 0, peakStep: 0, ratio: 0)
            for (s, step) in absMax.enumerated() {
                let ratio = medians[s] > 0 ? step[j] / medians[s] : (step[j] > 0 ? .infinity : 0)
                if ratio > best.ratio { best = ChannelOverSteps(channel: j, peak: step[j], peakStep: s, ratio: ratio) }
            }
            return best
        }
        return Array(ranked.sorted { ($0.ratio, -$0.channel) > ($1.ratio, -$1.channel) }.prefix(count))
    }

    /// Input channels ranked by max|x| / median at one step.
    public static func outlierChannels(atStep absMax: [Float], count: Int = 16) -> [(channel: Int, value: Float, ratio: Float)] {
        guard !absMax.isEmpty else { return [] }
        let median = absMax.sorted()[absMax.count / 2]
        return absMax.enumerated()
            .map { (channel: $0.offset, value: $0.element, ratio: median > 0 ? $0.element / median : 0) }
            .sorted { ($0.value, -$0.channel) > ($1.value, -$1.channel) }
            .prefix(count).map { $0 }
    }

    /// The share of recorded values whose magnitude lies above `threshold` (those a symmetric
    /// encoding clips), from the log-binned |x| histogram. The bin containing the threshold counts
    /// in proportion to where the threshold falls in it (log scale): ±1 bin, 2^(1/8) ≈ 9% of |x|.
    public static func clippedFraction(_ histogram: [UInt64], above threshold: Float) -> Double {
        let total = histogram.reduce(0, +)
        guard total > 0, threshold.isFinite else { return 0 }
        guard threshold > 0 else { return Double(total - histogram[0]) / Double(total) }
        let bin = LayerStepStatistics.bin(of: threshold)
        var above = Double(histogram[(bin + 1)...].reduce(0, +))
        if bin >= 1 && bin < histogram.count - 1 {
            let lo = log2(Double(LayerStepStatistics.lowerEdge(of: bin)))
            let position = (log2(Double(threshold)) - lo) * Double(LayerStepStatistics.binsPerOctave)
            above += Double(histogram[bin]) * max(0, min(1, 1 - position))
        }
        return above / Double(total)
    }

    /// Largest |value| an encoding represents without clipping.
    public static func clipThreshold(_ e: ActivationEncoding) -> Float {
        let top = Float(e.qmax - e.zeroPoint) * e.scale, bottom = Float(e.zeroPoint - e.qmin) * e.scale
        return max(top, bottom)
    }
}
