import CDNNL

/// A float32 linear layer on oneDNN: `y[N, C] = x[N, K] · Wᵀ + b`, with `W` given as PyTorch
/// stores it (`[C, K]`, output channels × input channels) and `b` of length C.
///
/// The weights are copied and packed once; one primitive is created and cached per row count N,
/// so a forward pass allocates nothing after its first step.
public final class LinearFP32: @unchecked Sendable {
    public let inputFeatures: Int
    public let outputFeatures: Int
    public let hasBias: Bool

    private let weights: PackedWeights
    private let bias: AlignedBuffer?
    /// Per (rows, threads): primitives bake in the thread count.
    private var plans: [[Int]: MatmulPlan] = [:]

    /// - Parameters:
    ///   - weight: `[C, K]` row-major floats (kept, shared copy-on-write, and packed once).
    ///   - bias: C floats, or nil.
    public init(weight: [Float], outputs: Int, inputs: Int, bias: [Float]?) throws {
        precondition(weight.count == outputs * inputs, "weight holds \(weight.count) floats, expected \(outputs)×\(inputs)")
        precondition(bias == nil || bias!.count == outputs, "bias length \(bias!.count) ≠ \(outputs) outputs")
        inputFeatures = inputs
        outputFeatures = outputs
        weights = try PackedWeights(.float32(weight), outputs: outputs, inputs: inputs)
        if let bias {
            let buffer = AlignedBuffer(byteCount: 4 * outputs)
            bias.withUnsafeBytes { buffer.pointer.copyMemory(from: $0.baseAddress!, byteCount: 4 * outputs) }
            self.bias = buffer
        } else {
            self.bias = nil
        }
        hasBias = bias != nil
    }

    /// The plain `[C, K]` weights (the same storage as the array passed in).
    public var weight: [Float] {
        if case .float32(let values) = weights.plain { return values }
        preconditionFailure("fp32 layer with non-float weights")
    }

    /// The bias `[C]`, or nil.
    public var biasValues: [Float]? {
        bias.map { Array(UnsafeBufferPointer(start: $0.pointer.assumingMemoryBound(to: Float.self), count: outputFeatures)) }
    }

    /// `weight` `[C, K]`, `bias` `[C]`.
    public convenience init(weight: Tensor, bias: Tensor?) throws {
        precondition(weight.rank == 2, "weight must be [C, K], got \(weight.shape)")
        try self.init(weight: weight.scalars, outputs: weight.shape[0], inputs: weight.shape[1], bias: bias?.scalars)
    }

    private func plan(rows: Int) throws -> MatmulPlan {
        let key = [rows, DNNLRuntime.shared.threads]
        if let plan = plans[key] { return plan }
        let src = try MemoryDesc.rowMajor([rows, inputFeatures], dnnl_f32)
        let dst = try MemoryDesc.rowMajor([rows, outputFeatures], dnnl_f32)
        let biasDesc = hasBias ? try MemoryDesc.rowMajor([1, outputFeatures], dnnl_f32) : nil
        let primitive = try makeMatmul(src: src, weights: try MemoryDesc.any([inputFeatures, outputFeatures], dnnl_f32),
                                       bias: biasDesc, dst: dst, attributes: nil)
        let weightsDesc = primitive.queryMemoryDesc(dnnl_query_weights_md)
        let plan = try MatmulPlan(primitive: primitive, src: src, weights: weightsDesc, dst: dst, bias: biasDesc)
        try plan.weights.bind(try weights.buffer(for: weightsDesc))
        if let b = plan.bias { try b.bind(UnsafeRawPointer(bias!.pointer)) }
        plans[key] = plan
        return plan
    }

    /// Products with fewer rows, or fewer outputs in all, run on one thread: on AVX2 oneDNN splits
    /// their sum over K between threads, which would make results depend on the load
    /// (`ThreadBudget`); and a thread team costs more than it saves at this size.
    static let singleThreadRows = 64, singleThreadOutputs = 32_768

    private func maximumThreads(rows: Int) -> Int {
        rows < Self.singleThreadRows || rows * outputFeatures < Self.singleThreadOutputs ? 1 : .max
    }

    /// `x` holds `rows × K` floats, `y` receives `rows × C` floats.
    public func forward(_ x: UnsafePointer<Float>, rows: Int, into y: UnsafeMutablePointer<Float>) throws {
        guard rows > 0 else { return }
        try DNNLRuntime.shared.serialized(maximumThreads: maximumThreads(rows: rows)) {
            try plan(rows: rows).run(src: x, dst: y)
        }
    }

    /// `x` `[..., K]` → `[..., C]`.
    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        precondition(x.shape.last == inputFeatures, "input \(x.shape) does not end in \(inputFeatures) features")
        let rows = x.count / inputFeatures
        var y = Tensor(zeros: Array(x.shape.dropLast()) + [outputFeatures])
        try x.withUnsafeBufferPointer { xb in
            try y.withUnsafeMutableBufferPointer { yb in
                try forward(xb.baseAddress!, rows: rows, into: yb.baseAddress!)
            }
        }
        return y
    }

    /// The oneDNN implementation that runs products of `rows` rows (creates the plan if needed).
    public func implementationName(rows: Int) throws -> String {
        try DNNLRuntime.shared.serialized(maximumThreads: maximumThreads(rows: rows)) { try plan(rows: rows).primitive.implementationName }
    }
}
