import VideoDiT

/// Automatic SmoothQuant α per block (QUANTIZATION.md, "Automatic α", the block-wise idea of
/// Intel Neural Compressor): for each α of a grid, quantize with every block at that α and
/// measure each block's error; keep each block's best α.
///
/// The error is local: Σ‖y − y_q‖² / Σ‖y‖² summed over the block's quantized linears, each on its
/// FP calibration rows of every step (as `LayerSQNR`), not the block's output along a quantized
/// run — blocks are independent under this measure, so one model build per α serves all blocks.
public enum AlphaSearch {
    public struct Result: Sendable {
        /// Per block (state-dict prefix), the chosen α.
        public let best: [String: Double]
        /// Per block, (α, relative error) over the grid.
        public let curves: [String: [(alpha: Double, error: Double)]]
    }

    public static let defaultGrid: [Double] = (0...20).map { Double($0) / 20 }

    public static func search(model: VideoModel & ModulatedBlocks, statistics: [String: [Int: LayerStepStatistics]],
                              plan: QuantizationPlan, grid: [Double] = defaultGrid) throws -> Result {
        var curves: [String: [(alpha: Double, error: Double)]] = [:]
        for alpha in grid {
            var p = plan
            p.defaults.alpha = alpha
            p.blocks = []
            let q = try QuantizedModel(model: model, statistics: statistics, plan: p)
            var perBlock: [String: (signal: Double, noise: Double)] = [:]
            for (layer, e) in try LayerSQNR.energies(q, model: model, statistics: statistics, mode: .fakeQuant) {
                let block = QuantizationPlan.block(of: layer)
                perBlock[block, default: (0, 0)].signal += e.signal
                perBlock[block, default: (0, 0)].noise += e.noise
            }
            for (block, e) in perBlock { curves[block, default: []].append((alpha, e.signal > 0 ? e.noise / e.signal : 0)) }
        }
        let best = curves.mapValues { curve in curve.min { $0.error < $1.error || ($0.error == $1.error && $0.alpha < $1.alpha) }!.alpha }
        return Result(best: best, curves: curves)
    }
}
