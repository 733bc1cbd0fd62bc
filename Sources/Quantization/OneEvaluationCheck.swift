import Tensors
import VideoDiT

/// One model evaluation as a calibration: the float input of every block linear is captured, and
/// one-step plans get min-max encodings of those very inputs. In this setting the int8 path and
/// the fake-quant reference see the same integers in every layer, so they must agree up to float
/// rounding — what `stsq-tui selftest` checks on the CPU at hand, and the executor tests check
/// on the demo model's golden inputs.
public struct OneEvaluationCheck: Sendable {
    public let model: STDiT3
    public let inputs: ModelInputs
    /// Per block linear, its captured float input.
    public let captures: [String: CapturingExecutor.Capture]

    public init(model: STDiT3, inputs: ModelInputs) throws {
        self.model = model
        self.inputs = inputs
        let capture = CapturingExecutor(pattern: "*")
        _ = try model.forward(inputs, executor: capture, step: nil)
        captures = Dictionary(capture.captures.map { ($0.layer, $0) }, uniquingKeysWith: { first, _ in first })
    }

    /// The statistics of the captured inputs, as step 0 of a one-step calibration.
    public var statistics: [String: [Int: LayerStepStatistics]] {
        var statistics: [String: [Int: LayerStepStatistics]] = [:]
        for layer in model.blockLinears {
            guard let capture = captures[layer.name] else { continue }
            var st = LayerStepStatistics(width: layer.inputs)
            capture.input.withUnsafeBufferPointer { st.observe($0.baseAddress!, rows: capture.rows) }
            statistics[layer.name] = [0: st]
        }
        return statistics
    }

    /// A one-step model with `defaults` for every layer, and α `explicitAlpha` on the layers whose
    /// `1/s` is an explicit multiply (`cross_attn.q_linear`, `mlp.fc2`) when given.
    public func quantized(_ defaults: LayerSettings, explicitAlpha: Double? = nil) throws -> QuantizedModel {
        let key = CalibrationCache.Key(checkpointHash: "one-evaluation", prompts: ["one evaluation"], sampler: "rflow", steps: 1,
                                       cfgScale: 1, seeds: [0])
        let explicit = explicitAlpha.map { alpha in
            model.blockLinears.filter { SmoothQuant.fold(of: $0.name) == .explicit }.map { ($0.name, JSONValue.object([("alpha", .double(alpha))])) }
        } ?? []
        let plan = QuantizationPlan(checkpointHash: "one-evaluation", architecture: "STDiT3", calibration: key,
                                    timesteps: [inputs.timestep[0]], stepGroups: [0...0], defaults: defaults, layers: explicit)
        return try QuantizedModel(model: model, statistics: statistics, plan: plan)
    }

    /// One layer's agreement: the largest |int8 − fake-quant| and its bound.
    public struct Agreement: Sendable {
        public let layer: String
        public let worst: Float
        public let bound: Float
        public var passed: Bool { worst <= bound }
    }

    /// Runs every block linear of `quantized` on its captured input through the fake-quant and
    /// the int8 executors (`agreement(of:in:step:input:rows:fake:int8:)`).
    public func int8AgreesWithFakeQuant(_ quantized: QuantizedModel) throws -> [Agreement] {
        let fake = QuantizedModelExecutor(model: quantized, mode: .fakeQuant)
        let int8 = QuantizedModelExecutor(model: quantized, mode: .int8)
        return try model.blockLinears.compactMap { layer in
            guard let capture = captures[layer.name] else { return nil }
            return try Self.agreement(of: layer, in: quantized, step: 0, input: capture.input, rows: capture.rows, fake: fake, int8: int8)
        }
    }

    /// One layer on one input through both executors. They see the same integers and differ only
    /// in float rounding: the fake-quant product sums K dequantized terms in float32, the int8 path
    /// scales exact sums once. Bound: 4·K·ulp of the largest value that passes through those
    /// roundings — max|y|, and for asymmetric weights the correction `Δx·Δw·zw·Σ_k (xq − z)`
    /// subtracted after the product, from this input's own row sums.
    public static func agreement(of layer: BlockLinear, in quantized: QuantizedModel, step: Int, input: [Float], rows: Int,
                                 fake: QuantizedModelExecutor, int8: QuantizedModelExecutor) throws -> Agreement {
        var a = [Float](repeating: 0, count: rows * layer.outputs), b = a
        try input.withUnsafeBufferPointer { x in
            try fake.run(layer, step: step, input: x.baseAddress!, rows: rows, output: &a)
            try int8.run(layer, step: step, input: x.baseAddress!, rows: rows, output: &b)
        }
        var scale = a.map(abs).max() ?? 0
        if let q = quantized[layer.name], q.isStatic, let w = q.weightSets[q.setIndex(step: step)].quantized, !w.isSymmetric {
            let e = q.encoding(step: step), K = layer.inputs
            let multiplier = q.explicitInverse(set: q.setIndex(step: step))
            let input = q.rotationBlock.map { HadamardRotation.rotated(input, width: K, block: $0) } ?? input
            var largestRowSum: Int64 = 0
            for n in 0..<rows {
                var sum: Int64 = 0
                for k in 0..<K { sum += Int64(e.code(input[n * K + k] * (multiplier?[k] ?? 1)) - e.zeroPoint) }
                largestRowSum = max(largestRowSum, abs(sum))
            }
            let term = zip(w.scales, w.zeroPoints).map { e.scale * $0 * Float(abs($1)) }.max()! * Float(largestRowSum)
            scale = max(scale, term)
        }
        let worst = zip(a, b).map { abs($0 - $1) }.max() ?? 0
        return Agreement(layer: layer.name, worst: worst, bound: 4 * Float(layer.inputs) * scale.ulp)
    }
}
