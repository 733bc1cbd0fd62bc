import CDNNL

/// oneDNN's vectorised row operations for the forward pass, in place on float32 buffers:
/// GELU (tanh approximation), SiLU, softmax over the last axis and LayerNorm without affine
/// parameters. One primitive is created and cached per (operation, shape).
public enum RowKernels {
    private enum Operation: Hashable { case gelu, silu, softmax, layerNorm(epsilonBits: UInt32) }
    private struct Key: Hashable { var operation: Operation; var rows: Int; var width: Int; var threads: Int }

    private final class Plan {
        let primitive: DNNLPrimitive
        let memory: DNNLMemory
        let args: UnsafeMutableBufferPointer<dnnl_exec_arg_t>
        init(primitive: DNNLPrimitive, memory: DNNLMemory, argIndices: [Int32]) {
            self.primitive = primitive
            self.memory = memory
            args = .allocate(capacity: argIndices.count)
            _ = args.initialize(from: argIndices.map { dnnl_exec_arg_t(arg: $0, memory: memory.memory) })
        }
        deinit { args.deallocate() }
    }

    private final class Cache: @unchecked Sendable { var plans: [Key: Plan] = [:] }
    private static let cache = Cache()

    /// x ← 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))), `count` values.
    public static func geluTanh(_ x: UnsafeMutablePointer<Float>, count: Int) throws {
        try run(.gelu, x, rows: 1, width: count)
    }

    /// x ← x·σ(x).
    public static func silu(_ x: UnsafeMutablePointer<Float>, count: Int) throws {
        try run(.silu, x, rows: 1, width: count)
    }

    /// Each of `rows` rows of `width` values ← softmax(row) (max-subtracted, numerically stable).
    public static func softmax(_ x: UnsafeMutablePointer<Float>, rows: Int, width: Int) throws {
        try run(.softmax, x, rows: rows, width: width)
    }

    /// Each row ← (row − mean) / sqrt(variance + epsilon), biased variance, no scale or shift.
    public static func layerNorm(_ x: UnsafeMutablePointer<Float>, rows: Int, width: Int, epsilon: Float) throws {
        try run(.layerNorm(epsilonBits: epsilon.bitPattern), x, rows: rows, width: width)
    }

    private static func run(_ operation: Operation, _ x: UnsafeMutablePointer<Float>, rows: Int, width: Int) throws {
        guard rows > 0, width > 0 else { return }
        try DNNLRuntime.shared.serialized {
            let key = Key(operation: operation, rows: rows, width: width, threads: DNNLRuntime.shared.threads)
            let plan: Plan
            if let cached = cache.plans[key] {
                plan = cached
            } else {
                plan = try makePlan(key)
                if cache.plans.count >= 1024 { cache.plans.removeAll() }
                cache.plans[key] = plan
            }
            try plan.memory.bind(UnsafeRawPointer(x))
            try DNNLRuntime.shared.execute(plan.primitive.primitive, UnsafeBufferPointer(plan.args))
        }
    }

    private static func makePlan(_ key: Key) throws -> Plan {
        var md = try MemoryDesc.rowMajor([key.rows, key.width], dnnl_f32)
        var pd: dnnl_primitive_desc_t?
        let engine = DNNLRuntime.shared.engine
        switch key.operation {
        case .gelu, .silu:
            var desc = dnnl_eltwise_desc_t()
            let algorithm = key.operation == .gelu ? dnnl_eltwise_gelu_tanh : dnnl_eltwise_swish
            try check(dnnl_eltwise_forward_desc_init(&desc, dnnl_forward_inference, algorithm, &md, 1, 0), "eltwise descriptor")
            try check(dnnl_primitive_desc_create(&pd, &desc, nil, engine, nil), "eltwise primitive descriptor")
        case .softmax:
            var desc = dnnl_softmax_desc_t()
            try check(dnnl_softmax_forward_desc_init(&desc, dnnl_forward_inference, &md, 1), "softmax descriptor")
            try check(dnnl_primitive_desc_create(&pd, &desc, nil, engine, nil), "softmax primitive descriptor")
        case .layerNorm(let bits):
            var desc = dnnl_layer_normalization_desc_t()
            try check(dnnl_layer_normalization_forward_desc_init(&desc, dnnl_forward_inference, &md, nil, Float(bitPattern: bits), 0),
                      "layer normalization descriptor")
            try check(dnnl_primitive_desc_create(&pd, &desc, nil, engine, nil), "layer normalization primitive descriptor")
        }
        let primitive = try DNNLPrimitive(descriptor: pd!)
        return Plan(primitive: primitive, memory: try DNNLMemory(md), argIndices: [stsq_dnnl_arg_src(), stsq_dnnl_arg_dst()])
    }
}
