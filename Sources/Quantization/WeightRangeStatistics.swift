/// A channel whose range stands out from its peers: `ratio = value / median(values)`.
public struct OutlierChannel: Sendable, Equatable {
    public let channel: Int
    public let value: Float
    public let ratio: Float
}

/// Per-channel ranges of one linear layer's weight `W` `[C, K]` — what the workbench's weight
/// pane shows — and how much per-channel quantization buys over per-tensor on this weight.
public struct WeightRangeStatistics: Sendable, Equatable {
    public let outputs: Int
    public let inputs: Int
    /// min / max of each row (output channel), `C` values each.
    public let outputMin: [Float]
    public let outputMax: [Float]
    /// max_c |W[c, j]| per input channel j, `K` values: the denominator of SmoothQuant's `s_j`.
    public let inputAbsMax: [Float]
    /// Output channels ranked by max|W[c, :]| / median over channels, largest first.
    public let outputOutliers: [OutlierChannel]
    /// Input channels ranked by max|W[:, j]| / median over channels, largest first.
    public let inputOutliers: [OutlierChannel]
    /// SQNR (dB) of the int8 round trip with one scale per output channel and with one per tensor.
    public let perChannelSQNRdB: Double
    public let perTensorSQNRdB: Double

    /// How many ranked channels are kept.
    public static let rankedCount = 16

    /// - Parameter weight: `[C, K]` row-major floats.
    public init(weight: [Float], outputs: Int, inputs: Int, bits: Int = 8) {
        precondition(weight.count == outputs * inputs && outputs > 0 && inputs > 0, "weight is not [\(outputs), \(inputs)]")
        self.outputs = outputs
        self.inputs = inputs
        var rowMin = [Float](repeating: .infinity, count: outputs)
        var rowMax = [Float](repeating: -.infinity, count: outputs)
        var colAbs = [Float](repeating: 0, count: inputs)
        weight.withUnsafeBufferPointer { w in
            for c in 0..<outputs {
                var lo = Float.infinity, hi = -Float.infinity
                for k in 0..<inputs {
                    let v = w[c * inputs + k]
                    lo = min(lo, v)
                    hi = max(hi, v)
                    colAbs[k] = max(colAbs[k], abs(v))
                }
                rowMin[c] = lo
                rowMax[c] = hi
            }
        }
        outputMin = rowMin
        outputMax = rowMax
        inputAbsMax = colAbs
        let rowAbs = zip(rowMin, rowMax).map { max(abs($0), abs($1)) }
        outputOutliers = WeightRangeStatistics.rank(rowAbs)
        inputOutliers = WeightRangeStatistics.rank(colAbs)
        let perChannel = WeightQuantizer.quantize(weight, outputs: outputs, inputs: inputs, bits: bits, granularity: .perChannel)
        let perTensor = WeightQuantizer.quantize(weight, outputs: outputs, inputs: inputs, bits: bits, granularity: .perTensor)
        perChannelSQNRdB = sqnrDB(reference: weight, approximation: perChannel.dequantized())
        perTensorSQNRdB = sqnrDB(reference: weight, approximation: perTensor.dequantized())
    }

    /// Channels by value / median, largest first (ties by channel index).
    static func rank(_ values: [Float]) -> [OutlierChannel] {
        let sorted = values.sorted()
        let n = sorted.count
        let median = n % 2 == 1 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2
        let ranked = values.enumerated().map { i, v in
            OutlierChannel(channel: i, value: v, ratio: median > 0 ? v / median : (v > 0 ? .infinity : 1))
        }.sorted { ($0.ratio, -$0.channel) > ($1.ratio, -$1.channel) }
        return Array(ranked.prefix(rankedCount))
    }
}
