import Foundation
import VideoDiT

/// Local layer SQNR (QUANTIZATION.md, "Quality measures"): each quantized layer on FP inputs —
/// the calibration reservoir rows of every step, brought into the layer's smoothed domain
/// (`x / s` where `1/s` is folded upstream, `(x − z)/s` with a channel shift) — against the same layer's smoothed float weights,
/// so the figure measures quantization alone. Energies are summed over steps before the ratio.
public enum LayerSQNR {
    /// dB per quantized layer name.
    /// `layers`: only these (nil: every quantized layer).
    public static func local(_ q: QuantizedModel, model: VideoModel, statistics: [String: [Int: LayerStepStatistics]],
                             mode: QuantizedModelExecutor.Mode = .int8, layers: Set<String>? = nil) throws -> [String: Double] {
        try energies(q, model: model, statistics: statistics, mode: mode, layers: layers).mapValues(decibels)
    }

    /// Σ‖y‖² and Σ‖y − y_q‖² per quantized layer over the calibration rows of every step.
    public static func energies(_ q: QuantizedModel, model: VideoModel, statistics: [String: [Int: LayerStepStatistics]],
                                mode: QuantizedModelExecutor.Mode, layers: Set<String>? = nil) throws -> [String: (signal: Double, noise: Double)] {
        try energiesPerStep(q, model: model, statistics: statistics, mode: mode, layers: layers).mapValues(total)
    }

    /// Local SQNR in dB per quantized layer and step (the layer × step quality map); a step without
    /// calibration rows gives NaN, an exact step +∞.
    public static func perStep(_ q: QuantizedModel, model: VideoModel, statistics: [String: [Int: LayerStepStatistics]],
                               mode: QuantizedModelExecutor.Mode = .int8) throws -> [String: [Double]] {
        try energiesPerStep(q, model: model, statistics: statistics, mode: mode).mapValues { $0.map(stepDecibels) }
    }

    /// The energies of all steps summed.
    public static func total(_ steps: [(signal: Double, noise: Double)]) -> (signal: Double, noise: Double) {
        steps.reduce((signal: 0.0, noise: 0.0)) { ($0.signal + $1.signal, $0.noise + $1.noise) }
    }

    /// SQNR in dB of summed energies; +∞ when exact.
    public static func decibels(_ e: (signal: Double, noise: Double)) -> Double {
        e.noise > 0 ? 10 * log10(e.signal / e.noise) : .infinity
    }

    /// As `decibels`, NaN for a step without calibration rows.
    public static func stepDecibels(_ e: (signal: Double, noise: Double)) -> Double {
        e.signal == 0 && e.noise == 0 ? .nan : decibels(e)
    }

    /// Σ‖y‖² and Σ‖y − y_q‖² per quantized layer and step, over that step's calibration rows.
    public static func energiesPerStep(_ q: QuantizedModel, model: VideoModel, statistics: [String: [Int: LayerStepStatistics]],
                                       mode: QuantizedModelExecutor.Mode, layers: Set<String>? = nil) throws -> [String: [(signal: Double, noise: Double)]] {
        let reference = QuantizedModelExecutor(model: q, mode: .float)
        let quantized = QuantizedModelExecutor(model: q, mode: mode)
        var result: [String: [(signal: Double, noise: Double)]] = [:]
        for linear in model.quantizableLinears where layers?.contains(linear.name) ?? true {
            guard let layer = q[linear.name], layer.isQuantized else { continue }
            var perStep = [(signal: Double, noise: Double)](repeating: (0, 0), count: q.plan.steps)
            for step in 0..<q.plan.steps {
                guard let st = statistics[linear.name]?[step], st.reservoirRows > 0 else { continue }
                // The layer's input as the folds deliver it: (x − z)/s (an explicit 1/s is the executor's).
                let x = QuantizedModel.productInputs(st.reservoir, width: layer.inputs, shift: layer.channelShift?[step],
                                                     smoothing: layer.fold.isFolded ? layer.smoothing[layer.setIndex(step: step)] : nil)
                let rows = x.count / layer.inputs
                var a = [Float](repeating: 0, count: rows * layer.outputs), b = a
                try x.withUnsafeBufferPointer { xp in
                    try reference.run(linear, step: step, input: xp.baseAddress!, rows: rows, output: &a)
                    try quantized.run(linear, step: step, input: xp.baseAddress!, rows: rows, output: &b)
                }
                var signal = 0.0, noise = 0.0
                for i in a.indices {
                    signal += Double(a[i]) * Double(a[i])
                    let d = Double(a[i]) - Double(b[i])
                    noise += d * d
                }
                perStep[step] = (signal, noise)
            }
            result[linear.name] = perStep
            reference.release(linear.name)
            quantized.release(linear.name)
        }
        return result
    }
}
