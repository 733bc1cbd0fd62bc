/// What calibration records for one (layer, sampler step) (QUANTIZATION.md, "Calibration
/// statistics"): per-input-channel max|x| (SmoothQuant), the tensor's min and max, a histogram of
/// |x| with fixed log-spaced bins, and a bounded uniform sample of input rows (reservoir
/// sampling). Memory is fixed whatever the number of prompts.
public struct LayerStepStatistics: Sendable, Equatable {
    /// Histogram bins: 8 per octave of |x| from 2⁻²⁴ to 2¹⁶, plus one bin for exact zeros and one
    /// for anything above.
    public static let binsPerOctave = 8
    public static let lowestExponent = -24
    public static let highestExponent = 16
    public static var binCount: Int { (highestExponent - lowestExponent) * binsPerOctave + 2 }

    public let width: Int
    public private(set) var channelAbsMax: [Float]
    public private(set) var minimum: Float = .infinity
    public private(set) var maximum: Float = -.infinity
    public private(set) var histogram: [UInt64]
    /// Rows seen.
    public private(set) var rows = 0
    /// Up to `reservoirCapacity` sampled rows, `[n, width]`.
    public private(set) var reservoir: [Float] = []
    public let reservoirCapacity: Int
    private var random: UInt64

    public init(width: Int, reservoirCapacity: Int = 32, seed: UInt64 = 0x5eed) {
        self.width = width
        self.reservoirCapacity = reservoirCapacity
        channelAbsMax = [Float](repeating: 0, count: width)
        histogram = [UInt64](repeating: 0, count: LayerStepStatistics.binCount)
        random = seed | 1
    }

    /// Rebuilds statistics saved by `CalibrationCache`.
    public init(width: Int, channelAbsMax: [Float], minimum: Float, maximum: Float, histogram: [UInt64], rows: Int,
                reservoir: [Float], reservoirCapacity: Int) {
        precondition(channelAbsMax.count == width && histogram.count == LayerStepStatistics.binCount && reservoir.count % max(width, 1) == 0)
        self.width = width
        self.channelAbsMax = channelAbsMax
        self.minimum = minimum
        self.maximum = maximum
        self.histogram = histogram
        self.rows = rows
        self.reservoir = reservoir
        self.reservoirCapacity = reservoirCapacity
        random = 1
    }

    /// The histogram bin of a magnitude.
    public static func bin(of magnitude: Float) -> Int {
        guard magnitude > 0 else { return 0 }
        let e = log2(Double(magnitude))
        let index = Int(((e - Double(lowestExponent)) * Double(binsPerOctave)).rounded(.down))
        return min(max(index, 0), binCount - 3) + 1 + (e >= Double(highestExponent) ? 1 : 0)
    }

    /// Lower edge (|x|) of bin `i` (bins 1…binCount−2).
    public static func lowerEdge(of i: Int) -> Float {
        Float(pow(2, Double(lowestExponent) + Double(i - 1) / Double(binsPerOctave)))
    }

    /// Adds `rows` rows of `x` `[rows, width]`.
    public mutating func observe(_ x: UnsafePointer<Float>, rows count: Int) {
        for r in 0..<count {
            let row = x + r * width
            for k in 0..<width {
                let v = row[k]
                let a = abs(v)
                if a > channelAbsMax[k] { channelAbsMax[k] = a }
                if v < minimum { minimum = v }
                if v > maximum { maximum = v }
                histogram[LayerStepStatistics.bin(of: a)] += 1
            }
            // Algorithm R: the i-th row replaces a random slot with probability capacity/i.
            rows += 1
            if reservoir.count < reservoirCapacity * width {
                reservoir.append(contentsOf: UnsafeBufferPointer(start: row, count: width))
            } else {
                let slot = Int(nextRandom() % UInt64(rows))
                if slot < reservoirCapacity {
                    for k in 0..<width { reservoir[slot * width + k] = row[k] }
                }
            }
        }
    }

    /// Merges another statistics object of the same width (histograms add, maxima take the max;
    /// the reservoir keeps this one's rows, topped up with the other's).
    public mutating func merge(_ other: LayerStepStatistics) {
        precondition(other.width == width, "merging statistics of widths \(width) and \(other.width)")
        for k in 0..<width { channelAbsMax[k] = max(channelAbsMax[k], other.channelAbsMax[k]) }
        minimum = min(minimum, other.minimum)
        maximum = max(maximum, other.maximum)
        for i in histogram.indices { histogram[i] += other.histogram[i] }
        rows += other.rows
        let room = reservoirCapacity * width - reservoir.count
        if room > 0 { reservoir.append(contentsOf: other.reservoir.prefix(room)) }
    }

    /// Equal recorded statistics (the reservoir's generator state is not part of the record).
    public static func == (a: LayerStepStatistics, b: LayerStepStatistics) -> Bool {
        a.width == b.width && a.channelAbsMax == b.channelAbsMax && a.minimum == b.minimum && a.maximum == b.maximum
            && a.histogram == b.histogram && a.rows == b.rows && a.reservoir == b.reservoir
            && a.reservoirCapacity == b.reservoirCapacity
    }

    private mutating func nextRandom() -> UInt64 {
        // xorshift64*: a cheap deterministic generator for reservoir slots.
        random ^= random >> 12
        random ^= random << 25
        random ^= random >> 27
        return random &* 2_685_821_657_736_338_717
    }
}

#if canImport(Glibc)
import Glibc
#endif
