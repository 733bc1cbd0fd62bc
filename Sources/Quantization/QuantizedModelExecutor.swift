import Tensors
import VideoDiT

/// Runs a `QuantizedModel` through the forward pass's linear seam, with its upstream folds.
/// - `.float`: the smoothed and folded weights in float32, no quantization (folding must leave
///   the model's output unchanged);
/// - `.fakeQuant`: the reference — quantize-dequantize the input, float GEMM with dequantized weights;
/// - `.int8`: the deployable path — u8/s8 activations, s8 weights, exact 32-bit sums on oneDNN.
/// Dynamic per-token layers (the ViDiT-Q baseline) run fake-quant in every quantized mode: their
/// per-row scales have no static int8 kernel here, and their results equal the integer path's up
/// to float rounding.
public final class QuantizedModelExecutor: FoldingExecutor {
    public enum Mode: String, Sendable { case float, fakeQuant = "fake-quant", int8 }

    public let model: QuantizedModel
    public let mode: Mode
    private var floatProducts: [String: LinearFP32] = [:]
    private var int8Products: [String: LinearInt8] = [:]
    private var captionProducts: [String: LinearFP32] = [:]
    private var codes: [UInt8] = []

    public init(model: QuantizedModel, mode: Mode) {
        self.model = model
        self.mode = mode
    }

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

    private func group(_ step: Int?) -> Int { model.groupOfStep[min(step ?? 0, model.groupOfStep.count - 1)] }

    public func run(_ layer: BlockLinear, step: Int?, input: UnsafePointer<Float>, rows: Int,
                    output: UnsafeMutablePointer<Float>) throws {
        guard let q = model[layer.name] else {
            try layer.float32.forward(input, rows: rows, into: output)
            return
        }
        let set = q.setIndex(step: step)
        guard let inverse = q.explicitInverse(set: set) else {
            return try run(q, set: set, step: step, x: input, rows: rows, output: output)
        }
        var smoothed = [Float](repeating: 0, count: rows * q.inputs)
        for r in 0..<rows { for k in 0..<q.inputs { smoothed[r * q.inputs + k] = input[r * q.inputs + k] * inverse[k] } }
        try smoothed.withUnsafeBufferPointer { try run(q, set: set, step: step, x: $0.baseAddress!, rows: rows, output: output) }
    }

    /// `x` is the layer's input after any explicit `1/s`.
    private func run(_ q: QuantizedLayer, set: Int, step: Int?, x: UnsafePointer<Float>, rows: Int,
                     output: UnsafeMutablePointer<Float>) throws {
        let count = rows * q.inputs
        let weights = q.weightSets[set]
        let key = "\(q.name)|\(set)"
        if mode == .float || !q.isQuantized {
            try floatProduct(key, weights.weight, q, weights.bias).forward(x, rows: rows, into: output)
            return
        }
        let quantized = weights.quantized!
        if mode == .fakeQuant || !q.isStatic {
            var fake = [Float](repeating: 0, count: count)
            if q.isStatic {
                let e = q.encoding(step: step)
                for i in 0..<count { fake[i] = e.fakeQuantize(x[i]) }
            } else {
                fake = DynamicPerTokenQuantizer.fakeQuantize(Array(UnsafeBufferPointer(start: x, count: count)), rows: rows, width: q.inputs)
            }
            try fake.withUnsafeBufferPointer {
                try floatProduct(key + "|dq", quantized.dequantized(), q, weights.bias).forward($0.baseAddress!, rows: rows, into: output)
            }
            return
        }
        let e = q.encoding(step: step)
        let storage: ActivationStorage = e.kind == .symmetricInt8 ? .s8 : .u8
        let product: LinearInt8
        if let p = int8Products[key] {
            product = p
        } else {
            product = try LinearInt8(weights: quantized.values, outputs: q.outputs, inputs: q.inputs, weightScales: quantized.scales,
                                     bias: weights.bias, activations: storage)
            int8Products[key] = product
        }
        if codes.count < count { codes = [UInt8](repeating: 0, count: count) }
        codes.withUnsafeMutableBufferPointer { c in
            for i in 0..<count { c[i] = UInt8(truncatingIfNeeded: e.code(x[i])) }
        }
        try codes.withUnsafeBytes {
            try product.forward($0.baseAddress!, rows: rows, inputScale: e.scale, zeroPoint: e.zeroPoint, into: output)
        }
        guard !quantized.isSymmetric else { return }
        // Asymmetric weights: Σ(xq − zx)(wq − zw) = Σ(xq − zx)·wq − zw·Σ(xq − zx); the GEMM did the
        // first sum, the second is an exact integer row sum, applied with the same scales.
        for r in 0..<rows {
            var sum: Int64 = 0
            for k in 0..<q.inputs {
                let byte = codes[r * q.inputs + k]
                let code = storage == .s8 ? Int64(Int8(bitPattern: byte)) : Int64(byte)
                sum += code - Int64(e.zeroPoint)
            }
            for c in 0..<q.outputs where quantized.zeroPoints[c] != 0 {
                output[r * q.outputs + c] -= e.scale * quantized.scales[c] * Float(Int64(quantized.zeroPoints[c]) * sum)
            }
        }
    }

    private func floatProduct(_ key: String, _ weight: @autoclosure () -> [Float], _ q: QuantizedLayer, _ bias: [Float]?) throws -> LinearFP32 {
        if let p = floatProducts[key] { return p }
        let p = try LinearFP32(weight: weight(), outputs: q.outputs, inputs: q.inputs, bias: bias)
        floatProducts[key] = p
        return p
    }
}
