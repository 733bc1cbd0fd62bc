import Tensors

/// Scaled dot-product attention on oneDNN batched products (OPENSORA.md §4.5, §4.7).
enum Attention {
    /// Self-attention over `sequences` sequences of `n` tokens, heads interleaved in the width:
    /// `q`, `k` `[sequences, n, H·D]` (dense), `v` inside a wider row (`vRowStride`, e.g. the fused
    /// qkv output), result `out` `[sequences, n, H·D]`.
    static func selfAttention(q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>, vRowStride: Int,
                              sequences: Int, length n: Int, heads: Int, headDim d: Int,
                              out: UnsafeMutablePointer<Float>) throws {
        let c = heads * d
        let qLayout = MatrixBatch(dims: [sequences, heads, n, d], strides: [n * c, d, c, 1])
        let kT = MatrixBatch(dims: [sequences, heads, d, n], strides: [n * c, d, 1, c])
        let scores = MatrixBatch.contiguous([sequences, heads, n, n])
        var p = [Float](repeating: 0, count: sequences * heads * n * n)
        try p.withUnsafeMutableBufferPointer { pb in
            try BatchedMatmul.run(a: q, qLayout, b: k, kT, c: pb.baseAddress!, scores, scale: 1 / Float(d).squareRoot())
            try Ops.softmaxRows(pb.baseAddress!, rows: sequences * heads * n, width: n)
            let vLayout = MatrixBatch(dims: [sequences, heads, n, d], strides: [n * vRowStride, d, vRowStride, 1])
            try BatchedMatmul.run(a: pb.baseAddress!, scores, b: v, vLayout, c: out, qLayout)
        }
    }

    /// Cross-attention of each sample's `n` queries to its own `lengths[b]` packed caption tokens:
    /// `q` `[B, n, C]`, `kv` `[Σ lengths, 2C]` (k | v), `out` `[B, n, C]`.
    static func crossAttention(q: UnsafePointer<Float>, kv: UnsafePointer<Float>, lengths: [Int], queries n: Int,
                               heads: Int, headDim d: Int, out: UnsafeMutablePointer<Float>) throws {
        let c = heads * d
        var offset = 0
        for (b, length) in lengths.enumerated() {
            let outB = out + b * n * c
            if length == 0 {
                outB.update(repeating: 0, count: n * c)
                continue
            }
            let qLayout = MatrixBatch(dims: [heads, n, d], strides: [d, c, 1])
            let kT = MatrixBatch(dims: [heads, d, length], strides: [d, 1, 2 * c])
            let vLayout = MatrixBatch(dims: [heads, length, d], strides: [d, 2 * c, 1])
            let scores = MatrixBatch.contiguous([heads, n, length])
            var p = [Float](repeating: 0, count: heads * n * length)
            try p.withUnsafeMutableBufferPointer { pb in
                try BatchedMatmul.run(a: q + b * n * c, qLayout, b: kv + offset * 2 * c, kT, c: pb.baseAddress!, scores,
                                      scale: 1 / Float(d).squareRoot())
                try Ops.softmaxRows(pb.baseAddress!, rows: heads * n, width: length)
                try BatchedMatmul.run(a: pb.baseAddress!, scores, b: kv + offset * 2 * c + c, vLayout, c: outB, qLayout)
            }
            offset += length
        }
    }
}
