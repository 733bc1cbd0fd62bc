import Foundation
import Tensors
import VideoDiT

/// `plan --auto` (QUANTIZATION.md, "Automatic α"; issue 14): a per-block search over the static
/// choices a plan offers, scored on the **block's output** rather than on its linears one by one.
///
/// Every block is run alone (`STDiT3.replay`) on its FP inputs — recorded along FP sampling
/// trajectories of a few calibration prompts — under each candidate plan, and compared with its FP
/// output. The error is `Σ‖out_q − out_fp‖² / Σ‖out_fp − in‖²`: quantization noise against the
/// block's own update (the residual stream it adds to), so it sees how the block's linears,
/// attention and GELU interact. Blocks are independent under this measure (FP inputs), so the
/// search is one greedy pass per block:
/// 0. a channel shift (`shift`) on or off for `attn.qkv` and `mlp.fc1`, at the starting α;
/// 1. the block's α (its foldable layers) over `alphaGrid` — per step group with time-step-wise
///    smoothing (scored on that group's steps), else one α for all steps;
/// 2. each layer's own α, the same way: the explicit-multiplier layers (`cross_attn.q_linear`,
///    `mlp.fc2`) take none from the block, and the folded ones each fold alone, so need not share it;
/// 2b. (`searchRotation`) a Hadamard rotation of each static layer's input, replacing its α and shift;
/// 3. each static layer's activation code: symmetric int8 or asymmetric uint8, then each layer's
///    weight clipping (min-max or MSE per output channel);
/// 4. each static layer's range estimator: min-max, percentile or MSE (per step, from its rows).
/// A move is kept only when it lowers the error on the fitting inputs (scored with nearest
/// rounding; a plan asking `weight_rounding: gptq` gets GPTQ applied to the result, and the
/// before/after figures are with it). The held-out inputs (other prompts' trajectories) are
/// scored before and after, never searched on.
/// Candidates run the fake-quant reference, which equals the int8 path up to float rounding, so
/// the choice does not depend on the CPU's ISA.
public struct AutoPlanSearch: Sendable {
    /// One block's outcome.
    public struct BlockReport: Sendable {
        public let block: String
        /// What the search set, e.g. `α 0.9 · attn.qkv α 0.6 shift · mlp.fc2 α 1.0 uint8 W mse`.
        public let choices: String
        /// Relative output error (see the type's doc) of the starting plan and of the result.
        public let fitBefore, fitAfter, heldOutBefore, heldOutAfter: Double
        /// Candidate plans scored.
        public let candidates: Int
        /// Under the chosen plan, per layer of the block (model order), the block's output error
        /// with that layer alone quantized: where the remaining error comes from.
        public let layerErrors: [(layer: String, error: Double)]
    }

    public let model: STDiT3
    public let statistics: [String: [Int: LayerStepStatistics]]
    /// Block inputs the search fits on, and the ones it only reports.
    public let fit: [BlockInput]
    public let heldOut: [BlockInput]
    public var alphaGrid: [Double] = (0...10).map { Double($0) / 10 }
    /// Whether step 4 (min-max / percentile / MSE per layer) runs; off by default: on the demo
    /// model it improved the blocks' output error yet lost 3.9 dB of video PSNR (docs/results.md).
    public var searchEstimators = false
    /// Whether step 2b (a Hadamard rotation of each layer's input, `LayerSettings.rotation`) runs.
    public var searchRotation = false
    /// Only these blocks are searched (nil: all); the others keep the starting plan's settings.
    public var blocks: Set<String>?

    private let fitReference: [[Float]]
    private let heldOutReference: [[Float]]

    /// `fit`/`heldOut`: block inputs recorded on FP trajectories (`recordBlockInputs`).
    public init(model: STDiT3, statistics: [String: [Int: LayerStepStatistics]], fit: [BlockInput], heldOut: [BlockInput]) throws {
        self.model = model
        self.statistics = statistics
        self.fit = fit
        self.heldOut = heldOut
        let fp = Float32Executor()
        fitReference = try fit.map { try model.replay($0, executor: fp) }
        heldOutReference = try heldOut.map { try model.replay($0, executor: fp) }
    }

    /// Samples `conditions` (one prompt each, batched, with CFG) in FP from `seed`'s noise on
    /// `schedule` and returns every block's input at every step (`[B, N, C]` each, B = 2 × prompts).
    public static func recordBlockInputs(model: STDiT3, conditions: [TextCondition], seed: UInt64, schedule: RectifiedFlowSchedule,
                                         cfgScale: Float, fps: Float, size: [Int]) throws -> [BlockInput] {
        guard !conditions.isEmpty else { return [] }
        let recorder = BlockInputRecorder()
        var generator = NoiseGenerator(seed: seed)
        let noise = generator.gaussian(shape: [conditions.count, model.config.inChannels] + size)
        let joined = TextCondition(embeddings: Tensor(shape: [conditions.count] + Array(conditions[0].embeddings.shape.dropFirst()),
                                                      scalars: conditions.flatMap(\.embeddings.scalars)),
                                   mask: conditions.flatMap(\.mask))
        let pixelScale: Float = model.config.inChannels == 3 ? 1 : 8
        _ = try RectifiedFlowSampler(model: model, cfgScale: cfgScale, fps: fps)
            .sample(noise: noise, condition: joined, schedule: schedule, height: Float(size[1]) * pixelScale,
                    width: Float(size[2]) * pixelScale, executor: recorder)
        return recorder.inputs
    }

    /// Relative output error of `block` under `plan` over the recorded inputs at `steps` (all when nil).
    public func error(of block: String, plan: QuantizationPlan, steps: Set<Int>? = nil, heldOut: Bool = false) throws -> Double {
        let inputs = heldOut ? self.heldOut : fit
        let references = heldOut ? heldOutReference : fitReference
        let q = try QuantizedModel(model: model, statistics: statistics, plan: Self.only(block, of: plan, model: model))
        let executor = QuantizedModelExecutor(model: q, mode: .fakeQuant)
        var signal = 0.0, noise = 0.0
        for (input, reference) in zip(inputs, references) where input.name == block && (steps?.contains(input.step ?? 0) ?? true) {
            let out = try model.replay(input, executor: executor)
            for i in out.indices {
                let d = Double(out[i]) - Double(reference[i]), u = Double(reference[i]) - Double(input.hidden[i])
                noise += d * d
                signal += u * u
            }
        }
        return signal > 0 ? noise / signal : 0
    }

    /// `plan` with every other block kept in float: the candidate model builds only what the
    /// scored block runs (its error does not depend on the other blocks, whose inputs are recorded).
    static func only(_ block: String, of plan: QuantizationPlan, model: STDiT3) -> QuantizationPlan {
        var p = plan
        let order = model.blockNames
        for other in order where other != block {
            p.blocks = QuantizationPlan.entries(p.blocks, setting: "keep_fp", to: .bool(true), of: other, order: order)
        }
        p.layers = p.layers.filter { QuantizationPlan.block(of: $0.0) == block }
        return p
    }

    /// Runs the search from `plan`; returns the chosen plan and one report per block (model order).
    /// `progress(done, total)` follows the blocks.
    public func run(from plan: QuantizationPlan, progress: (_ done: Int, _ total: Int) -> Void = { _, _ in }) throws -> (plan: QuantizationPlan, reports: [BlockReport]) {
        // Candidates use nearest rounding: GPTQ per candidate would re-round the block's weights
        // every time. A plan asking GPTQ in its defaults gets it back, and its figures include it.
        let rounding = plan.defaults.weightRounding
        func final(_ p: QuantizationPlan) -> QuantizationPlan { var q = p; q.defaults.weightRounding = rounding; return q }
        var p = plan
        p.defaults.weightRounding = .nearest
        var reports: [BlockReport] = []
        let blocks = model.blockNames, searched = blocks.filter { self.blocks?.contains($0) ?? true }
        let layerOrder = model.blockLinears.map(\.name)
        let groups = plan.stepGroups
        for (done, block) in searched.enumerated() {
            let before = (fit: try error(of: block, plan: final(p)), held: try error(of: block, plan: final(p), heldOut: true))
            var candidates = 0
            let settings = try p.blockSettings(block)
            guard !settings.keepFloat else {
                reports.append(BlockReport(block: block, choices: "kept in float", fitBefore: before.fit, fitAfter: before.fit,
                                           heldOutBefore: before.held, heldOutAfter: before.held, candidates: 0, layerErrors: []))
                progress(done + 1, searched.count)
                continue
            }
            let perGroup = settings.smoothing == .timestep && groups.count > 1
            let passes: [Int?] = perGroup ? groups.indices.map { $0 } : [nil]
            let layers = layerOrder.filter { QuantizationPlan.block(of: $0) == block }

            // Keeps the grid value of least error for one α setting (the current one on a tie).
            func searchAlpha(current: Double, steps: Set<Int>?, apply: (Double) -> QuantizationPlan) throws {
                var best = (alpha: current, error: try error(of: block, plan: apply(current), steps: steps))
                candidates += 1
                for a in alphaGrid where a != current {
                    let e = try error(of: block, plan: apply(a), steps: steps)
                    candidates += 1
                    if e < best.error { best = (a, e) }
                }
                p = apply(best.alpha)
            }
            // The same for the α of one plan entry (the block's or a layer's): its one α, or with
            // `group` that group's entry of its α per group.
            func searchAlpha(of name: String, in entries: WritableKeyPath<QuantizationPlan, [(String, JSONValue)]>, order: [String],
                             settings s: LayerSettings, group: Int?, steps: Set<Int>?) throws {
                if let group {
                    var alphas = s.groupAlpha ?? Array(repeating: s.alpha, count: groups.count)
                    try searchAlpha(current: alphas[group], steps: steps) { a in
                        alphas[group] = a
                        var q = p
                        q[keyPath: entries] = QuantizationPlan.entries(p[keyPath: entries], setting: "group_alpha",
                                                                       to: .array(alphas.map { .double($0) }), of: name, order: order)
                        return q
                    }
                } else {
                    try searchAlpha(current: s.alpha, steps: steps) { a in
                        var q = p
                        q[keyPath: entries] = QuantizationPlan.entries(p[keyPath: entries], setting: "alpha", to: .double(a), of: name, order: order)
                        q[keyPath: entries] = QuantizationPlan.entries(q[keyPath: entries], setting: "group_alpha", to: nil, of: name, order: order)
                        return q
                    }
                }
            }
            // Tries, layer by layer, each alternative value of one setting over all steps, keeping
            // a value when it lowers the block's error. `alternatives` is empty for a layer left alone.
            func searchSetting(_ key: String, _ alternatives: (_ layer: String, _ settings: LayerSettings) -> [JSONValue]) throws {
                var current = try error(of: block, plan: p)
                candidates += 1
                for layer in layers {
                    let ls = try p.settings(for: layer, foldable: SmoothQuant.fold(of: layer).isFolded)
                    for value in alternatives(layer, ls) {
                        var q = p
                        q.layers = QuantizationPlan.entries(p.layers, setting: key, to: value, of: layer, order: layerOrder)
                        let e = try error(of: block, plan: q)
                        candidates += 1
                        if e < current { (p, current) = (q, e) }
                    }
                }
            }
            func isStatic(_ s: LayerSettings) -> Bool { !s.keepFloat && !s.activations.isDynamic }
            // 0. A channel shift on the layers that read the modulated LayerNorm (free: it folds).
            try searchSetting("shift") { layer, s in SmoothQuant.fold(of: layer).takesShift && isStatic(s) ? [.bool(!s.shift)] : [] }
            // 1. The block's α (its foldable layers), for every group before any layer takes an
            // α of its own (a layer's own α would hide the block's from then on).
            for group in passes {
                try searchAlpha(of: block, in: \.blocks, order: blocks, settings: try p.blockSettings(block), group: group,
                                steps: group.map { Set(groups[$0]) })
            }
            for group in passes {
                let steps = group.map { Set(groups[$0]) }
                // 2. Each layer's own α, from the block's: the explicit-multiplier layers take
                // none from the block, and the folded ones need not share one (each folds alone).
                for layer in layers {
                    let ls = try p.settings(for: layer, foldable: SmoothQuant.fold(of: layer).isFolded)
                    guard isStatic(ls) else { continue }
                    try searchAlpha(of: layer, in: \.layers, order: layerOrder, settings: ls, group: group, steps: steps)
                }
            }
            // 2b. A Hadamard rotation of each static layer's input, in place of its α and shift:
            // kept where the rotated input's one static range serves the block better.
            if searchRotation {
                var current = try error(of: block, plan: p)
                candidates += 1
                for layer in layers {
                    let ls = try p.settings(for: layer, foldable: SmoothQuant.fold(of: layer).isFolded)
                    guard isStatic(ls), ls.rotation == .none else { continue }
                    var q = p
                    for key in ["alpha", "group_alpha", "shift"] {
                        q.layers = QuantizationPlan.entries(q.layers, setting: key, to: nil, of: layer, order: layerOrder)
                    }
                    q.layers = QuantizationPlan.entries(q.layers, setting: "rotation", to: .string("hadamard"), of: layer, order: layerOrder)
                    let e = try error(of: block, plan: q)
                    candidates += 1
                    if e < current { (p, current) = (q, e) }
                }
            }
            // 3. Activation codes, one per layer for all steps; then weight clipping per layer,
            // min-max or the MSE-optimal clip of each output channel.
            try searchSetting("activations") { _, s in isStatic(s) ? [.string(s.activations == .int8 ? "uint8" : "int8")] : [] }
            try searchSetting("weight_clip") { _, s in s.keepFloat ? [] : [.string(s.weightClip == .minmax ? "mse" : "minmax")] }
            // 4. Range estimators, one per layer for all steps: min-max covers every value, MSE
            // and the percentile clip the rare largest ones (better locally; the block output
            // judges whether those values mattered).
            if searchEstimators {
                try searchSetting("estimator") { _, s in
                    isStatic(s) ? LayerSettings.Estimator.allCases.filter { $0 != s.estimator }.map { .string($0.rawValue) } : []
                }
            }
            let after = (fit: try error(of: block, plan: final(p)), held: try error(of: block, plan: final(p), heldOut: true))
            let alone = try layers.map { layer in
                var q = p
                for other in layers where other != layer {
                    q.layers = QuantizationPlan.entries(q.layers, setting: "keep_fp", to: .bool(true), of: other, order: layerOrder)
                }
                return (layer, try error(of: block, plan: final(q)))
            }
            reports.append(BlockReport(block: block, choices: try describe(block, plan: p, layers: layers), fitBefore: before.fit,
                                       fitAfter: after.fit, heldOutBefore: before.held, heldOutAfter: after.held, candidates: candidates,
                                       layerErrors: alone))
            progress(done + 1, searched.count)
        }
        return (final(p), reports)
    }

    /// The block's chosen settings in a line: its α (per group if so), then each layer that has its own α or a uint8 code.
    func describe(_ block: String, plan: QuantizationPlan, layers: [String]) throws -> String {
        func alphas(_ s: LayerSettings) -> String {
            if s.smoothing == .timestep, let g = s.groupAlpha { return g.map { String(format: "%.1f", $0) }.joined(separator: "/") }
            return String(format: "%.1f", s.alpha)
        }
        var parts = ["α " + alphas(try plan.blockSettings(block))]
        for layer in layers {
            let s = try plan.settings(for: layer, foldable: SmoothQuant.fold(of: layer).isFolded)
            var bits: [String] = []
            if alphas(s) != parts[0].dropFirst(2) { bits.append("α " + alphas(s)) }
            if s.activations == .uint8 { bits.append("uint8") }
            if s.estimator != .minmax { bits.append(s.estimator.rawValue) }
            if s.shift && SmoothQuant.fold(of: layer).takesShift { bits.append("shift") }
            if s.rotation == .hadamard { bits.append("hadamard") }
            if s.weightClip != .minmax { bits.append("W \(s.weightClip.rawValue)") }
            if !bits.isEmpty { parts.append(String(layer.dropFirst(block.count + 1)) + " " + bits.joined(separator: " ")) }
        }
        return parts.joined(separator: " · ")
    }
}
