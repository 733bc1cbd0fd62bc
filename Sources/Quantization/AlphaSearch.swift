import Tensors
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
        let best = curves.mapValues { Self.best($0)! }
        return Result(best: best, curves: curves)
    }

    /// One block's curve under `plan` as it stands (the other blocks and layers keep their
    /// settings): the block's α set to each grid value, the relative local error of its layers.
    /// Without `group`, the α is the same for every step group and the error spans all steps;
    /// with `group` (time-step-wise smoothing), only that group's α moves (the others keep theirs,
    /// `group_alpha`) and the error spans that group's steps.
    public static func curve(block: String, group: Int? = nil, model: VideoModel & ModulatedBlocks,
                             statistics: [String: [Int: LayerStepStatistics]], plan: QuantizationPlan,
                             grid: [Double] = defaultGrid) throws -> [(alpha: Double, error: Double)] {
        let ordered = model.blockLinears.map(\.name).filter { QuantizationPlan.block(of: $0) == block }
        let layers = Set(ordered)
        let order = model.blockLinears.map { QuantizationPlan.block(of: $0.name) }
        var current: [Double] = []
        if let group {
            guard plan.stepGroups.indices.contains(group) else {
                throw PlanError("step group \(group + 1) does not exist: the plan has \(plan.stepGroups.count)")
            }
            // The block's own settings, as the plan screen edits them.
            let settings = try plan.blockSettings(block)
            guard settings.smoothing == .timestep else { throw PlanError("\(block): α per step group needs time-step-wise smoothing") }
            current = settings.groupAlpha ?? Array(repeating: settings.alpha, count: plan.stepGroups.count)
            guard current.count == plan.stepGroups.count else {
                throw PlanError("blocks.\"\(block)\".group_alpha: \(current.count) values for \(plan.stepGroups.count) step groups")
            }
        }
        let steps = group.map { Set(plan.stepGroups[$0]) }
        return try grid.map { alpha in
            var p = plan
            if let group {
                var alphas = current
                alphas[group] = alpha
                p.blocks = QuantizationPlan.entries(plan.blocks, setting: "group_alpha", to: .array(alphas.map { .double($0) }), of: block, order: order)
            } else {
                p.blocks = QuantizationPlan.entries(plan.blocks, setting: "alpha", to: .double(alpha), of: block, order: order)
                // One α for every step group: an α per group would override it.
                p.blocks = QuantizationPlan.entries(p.blocks, setting: "group_alpha", to: nil, of: block, order: order)
            }
            let q = try QuantizedModel(model: model, statistics: statistics, plan: p)
            // Summed in model order (and step order), so the figure does not depend on a dictionary's order.
            let perStep = try LayerSQNR.energiesPerStep(q, model: model, statistics: statistics, mode: .fakeQuant, layers: layers)
            var e = (signal: 0.0, noise: 0.0)
            for layer in ordered {
                for (s, step) in (perStep[layer] ?? []).enumerated() where steps?.contains(s) ?? true {
                    e = (e.signal + step.signal, e.noise + step.noise)
                }
            }
            return (alpha, e.signal > 0 ? e.noise / e.signal : 0)
        }
    }

    /// The grid point of least error (the smaller α on a tie).
    public static func best(_ curve: [(alpha: Double, error: Double)]) -> Double? {
        curve.min { $0.error < $1.error || ($0.error == $1.error && $0.alpha < $1.alpha) }?.alpha
    }
}
