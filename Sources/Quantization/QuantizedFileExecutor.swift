import Tensors
import VideoDiT

/// Runs a model from its `quantized.safetensors` alone, as a deployment runtime would: int8 products
/// of the file's weights with its per-step encodings, its per-step modulation tables instead of
/// computing modulation rows, its caption-projection copies; dynamic layers per token, float layers
/// from the file's folded weights, every other layer from the checkpoint. Sampling with it gives
/// the bits `QuantizedModelExecutor(mode: .int8)` gives with the model the file was written from.
public final class QuantizedFileExecutor: FoldingExecutor, AttentionProductExecutor {
    public let file: QuantizedModelFile
    /// Static layers as fake-quant (quantize-dequantize the input with the step's encoding, float
    /// product with the dequantized weights) instead of int8 products: the reference other
    /// implementations of the file (PyTorch, ONNX) are compared against.
    public let fakeQuant: Bool
    private var int8Products: [String: LinearInt8] = [:]
    private var floatProducts: [String: LinearFP32] = [:]
    private var captionProducts: [String: LinearFP32] = [:]

    public init(file: QuantizedModelFile, fakeQuant: Bool = false) {
        self.file = file
        self.fakeQuant = fakeQuant
    }

    private func group(_ step: Int?) -> Int { file.stepGroup[min(step ?? 0, file.steps - 1)] }

    public func attentionEncodings(_ attention: String, step: Int?) -> AttentionEncodings? {
        file.attentionEncodings[attention].map { $0[min(step ?? 0, file.steps - 1)] }
    }

    public func run(_ layer: BlockLinear, step: Int?, input: UnsafePointer<Float>, rows: Int,
                    output: UnsafeMutablePointer<Float>) throws {
        guard let q = file.layers[layer.name] else {
            try layer.float32.forward(input, rows: rows, into: output)
            return
        }
        try product(q, step: step, input: input, rows: rows, output: output)
        if let bias = q.shiftBias {
            let s = min(step ?? 0, file.steps - 1), C = q.outputs
            for r in 0..<rows { for c in 0..<C { output[r * C + c] += bias[s * C + c] } }
        }
    }

    private func product(_ q: QuantizedModelFile.Layer, step: Int?, input: UnsafePointer<Float>, rows: Int,
                         output: UnsafeMutablePointer<Float>) throws {
        if let block = q.rotationBlock {
            return try HadamardRotation.withRotated(input, rows: rows, width: q.inputs, block: block) {
                try unrotatedProduct(q, step: step, input: $0, rows: rows, output: output)
            }
        }
        try unrotatedProduct(q, step: step, input: input, rows: rows, output: output)
    }

    private func unrotatedProduct(_ q: QuantizedModelFile.Layer, step: Int?, input: UnsafePointer<Float>, rows: Int,
                                  output: UnsafeMutablePointer<Float>) throws {
        let g = q.weightSets.count == 1 ? 0 : group(step)
        let set = q.weightSets[g], key = "\(q.name)|\(g)"
        if let values = set.values, !q.dynamic, !fakeQuant {
            let product = try int8Products[key] ?? LinearInt8(weights: values, outputs: q.outputs, inputs: q.inputs,
                                                              weightScales: set.scales, weightZeroPoints: set.zeroPoints,
                                                              bias: set.bias, inputMultiplier: set.inputMultiplier)
            int8Products[key] = product
            try product.forward(input, rows: rows, encoding: q.encodings[min(step ?? 0, q.encodings.count - 1)], into: output)
            return
        }
        let product = try floatProducts[key] ?? LinearFP32(weight: set.dequantized(outputs: q.outputs, inputs: q.inputs),
                                                           outputs: q.outputs, inputs: q.inputs, bias: set.bias)
        floatProducts[key] = product
        if set.values != nil, !q.dynamic {
            let e = q.encodings[min(step ?? 0, q.encodings.count - 1)], m = set.inputMultiplier, K = q.inputs
            var fake = [Float](repeating: 0, count: rows * K)
            for i in 0..<(rows * K) { fake[i] = e.fakeQuantize(m.map { input[i] * $0[i % K] } ?? input[i]) }
            return try fake.withUnsafeBufferPointer { try product.forward($0.baseAddress!, rows: rows, into: output) }
        }
        guard q.dynamic else { return try product.forward(input, rows: rows, into: output) }
        let fake = DynamicPerTokenQuantizer.fakeQuantize(Array(UnsafeBufferPointer(start: input, count: rows * q.inputs)),
                                                         rows: rows, width: q.inputs, kind: q.activationKind)
        try fake.withUnsafeBufferPointer { try product.forward($0.baseAddress!, rows: rows, into: output) }
    }

    /// The tables carry every fold already.
    public func modulationFold(block: String, step: Int?) -> (msa: [Float]?, mlp: [Float]?) { (nil, nil) }

    public func modulationTable(block: String, step: Int?) -> [Float]? {
        guard let table = file.modulation[block] else { return nil }
        let width = table.count / file.steps, s = min(step ?? 0, file.steps - 1)
        return Array(table[(s * width)..<((s + 1) * width)])
    }

    public func captionProjection(block: String, step: Int?) -> LinearFP32? {
        guard let copies = file.captionProjections[block] else { return nil }
        let g = copies.count == 1 ? 0 : group(step), key = "\(block)|\(g)"
        if let product = captionProducts[key] { return product }
        // The file was checked against the model, so the shapes fit; oneDNN fp32 primitives do not fail in practice.
        let (outputs, inputs) = file.captionProjectionShape
        guard let product = try? LinearFP32(weight: copies[g].weight, outputs: outputs, inputs: inputs, bias: copies[g].bias) else {
            preconditionFailure("could not create the caption projection of \(block) from \(file.path)")
        }
        captionProducts[key] = product
        return product
    }
}
