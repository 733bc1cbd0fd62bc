import DemoModel
import Foundation
import Testing
import Tensors
@testable import Quantization
@testable import VideoDiT

// One test per plan setting, each against an expectation computed here by hand from inputs
// whose ranges are known by construction (not from the code under test).

/// The demo model with made-up calibration: at step i every block linear saw the 4 rows
/// `x[r, j] = m_i · c_j · p[(r + j) % 4]`, `m = (1, 3, 2)`, `c_j = (j % 8 + 1) / 8`,
/// `p = (1, −0.5, 0.25, −1)`: channel j spans ±m_i·c_j, the tensor ±m_i.
private struct SyntheticCalibration: Sendable {
    static let stepMaxima: [Float] = [1, 3, 2]
    static let pattern: [Float] = [1, -0.5, 0.25, -1]
    let model: STDiT3
    let statistics: [String: [Int: LayerStepStatistics]]

    static func channelFactor(_ j: Int) -> Float { Float(j % 8 + 1) / 8 }

    static func rows(step: Int, width: Int) -> [Float] {
        (0..<(4 * width)).map { i in
            let (r, j) = (i / width, i % width)
            return stepMaxima[step] * channelFactor(j) * pattern[(r + j) % 4]
        }
    }

    init() throws {
        let path = try #require(DemoModel.checkpointPath)
        model = try #require(try ModelLoader.load(path: path).model as? STDiT3)
        var statistics: [String: [Int: LayerStepStatistics]] = [:]
        for layer in model.blockLinears {
            for step in 0..<3 {
                var st = LayerStepStatistics(width: layer.inputs)
                Self.rows(step: step, width: layer.inputs).withUnsafeBufferPointer { st.observe($0.baseAddress!, rows: 4) }
                statistics[layer.name, default: [:]][step] = st
            }
        }
        self.statistics = statistics
    }

    func quantized(_ edit: (inout LayerSettings) -> Void, groups: [ClosedRange<Int>] = [0...0, 1...1, 2...2],
                   blocks: [(String, JSONValue)] = [], layers: [(String, JSONValue)] = []) throws -> QuantizedModel {
        var defaults = LayerSettings()
        edit(&defaults)
        let key = CalibrationCache.Key(checkpointHash: "synthetic", prompts: ["synthetic"], sampler: "rflow", steps: 3, cfgScale: 1, seeds: [0])
        let plan = QuantizationPlan(checkpointHash: "synthetic", architecture: "STDiT3", calibration: key, timesteps: [1000, 666, 333],
                                    stepGroups: groups, defaults: defaults, blocks: blocks, layers: layers)
        return try QuantizedModel(model: model, statistics: statistics, plan: plan)
    }

    func linear(_ name: String) -> BlockLinear { model.blockLinears.first { $0.name == name }! }
}

private let sharedSynthetic = Result { try SyntheticCalibration() }

@Test func activationGranularityPoolsTheStepsItNames() throws {
    let f = try sharedSynthetic.get()
    let name = "spatial_blocks.1.attn.proj"
    // Per step: m_i / 127. Groups [0, 1], [2]: the larger of steps 0 and 1 for both. Global: the largest.
    let cases: [(LayerSettings.ActivationGranularity, [Float])] = [(.step, [1, 3, 2]), (.group, [3, 3, 2]), (.global, [3, 3, 3])]
    for (granularity, maxima) in cases {
        let q = try f.quantized({ $0.activationGranularity = granularity }, groups: [0...1, 2...2])
        let layer = try #require(q[name])
        for step in 0..<3 {
            #expect(layer.encoding(step: step).scale == maxima[step] / 127,
                    "\(name), \(granularity.rawValue) scales, step \(step): \(layer.encoding(step: step).scale), expected \(maxima[step])/127")
        }
        #expect(layer.deployedEncodings == [.step: 3, .group: 2, .global: 1][granularity])
    }
}

/// With SmoothQuant the estimators must see `x / s`: s computed here from QUANTIZATION.md's formula
/// on the constructed ranges and the layer's weights; the expected encodings from those samples.
@Test(arguments: [LayerSettings.Estimator.percentile, .mse])
func rangeEstimatorsSeeTheSmoothedInput(estimator: LayerSettings.Estimator) throws {
    let f = try sharedSynthetic.get()
    let name = "temporal_blocks.2.mlp.fc1", alpha: Float = 0.6
    let linear = f.linear(name)
    let K = linear.inputs
    let q = try f.quantized({ $0.alpha = Double(alpha); $0.estimator = estimator; $0.percentile = 100 })
    // s_j = max|X_j|^α / max_c|W[c, j]|^(1−α) over all steps (aggregated), at least 1e-5.
    let s = (0..<K).map { j -> Float in
        let x = SyntheticCalibration.stepMaxima.max()! * SyntheticCalibration.channelFactor(j)
        let w = (0..<linear.outputs).map { abs(linear.weight[$0 * K + j]) }.max()!
        return max(pow(x, alpha) / pow(w, 1 - alpha), 1e-5)
    }
    for step in 0..<3 {
        let samples = SyntheticCalibration.rows(step: step, width: K).enumerated().map { $1 / s[$0 % K] }
        let expected: ActivationEncoding
        switch estimator {
        case .percentile:
            let a = samples.map(abs).max()!
            expected = .covering(min: -a, max: a, kind: .symmetricInt8)
        default:
            expected = ActivationRangeEstimator.mse(samples, min: samples.min()!, max: samples.max()!, kind: .symmetricInt8)
        }
        let got = try #require(q[name]).encoding(step: step)
        #expect(got == expected, "\(name), \(estimator.rawValue), step \(step): scale \(got.scale), the smoothed input needs \(expected.scale)")
    }
}

/// The MSE clip against a brute-force search written here: per channel the ratio r in
/// {1, 0.99, …, 0.5} of its range with the least squared error, rounding half away from zero.
/// W4: a Laplace-shaped row (256 values, a sparse tail) is worth clipping (r 0.81 symmetric, 0.86
/// asymmetric, found by the search); a uniform row is not.
@Test(arguments: [true, false])
func weightMSEClipPicksTheRatioWithTheLeastError(symmetric: Bool) {
    let (outputs, inputs, bits) = (2, 256, 4)
    let laplace: [Float] = (0..<inputs).map { i in
        let u = (Double(i / 2) + 0.5) / Double(inputs / 2)
        return Float(-log(u)) * (i % 2 == 0 ? 1 : -1)
    }
    let uniform: [Float] = (0..<inputs).map { Float($0) / Float(inputs - 1) * 2 - 1 }
    let w = laplace + uniform
    let qmax = Float((1 << (bits - 1)) - 1)
    func reference(_ row: [Float]) -> Float {
        var best: (scale: Float, error: Double) = (0, .infinity)
        for step in 0...50 {
            let r = 1 - Float(step) / 100
            let absMax: Float = row.map(abs).max()!
            let lo: Float = symmetric ? -absMax * r : min(row.min()!, 0) * r
            let hi: Float = symmetric ? absMax * r : max(row.max()!, 0) * r
            let scale = symmetric ? hi / qmax : (hi - lo) / (2 * qmax + 1)
            let (qmin, top): (Float, Float) = symmetric ? (-qmax, qmax) : (-qmax - 1, qmax)
            let zero: Float = symmetric ? 0 : min(max(qmin - (lo / scale).rounded(.toNearestOrAwayFromZero), qmin), top)
            let error = row.reduce(0.0) { e, x in
                let code = min(max((x / scale).rounded(.toNearestOrAwayFromZero) + zero, qmin), top)
                let d = Double(x - scale * (code - zero))
                return e + d * d
            }
            if error < best.error { best = (scale, error) }
        }
        return best.scale
    }
    let q = symmetric ? WeightQuantizer.quantize(w, outputs: outputs, inputs: inputs, bits: bits, clip: .mse)
                      : WeightQuantizer.quantizeAsymmetric(w, outputs: outputs, inputs: inputs, bits: bits, clip: .mse)
    let minmax = symmetric ? WeightQuantizer.quantize(w, outputs: outputs, inputs: inputs, bits: bits)
                           : WeightQuantizer.quantizeAsymmetric(w, outputs: outputs, inputs: inputs, bits: bits)
    for c in 0..<outputs {
        let expected = reference(Array(w[(c * inputs)..<((c + 1) * inputs)]))
        #expect(q.scales[c] == expected, "row \(c): scale \(q.scales[c]), the search finds \(expected)")
    }
    #expect(q.scales[0] < minmax.scales[0], "the Laplace row must be clipped")
}

/// A layer kept in float runs its (folded) float weights on the int8 path, bit for bit.
@Test func keptFloatLayersRunTheirFloatWeights() throws {
    let f = try sharedSynthetic.get()
    let name = "spatial_blocks.0.mlp.fc2"
    let q = try f.quantized({ _ in }, layers: [(name, .object([("keep_fp", .bool(true))]))])
    let layer = try #require(q[name])
    #expect(!layer.isQuantized && layer.encodings.isEmpty && layer.deployedEncodings == 0)
    let linear = f.linear(name)
    var generator = NoiseGenerator(seed: 5)
    let x = generator.gaussian(shape: [7, linear.inputs]).scalars
    var got = [Float](repeating: 0, count: 7 * linear.outputs), expected = got
    try QuantizedModelExecutor(model: q, mode: .int8).run(linear, step: 1, input: x, rows: 7, output: &got)
    try linear.float32.forward(x, rows: 7, into: &expected)
    let differing = zip(got, expected).filter { $0.bitPattern != $1.bitPattern }.count
    #expect(differing == 0, "\(name): \(differing) of \(got.count) outputs differ from the float product")
}

/// A dynamic layer quantizes each row with its own symmetric scale max|x_row|/127 (ViDiT-Q's
/// per-token baseline), computed here in Double from the dequantized weights.
@Test func dynamicLayersQuantizeEachRowWithItsOwnScale() throws {
    let f = try sharedSynthetic.get()
    let name = "temporal_blocks.0.attn.qkv"
    let q = try f.quantized({ _ in }, layers: [(name, .object([("activations", .string("dynamic"))]))])
    let layer = try #require(q[name])
    #expect(layer.isQuantized && !layer.isStatic && layer.encodings.isEmpty)
    let linear = f.linear(name)
    let (rows, K) = (5, linear.inputs)
    var noise = NoiseGenerator(seed: 6)
    var x = noise.gaussian(shape: [rows, K]).scalars
    for k in 0..<K { x[2 * K + k] *= 40 }   // one loud row: a shared scale would crush the others
    try expectRowsQuantizedAsReference(q, linear, x: x, rows: rows) { row in
        let scale = row.map(abs).max()! / 127
        return row.map { min(max(($0 / scale).rounded(.toNearestOrEven), -127), 127) * scale }
    }
}

/// The int8 executor's output of `linear` on `x` against Double sums of the dequantized weights
/// and `dequantize(row)` per input row; tolerance 1e-5·max|y| (float32 accumulation order).
private func expectRowsQuantizedAsReference(_ q: QuantizedModel, _ linear: BlockLinear, x: [Float], rows: Int,
                                            dequantize: ([Float]) -> [Float], sourceLocation: SourceLocation = #_sourceLocation) throws {
    let layer = try #require(q[linear.name])
    let (K, C) = (linear.inputs, linear.outputs)
    let w = layer.weightSets[0].quantized!
    var expected = [Double](repeating: 0, count: rows * C)
    for r in 0..<rows {
        let input = dequantize(Array(x[(r * K)..<((r + 1) * K)]))
        for c in 0..<C {
            var sum = Double(layer.weightSets[0].bias?[c] ?? 0)
            for k in 0..<K { sum += Double(input[k]) * Double(w.scales[c] * Float(w.values[c * K + k])) }
            expected[r * C + c] = sum
        }
    }
    var got = [Float](repeating: 0, count: rows * C)
    try QuantizedModelExecutor(model: q, mode: .int8).run(linear, step: 0, input: x, rows: rows, output: &got)
    let scale = expected.map(abs).max()!
    let worst = zip(got, expected).map { abs(Double($0) - $1) }.max()!
    #expect(worst <= 1e-5 * scale, "\(linear.name): max|Δ| \(worst), max|y| \(scale)", sourceLocation: sourceLocation)
}

/// ViDiT-Q's setting: each row quantized asymmetrically to uint8 over its own [min, max] (with 0),
/// Δ = (max − min)/255, z = round(−min/Δ), code = clamp(rne(x/Δ) + z, 0, 255) — computed here in
/// Double from the dequantized weights, on rows that are one-sided (post-GELU-like) and mixed.
@Test func dynamicUInt8LayersQuantizeEachRowOverItsOwnRange() throws {
    let f = try sharedSynthetic.get()
    let name = "temporal_blocks.0.mlp.fc2"
    let q = try f.quantized({ _ in }, layers: [(name, .object([("activations", .string("dynamic_uint8"))]))])
    let layer = try #require(q[name])
    #expect(layer.isQuantized && !layer.isStatic && layer.encodings.isEmpty)
    let linear = f.linear(name)
    let (rows, K) = (4, linear.inputs)
    var noise = NoiseGenerator(seed: 8)
    var x = noise.gaussian(shape: [rows, K]).scalars
    for k in 0..<K { x[k] = max(x[k], -0.17 * abs(x[k])) }   // row 0: mostly positive, GELU's shape
    for k in 0..<K { x[2 * K + k] = 3 + x[2 * K + k] }       // row 2: offset away from 0
    try expectRowsQuantizedAsReference(q, linear, x: x, rows: rows) { row in
        let lo = min(row.min()!, 0), hi = max(row.max()!, 0)
        let scale = (hi - lo) / 255
        let zero = min(max((-lo / scale).rounded(.toNearestOrAwayFromZero), 0), 255)
        return row.map { (min(max(($0 / scale).rounded(.toNearestOrEven) + zero, 0), 255) - zero) * scale }
    }
    // One-sided rows lose half the codes to the sign under the symmetric per-token encoding.
    let symmetric = DynamicPerTokenQuantizer.fakeQuantize(Array(x[0..<K]), rows: 1, width: K)
    let asymmetric = DynamicPerTokenQuantizer.fakeQuantize(Array(x[0..<K]), rows: 1, width: K, kind: .asymmetricUInt8)
    func error(_ y: [Float]) -> Double { zip(y, x[0..<K]).reduce(0) { $0 + Double(($1.0 - $1.1) * ($1.0 - $1.1)) } }
    #expect(error(asymmetric) < error(symmetric))
}

/// Settings resolve layer entry → block entry → defaults; a block's α (and the default α) never
/// reaches the layers whose `1/s` needs an explicit multiply — only their own entry sets it.
@Test func planSettingsResolveLayerThenBlockThenDefaults() throws {
    let key = CalibrationCache.Key(checkpointHash: "h", prompts: ["p"], sampler: "rflow", steps: 1, cfgScale: 1, seeds: [0])
    var defaults = LayerSettings()
    defaults.alpha = 0.2
    defaults.weightBits = 8
    let plan = QuantizationPlan(checkpointHash: "h", architecture: "STDiT3", calibration: key, timesteps: [1000], stepGroups: [0...0],
                                defaults: defaults,
                                blocks: [("spatial_blocks.0", .object([("alpha", .double(0.7)), ("weight_bits", .int(6))]))],
                                layers: [("spatial_blocks.0.mlp.fc2", .object([("alpha", .double(0.4))])),
                                         ("spatial_blocks.0.attn.proj", .object([("weight_bits", .int(4))]))])
    func settings(_ layer: String) throws -> LayerSettings {
        try plan.settings(for: layer, foldable: SmoothQuant.fold(of: layer).isFolded)
    }
    #expect(try settings("spatial_blocks.0.attn.qkv").alpha == 0.7)             // block over default
    #expect(try settings("spatial_blocks.0.attn.qkv").weightBits == 6)
    #expect(try settings("spatial_blocks.0.attn.proj").weightBits == 4)         // layer over block
    #expect(try settings("spatial_blocks.0.mlp.fc2").alpha == 0.4)              // explicit: own entry only
    #expect(try settings("spatial_blocks.0.cross_attn.q_linear").alpha == 0)    // explicit: no block or default α
    #expect(try settings("spatial_blocks.1.attn.qkv").alpha == 0.2)             // default
    #expect(try settings("spatial_blocks.1.mlp.fc2").alpha == 0)
}

/// `group_alpha`: one α per step group, resolved like `alpha` (a layer's own one α replaces its
/// block's α per group; explicit layers never take the block's), checked against the step
/// groups, round-tripped through JSON, and remapped when the groups change.
@Test func alphaPerStepGroupResolvesValidatesAndFollowsTheGroups() throws {
    let key = CalibrationCache.Key(checkpointHash: "h", prompts: ["p"], sampler: "rflow", steps: 4, cfgScale: 1, seeds: [0])
    var defaults = LayerSettings()
    defaults.smoothing = .timestep
    let plan = QuantizationPlan(checkpointHash: "h", architecture: "STDiT3", calibration: key, timesteps: [1000, 750, 500, 250],
                                stepGroups: [0...1, 2...3], defaults: defaults,
                                blocks: [("spatial_blocks.0", .object([("alpha", .double(0.5)), ("group_alpha", .array([.double(0.2), .double(0.8)]))]))],
                                layers: [("spatial_blocks.0.attn.proj", .object([("alpha", .double(0.4))]))])
    func settings(_ layer: String) throws -> LayerSettings {
        try plan.settings(for: layer, foldable: SmoothQuant.fold(of: layer).isFolded)
    }
    #expect(try settings("spatial_blocks.0.attn.qkv").groupAlpha == [0.2, 0.8])
    #expect(try settings("spatial_blocks.0.attn.qkv").alpha(group: 1) == 0.8)
    #expect(try settings("spatial_blocks.0.attn.proj").groupAlpha == nil)          // its own one α
    #expect(try settings("spatial_blocks.0.attn.proj").alpha(group: 1) == 0.4)
    #expect(try settings("spatial_blocks.0.mlp.fc2").groupAlpha == nil)            // explicit: own entry only
    #expect(try settings("spatial_blocks.0.mlp.fc2").smooths == false)

    let text = plan.json.serialized(pretty: true)
    let reread = try QuantizationPlan(json: try JSONValue.parse(text), source: "plan.json")
    #expect(reread == plan)

    // A list that does not match the groups names the field.
    var wrong = plan
    wrong.stepGroups = [0...3]
    #expect(throws: PlanError.self) { try QuantizationPlan(json: try JSONValue.parse(wrong.json.serialized(pretty: true)), source: "p.json") }
    do {
        _ = try QuantizationPlan(json: try JSONValue.parse(wrong.json.serialized(pretty: true)), source: "p.json")
    } catch let e as PlanError {
        #expect(e.description == "p.json: blocks.\"spatial_blocks.0\".group_alpha: must list one α per step group (1), found 2")
    }
    let outOfRange = text.replacingOccurrences(of: "0.8", with: "1.5")
    #expect(throws: PlanError.self) { try QuantizationPlan(json: try JSONValue.parse(outOfRange), source: "p.json") }

    // Split the second group at step 3: both halves keep its α; merge back keeps the earlier one's.
    let split = plan.regrouped([0...1, 2...2, 3...3])
    #expect(try split.settings(for: "spatial_blocks.0.attn.qkv", foldable: true).groupAlpha == [0.2, 0.8, 0.8])
    let merged = split.regrouped([0...3])
    #expect(try merged.settings(for: "spatial_blocks.0.attn.qkv", foldable: true).groupAlpha == [0.2])
    try merged.validate(layerNames: ["spatial_blocks.0.attn.qkv", "spatial_blocks.0.attn.proj"])
}

/// `shift` and `weight_rounding` round-trip through a plan's JSON (written only when not the
/// default, so plans without them keep their bytes), and a layer entry asking a shift where it cannot fold is refused naming the field.
@Test func theShiftSettingRoundTripsAndIsRefusedWhereItCannotFold() throws {
    let key = CalibrationCache.Key(checkpointHash: "h", prompts: ["p"], sampler: "rflow", steps: 1, cfgScale: 1, seeds: [0])
    var plan = QuantizationPlan(checkpointHash: "h", architecture: "STDiT3", calibration: key, timesteps: [1000], stepGroups: [0...0],
                                layers: [("spatial_blocks.0.mlp.fc1", .object([("shift", .bool(true))]))])
    #expect(!QuantizationPlan.json(of: LayerSettings()).serialized(pretty: false).contains("shift"))
    #expect(!QuantizationPlan.json(of: LayerSettings()).serialized(pretty: false).contains("weight_rounding"))
    var gptq = LayerSettings()
    gptq.weightRounding = .gptq
    var back = LayerSettings()
    try QuantizationPlan.applySettings(QuantizationPlan.json(of: gptq), to: &back, path: "defaults")
    #expect(back == gptq)
    let reread = try QuantizationPlan(json: try JSONValue.parse(plan.json.serialized(pretty: true)), source: "p.json")
    #expect(reread == plan)
    #expect(try reread.settings(for: "spatial_blocks.0.mlp.fc1", foldable: true).shift)
    #expect(try !reread.settings(for: "spatial_blocks.0.attn.qkv", foldable: true).shift)
    let names = ["spatial_blocks.0.mlp.fc1", "spatial_blocks.0.mlp.fc2"]
    try plan.validate(layerNames: names)
    plan.layers = [("spatial_blocks.0.mlp.fc2", .object([("shift", .bool(true))]))]
    do {
        try plan.validate(layerNames: names)
        Issue.record("a shift on fc2 was accepted")
    } catch let e as PlanError {
        #expect(e.description.hasPrefix("layers.\"spatial_blocks.0.mlp.fc2\".shift: a channel shift folds only into the modulation rows"))
    }
    plan.layers = [("spatial_blocks.0.mlp.fc1", .object([("shift", .string("yes"))]))]
    #expect(throws: PlanError.self) { try plan.validate(layerNames: names) }
}
