import Tensors
import VideoDiT

/// How one block linear is quantized: its integer weights and the static activation encoding
/// of each sampler step (nil step: outside a sampler).
public struct LayerQuantization: Sendable {
    public let weights: QuantizedWeights
    public let bias: [Float]?
    public let encoding: @Sendable (Int?) -> ActivationEncoding

    public init(weights: QuantizedWeights, bias: [Float]?, encoding: @escaping @Sendable (Int?) -> ActivationEncoding) {
        self.weights = weights
        self.bias = bias
        self.encoding = encoding
    }
}

/// The reference path (QUANTIZATION.md, "Integer execution"): quantize-dequantize the input with
/// the step's encoding, multiply by the dequantized weights in float32. Layers without an entry
/// run in float32.
public final class FakeQuantExecutor: LinearExecutor {
    public let layers: [String: LayerQuantization]
    private var products: [String: LinearFP32] = [:]

    public init(layers: [String: LayerQuantization]) { self.layers = layers }

    public func run(_ layer: BlockLinear, step: Int?, input: UnsafePointer<Float>, rows: Int,
                    output: UnsafeMutablePointer<Float>) throws {
        guard let q = layers[layer.name] else {
            try layer.float32.forward(input, rows: rows, into: output)
            return
        }
        let product: LinearFP32
        if let cached = products[layer.name] {
            product = cached
        } else {
            product = try LinearFP32(weight: q.weights.dequantized(), outputs: layer.outputs, inputs: layer.inputs, bias: q.bias)
            products[layer.name] = product
        }
        let encoding = q.encoding(step)
        let x = (0..<(rows * layer.inputs)).map { encoding.fakeQuantize(input[$0]) }
        try x.withUnsafeBufferPointer { try product.forward($0.baseAddress!, rows: rows, into: output) }
    }
}

/// The deployable path: activations quantized to u8/s8 with the step's static encoding, an int8
/// GEMM on oneDNN with exact 32-bit sums, scales and bias in the epilogue.
public final class Int8Executor: LinearExecutor {
    public let layers: [String: LayerQuantization]
    private var products: [String: LinearInt8] = [:]

    public init(layers: [String: LayerQuantization]) { self.layers = layers }

    public func run(_ layer: BlockLinear, step: Int?, input: UnsafePointer<Float>, rows: Int,
                    output: UnsafeMutablePointer<Float>) throws {
        guard let q = layers[layer.name] else {
            try layer.float32.forward(input, rows: rows, into: output)
            return
        }
        let encoding = q.encoding(step)
        let storage: ActivationStorage = encoding.kind == .symmetricInt8 ? .s8 : .u8
        let key = "\(layer.name)|\(storage.rawValue)"
        let product: LinearInt8
        if let cached = products[key] {
            product = cached
        } else {
            product = try LinearInt8(weights: q.weights.values, outputs: layer.outputs, inputs: layer.inputs,
                                     weightScales: q.weights.scales, bias: q.bias, activations: storage)
            products[key] = product
        }
        let count = rows * layer.inputs
        var bytes = [UInt8](repeating: 0, count: count)
        for i in 0..<count { bytes[i] = UInt8(truncatingIfNeeded: encoding.code(input[i])) }
        try bytes.withUnsafeBytes {
            try product.forward($0.baseAddress!, rows: rows, inputScale: encoding.scale, zeroPoint: encoding.zeroPoint, into: output)
        }
    }
}
