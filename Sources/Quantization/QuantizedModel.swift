import Tensors
import VideoDiT

/// One weight set of a block linear: the float weights after smoothing and after any `1/s` of a
/// downstream layer folded into its rows, and their integer version.
public struct WeightSet: Sendable {
    /// `[C, K]` float32: `W·diag(s)` with folded V rows divided by the consumer's `s`. A quantized
    /// set built from a checkpoint derives it again from the checkpoint when asked (the float
    /// reference, a float export) instead of keeping it beside its integers: an XL model's float
    /// copies are 4.8 GB.
    public var weight: [Float] { stored ?? derive!() }
    /// `[C]`, folded like the rows.
    public let bias: [Float]?
    /// Nil for layers kept in floating point.
    public let quantized: QuantizedWeights?
    private let stored: [Float]?
    private let derive: (@Sendable () -> [Float])?

    public init(weight: [Float], bias: [Float]?, quantized: QuantizedWeights?) {
        stored = weight
        derive = nil
        self.bias = bias
        self.quantized = quantized
    }

    /// A set whose float weights are made by `weight` on each use.
    init(derivedWeight: @escaping @Sendable () -> [Float], bias: [Float]?, quantized: QuantizedWeights) {
        stored = nil
        derive = derivedWeight
        self.bias = bias
        self.quantized = quantized
    }
}

/// A block linear as the plan deploys it.
public struct QuantizedLayer: Sendable {
    public let name: String
    public let outputs: Int
    public let inputs: Int
    public let settings: LayerSettings
    public let fold: SmoothQuant.Fold
    /// Per weight set: SmoothQuant's `s` `[K]`, nil where α = 0.
    public let smoothing: [[Float]?]
    /// One set, or one per step group (time-step-wise smoothing here or in the layer whose `1/s`
    /// folds into this one's rows).
    public let weightSets: [WeightSet]
    /// Per step: the static encoding of the input; empty for float or dynamic layers.
    public let encodings: [ActivationEncoding]
    /// With a channel shift (`LayerSettings.shift`), per step: `z` `[K]`, the midpoint of each
    /// input channel's calibrated range over the steps sharing the step's encoding; nil without.
    public let channelShift: [[Float]]?
    /// With a channel shift, per step: `W'·(z/s)` `[C]` (`W'` the step's weight set), added to the
    /// product's output — the per-step part of the bias that gives back what subtracting `z` took.
    public let shiftBias: [[Float]]?
    /// With a Hadamard rotation (`LayerSettings.rotation`): the block size of `H`; the weights are
    /// folded (`W·Hᵀ`), the input is rotated online before its `1/s`-free quantization.
    public var rotationBlock: Int? = nil
    let groupOfStep: [Int]
    /// Per step group, the `s` of the layer whose `1/s` folds into this one's V rows (nil: none).
    var consumerSmoothing: [[Float]?]? = nil

    public var isQuantized: Bool { !settings.keepFloat }
    public var isStatic: Bool { isQuantized && !settings.activations.isDynamic }

    public func setIndex(step: Int?) -> Int {
        weightSets.count == 1 ? 0 : groupOfStep[min(step ?? 0, groupOfStep.count - 1)]
    }

    public func encoding(step: Int?) -> ActivationEncoding {
        encodings[min(step ?? 0, encodings.count - 1)]
    }

    /// `1/s` to multiply the input by before quantization: explicit folds only.
    public func explicitInverse(set: Int) -> [Float]? {
        guard fold == .explicit, let s = smoothing[set] else { return nil }
        return s.map { 1 / $0 }
    }

    /// Number of distinct static activation encodings deployed (per step, per group or one).
    public var deployedEncodings: Int {
        guard isStatic else { return 0 }
        switch settings.activationGranularity {
        case .step: return groupOfStep.count
        case .group: return Set(groupOfStep).count
        case .global: return 1
        }
    }
}

/// A model quantized by a plan from calibration statistics: every block linear's weight sets and
/// per-step encodings, and the upstream folds (per block and step group).
public final class QuantizedModel: @unchecked Sendable {
    public let plan: QuantizationPlan
    /// Block linears in forward order.
    public let layers: [QuantizedLayer]
    public let groupOfStep: [Int]
    /// Per block, per step group: `1/s` for the modulation rows feeding `attn.qkv` / `mlp.fc1`.
    public let modulationFolds: [String: [(msa: [Float]?, mlp: [Float]?)]]
    /// Per block, per step: the channel shifts `z` of `attn.qkv` / `mlp.fc1` (see `channelShift`).
    public let modulationShifts: [String: [(msa: [Float]?, mlp: [Float]?)]]
    /// Per block, per step group: the folded copy of `y_embedder.y_proj.fc2` (`weight` `[C, Cy]`, `bias` `[C]`).
    public let captionProjections: [String: [(weight: [Float], bias: [Float]?)]]
    /// `y_embedder.y_proj.fc2`'s `[outputs, inputs]`.
    public let captionProjectionShape: (outputs: Int, inputs: Int)
    /// Per attention whose products run on integers (`LayerSettings.attentionProducts`), per step.
    public let attentionEncodings: [String: [AttentionEncodings]]
    let index: [String: Int]

    public subscript(name: String) -> QuantizedLayer? { index[name].map { layers[$0] } }

    /// Deployed integer weight bytes: Σ C·K·b/8 over quantized layers and their weight sets.
    public var weightBytes: Int {
        layers.filter(\.isQuantized).reduce(0) { $0 + $1.weightSets.count * ($1.outputs * $1.inputs * $1.settings.weightBits + 7) / 8 }
    }

    /// Static activation-scale bytes: 8 (scale and zero point) per deployed encoding.
    /// Integer attention products add, per deployed step encoding, the scales of q, k and v (their
    /// zero points are 0), and P's one fixed scale.
    public var scaleBytes: Int {
        layers.reduce(0) { $0 + 8 * $1.deployedEncodings }
            + 12 * attentionDeployedEncodings + 4 * attentionEncodings.count
    }

    /// Distinct static encoding triples (q, k, v) over the integer attentions (per step, per group or one each).
    public let attentionDeployedEncodings: Int

    /// Builds the quantized model. `statistics[layer][step]` must cover every quantized layer and step.
    ///
    /// `reusing`: a model built earlier from the same model and statistics (the workbench's last
    /// plan). Its weight sets serve every layer whose settings, smoothing vectors (own and folded
    /// in) and channel shifts are unchanged, so an edit of one block reads and quantizes that
    /// block's weights only.
    public convenience init(model: VideoModel & ModulatedBlocks, statistics: [String: [Int: LayerStepStatistics]], plan: QuantizationPlan,
                            reusing previous: QuantizedModel? = nil) throws {
        try self.init(model: model, statistics: statistics, plan: plan, encodingsOnly: false, reusing: previous)
    }

    /// The plan's static activation encodings per layer and step, without building the weights:
    /// what the activation screen shows (the same values `init` computes, at a fraction of the
    /// cost — no weight copies, folds or quantization).
    public static func activationEncodings(model: VideoModel & ModulatedBlocks, statistics: [String: [Int: LayerStepStatistics]],
                                           plan: QuantizationPlan) throws -> [String: [ActivationEncoding]] {
        let partial = try QuantizedModel(model: model, statistics: statistics, plan: plan, encodingsOnly: true, reusing: nil)
        return Dictionary(uniqueKeysWithValues: partial.layers.filter(\.isStatic).map { ($0.name, $0.encodings) })
    }

    /// `encodingsOnly`: weight sets hold the layer's own weights unquantized and no shift biases
    /// are computed; such a model never leaves `activationEncodings`.
    private init(model: VideoModel & ModulatedBlocks, statistics: [String: [Int: LayerStepStatistics]], plan: QuantizationPlan,
                 encodingsOnly: Bool, reusing previous: QuantizedModel?) throws {
        // The block linears, and the outer linears (patch embedding, final linear) the plan quantizes.
        try plan.validate(layerNames: model.quantizableLinears.map(\.name))
        let linears = try model.blockLinears + model.outerLinears.filter { !(try plan.settings(for: $0.name, foldable: false)).keepFloat }
        let blockNames = Set(model.blockLinears.map { QuantizationPlan.block(of: $0.name) })
        self.plan = plan
        let groups = plan.groupOfStep
        groupOfStep = groups
        let G = plan.stepGroups.count, S = plan.steps
        var settings: [String: LayerSettings] = [:]
        for l in linears {
            var s = try plan.settings(for: l.name, foldable: SmoothQuant.fold(of: l.name).isFolded)
            // A shift is free only where it folds into the modulation rows, and means nothing
            // without a static encoding.
            s.shift = s.shift && SmoothQuant.fold(of: l.name).takesShift && !s.keepFloat && !s.activations.isDynamic
            // A rotation is an online op before a static quantizer; its range is H·x's, so it
            // replaces smoothing and the shift on that layer.
            if s.rotation == .hadamard && !s.keepFloat && !s.activations.isDynamic {
                s.alpha = 0
                s.groupAlpha = nil
                s.shift = false
            } else {
                s.rotation = .none
            }
            settings[l.name] = s
        }

        // Inputs per layer, and per attention operand the width of its projection's input.
        var widths = Dictionary(uniqueKeysWithValues: linears.map { ($0.name, $0.inputs) })
        for a in QuantizationPlan.attentions(layerNames: linears.map(\.name)) {
            guard let projection = linears.first(where: { $0.name == a + ".proj" }) else { continue }
            for operand in AttentionOperand.allCases { widths[operand.name(of: a)] = projection.inputs }
        }
        var rotationBlocks: [String: Int] = [:]
        for l in linears where settings[l.name]!.rotation == .hadamard { rotationBlocks[l.name] = HadamardRotation.blockSize(width: l.inputs) }
        func stats(_ layer: String, _ step: Int) throws -> LayerStepStatistics {
            guard let s = statistics[layer]?[step] else {
                throw PlanError("no calibration statistics for \(layer) at step \(step) (calibration key \(plan.calibration.digest)); recalibrate (stsq-tui calibrate) to record every layer this build quantizes")
            }
            guard s.width == widths[layer] else {
                throw PlanError("calibration statistics for \(layer) at step \(step) have width \(s.width), the layer has \(widths[layer] ?? 0) inputs")
            }
            // A scale, a smoothing factor or a clip from an infinite range is no number at all.
            guard s.minimum.isFinite, s.maximum.isFinite, s.channelMinimum.allSatisfy(\.isFinite), s.channelMaximum.allSatisfy(\.isFinite) else {
                throw PlanError("calibration statistics for \(layer) at step \(step) hold NaN or ±Inf (the activations overflowed, or the cache is damaged): no static range can be set; recalibrate")
            }
            return s
        }
        func merged(_ layer: String, _ steps: some Sequence<Int>) throws -> LayerStepStatistics {
            var it = steps.makeIterator()
            var acc = try stats(layer, it.next()!)
            while let s = it.next() { acc.merge(try stats(layer, s)) }
            return acc
        }

        // The steps sharing each step's static encoding.
        func pool(_ s: LayerSettings, step: Int) -> ClosedRange<Int> {
            switch s.activationGranularity {
            case .step: return step...step
            case .group: return plan.stepGroups[groups[step]]
            case .global: return 0...(S - 1)
            }
        }

        // 0. Channel shifts per layer and step: the midpoint of each channel's range over the pool.
        var shifts: [String: [[Float]]] = [:]
        for l in linears where settings[l.name]!.shift {
            var byPool: [ClosedRange<Int>: [Float]] = [:]
            shifts[l.name] = try (0..<S).map { step in
                let range = pool(settings[l.name]!, step: step)
                if let z = byPool[range] { return z }
                let m = try merged(l.name, range)
                let z = (0..<m.width).map { k in m.channelMinimum[k] <= m.channelMaximum[k] ? (m.channelMinimum[k] + m.channelMaximum[k]) / 2 : 0 }
                byPool[range] = z
                return z
            }
        }

        // 1. Smoothing vectors per layer and group (nil: none).
        var smoothing: [String: [[Float]?]] = [:]
        for l in linears {
            let s = settings[l.name]!
            guard s.smooths, !s.keepFloat, !s.activations.isDynamic else { smoothing[l.name] = Array(repeating: nil, count: G); continue }
            // max|x − z| per channel over `steps` (z = 0 without a shift).
            func absMax(_ steps: some Sequence<Int>) throws -> [Float] {
                guard let z = shifts[l.name] else { return try merged(l.name, steps).channelAbsMax }
                var out = [Float](repeating: 0, count: l.inputs)
                for step in steps {
                    let st = try stats(l.name, step)
                    for k in 0..<l.inputs where st.channelMinimum[k] <= st.channelMaximum[k] {
                        out[k] = max(out[k], abs(st.channelMaximum[k] - z[step][k]), abs(st.channelMinimum[k] - z[step][k]))
                    }
                }
                return out
            }
            func vector(_ steps: some Sequence<Int>, alpha: Double) throws -> [Float]? {
                guard alpha > 0 else { return nil }
                return SmoothQuant.smoothing(activationAbsMax: try absMax(steps), weightAbsMax: l.inputAbsMax, alpha: alpha)
            }
            switch s.smoothing {
            case .aggregated:
                let v = try vector(0..<S, alpha: s.alpha)
                smoothing[l.name] = Array(repeating: v, count: G)
            case .timestep:
                smoothing[l.name] = try plan.stepGroups.indices.map { try vector(plan.stepGroups[$0], alpha: s.alpha(group: $0)) }
            }
        }
        func varies(_ v: [[Float]?]) -> Bool { v.contains { $0 != v[0] } }

        // 2. Weight sets: own smoothing on the columns, consumers' 1/s on the V rows.
        var consumers: [String: String] = [:]
        for l in linears { if case .valueRows(let upstream) = SmoothQuant.fold(of: l.name) { consumers[upstream] = l.name } }
        var built: [QuantizedLayer] = []
        for l in linears {
            let s = settings[l.name]!
            let own = smoothing[l.name]!
            let consumer = consumers[l.name].flatMap { smoothing[$0] }
            let setCount = varies(own) || (consumer.map(varies) ?? false) ? G : 1
            var sets: [WeightSet] = []
            // The folded float weights of each set, while this layer is built (see `WeightSet.weight`).
            var setWeights: [[Float]] = []
            let reused = previous.flatMap { old -> QuantizedLayer? in
                guard old.plan.stepGroups == plan.stepGroups, let layer = old[l.name], layer.settings == s,
                      layer.weightSets.count == setCount, layer.smoothing == (setCount == 1 ? [own[0]] : own),
                      layer.consumerSmoothing == consumer, layer.channelShift == shifts[l.name] else { return nil }
                return layer
            }
            if let reused { sets = reused.weightSets }
            for g in 0..<(reused == nil ? setCount : 0) {
                if encodingsOnly {
                    // Never leaves `activationEncodings`: the weights are not read.
                    sets.append(WeightSet(weight: [], bias: l.bias, quantized: nil))
                    continue
                }
                let ownVector = own[g], consumerVector = consumer?[g], rotation = rotationBlocks[l.name]
                let (w, b) = Self.folded(l, own: ownVector, consumer: consumerVector, rotation: rotation)
                var q = s.keepFloat ? nil
                    : s.weightSymmetric ? WeightQuantizer.quantize(w, outputs: l.outputs, inputs: l.inputs, bits: s.weightBits,
                                                                   granularity: s.weightGranularity, clip: s.weightClip)
                    : WeightQuantizer.quantizeAsymmetric(w, outputs: l.outputs, inputs: l.inputs, bits: s.weightBits,
                                                         granularity: s.weightGranularity, clip: s.weightClip)
                if let nearest = q, s.weightRounding == .gptq {
                    // The layer's inputs as its product sees them, over the steps using this set:
                    // the reservoir rows, shifted and divided by the set's own s.
                    let sv = own[setCount == 1 ? 0 : g]
                    var rows: [Float] = []
                    for step in 0..<S where setCount == 1 || groups[step] == g {
                        rows += Self.productInputs(try stats(l.name, step).reservoir, width: l.inputs, shift: shifts[l.name]?[step], smoothing: sv,
                                                   rotation: rotation)
                    }
                    q = GPTQ.roundMemoized(w, quantized: nearest, rows: rows)
                }
                if let q {
                    sets.append(WeightSet(derivedWeight: { Self.folded(l, own: ownVector, consumer: consumerVector, rotation: rotation).weight },
                                          bias: b, quantized: q))
                } else {
                    sets.append(WeightSet(weight: w, bias: b, quantized: nil))
                }
                if shifts[l.name] != nil { setWeights.append(w) }
            }
            let ownSets: [[Float]?] = setCount == 1 ? [own[0]] : own

            // 3. Static encodings per step, from the statistics of (x − z) / s over the steps sharing them.
            var encodings: [ActivationEncoding] = []
            if !s.keepFloat && !s.activations.isDynamic {
                let kind = s.activations.kind
                var byPool: [ClosedRange<Int>: ActivationEncoding] = [:]
                for step in 0..<S {
                    let pool = pool(s, step: step)
                    if let e = byPool[pool] { encodings.append(e); continue }
                    let e = try Self.encoding(layer: l.name, steps: pool, stats: stats, smoothing: { ownSets[setCount == 1 ? 0 : groups[$0]] },
                                              shift: { shifts[l.name]?[$0] }, rotation: rotationBlocks[l.name], settings: s, kind: kind)
                    byPool[pool] = e
                    encodings.append(e)
                }
            }
            // 4. The per-step bias a shift needs: W'·(z/s) with the step's weight set, in Double.
            let shiftBias: [[Float]]? = encodingsOnly ? nil : reused != nil ? reused!.shiftBias : shifts[l.name].map { z in
                (0..<S).map { step in
                    let set = setCount == 1 ? 0 : groups[step]
                    let w = setWeights[set], sv = ownSets[set]
                    let v = (0..<l.inputs).map { Double(z[step][$0]) / Double(sv?[$0] ?? 1) }
                    return (0..<l.outputs).map { c in
                        var acc = 0.0
                        for k in 0..<l.inputs { acc += Double(w[c * l.inputs + k]) * v[k] }
                        return Float(acc)
                    }
                }
            }
            var layer = QuantizedLayer(name: l.name, outputs: l.outputs, inputs: l.inputs, settings: s, fold: SmoothQuant.fold(of: l.name),
                                        smoothing: ownSets, weightSets: sets, encodings: encodings, channelShift: shifts[l.name],
                                        shiftBias: shiftBias, groupOfStep: groups)
            layer.consumerSmoothing = consumer
            layer.rotationBlock = rotationBlocks[l.name]
            built.append(layer)
        }
        layers = built
        index = Dictionary(uniqueKeysWithValues: built.enumerated().map { ($1.name, $0) })

        // 5. Integer attention products: q, k and v encodings per step, v as the products see it
        // (divided by the `s` of the projection whose `1/s` is folded into the V rows).
        var attention: [String: [AttentionEncodings]] = [:]
        var attentionPools = 0
        for a in QuantizationPlan.attentions(layerNames: linears.map(\.name)) {
            let s = try plan.settings(for: a, foldable: false)
            // A block kept in float keeps its products float too.
            guard s.attentionProducts == .int8, !s.keepFloat else { continue }
            guard let projection = linears.first(where: { $0.name == a + ".proj" }) else {
                throw PlanError("\(a): integer attention products need its output projection \(a).proj")
            }
            let valueSmoothing = smoothing[projection.name] ?? Array(repeating: nil, count: G)
            var byPool: [ClosedRange<Int>: AttentionEncodings] = [:]
            attention[a] = try (0..<S).map { step in
                let range = pool(s, step: step)
                if let e = byPool[range] { return e }
                func encoding(_ operand: AttentionOperand, _ sv: @escaping (Int) -> [Float]?) throws -> ActivationEncoding {
                    try Self.encoding(layer: operand.name(of: a), steps: range, stats: stats, smoothing: sv, settings: s, kind: .symmetricInt8)
                }
                let e = AttentionEncodings(q: try encoding(.q, { _ in nil }), k: try encoding(.k, { _ in nil }),
                                           v: try encoding(.v, { valueSmoothing[groups[$0]] }))
                byPool[range] = e
                return e
            }
            attentionPools += byPool.count
        }
        attentionEncodings = attention
        attentionDeployedEncodings = attentionPools

        // 4. Upstream folds per block and group.
        var modulation: [String: [(msa: [Float]?, mlp: [Float]?)]] = [:]
        var captions: [String: [(weight: [Float], bias: [Float]?)]] = [:]
        let fc2 = model.captionProjectionOutput
        let fc2Weight = fc2.weight, fc2Bias = fc2.biasValues
        captionProjectionShape = (fc2.outputFeatures, fc2.inputFeatures)
        for block in blockNames {
            func inverse(_ suffix: String, _ g: Int) -> [Float]? {
                smoothing[block + suffix]?[g].map { $0.map { 1 / $0 } }
            }
            let folds = (0..<G).map { g in (msa: inverse(".attn.qkv", g), mlp: inverse(".mlp.fc1", g)) }
            if folds.contains(where: { $0.msa != nil || $0.mlp != nil }) { modulation[block] = folds }
            if !encodingsOnly, var kv = smoothing[block + ".cross_attn.kv_linear"], kv.contains(where: { $0 != nil }) {
                if !varies(kv) { kv = [kv[0]] }   // aggregated: one copy, not one per group
                captions[block] = kv.map { sv in
                    guard let sv else { return (fc2Weight, fc2Bias) }
                    let k = fc2.inputFeatures
                    var w = fc2Weight, b = fc2Bias
                    for r in 0..<sv.count {
                        for i in 0..<k { w[r * k + i] /= sv[r] }
                        b?[r] /= sv[r]
                    }
                    return (w, b)
                }
            }
        }
        modulationFolds = modulation
        captionProjections = captions
        var modulationShifts: [String: [(msa: [Float]?, mlp: [Float]?)]] = [:]
        for block in blockNames {
            let msa = shifts[block + ".attn.qkv"], mlp = shifts[block + ".mlp.fc1"]
            guard msa != nil || mlp != nil else { continue }
            modulationShifts[block] = (0..<S).map { (msa: msa?[$0], mlp: mlp?[$0]) }
        }
        self.modulationShifts = modulationShifts
    }

    /// `W·diag(s)` with the V rows (and bias) divided by the consumer's `s`; the checkpoint's
    /// weights read without being kept when they are not loaded.
    static func folded(_ l: BlockLinear, own: [Float]?, consumer: [Float]?, rotation: Int? = nil) -> (weight: [Float], bias: [Float]?) {
        var w = l.weightCopy(), b = l.bias
        // W·Hᵀ = W·H (H symmetric): each row rotated like an input row.
        if let block = rotation { w.withUnsafeMutableBufferPointer { HadamardRotation.rotate($0.baseAddress!, rows: l.outputs, width: l.inputs, block: block) } }
        if let sv = own {
            for c in 0..<l.outputs { for k in 0..<l.inputs { w[c * l.inputs + k] *= sv[k] } }
        }
        if let sv = consumer {
            let first = l.outputs - sv.count
            for j in 0..<sv.count {
                let r = first + j
                for k in 0..<l.inputs { w[r * l.inputs + k] /= sv[j] }
                b?[r] /= sv[j]
            }
        }
        return (w, b)
    }

    /// Rows `[R, K]` of a layer's raw input as its product sees them: `(x − z)/s`, without the
    /// shift or the division where there is none (then the rows themselves).
    public static func productInputs(_ rows: [Float], width: Int, shift z: [Float]?, smoothing s: [Float]?, rotation: Int? = nil) -> [Float] {
        if let block = rotation { return HadamardRotation.rotated(rows, width: width, block: block) }
        guard z != nil || s != nil else { return rows }
        return rows.enumerated().map { i, x in (x - (z?[i % width] ?? 0)) / (s?[i % width] ?? 1) }
    }

    /// The static encoding covering `x / s` over `steps`: min-max from per-channel ranges (exact),
    /// percentile and MSE from the sampled rows.
    static func encoding(layer: String, steps: ClosedRange<Int>, stats: (String, Int) throws -> LayerStepStatistics,
                         smoothing: (Int) -> [Float]?, shift: (Int) -> [Float]? = { _ in nil }, rotation: Int? = nil, settings s: LayerSettings,
                         kind: ActivationEncoding.Kind) throws -> ActivationEncoding {
        var lo = Float.infinity, hi = -Float.infinity
        var samples: [Float] = []
        for step in steps {
            let st = try stats(layer, step)
            let sv = smoothing(step), z = shift(step)
            if rotation != nil {
                guard st.rotatedMinimum.isFinite, st.rotatedMaximum.isFinite else {
                    throw PlanError("\(layer): the calibration has no range of the rotated input at step \(step) (recorded by calibrations of format \(CalibrationCache.format)); recalibrate")
                }
                lo = min(lo, st.rotatedMinimum)
                hi = max(hi, st.rotatedMaximum)
            } else if sv != nil || z != nil {
                for k in 0..<st.width where st.channelMinimum[k] <= st.channelMaximum[k] {
                    let zk = z?[k] ?? 0, sk = sv?[k] ?? 1
                    lo = min(lo, (st.channelMinimum[k] - zk) / sk)
                    hi = max(hi, (st.channelMaximum[k] - zk) / sk)
                }
            } else {
                lo = min(lo, st.minimum)
                hi = max(hi, st.maximum)
            }
            if s.estimator != .minmax { samples += productInputs(st.reservoir, width: st.width, shift: z, smoothing: sv, rotation: rotation) }
        }
        guard lo.isFinite, hi.isFinite else { throw PlanError("\(layer): calibration saw no finite inputs at steps \(steps)") }
        switch s.estimator {
        case .minmax: return .covering(min: lo, max: hi, kind: kind)
        case .percentile: return samples.isEmpty ? .covering(min: lo, max: hi, kind: kind)
            : ActivationRangeEstimator.percentile(samples, p: s.percentile, kind: kind)
        case .mse: return samples.isEmpty ? .covering(min: lo, max: hi, kind: kind)
            : ActivationRangeEstimator.mse(samples, min: lo, max: hi, kind: kind)
        }
    }
}
