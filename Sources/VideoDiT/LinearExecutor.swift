import Tensors

/// A quantizable block linear as the forward pass sees it: its state-dict name, its size and
/// the float32 product on oneDNN. `weight` `[outputs, inputs]` and `bias` stay available as float32
/// so quantizers can derive their own versions.
public final class BlockLinear: @unchecked Sendable {
    public let name: String
    public let inputs: Int
    public let outputs: Int
    public let bias: [Float]?
    public let float32: LinearFP32

    /// `[outputs, inputs]` float32, the storage the fp32 product packs from (not a second copy).
    public var weight: [Float] { float32.weight }

    init(name: String, weight: Tensor, bias: Tensor?) throws {
        self.name = name
        outputs = weight.shape[0]
        inputs = weight.shape[1]
        self.bias = bias?.scalars
        float32 = try LinearFP32(weight: weight, bias: bias)
    }
}

/// The one seam through which the forward pass runs every quantizable block linear, per layer
/// and sampler step: plain fp32, calibration observers, fake-quant and int8 executors all plug
/// in here without the model code changing.
public protocol LinearExecutor: AnyObject {
    /// `output[rows, outputs] = layer(input[rows, inputs])` at sampler step `step` (nil outside a sampler).
    func run(_ layer: BlockLinear, step: Int?, input: UnsafePointer<Float>, rows: Int,
             output: UnsafeMutablePointer<Float>) throws
}

/// The float32 path: the layer's own oneDNN product.
public final class Float32Executor: LinearExecutor {
    public init() {}
    public func run(_ layer: BlockLinear, step: Int?, input: UnsafePointer<Float>, rows: Int,
                    output: UnsafeMutablePointer<Float>) throws {
        try layer.float32.forward(input, rows: rows, into: output)
    }
}

/// Records the input (and output) of every layer whose name matches, then runs the inner executor.
/// Patterns are shell-style with `*` (e.g. `spatial_blocks.*.attn.qkv`).
public final class CapturingExecutor: LinearExecutor {
    public struct Capture: Sendable {
        public let layer: String
        public let step: Int?
        public let rows: Int
        public let input: [Float]
        public let output: [Float]
    }

    public let pattern: String
    public let inner: LinearExecutor
    public private(set) var captures: [Capture] = []

    public init(pattern: String, inner: LinearExecutor = Float32Executor()) {
        self.pattern = pattern
        self.inner = inner
    }

    public func run(_ layer: BlockLinear, step: Int?, input: UnsafePointer<Float>, rows: Int,
                    output: UnsafeMutablePointer<Float>) throws {
        try inner.run(layer, step: step, input: input, rows: rows, output: output)
        if wildcardMatch(pattern, layer.name) {
            captures.append(Capture(layer: layer.name, step: step, rows: rows,
                                    input: Array(UnsafeBufferPointer(start: input, count: rows * layer.inputs)),
                                    output: Array(UnsafeBufferPointer(start: output, count: rows * layer.outputs))))
        }
    }
}

/// `*` matches any run of characters (dots included); everything else literally.
public func wildcardMatch(_ pattern: String, _ text: String) -> Bool {
    let p = Array(pattern), t = Array(text)
    var pi = 0, ti = 0, star = -1, mark = 0
    while ti < t.count {
        if pi < p.count && p[pi] != "*" && p[pi] == t[ti] {
            pi += 1; ti += 1
        } else if pi < p.count && p[pi] == "*" {
            star = pi; mark = ti; pi += 1
        } else if star >= 0 {
            pi = star + 1; mark += 1; ti = mark
        } else {
            return false
        }
    }
    while pi < p.count && p[pi] == "*" { pi += 1 }
    return pi == p.count
}

extension CapturingExecutor: FoldingExecutor {
    /// Whatever the wrapped executor folds, so capturing does not change the computation.
    public func modulationFold(block: String, step: Int?) -> (msa: [Float]?, mlp: [Float]?) {
        (inner as? FoldingExecutor)?.modulationFold(block: block, step: step) ?? (nil, nil)
    }

    public func captionProjection(block: String, step: Int?) -> LinearFP32? {
        (inner as? FoldingExecutor)?.captionProjection(block: block, step: step)
    }

    public func modulationTable(block: String, step: Int?) -> [Float]? {
        (inner as? FoldingExecutor)?.modulationTable(block: block, step: step)
    }

    public func modulationShift(block: String, step: Int?) -> (msa: [Float]?, mlp: [Float]?) {
        (inner as? FoldingExecutor)?.modulationShift(block: block, step: step) ?? (nil, nil)
    }
}
