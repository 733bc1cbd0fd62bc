import Tensors
#if canImport(Glibc)
import Glibc
#endif

/// A quantizable block linear as the forward pass sees it: its state-dict name, its size and
/// the float32 product on oneDNN. `weight` `[outputs, inputs]` and `bias` stay available as float32
/// so quantizers can derive their own versions.
public final class BlockLinear: @unchecked Sendable {
    public let name: String
    public let inputs: Int
    public let outputs: Int
    public let bias: [Float]?
    /// The checkpoint's weight tensor, read on first use: opening a 5 GB checkpoint reads none of
    /// its block linears, and a screen that needs one layer reads that layer.
    private let file: SafetensorsFile
    private let weightEntry: SafetensorsEntry
    private var loaded: LinearFP32?
    private var columnAbsMax: [Float]?
    private var mutex = pthread_mutex_t()

    /// The layer's fp32 product over its `[outputs, inputs]` weights, read and converted from the
    /// checkpoint on first use (then kept).
    public var float32: LinearFP32 {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        if let loaded { return loaded }
        let weight = readWeight()
        // The shapes were validated when the file was opened; oneDNN's descriptors of them cannot fail.
        let linear = try! LinearFP32(weight: weight, outputs: outputs, inputs: inputs, bias: bias)
        loaded = linear
        return linear
    }

    /// `[outputs, inputs]` float32, the storage the fp32 product packs from (not a second copy).
    public var weight: [Float] { float32.weight }

    /// max|W[:, k]| per input channel `[inputs]` (SmoothQuant's weight side), computed once; from
    /// the file without keeping the weights when they are not loaded.
    public var inputAbsMax: [Float] {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        if let columnAbsMax { return columnAbsMax }
        let w = loaded?.weight ?? readWeight()
        var out = [Float](repeating: 0, count: inputs)
        w.withUnsafeBufferPointer { w in
            for c in 0..<outputs { for k in 0..<inputs { out[k] = max(out[k], abs(w[c * inputs + k])) } }
        }
        columnAbsMax = out
        return out
    }

    /// The weights `[outputs, inputs]`: the loaded ones, or a copy read from the checkpoint that
    /// is not kept (for work that reads each layer once, such as quantizing an XL model).
    public func weightCopy() -> [Float] {
        pthread_mutex_lock(&mutex)
        let loaded = self.loaded
        pthread_mutex_unlock(&mutex)
        return loaded?.weight ?? readWeight()
    }

    /// Whether the weights have been read from the checkpoint.
    public var isLoaded: Bool {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        return loaded != nil
    }

    private func readWeight() -> [Float] {
        defer { file.releasePages(of: weightEntry) }
        return file.view(of: weightEntry).toFloat32().scalars
    }

    /// `flattening`: a weight of more than two dimensions (a convolution's `[C, Cin, kt, kh, kw]`)
    /// is the matrix `[C, Cin·kt·kh·kw]` of its row-major layout.
    /// - Throws: `ModelLoadError` when `weight` is not a matrix or the bias does not match it.
    init(name: String, file: SafetensorsFile, weight: String, bias: String?, flattening: Bool = false) throws {
        guard let entry = file[weight] else { throw ModelLoadError("\(file.path): \(weight) is missing") }
        guard entry.shape.count == 2 || (flattening && entry.shape.count > 2), entry.dtype.isFloatingPoint else {
            throw ModelLoadError("\(file.path): \(weight) is \(entry.dtype.name) \(entry.shape), expected a float matrix")
        }
        self.name = name
        outputs = entry.shape[0]
        inputs = entry.shape.dropFirst().reduce(1, *)
        self.file = file
        weightEntry = entry
        let biasValues = try bias.map { try file.tensor($0) }
        if let biasValues, biasValues.shape != [outputs] {
            throw ModelLoadError("\(file.path): \(bias!) is \(biasValues.shape), expected [\(outputs)]")
        }
        self.bias = biasValues?.scalars
        pthread_mutex_init(&mutex, nil)
    }

    deinit { pthread_mutex_destroy(&mutex) }
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

extension CapturingExecutor: AttentionProductExecutor {
    public func attentionEncodings(_ attention: String, step: Int?) -> AttentionEncodings? {
        (inner as? AttentionProductExecutor)?.attentionEncodings(attention, step: step)
    }

    public var observesAttentionOperands: Bool { (inner as? AttentionProductExecutor)?.observesAttentionOperands ?? false }

    public func observeAttentionOperands(_ attention: String, step: Int?, q: UnsafePointer<Float>, queryRows: Int,
                                         k: UnsafePointer<Float>, v: UnsafePointer<Float>, keyRows: Int, width: Int) {
        (inner as? AttentionProductExecutor)?.observeAttentionOperands(attention, step: step, q: q, queryRows: queryRows,
                                                                       k: k, v: v, keyRows: keyRows, width: width)
    }
}
