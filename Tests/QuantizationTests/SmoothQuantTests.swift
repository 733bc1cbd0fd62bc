import DemoModel
import Foundation
import Testing
import Tensors
@testable import Quantization
@testable import VideoDiT

@Test func smoothingVectorFollowsTheFormula() {
    // W [2, 3]: column maxima 2, 0.5, 0 (the last channel cannot migrate: s = 1).
    let w: [Float] = [1, -0.5, 0, -2, 0.25, 0]
    let x: [Float] = [8, 2, 5]
    let s = SmoothQuant.smoothing(activationAbsMax: x, weight: w, outputs: 2, inputs: 3, alpha: 0.5)
    #expect(abs(s[0] - (8.0 as Float).squareRoot() / (2.0 as Float).squareRoot()) < 1e-6)   // √8/√2 = 2
    #expect(abs(s[1] - 2) < 1e-6)   // √2/√0.5
    #expect(s[2] == 1)
    // α = 1: s = max|X|; α = 0: s = 1/max|W|; a silent channel clamps to 1e-5.
    #expect(SmoothQuant.smoothing(activationAbsMax: x, weight: w, outputs: 2, inputs: 3, alpha: 1)[0] == 8)
    #expect(SmoothQuant.smoothing(activationAbsMax: x, weight: w, outputs: 2, inputs: 3, alpha: 0)[1] == 2)
    #expect(SmoothQuant.smoothing(activationAbsMax: [0, 2, 5], weight: w, outputs: 2, inputs: 3, alpha: 1)[0] == 1e-5)
}

@Test func everyBlockLinearHasTheFoldQuantizationMdGivesIt() {
    #expect(SmoothQuant.fold(of: "spatial_blocks.0.attn.qkv") == .modulation)
    #expect(SmoothQuant.fold(of: "temporal_blocks.3.mlp.fc1") == .modulation)
    #expect(SmoothQuant.fold(of: "spatial_blocks.0.attn.proj") == .valueRows(of: "spatial_blocks.0.attn.qkv"))
    #expect(SmoothQuant.fold(of: "blocks.7.attn_temp.proj") == .valueRows(of: "blocks.7.attn_temp.qkv"))
    #expect(SmoothQuant.fold(of: "temporal_blocks.1.cross_attn.proj") == .valueRows(of: "temporal_blocks.1.cross_attn.kv_linear"))
    #expect(SmoothQuant.fold(of: "spatial_blocks.2.cross_attn.kv_linear") == .captionProjection)
    #expect(SmoothQuant.fold(of: "spatial_blocks.2.cross_attn.q_linear") == .explicit)
    #expect(SmoothQuant.fold(of: "spatial_blocks.2.mlp.fc2") == .explicit)
    #expect(SmoothQuant.fold(of: "blocks.0.attn_temp.qkv") == .explicit)
}

/// The demo model, calibrated over 3 rectified-flow steps of two prompts, and one input per step.
struct SmoothQuantFixture {
    let model: STDiT3
    let statistics: [String: [Int: LayerStepStatistics]]
    let key: CalibrationCache.Key
    let inputs: ModelInputs

    init() throws {
        let path = try #require(DemoModel.checkpointPath)
        let loaded = try ModelLoader.load(path: path)
        model = try #require(loaded.model as? STDiT3)
        let encoder = try #require(loaded.textEncoder)
        let prompts = ["a red circle moving left on a blue background", "a green square growing on a black background"]
        statistics = try Calibrator(model: model, steps: 3, cfgScale: 5, size: [8, 32, 32], transformRatio: nil)
            .run(conditions: try prompts.map { try encoder.encode([$0]) }, seeds: [3])
        key = CalibrationCache.Key(checkpointHash: "test", prompts: prompts, sampler: "rflow", steps: 3, cfgScale: 5, seeds: [3])
        var generator = NoiseGenerator(seed: 11)
        let condition = try encoder.encode(["a yellow triangle moving up on a white background"])
        var y = condition.embeddings.scalars
        y += model.nullCaption.prefix(y.count)
        inputs = ModelInputs(x: generator.gaussian(shape: [2, 3, 8, 32, 32]), timestep: [700, 700],
                             y: Tensor(shape: [2, 1, condition.embeddings.shape[2], 32], scalars: y), mask: condition.mask,
                             fps: [24], height: [32], width: [32])
    }

    func plan(_ edit: (inout LayerSettings) -> Void, groups: Int = 3, layers: [(String, JSONValue)] = []) -> QuantizationPlan {
        var defaults = LayerSettings()
        edit(&defaults)
        return QuantizationPlan(checkpointHash: "test", architecture: "STDiT3", calibration: key, timesteps: [1000, 666, 333],
                                stepGroups: QuantizationPlan.equalGroups(steps: 3, count: groups), defaults: defaults, layers: layers)
    }
}

let sharedSmoothQuantFixture = Result { try SmoothQuantFixture() }

/// Every explicit-vector layer also gets α through its own entry, so all four fold kinds are used.
func explicitLayerOverrides(_ model: STDiT3, alpha: Double) -> [(String, JSONValue)] {
    model.blockLinears.filter { SmoothQuant.fold(of: $0.name) == .explicit }.map { ($0.name, .object([("alpha", .double(alpha))])) }
}

/// The folded float model of `quantized` against the original at every step, within the
/// tolerance stated on `foldedFloatModelEqualsTheOriginal`.
func expectFoldedModelEqualsTheOriginal(_ quantized: QuantizedModel, _ f: SmoothQuantFixture,
                                        sourceLocation: SourceLocation = #_sourceLocation) throws {
    let reference = try f.model.forward(f.inputs, executor: Float32Executor(), step: nil)
    let executor = QuantizedModelExecutor(model: quantized, mode: .float)
    let scale = reference.scalars.map(abs).max()!
    for step in 0..<3 {
        let folded = try f.model.forward(f.inputs, executor: executor, step: step)
        let worst = zip(reference.scalars, folded.scalars).map { abs($0 - $1) }.max()!
        #expect(worst <= 1e-5 * scale, "step \(step): max|Δ| \(worst) vs max|ref| \(scale)", sourceLocation: sourceLocation)
    }
}

/// Folding is exact algebra: the folded float model's output equals the original's. Tolerance:
/// 1e-5 · max|ref| — each fold rescales by s and 1/s once (a few float32 roundings per value),
/// far below it; a missed or doubled `1/s` shows up as an O(1) relative error.
@Test(arguments: [LayerSettings.Smoothing.aggregated, .timestep])
func foldedFloatModelEqualsTheOriginal(smoothing: LayerSettings.Smoothing) throws {
    let f = try sharedSmoothQuantFixture.get()
    let plan = f.plan({ $0.alpha = 0.6; $0.smoothing = smoothing }, layers: explicitLayerOverrides(f.model, alpha: 0.6))
    let quantized = try QuantizedModel(model: f.model, statistics: f.statistics, plan: plan)
    #expect(quantized.modulationFolds.count == 8 && quantized.captionProjections.count == 8)
    if smoothing == .timestep { #expect(quantized["spatial_blocks.1.attn.qkv"]!.weightSets.count == 3) }
    try expectFoldedModelEqualsTheOriginal(quantized, f)
    // The weights really changed (the test is not comparing the model with itself).
    let qkv = quantized["spatial_blocks.0.attn.qkv"]!
    #expect(qkv.weightSets[0].weight != f.model.blockLinears[0].weight)
}

/// The int8 path and the fake-quant reference see the same integers on every layer of a smoothed
/// plan (explicit vectors included): they differ by float rounding only, bounded as in
/// `OneEvaluationCheck.agreement` (for asymmetric weights from this input's own row sums). With a
/// channel shift both add the same per-step bias after the product.
@Test(arguments: [(LayerSettings.Activations.int8, LayerSettings.Smoothing.aggregated, 8, true, false),
                  (.uint8, .timestep, 4, true, false), (.uint8, .aggregated, 8, false, false), (.int8, .timestep, 6, false, false),
                  (.uint8, .aggregated, 8, true, true)])
func int8AndFakeQuantAgreeOnASmoothedPlan(activations: LayerSettings.Activations, smoothing: LayerSettings.Smoothing, bits: Int,
                                          symmetricWeights: Bool, shift: Bool) throws {
    let f = try sharedSmoothQuantFixture.get()
    let plan = f.plan({ $0.alpha = 0.5; $0.smoothing = smoothing; $0.activations = activations; $0.weightBits = bits
                        $0.weightSymmetric = symmetricWeights; $0.shift = shift },
                      layers: explicitLayerOverrides(f.model, alpha: 0.5))
    let quantized = try QuantizedModel(model: f.model, statistics: f.statistics, plan: plan)
    let capture = CapturingExecutor(pattern: "*", inner: QuantizedModelExecutor(model: quantized, mode: .float))
    _ = try f.model.forward(f.inputs, executor: capture, step: 2)
    let fake = QuantizedModelExecutor(model: quantized, mode: .fakeQuant), int8 = QuantizedModelExecutor(model: quantized, mode: .int8)
    for layer in f.model.blockLinears {
        let c = capture.captures.first { $0.layer == layer.name }!
        let a = try OneEvaluationCheck.agreement(of: layer, in: quantized, step: 2, input: c.input, rows: c.rows, fake: fake, int8: int8)
        #expect(a.passed, "\(layer.name): max|Δ| \(a.worst) > bound \(a.bound)")
    }
}

/// Per-step encodings come from that step's statistics of `x / s`: with min-max they cover
/// exactly the smoothed range, and a global plan covers the union of all steps.
@Test func encodingsCoverTheSmoothedRangeOfTheirSteps() throws {
    let f = try sharedSmoothQuantFixture.get()
    let name = "spatial_blocks.0.mlp.fc1"
    let perStep = try QuantizedModel(model: f.model, statistics: f.statistics, plan: f.plan { $0.alpha = 0.5 })
    let global = try QuantizedModel(model: f.model, statistics: f.statistics, plan: f.plan { $0.alpha = 0.5; $0.activationGranularity = .global })
    let layer = perStep[name]!, s = layer.smoothing[0]!
    for step in 0..<3 {
        let st = f.statistics[name]![step]!
        let hi = zip(st.channelAbsMax, s).map { $0 / $1 }.max()!
        #expect(abs(layer.encoding(step: step).scale - hi / 127) <= hi / 127 * 1e-6)
    }
    let scales = (0..<3).map { layer.encoding(step: $0).scale }
    #expect(Set(scales).count == 3, "per-step scales should differ between steps")
    #expect(global[name]!.encodings.allSatisfy { $0.scale == scales.max()! })
    #expect(perStep.scaleBytes == 56 * 3 * 8 && global.scaleBytes == 56 * 8)   // 8 blocks × 7 linears
    #expect(perStep.weightBytes == f.model.blockLinears.reduce(0) { $0 + $1.outputs * $1.inputs })
}

/// The α search reports a curve per block over the grid and picks each block's minimum; α = 0
/// and the picked α differ in error exactly as the curve says.
@Test func alphaSearchPicksEachBlocksMinimum() throws {
    let f = try sharedSmoothQuantFixture.get()
    let result = try AlphaSearch.search(model: f.model, statistics: f.statistics, plan: f.plan { _ in }, grid: [0, 0.5, 1])
    #expect(result.best.count == 8)
    for (block, curve) in result.curves {
        #expect(curve.map(\.alpha) == [0, 0.5, 1])
        let minimum = curve.map(\.error).min()!
        #expect(curve.first { $0.alpha == result.best[block]! }!.error == minimum)
        #expect(curve.allSatisfy { $0.error > 0 && $0.error < 1 })
    }
    // Smoothing changes the error (the search is not comparing a plan with itself).
    #expect(result.curves.values.contains { $0[0].error != $0[1].error })
}

/// α per step group: each group's smoothing vector is the one its own α gives (a group at α 0 is
/// not smoothed), equal α per group builds the same weights as the one α, and the folded float
/// model still equals the original at every step (tolerance as `foldedFloatModelEqualsTheOriginal`).
@Test func alphaPerStepGroupBuildsEachGroupsVectorAndStaysExact() throws {
    let f = try sharedSmoothQuantFixture.get()
    let perGroup = try QuantizedModel(model: f.model, statistics: f.statistics,
                                      plan: f.plan { $0.smoothing = .timestep; $0.alpha = 0.9; $0.groupAlpha = [0.3, 0, 0.7] })
    let name = "spatial_blocks.1.attn.qkv"
    for (g, alpha) in [0.3, 0.7].enumerated().map({ ($0.offset == 0 ? 0 : 2, $0.element) }) {
        let single = try QuantizedModel(model: f.model, statistics: f.statistics, plan: f.plan { $0.smoothing = .timestep; $0.alpha = alpha })
        #expect(perGroup[name]!.smoothing[g] == single[name]!.smoothing[g], "group \(g)")
        #expect(perGroup[name]!.weightSets[g].quantized == single[name]!.weightSets[g].quantized, "group \(g)")
    }
    #expect(perGroup[name]!.smoothing[1] == nil)
    let same = try QuantizedModel(model: f.model, statistics: f.statistics,
                                  plan: f.plan { $0.smoothing = .timestep; $0.alpha = 0; $0.groupAlpha = [0.5, 0.5, 0.5] })
    let one = try QuantizedModel(model: f.model, statistics: f.statistics, plan: f.plan { $0.smoothing = .timestep; $0.alpha = 0.5 })
    #expect(same.layers.map(\.smoothing) == one.layers.map(\.smoothing))
    // Aggregated smoothing has one vector: α per group is ignored.
    let aggregated = try QuantizedModel(model: f.model, statistics: f.statistics, plan: f.plan { $0.alpha = 0.5; $0.groupAlpha = [0, 1, 0] })
    let aggregatedOne = try QuantizedModel(model: f.model, statistics: f.statistics, plan: f.plan { $0.alpha = 0.5 })
    #expect(aggregated.layers.map(\.smoothing) == aggregatedOne.layers.map(\.smoothing))

    try expectFoldedModelEqualsTheOriginal(perGroup, f)
}

/// The α search of one step group moves that group's α only and scores that group's steps: at the
/// group's current α its point equals the block's error over those steps under the plan as it is,
/// and no other group's α changes along the curve.
@Test func theAlphaSearchOfOneStepGroupScoresThatGroupsSteps() throws {
    let f = try sharedSmoothQuantFixture.get()
    var plan = f.plan({ $0.smoothing = .timestep; $0.groupAlpha = [0.3, 0.6, 0.2] })
    plan.blocks = [("spatial_blocks.1", .object([("group_alpha", .array([.double(0.3), .double(0.6), .double(0.2)]))]))]
    let block = "spatial_blocks.1", grid = [0.0, 0.6, 0.9]
    let curve = try AlphaSearch.curve(block: block, group: 1, model: f.model, statistics: f.statistics, plan: plan, grid: grid)
    #expect(curve.map(\.alpha) == grid)
    let q = try QuantizedModel(model: f.model, statistics: f.statistics, plan: plan)
    let names = f.model.blockLinears.map(\.name).filter { QuantizationPlan.block(of: $0) == block }
    let energies = try LayerSQNR.energiesPerStep(q, model: f.model, statistics: f.statistics, mode: .fakeQuant, layers: Set(names))
    var e = (signal: 0.0, noise: 0.0)
    for name in names { if let s = energies[name]?[1] { e = (e.signal + s.signal, e.noise + s.noise) } }
    #expect(curve[1].error == e.noise / e.signal)
    // Group 1's α changes the error; steps of the other groups are not scored.
    #expect(curve[0].error != curve[2].error)
    let whole = try AlphaSearch.curve(block: block, model: f.model, statistics: f.statistics, plan: plan, grid: grid)
    #expect(whole.map(\.error) != curve.map(\.error))
    #expect(throws: PlanError.self) {
        try AlphaSearch.curve(block: block, group: 1, model: f.model, statistics: f.statistics, plan: f.plan({ $0.alpha = 0.5 }), grid: grid)
    }
}

/// A channel shift (Outlier Suppression+) is exact algebra too: `z` folded into the modulation
/// shift row and `W'·(z/s)` added as a per-step bias give the original model's output at every
/// step (tolerance as `foldedFloatModelEqualsTheOriginal`), with and without smoothing, and only
/// `attn.qkv`/`mlp.fc1` take it (a default `shift` leaves the other layers alone).
@Test(arguments: [(0.0, LayerSettings.Smoothing.aggregated), (0.6, .aggregated), (0.6, .timestep)])
func aChannelShiftFoldsExactly(alpha: Double, smoothing: LayerSettings.Smoothing) throws {
    let f = try sharedSmoothQuantFixture.get()
    let plan = f.plan({ $0.alpha = alpha; $0.smoothing = smoothing; $0.shift = true }, layers: explicitLayerOverrides(f.model, alpha: alpha))
    let quantized = try QuantizedModel(model: f.model, statistics: f.statistics, plan: plan)
    for layer in quantized.layers {
        let shifted = layer.name.hasSuffix(".attn.qkv") || layer.name.hasSuffix(".mlp.fc1")
        #expect((layer.channelShift != nil) == shifted && (layer.shiftBias != nil) == shifted, "\(layer.name)")
    }
    #expect(quantized.modulationShifts.count == 8)
    try expectFoldedModelEqualsTheOriginal(quantized, f)
}

/// The shift is each channel's range midpoint at that step, and the step's static encoding covers
/// exactly the shifted, smoothed range: `max_k max(|max_k − z_k|, |min_k − z_k|) / s_k`, symmetric.
@Test func aShiftedLayersEncodingCoversItsHalfRanges() throws {
    let f = try sharedSmoothQuantFixture.get()
    let name = "temporal_blocks.0.mlp.fc1"
    let quantized = try QuantizedModel(model: f.model, statistics: f.statistics, plan: f.plan { $0.alpha = 0.5; $0.shift = true })
    let layer = try #require(quantized[name]), s = try #require(layer.smoothing[0])
    let plain = try QuantizedModel(model: f.model, statistics: f.statistics, plan: f.plan { $0.alpha = 0.5 })[name]!
    for step in 0..<3 {
        let st = f.statistics[name]![step]!
        let z = try #require(layer.channelShift?[step])
        #expect(z == (0..<st.width).map { (st.channelMinimum[$0] + st.channelMaximum[$0]) / 2 })
        let hi = (0..<st.width).map { k in max(abs(st.channelMaximum[k] - z[k]), abs(st.channelMinimum[k] - z[k])) / s[k] }.max()!
        let e = layer.encoding(step: step)
        #expect(abs(e.scale - hi / 127) <= hi / 127 * 1e-6, "step \(step)")
        // Centred, the range is narrower than the one-sided one it replaces.
        #expect(e.scale < plain.encoding(step: step).scale, "step \(step)")
    }
    // The local SQNR measures the layer on its input as the folds deliver it, (x − z)/s: the
    // narrower range shows as a better figure, not as the clipping of uncentred rows.
    let shiftedPlan = f.plan { $0.alpha = 0.5; $0.shift = true }, plainPlan = f.plan { $0.alpha = 0.5 }
    let withShift = try LayerSQNR.local(try QuantizedModel(model: f.model, statistics: f.statistics, plan: shiftedPlan), model: f.model,
                                        statistics: f.statistics, mode: .fakeQuant, layers: [name])[name]!
    let without = try LayerSQNR.local(try QuantizedModel(model: f.model, statistics: f.statistics, plan: plainPlan), model: f.model,
                                      statistics: f.statistics, mode: .fakeQuant, layers: [name])[name]!
    #expect(withShift > without, "\(withShift) dB with the shift, \(without) dB without")
}

/// `weight_rounding: gptq` in a plan re-rounds that layer's weights on its calibration rows (in
/// the smoothed, shifted domain the product sees), keeping Δ: at W4 the layer's local SQNR on
/// those rows rises, and the other layers keep their codes.
@Test func gptqRoundingInAPlanLiftsTheLayersLocalSQNR() throws {
    let f = try sharedSmoothQuantFixture.get()
    let name = "spatial_blocks.1.mlp.fc1"
    let nearestPlan = f.plan { $0.weightBits = 4; $0.alpha = 0.5; $0.shift = true }
    var gptqPlan = nearestPlan
    gptqPlan.layers = [(name, .object([("weight_rounding", .string("gptq"))]))]
    let nearest = try QuantizedModel(model: f.model, statistics: f.statistics, plan: nearestPlan)
    let gptq = try QuantizedModel(model: f.model, statistics: f.statistics, plan: gptqPlan)
    let a = nearest[name]!.weightSets[0].quantized!, b = gptq[name]!.weightSets[0].quantized!
    #expect(a.scales == b.scales && a.values != b.values)
    #expect(nearest["spatial_blocks.1.attn.qkv"]!.weightSets[0].quantized == gptq["spatial_blocks.1.attn.qkv"]!.weightSets[0].quantized)
    let before = try LayerSQNR.local(nearest, model: f.model, statistics: f.statistics, mode: .fakeQuant, layers: [name])[name]!
    let after = try LayerSQNR.local(gptq, model: f.model, statistics: f.statistics, mode: .fakeQuant, layers: [name])[name]!
    #expect(after > before + 1, "GPTQ \(after) dB vs nearest \(before) dB")
}

/// The activation screen's encodings (built without weights) are the full model's, plan for plan.
@Test(arguments: ["default", "α 0.5 TSQ 2 groups, shift", "group scales, uint8, MSE", "explicit α, dynamic and float layers"])
func activationEncodingsWithoutWeightsEqualTheFullModels(variant: String) throws {
    let f = try sharedSmoothQuantFixture.get()
    let plan: QuantizationPlan
    switch variant {
    case "default": plan = f.plan({ _ in })
    case "α 0.5 TSQ 2 groups, shift": plan = f.plan({ $0.alpha = 0.5; $0.smoothing = .timestep; $0.shift = true }, groups: 2)
    case "group scales, uint8, MSE": plan = f.plan({ $0.alpha = 0.3; $0.activationGranularity = .group; $0.activations = .uint8; $0.estimator = .mse }, groups: 2)
    default:
        plan = f.plan({ $0.alpha = 0.5 }, layers: explicitLayerOverrides(f.model, alpha: 0.5) + [
            ("spatial_blocks.0.attn.qkv", .object([("keep_fp", .bool(true))])),
            ("temporal_blocks.1.mlp.fc1", .object([("activations", .string("dynamic"))])),
        ])
    }
    let full = try QuantizedModel(model: f.model, statistics: f.statistics, plan: plan)
    let expected = Dictionary(uniqueKeysWithValues: full.layers.filter(\.isStatic).map { ($0.name, $0.encodings) })
    #expect(try QuantizedModel.activationEncodings(model: f.model, statistics: f.statistics, plan: plan) == expected)
    #expect(expected.count == (variant.hasPrefix("explicit") ? 54 : 56))
}

/// A model built reusing an earlier one equals a fresh build, and shares the earlier weight sets
/// of exactly the layers the edit left alone: here a new α on one block's `attn.proj` changes
/// that layer and the V rows of its `attn.qkv`, nothing else.
@Test func aModelBuiltReusingAnEarlierOneEqualsAFreshBuild() throws {
    let f = try sharedSmoothQuantFixture.get()
    let overrides = explicitLayerOverrides(f.model, alpha: 0.5)
    let edit = { (s: inout LayerSettings) in s.alpha = 0.5; s.smoothing = .timestep; s.shift = true }
    let before = try QuantizedModel(model: f.model, statistics: f.statistics, plan: f.plan(edit, layers: overrides))
    let plan = f.plan(edit, layers: overrides + [("spatial_blocks.1.attn.proj", .object([("alpha", .double(0.8))]))])
    let fresh = try QuantizedModel(model: f.model, statistics: f.statistics, plan: plan)
    let reused = try QuantizedModel(model: f.model, statistics: f.statistics, plan: plan, reusing: before)
    func address(_ layer: QuantizedLayer) -> UnsafeRawPointer? {
        layer.weightSets[0].quantized!.values.withUnsafeBufferPointer { UnsafeRawPointer($0.baseAddress) }
    }
    var shared: [String] = []
    for (a, b) in zip(fresh.layers, reused.layers) {
        #expect(a.name == b.name && a.encodings == b.encodings && a.smoothing == b.smoothing && a.channelShift == b.channelShift)
        #expect(a.shiftBias == b.shiftBias && a.weightSets.count == b.weightSets.count, "\(a.name)")
        for (x, y) in zip(a.weightSets, b.weightSets) {
            #expect(x.quantized == y.quantized && x.bias == y.bias && x.weight == y.weight, "\(a.name)")
        }
        if address(b) == address(before[b.name]!) { shared.append(b.name) }
    }
    let rebuilt = Set(f.model.blockLinears.map(\.name)).subtracting(shared)
    #expect(rebuilt == ["spatial_blocks.1.attn.proj", "spatial_blocks.1.attn.qkv"])
    // Other step groups: nothing is taken over.
    let regrouped = try QuantizedModel(model: f.model, statistics: f.statistics, plan: f.plan(edit, groups: 1, layers: overrides), reusing: before)
    #expect(regrouped.layers.allSatisfy { address($0) != address(before[$0.name]!) })
}
