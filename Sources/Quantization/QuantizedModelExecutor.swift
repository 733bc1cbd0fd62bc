import Tensors
import VideoDiT

/// Runs a `QuantizedModel` through the forward pass's linear seam, with its upstream folds.
/// - `.float`: the smoothed and folded weights in float32, no quantization (folding must leave
///   the model's output unchanged);
/// - `.fakeQuant`: the reference — quantize-dequantize the input, float GEMM with dequantized weights;
/// - `.int8`: the deployable path — integer codes, int8 weights, exact 32-bit sums on oneDNN
///   (`LinearInt8`: quantization, product and epilogue inside oneDNN, exact on every ISA).
/// Dynamic per-token layers (the ViDiT-Q baseline) run fake-quant in every quantized mode: their
/// per-row scales have no static int8 kernel here, and their results equal the integer path's up
/// to float rounding.
///
/// Not thread-safe: one sampling run uses it at a time (it may be handed to the thread that runs it).
public final class QuantizedModelExecutor: FoldingExecutor, AttentionProductExecutor, @unchecked Sendable {
    public enum Mode: String, Sendable { case float, fakeQuant = "fake-quant", int8 }

    public let model: QuantizedModel
    public let mode: Mode
    private var floatProducts: [String: LinearFP32] = [:]
    private var int8Products: [String: Int8Product] = [:]
    /// Products of an earlier executor, taken over where a weight set is unchanged.
    private var inherited: [String: Int8Product]
    private var captionProducts: [String: LinearFP32] = [:]

    /// An int8 product with what it was built from (arrays shared with the model, not copied).
    private struct Int8Product {
        let product: LinearInt8
        let weights: QuantizedWeights
        let bias: [Float]?
        let multiplier: [Float]?
    }

    /// `reusing`: an executor of an earlier build of the same model (the workbench's previous
    /// plan): its int8 products, with their packed weights and cached primitives, serve every
    /// weight set whose integers, scales, bias and input multiplier are unchanged — after an edit
    /// of one block only that block's products are made again. Not to be run concurrently with it.
    public init(model: QuantizedModel, mode: Mode, reusing previous: QuantizedModelExecutor? = nil) {
        self.model = model
        self.mode = mode
        // Only what the previous run used: a product left over (a layer now in float, a group set
        // gone) is dropped after one generation instead of being carried along for good.
        inherited = previous?.int8Products ?? [:]
    }

    /// Int8 products made by this executor (not taken over from an earlier one).
    public private(set) var int8ProductsMade = 0

    public func modulationFold(block: String, step: Int?) -> (msa: [Float]?, mlp: [Float]?) {
        guard let folds = model.modulationFolds[block] else { return (nil, nil) }
        return folds[group(step)]
    }

    public func captionProjection(block: String, step: Int?) -> LinearFP32? {
        guard let sets = model.captionProjections[block] else { return nil }
        let g = sets.count == 1 ? 0 : group(step), key = "\(block)|\(g)"
        if let p = captionProducts[key] { return p }
        // Falling back to the shared projection would silently give wrong numbers (kv_linear's
        // weights carry s), so a failure here is fatal; oneDNN fp32 primitives do not fail in practice.
        guard let p = try? LinearFP32(weight: sets[g].weight, outputs: model.captionProjectionShape.outputs,
                                      inputs: model.captionProjectionShape.inputs, bias: sets[g].bias) else {
            preconditionFailure("could not create the folded caption projection of \(block)")
        }
        captionProducts[key] = p
        return p
    }

    public func modulationShift(block: String, step: Int?) -> (msa: [Float]?, mlp: [Float]?) {
        guard let shifts = model.modulationShifts[block] else { return (nil, nil) }
        return shifts[min(step ?? 0, shifts.count - 1)]
    }

    private func group(_ step: Int?) -> Int { model.groupOfStep[min(step ?? 0, model.groupOfStep.count - 1)] }

    /// Integer attention products in the quantized modes (one computation for both: their sums are
    /// exact integers either way, `AttentionEncodings`); float32 in `.float`.
    public func attentionEncodings(_ attention: String, step: Int?) -> AttentionEncodings? {
        guard mode != .float, let perStep = model.attentionEncodings[attention] else { return nil }
        return perStep[min(step ?? 0, perStep.count - 1)]
    }

    public func run(_ layer: BlockLinear, step: Int?, input: UnsafePointer<Float>, rows: Int,
                    output: UnsafeMutablePointer<Float>) throws {
        guard let q = model[layer.name] else {
            try layer.float32.forward(input, rows: rows, into: output)
            return
        }
        try product(q, step: step, input: input, rows: rows, output: output)
        // A channel shift's per-step bias (the input arrived as x − z, from the folded modulation rows).
        if let bias = q.shiftBias?[min(step ?? 0, q.shiftBias!.count - 1)] {
            for r in 0..<rows { for c in 0..<q.outputs { output[r * q.outputs + c] += bias[c] } }
        }
    }

    private func product(_ q: QuantizedLayer, step: Int?, input: UnsafePointer<Float>, rows: Int,
                         output: UnsafeMutablePointer<Float>) throws {
        if let block = q.rotationBlock {
            // The online rotation H·x, before quantization in every mode (the weights hold W·Hᵀ).
            return try HadamardRotation.withRotated(input, rows: rows, width: q.inputs, block: block) {
                try unrotatedProduct(q, step: step, input: $0, rows: rows, output: output)
            }
        }
        try unrotatedProduct(q, step: step, input: input, rows: rows, output: output)
    }

    private func unrotatedProduct(_ q: QuantizedLayer, step: Int?, input: UnsafePointer<Float>, rows: Int,
                                  output: UnsafeMutablePointer<Float>) throws {
        let set = q.setIndex(step: step)
        if mode == .int8 && q.isStatic {
            // Explicit 1/s, quantization, product and epilogue all run inside oneDNN.
            try int8Product(q, set: set).forward(input, rows: rows, encoding: q.encoding(step: step), into: output)
            return
        }
        guard let inverse = q.explicitInverse(set: set) else {
            return try runReference(q, set: set, step: step, x: input, rows: rows, output: output)
        }
        var smoothed = [Float](repeating: 0, count: rows * q.inputs)
        for r in 0..<rows { for k in 0..<q.inputs { smoothed[r * q.inputs + k] = input[r * q.inputs + k] * inverse[k] } }
        try smoothed.withUnsafeBufferPointer { try runReference(q, set: set, step: step, x: $0.baseAddress!, rows: rows, output: output) }
    }

    /// The float and fake-quant paths (and dynamic layers in every mode); `x` is the layer's input
    /// after any explicit `1/s`.
    private func runReference(_ q: QuantizedLayer, set: Int, step: Int?, x: UnsafePointer<Float>, rows: Int,
                              output: UnsafeMutablePointer<Float>) throws {
        let count = rows * q.inputs
        let weights = q.weightSets[set]
        let key = "\(q.name)|\(set)"
        if mode == .float || !q.isQuantized {
            try floatProduct(key, weights.weight, q, weights.bias).forward(x, rows: rows, into: output)
            return
        }
        var fake = [Float](repeating: 0, count: count)
        if q.isStatic {
            let e = q.encoding(step: step)
            for i in 0..<count { fake[i] = e.fakeQuantize(x[i]) }
        } else {
            fake = DynamicPerTokenQuantizer.fakeQuantize(Array(UnsafeBufferPointer(start: x, count: count)), rows: rows, width: q.inputs,
                                                         kind: q.settings.activations.kind)
        }
        try fake.withUnsafeBufferPointer {
            try floatProduct(key + "|dq", weights.quantized!.dequantized(), q, weights.bias).forward($0.baseAddress!, rows: rows, into: output)
        }
    }

    /// The int8 product of a static layer's weight set, created once: integer weights, their scales
    /// and zero points, the folded bias and the explicit `1/s` (if any) as the input multiplier.
    private func int8Product(_ q: QuantizedLayer, set: Int) throws -> LinearInt8 {
        let key = "\(q.name)|\(set)"
        if let made = int8Products[key] { return made.product }
        let weights = q.weightSets[set], quantized = weights.quantized!, multiplier = q.explicitInverse(set: set)
        if let old = inherited.removeValue(forKey: key), old.weights == quantized, old.bias == weights.bias, old.multiplier == multiplier {
            int8Products[key] = old
            return old.product
        }
        let product = try LinearInt8(weights: quantized.values, outputs: q.outputs, inputs: q.inputs, weightScales: quantized.scales,
                                     weightZeroPoints: quantized.isSymmetric ? nil : quantized.zeroPoints, bias: weights.bias,
                                     inputMultiplier: multiplier)
        int8Products[key] = Int8Product(product: product, weights: quantized, bias: weights.bias, multiplier: multiplier)
        int8ProductsMade += 1
        return product
    }

    /// Drops the products made for `layer` (their packed weights): for a pass that visits each
    /// layer once, so an XL model's products are not all held at the same time.
    public func release(_ layer: String) {
        let prefix = layer + "|"
        for key in floatProducts.keys where key.hasPrefix(prefix) { floatProducts[key] = nil }
        for key in int8Products.keys where key.hasPrefix(prefix) { int8Products[key] = nil }
    }

    private func floatProduct(_ key: String, _ weight: @autoclosure () -> [Float], _ q: QuantizedLayer, _ bias: [Float]?) throws -> LinearFP32 {
        if let p = floatProducts[key] { return p }
        let p = try LinearFP32(weight: weight(), outputs: q.outputs, inputs: q.inputs, bias: bias)
        floatProducts[key] = p
        return p
    }
}
