import CDNNL

/// A batch of matrices in memory: `dims` = `[batch…, rows, cols]`, `strides` in elements per
/// dimension. Arbitrary strides let attention read Q, K and V straight out of the fused qkv
/// output (`[B, N, 3, H, D]`) without transposing: Kᵀ is K with its last two strides swapped.
public struct MatrixBatch: Hashable, Sendable {
    public var dims: [Int]
    public var strides: [Int]

    public init(dims: [Int], strides: [Int]) {
        precondition(dims.count == strides.count && dims.count >= 2, "dims \(dims) / strides \(strides)")
        self.dims = dims
        self.strides = strides
    }

    /// Dense row-major layout.
    public static func contiguous(_ dims: [Int]) -> MatrixBatch {
        var strides = [Int](repeating: 1, count: dims.count)
        for i in stride(from: dims.count - 2, through: 0, by: -1) { strides[i] = strides[i + 1] * dims[i + 1] }
        return MatrixBatch(dims: dims, strides: strides)
    }

    /// The same memory read as the transposes of the last two dimensions.
    public var transposed: MatrixBatch {
        var d = dims, s = strides
        d.swapAt(d.count - 1, d.count - 2)
        s.swapAt(s.count - 1, s.count - 2)
        return MatrixBatch(dims: d, strides: s)
    }
}

/// Float32 batched products for attention: `C[b] = scale · A[b] · B[b]` for every batch index,
/// `A` `[…, M, K]`, `B` `[…, K, N]`, `C` `[…, M, N]` (batch dims equal, or 1 to broadcast).
/// Primitives are cached per (layouts, scale, threads).
public enum BatchedMatmul {
    private struct Key: Hashable {
        var a: MatrixBatch, b: MatrixBatch, c: MatrixBatch
        var scaleBits: UInt32
        var threads: Int
    }

    private final class Cache: @unchecked Sendable {
        var plans: [Key: MatmulPlan] = [:]
    }

    private static let cache = Cache()
    private static let maxCachedPlans = 512

    public static func run(a: UnsafePointer<Float>, _ aLayout: MatrixBatch,
                           b: UnsafePointer<Float>, _ bLayout: MatrixBatch,
                           c: UnsafeMutablePointer<Float>, _ cLayout: MatrixBatch,
                           scale: Float = 1) throws {
        let n = aLayout.dims.count
        precondition(bLayout.dims.count == n && cLayout.dims.count == n, "operands differ in rank")
        precondition(aLayout.dims[n - 1] == bLayout.dims[n - 2], "inner dimensions differ: \(aLayout.dims) · \(bLayout.dims)")
        precondition(cLayout.dims[n - 2] == aLayout.dims[n - 2] && cLayout.dims[n - 1] == bLayout.dims[n - 1],
                     "result dims \(cLayout.dims) do not match \(aLayout.dims) · \(bLayout.dims)")
        try DNNLRuntime.shared.serialized {
            let key = Key(a: aLayout, b: bLayout, c: cLayout, scaleBits: scale.bitPattern, threads: DNNLRuntime.shared.threads)
            let plan: MatmulPlan
            if let cached = cache.plans[key] {
                plan = cached
            } else {
                let aDesc = try MemoryDesc.plain(aLayout.dims, dnnl_f32, strides: aLayout.strides)
                let bDesc = try MemoryDesc.plain(bLayout.dims, dnnl_f32, strides: bLayout.strides)
                let cDesc = try MemoryDesc.plain(cLayout.dims, dnnl_f32, strides: cLayout.strides)
                var attributes: DNNLAttributes? = nil
                if scale != 1 {
                    attributes = try DNNLAttributes()
                    try attributes!.setOutputScales([scale], perColumn: false)
                }
                let primitive = try makeMatmul(src: aDesc, weights: bDesc, bias: nil, dst: cDesc, attributes: attributes)
                plan = try MatmulPlan(primitive: primitive, src: aDesc, weights: bDesc, dst: cDesc, bias: nil)
                if cache.plans.count >= maxCachedPlans { cache.plans.removeAll() }
                cache.plans[key] = plan
            }
            try plan.run(src: a, weights: b, dst: c)
        }
    }
}
