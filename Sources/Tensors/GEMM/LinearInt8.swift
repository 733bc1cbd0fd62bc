import CDNNL

/// How quantized activations are stored: unsigned (`[0, 255]`, any zero point) or signed
/// (`[−128, 127]`, symmetric use).
public enum ActivationStorage: String, Sendable, Hashable {
    case u8, s8
}

/// A static int8 linear layer on oneDNN (QUANTIZATION.md, "Integer execution"):
///
///     y[n, c] = Δx · Δw[c] · (Σ_k xq[n, k] · wq[c, k] − z · Σ_k wq[c, k]) + b[c]
///
/// `wq` is `[C, K]` int8 (per-output-channel scales `Δw`, zero point 0), `xq` is `[N, K]` u8 or s8
/// with one per-tensor scale `Δx` and zero point `z`. The sum runs in 32-bit integers on VNNI;
/// the zero-point term is compensated inside oneDNN, bias and scales are fused in its epilogue
/// (oneDNN 2.x adds the bias before the output scale, so the bias is passed as `b / (Δx·Δw)`).
///
/// Weights are packed once. Because per-step calibration changes `Δx` every sampler step, one
/// primitive is cached per (rows, Δx, z); creating one costs about as much as running it once.
/// The cache keeps the `maximumCachedPrimitives` most recently used, so a layer swept over many
/// encodings (an α or clip search) holds bounded memory.
public final class LinearInt8: @unchecked Sendable {
    /// Primitives kept per layer: a 30-step sampler with per-step scales at two row counts fits.
    public static let maximumCachedPrimitives = 64

    public let inputFeatures: Int
    public let outputFeatures: Int
    public let activationStorage: ActivationStorage
    /// Δw, one per output channel.
    public let weightScales: [Float]
    public let bias: [Float]?

    private let weights: PackedWeights
    /// Cached primitives with the tick of their last use (least recently used evicted first).
    private var plans: [PlanKey: (plan: MatmulPlan, lastUse: UInt64)] = [:]
    private var tick: UInt64 = 0

    private struct PlanKey: Hashable {
        var rows: Int
        var inputScaleBits: UInt32
        var zeroPoint: Int32
        var accumulatorsOnly: Bool
    }

    /// - Parameters:
    ///   - weights: `[C, K]` int8, row-major (copied and packed).
    ///   - weightScales: Δw, C positive finite floats.
    ///   - bias: C floats or nil.
    public init(weights: [Int8], outputs: Int, inputs: Int, weightScales: [Float], bias: [Float]?,
                activations: ActivationStorage) throws {
        precondition(weights.count == outputs * inputs, "weights hold \(weights.count) values, expected \(outputs)×\(inputs)")
        precondition(weightScales.count == outputs, "\(weightScales.count) weight scales for \(outputs) outputs")
        precondition(bias == nil || bias!.count == outputs, "bias length ≠ \(outputs) outputs")
        precondition(weightScales.allSatisfy { $0 > 0 && $0.isFinite }, "weight scales must be positive and finite")
        inputFeatures = inputs
        outputFeatures = outputs
        activationStorage = activations
        self.weightScales = weightScales
        self.bias = bias
        self.weights = try PackedWeights(.int8(weights), outputs: outputs, inputs: inputs)
    }

    private var sourceType: dnnl_data_type_t { activationStorage == .u8 ? dnnl_u8 : dnnl_s8 }

    /// The primitive for `key`, created on a miss. Called with `DNNLRuntime.shared.lock` held.
    private func plan(_ key: PlanKey) throws -> MatmulPlan {
        tick += 1
        if let cached = plans[key] {
            plans[key] = (cached.plan, tick)
            return cached.plan
        }
        let src = try MemoryDesc.rowMajor([key.rows, inputFeatures], sourceType)
        let dst = try MemoryDesc.rowMajor([key.rows, outputFeatures], key.accumulatorsOnly ? dnnl_s32 : dnnl_f32)
        let attributes = try DNNLAttributes()
        if key.zeroPoint != 0 { try attributes.setSourceZeroPoint(key.zeroPoint) }
        var biasDesc: dnnl_memory_desc_t? = nil
        var folded: AlignedBuffer? = nil
        if !key.accumulatorsOnly {
            let inputScale = Float(bitPattern: key.inputScaleBits)
            let scales = weightScales.map { inputScale * $0 }
            try attributes.setOutputScales(scales, perColumn: true)
            if let bias {
                biasDesc = try MemoryDesc.rowMajor([1, outputFeatures], dnnl_f32)
                let buffer = AlignedBuffer(byteCount: 4 * outputFeatures)
                let p = buffer.pointer.bindMemory(to: Float.self, capacity: outputFeatures)
                for c in 0..<outputFeatures { p[c] = bias[c] / scales[c] }
                folded = buffer
            }
        }
        let primitive = try makeMatmul(src: src, weights: try MemoryDesc.any([inputFeatures, outputFeatures], dnnl_s8),
                                       bias: biasDesc, dst: dst, attributes: attributes)
        let weightsDesc = primitive.queryMemoryDesc(dnnl_query_weights_md)
        let plan = try MatmulPlan(primitive: primitive, src: src, weights: weightsDesc, dst: dst, bias: biasDesc,
                                  owned: folded)
        try plan.weights.bind(try weights.buffer(for: weightsDesc))
        if let b = plan.bias, let folded { try b.bind(UnsafeRawPointer(folded.pointer)) }
        if plans.count >= Self.maximumCachedPrimitives, let oldest = plans.min(by: { $0.value.lastUse < $1.value.lastUse })?.key {
            plans[oldest] = nil
        }
        plans[key] = (plan, tick)
        return plan
    }

    private func run(_ key: PlanKey, _ xq: UnsafeRawPointer, _ y: UnsafeMutableRawPointer) throws {
        try DNNLRuntime.shared.lock.withLock {
            try plan(key).run(src: xq, dst: y)
        }
    }

    private func checkZeroPoint(_ zeroPoint: Int32) {
        switch activationStorage {
        case .u8: precondition((0...255).contains(zeroPoint), "u8 zero point \(zeroPoint) outside [0, 255]")
        case .s8: precondition((-128...127).contains(zeroPoint), "s8 zero point \(zeroPoint) outside [−128, 127]")
        }
    }

    /// `xq`: `rows × K` bytes (u8 or s8 per `activationStorage`); `y` receives `rows × C` floats.
    public func forward(_ xq: UnsafeRawPointer, rows: Int, inputScale: Float, zeroPoint: Int32,
                        into y: UnsafeMutablePointer<Float>) throws {
        precondition(inputScale > 0 && inputScale.isFinite, "activation scale must be positive and finite")
        checkZeroPoint(zeroPoint)
        guard rows > 0 else { return }
        try run(PlanKey(rows: rows, inputScaleBits: inputScale.bitPattern, zeroPoint: zeroPoint, accumulatorsOnly: false),
                xq, UnsafeMutableRawPointer(y))
    }

    /// The exact integer sums `Σ_k (xq[n, k] − z) · wq[c, k]` into `rows × C` Int32s — the part of
    /// the product that must be bit-exact.
    public func accumulate(_ xq: UnsafeRawPointer, rows: Int, zeroPoint: Int32,
                           into accumulators: UnsafeMutablePointer<Int32>) throws {
        checkZeroPoint(zeroPoint)
        guard rows > 0 else { return }
        try run(PlanKey(rows: rows, inputScaleBits: 0, zeroPoint: zeroPoint, accumulatorsOnly: true),
                xq, UnsafeMutableRawPointer(accumulators))
    }

    /// The oneDNN implementation for `rows` rows at the given activation encoding.
    public func implementationName(rows: Int, inputScale: Float = 1, zeroPoint: Int32 = 0) throws -> String {
        try DNNLRuntime.shared.lock.withLock {
            try plan(PlanKey(rows: rows, inputScaleBits: inputScale.bitPattern, zeroPoint: zeroPoint,
                             accumulatorsOnly: false)).primitive.implementationName
        }
    }

    /// Whether the primitive for these rows and encoding is cached (for tests of the eviction order).
    func isCached(rows: Int, inputScale: Float, zeroPoint: Int32) -> Bool {
        DNNLRuntime.shared.lock.withLock {
            plans[PlanKey(rows: rows, inputScaleBits: inputScale.bitPattern, zeroPoint: zeroPoint, accumulatorsOnly: false)] != nil
        }
    }

    /// Number of cached primitives (one per rows × activation encoding recently used, at most
    /// `maximumCachedPrimitives`).
    public var cachedPrimitiveCount: Int { DNNLRuntime.shared.lock.withLock { plans.count } }
}
