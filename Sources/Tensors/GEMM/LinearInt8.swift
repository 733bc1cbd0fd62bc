import CDNNL

/// A static int8 linear layer on oneDNN (QUANTIZATION.md, "Integer execution"):
///
///     y[n, c] = Δx · Δw[c] · Σ_k (xq[n, k] − z) · (wq[c, k] − zw[c]) + b[c]
///
/// `wq` is `[C, K]` int8 with per-output-channel scales Δw and zero points zw (all 0: symmetric
/// weights); `xq` holds the codes of the input under one per-tensor `ActivationEncoding` (Δx, z),
/// stored as u8 (`ActivationEncoding.storageOffset`). The integer sums are exact on every CPU,
/// bit for bit the scalar formula, by the `IntegerProductMethod` chosen for the ISA.
///
/// From float32 input, `forward` quantizes inside oneDNN: one binary primitive with post-ops
/// (optional per-input-channel multiplier — SmoothQuant's explicit `1/s` —, division by Δx, round
/// half to even, + z, clamp), bit for bit `ActivationEncoding.code`, vectorised and threaded like
/// the product after it; no serial loop runs between the two. Bias and scales are fused in the
/// product's epilogue (oneDNN 2.x adds the bias before the output scale, so it is passed as
/// `b / (Δx·Δw)`). Asymmetric weights add one output channel of ones to the product, whose exact
/// sums `Σ_k (xq − z)` give the `zw` correction afterwards.
///
/// Weights are packed once. Per-step calibration changes Δx every sampler step, and output scales
/// baked into a primitive run faster than runtime ones (PLATFORM.md), so one product primitive is
/// cached per (rows, Δx, z); the cache keeps the `maximumCachedPrimitives` most recently used, so a
/// layer swept over many encodings (an α or clip search) holds bounded memory.
public final class LinearInt8: @unchecked Sendable {
    /// Product (and quantizer) primitives kept per layer: a 30-step sampler with per-step scales at
    /// two row counts fits.
    public static let maximumCachedPrimitives = 64

    public let inputFeatures: Int
    public let outputFeatures: Int
    public let method: IntegerProductMethod
    /// Δw, one per output channel.
    public let weightScales: [Float]
    /// zw, one per output channel; all 0 for symmetric weights.
    public let weightZeroPoints: [Int32]
    public let bias: [Float]?
    /// Per input channel, the factor applied to float input before quantization; nil for none.
    public let inputMultiplier: [Float]?

    private let hasWeightZeroPoints: Bool
    /// Output channels of the products: C, plus the channel of ones when weights are asymmetric.
    private let productOutputs: Int
    /// `[productOutputs, K]` per product: the weights (native), or their two halves (split).
    private let parts: [PackedWeights]
    private var products = PrimitiveCache<ProductKey, [MatmulPlan]>(capacity: maximumCachedPrimitives)
    private var quantizers = PrimitiveCache<QuantizerKey, PrimitiveCall>(capacity: maximumCachedPrimitives)
    /// Δx and the stored codes' zero point of the running call, read by the quantizer as tensors.
    private let runtimeScalars = AlignedBuffer(byteCount: 8)
    private let multiplier: AlignedBuffer?

    /// Made inside `DNNLRuntime.shared.serialized`: primitives bake in the thread count.
    private struct ProductKey: Hashable {
        var rows: Int
        var inputScaleBits: UInt32
        var zeroPoint: Int32
        var accumulatorsOnly: Bool
        var threads = DNNLRuntime.shared.threads
    }

    private struct QuantizerKey: Hashable {
        var rows: Int
        var kind: ActivationEncoding.Kind
        var threads = DNNLRuntime.shared.threads
    }

    /// - Parameters:
    ///   - weights: `[C, K]` int8, row-major (copied and packed).
    ///   - weightScales: Δw, C positive finite floats.
    ///   - weightZeroPoints: zw, C integers, or nil for symmetric weights.
    ///   - bias: C floats or nil.
    ///   - inputMultiplier: K floats multiplying float input before quantization, or nil.
    ///   - method: how the integer sums are made exact; by default the one chosen for this CPU.
    public init(weights: [Int8], outputs: Int, inputs: Int, weightScales: [Float], weightZeroPoints: [Int32]? = nil,
                bias: [Float]?, inputMultiplier: [Float]? = nil, method: IntegerProductMethod = .automatic) throws {
        precondition(weights.count == outputs * inputs, "weights hold \(weights.count) values, expected \(outputs)×\(inputs)")
        precondition(weightScales.count == outputs, "\(weightScales.count) weight scales for \(outputs) outputs")
        precondition(weightZeroPoints == nil || weightZeroPoints!.count == outputs, "weight zero points ≠ \(outputs) outputs")
        precondition(bias == nil || bias!.count == outputs, "bias length ≠ \(outputs) outputs")
        precondition(inputMultiplier == nil || inputMultiplier!.count == inputs, "input multiplier length ≠ \(inputs) inputs")
        precondition(weightScales.allSatisfy { $0 > 0 && $0.isFinite }, "weight scales must be positive and finite")
        inputFeatures = inputs
        outputFeatures = outputs
        self.method = method
        self.weightScales = weightScales
        self.weightZeroPoints = weightZeroPoints ?? [Int32](repeating: 0, count: outputs)
        self.bias = bias
        self.inputMultiplier = inputMultiplier
        hasWeightZeroPoints = self.weightZeroPoints.contains { $0 != 0 }
        productOutputs = outputs + (hasWeightZeroPoints ? 1 : 0)
        let all = hasWeightZeroPoints ? weights + [Int8](repeating: 1, count: inputs) : weights
        switch method {
        case .native:
            parts = [try PackedWeights(.int8(all), outputs: productOutputs, inputs: inputs)]
        case .splitWeights:
            let floorHalf = all.map { $0 >> 1 }
            let ceilingHalf = zip(all, floorHalf).map { $0 - $1 }
            parts = [try PackedWeights(.int8(ceilingHalf), outputs: productOutputs, inputs: inputs),
                     try PackedWeights(.int8(floorHalf), outputs: productOutputs, inputs: inputs)]
        }
        multiplier = inputMultiplier.map { values in
            let buffer = AlignedBuffer(byteCount: 4 * values.count)
            values.withUnsafeBytes { buffer.pointer.copyMemory(from: $0.baseAddress!, byteCount: 4 * values.count) }
            return buffer
        }
    }

    // MARK: - Public entry points

    /// Quantizes `x` (`rows × K` floats) under `encoding` and runs the product: `y` receives `rows × C` floats.
    public func forward(_ x: UnsafePointer<Float>, rows: Int, encoding: ActivationEncoding,
                        into y: UnsafeMutablePointer<Float>) throws {
        guard rows > 0 else { return }
        try DNNLRuntime.shared.serialized {
            let codes = DNNLRuntime.shared.scratch(0, byteCount: rows * inputFeatures)
            try quantizeLocked(x, rows: rows, encoding: encoding, into: codes)
            try productLocked(UnsafeRawPointer(codes), rows: rows, inputScale: encoding.scale,
                              zeroPoint: encoding.storageZeroPoint, into: y)
        }
    }

    /// The product of already stored codes (`rows × K` bytes, zero point `zeroPoint` in 0…255):
    /// `y` receives `rows × C` floats.
    public func forward(codes: UnsafePointer<UInt8>, rows: Int, inputScale: Float, zeroPoint: Int32,
                        into y: UnsafeMutablePointer<Float>) throws {
        precondition(inputScale > 0 && inputScale.isFinite, "activation scale must be positive and finite")
        precondition((0...255).contains(zeroPoint), "stored-code zero point \(zeroPoint) outside [0, 255]")
        guard rows > 0 else { return }
        try DNNLRuntime.shared.serialized {
            try productLocked(UnsafeRawPointer(codes), rows: rows, inputScale: inputScale, zeroPoint: zeroPoint, into: y)
        }
    }

    /// The stored codes the kernel computes for `x` under `encoding` (`rows × K` bytes): the input
    /// multiplier applied, then `ActivationEncoding.code(x) + storageOffset`.
    public func quantize(_ x: UnsafePointer<Float>, rows: Int, encoding: ActivationEncoding,
                         into codes: UnsafeMutablePointer<UInt8>) throws {
        guard rows > 0 else { return }
        try DNNLRuntime.shared.serialized {
            try quantizeLocked(x, rows: rows, encoding: encoding, into: UnsafeMutableRawPointer(codes))
        }
    }

    /// The exact integer sums `Σ_k (xq[n, k] − z) · (wq[c, k] − zw[c])` of stored codes into
    /// `rows × C` Int32s — the part of the product that must be bit-exact on every CPU.
    public func accumulate(_ codes: UnsafePointer<UInt8>, rows: Int, zeroPoint: Int32,
                           into accumulators: UnsafeMutablePointer<Int32>) throws {
        precondition((0...255).contains(zeroPoint), "stored-code zero point \(zeroPoint) outside [0, 255]")
        guard rows > 0 else { return }
        try DNNLRuntime.shared.serialized {
            let plans = try product(ProductKey(rows: rows, inputScaleBits: 0, zeroPoint: zeroPoint, accumulatorsOnly: true))
            let count = rows * productOutputs
            let runtime = DNNLRuntime.shared
            let sums = hasWeightZeroPoints
                ? runtime.scratch(1, byteCount: 4 * count).bindMemory(to: Int32.self, capacity: count) : accumulators
            try plans[0].run(src: codes, dst: sums)
            if plans.count > 1 {
                let second = runtime.scratch(2, byteCount: 4 * count).bindMemory(to: Int32.self, capacity: count)
                try plans[1].run(src: codes, dst: second)
                for i in 0..<count { sums[i] += second[i] }
            }
            guard hasWeightZeroPoints else { return }
            let (C, P) = (outputFeatures, productOutputs)
            for n in 0..<rows {
                let rowSum = sums[n * P + C]
                for c in 0..<C { accumulators[n * C + c] = sums[n * P + c] - weightZeroPoints[c] * rowSum }
            }
        }
    }

    /// The oneDNN implementation of the (first) product for `rows` rows at the given encoding.
    public func implementationName(rows: Int, inputScale: Float = 1, zeroPoint: Int32 = 0) throws -> String {
        try DNNLRuntime.shared.serialized {
            try product(ProductKey(rows: rows, inputScaleBits: inputScale.bitPattern, zeroPoint: zeroPoint,
                                   accumulatorsOnly: false))[0].primitive.implementationName
        }
    }

    /// Whether the product for these rows and encoding is cached (for tests of the eviction order).
    func isCached(rows: Int, inputScale: Float, zeroPoint: Int32) -> Bool {
        DNNLRuntime.shared.serialized {
            products.contains(ProductKey(rows: rows, inputScaleBits: inputScale.bitPattern, zeroPoint: zeroPoint, accumulatorsOnly: false))
        }
    }

    /// Number of cached product primitives (one per rows × activation encoding recently used, at
    /// most `maximumCachedPrimitives`).
    public var cachedPrimitiveCount: Int { DNNLRuntime.shared.serialized { products.count } }

    // MARK: - Kernels (called inside `DNNLRuntime.shared.serialized`)

    private func quantizeLocked(_ x: UnsafePointer<Float>, rows: Int, encoding: ActivationEncoding,
                                into codes: UnsafeMutableRawPointer) throws {
        let call = try quantizer(QuantizerKey(rows: rows, kind: encoding.kind))
        let scalars = runtimeScalars.pointer.bindMemory(to: Float.self, capacity: 2)
        scalars[0] = encoding.scale
        scalars[1] = Float(encoding.storageZeroPoint)
        try call.bind(0, x)
        try call.bind(2, UnsafeRawPointer(codes))
        try call.execute()
    }

    private func productLocked(_ codes: UnsafeRawPointer, rows: Int, inputScale: Float, zeroPoint: Int32,
                               into y: UnsafeMutablePointer<Float>) throws {
        let plans = try product(ProductKey(rows: rows, inputScaleBits: inputScale.bitPattern, zeroPoint: zeroPoint,
                                           accumulatorsOnly: false))
        let (C, P) = (outputFeatures, productOutputs)
        let out = hasWeightZeroPoints
            ? DNNLRuntime.shared.scratch(1, byteCount: 4 * rows * P).bindMemory(to: Float.self, capacity: rows * P) : y
        for plan in plans { try plan.run(src: codes, dst: out) }
        guard hasWeightZeroPoints else { return }
        // Σ(xq − z)(wq − zw) = Σ(xq − z)·wq − zw·Σ(xq − z): the last channel holds Σ(xq − z) exactly.
        for n in 0..<rows {
            let rowSum = out[n * P + C] * inputScale
            for c in 0..<C { y[n * C + c] = out[n * P + c] - rowSum * weightScales[c] * Float(weightZeroPoints[c]) }
        }
    }

    /// `codes = clamp(rne(x·m / Δx) + z, lo, hi)` in stored form; Δx and z are runtime tensors, so
    /// one primitive serves every step of a layer.
    private func quantizer(_ key: QuantizerKey) throws -> PrimitiveCall {
        try quantizers.value(for: key) { try makeQuantizer(key) }
    }

    private func makeQuantizer(_ key: QuantizerKey) throws -> PrimitiveCall {
        let input = try MemoryDesc.rowMajor([key.rows, inputFeatures], dnnl_f32)
        let scalar = try MemoryDesc.rowMajor([1, 1], dnnl_f32)
        let codes = try MemoryDesc.rowMajor([key.rows, inputFeatures], dnnl_u8)
        let offset: Float = key.kind == .symmetricInt8 ? 128 : 0
        let (lo, hi): (Float, Float) = key.kind == .symmetricInt8 ? (-127 + offset, 127 + offset) : (0, 255)
        let inputScale = UnsafeRawPointer(runtimeScalars.pointer), zeroPoint = inputScale + 4

        // Slots 0 input, 1 the binary's second operand, 2 codes, then one per binary post-op.
        let operand: (algorithm: dnnl_alg_kind_t, desc: dnnl_memory_desc_t, data: UnsafeRawPointer)
        var postOps: [DNNLAttributes.PostOp] = []
        var postOpData: [UnsafeRawPointer] = []
        if let multiplier {
            operand = (dnnl_binary_mul, try MemoryDesc.rowMajor([1, inputFeatures], dnnl_f32), UnsafeRawPointer(multiplier.pointer))
            postOps.append(.binary(dnnl_binary_div, scalar))
            postOpData.append(inputScale)
        } else {
            operand = (dnnl_binary_div, scalar, inputScale)
        }
        postOps.append(.eltwise(dnnl_eltwise_round, alpha: 0, beta: 0))
        postOps.append(.binary(dnnl_binary_add, scalar))
        postOpData.append(zeroPoint)
        postOps.append(.eltwise(dnnl_eltwise_clip, alpha: lo, beta: hi))

        var arguments: [(index: Int32, desc: dnnl_memory_desc_t)] = [
            (stsq_dnnl_arg_src(), input), (stsq_dnnl_arg_src_1(), operand.desc), (stsq_dnnl_arg_dst(), codes),
        ]
        for (position, op) in postOps.enumerated() {
            if case .binary(_, let desc) = op { arguments.append((stsq_dnnl_arg_post_op_src_1(Int32(position)), desc)) }
        }
        let attributes = try DNNLAttributes()
        try attributes.useSharedScratchpad()
        try attributes.setPostOps(postOps)
        let primitive = try makeBinary(operand.algorithm, src0: input, src1: operand.desc, dst: codes, attributes: attributes)
        let call = try PrimitiveCall(primitive, arguments: arguments)
        try call.bind(1, operand.data)
        for (i, data) in postOpData.enumerated() { try call.bind(3 + i, data) }
        return call
    }

    /// The product primitives for `key`: one (native) or two (split, the second
    /// adding onto the first's output; for accumulators, into a separate buffer).
    private func product(_ key: ProductKey) throws -> [MatmulPlan] {
        try products.value(for: key) { try makeProduct(key) }
    }

    private func makeProduct(_ key: ProductKey) throws -> [MatmulPlan] {
        let src = try MemoryDesc.rowMajor([key.rows, inputFeatures], dnnl_u8)
        let dst = try MemoryDesc.rowMajor([key.rows, productOutputs], key.accumulatorsOnly ? dnnl_s32 : dnnl_f32)
        var plans: [MatmulPlan] = []
        for (index, part) in parts.enumerated() {
            let attributes = try DNNLAttributes()
            try attributes.useSharedScratchpad()
            if key.zeroPoint != 0 { try attributes.setSourceZeroPoint(key.zeroPoint) }
            var biasDesc: dnnl_memory_desc_t? = nil
            var folded: AlignedBuffer? = nil
            if !key.accumulatorsOnly {
                let inputScale = Float(bitPattern: key.inputScaleBits)
                // The channel of ones keeps scale 1 and no bias: its sums stay exact integers.
                let scales = weightScales.map { inputScale * $0 } + (hasWeightZeroPoints ? [1] : [])
                try attributes.setOutputScales(scales, perColumn: true)
                if index > 0 {
                    try attributes.setPostOps([.sum])
                } else if let bias {
                    biasDesc = try MemoryDesc.rowMajor([1, productOutputs], dnnl_f32)
                    let buffer = AlignedBuffer(byteCount: 4 * productOutputs)
                    let p = buffer.pointer.bindMemory(to: Float.self, capacity: productOutputs)
                    for c in 0..<productOutputs { p[c] = c < outputFeatures ? bias[c] / scales[c] : 0 }
                    folded = buffer
                }
            }
            let primitive = try makeMatmul(src: src, weights: try MemoryDesc.any([inputFeatures, productOutputs], dnnl_s8),
                                           bias: biasDesc, dst: dst, attributes: attributes)
            let weightsDesc = primitive.queryMemoryDesc(dnnl_query_weights_md)
            let plan = try MatmulPlan(primitive: primitive, src: src, weights: weightsDesc, dst: dst, bias: biasDesc,
                                      owned: folded.map { [$0] } ?? [])
            try plan.weights.bind(try part.buffer(for: weightsDesc))
            if let b = plan.bias, let folded { try b.bind(UnsafeRawPointer(folded.pointer)) }
            plans.append(plan)
        }
        return plans
    }
}
