import Tensors

/// Scaled dot-product attention on oneDNN batched products (OPENSORA.md §4.5, §4.7), in float32
/// or, given `AttentionEncodings`, on integer codes (`IntegerAttention`).
enum Attention {
    /// Self-attention over `sequences` sequences of `n` tokens, heads interleaved in the width:
    /// `q`, `k` `[sequences, n, H·D]` (dense), `v` inside a wider row (`vRowStride`, e.g. the fused
    /// qkv output), result `out` `[sequences, n, H·D]`.
    static func selfAttention(q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>, vRowStride: Int,
                              sequences: Int, length n: Int, heads: Int, headDim d: Int,
                              encodings: AttentionEncodings? = nil, out: UnsafeMutablePointer<Float>) throws {
        let c = heads * d
        let qLayout = MatrixBatch(dims: [sequences, heads, n, d], strides: [n * c, d, c, 1])
        let kT = MatrixBatch(dims: [sequences, heads, d, n], strides: [n * c, d, 1, c])
        let scores = MatrixBatch.contiguous([sequences, heads, n, n])
        var p = [Float](repeating: 0, count: sequences * heads * n * n)
        guard let e = encodings else {
            try p.withUnsafeMutableBufferPointer { pb in
                try BatchedMatmul.run(a: q, qLayout, b: k, kT, c: pb.baseAddress!, scores, scale: 1 / Float(d).squareRoot())
                try Ops.softmaxRows(pb.baseAddress!, rows: sequences * heads * n, width: n)
                let vLayout = MatrixBatch(dims: [sequences, heads, n, d], strides: [n * vRowStride, d, vRowStride, 1])
                try BatchedMatmul.run(a: pb.baseAddress!, scores, b: v, vLayout, c: out, qLayout)
            }
            return
        }
        let rows = sequences * n
        let qc = IntegerAttention.codes(q, rows: rows, width: c, stride: c, e.q)
        let kc = IntegerAttention.codes(k, rows: rows, width: c, stride: c, e.k)
        let vc = IntegerAttention.codes(v, rows: rows, width: c, stride: vRowStride, e.v)
        try integerProducts(qc: qc, qLayout, kc: kc, kT, vc: vc, qLayout, scores: scores, p: &p, rows: sequences * heads * n,
                            width: n, headDim: d, e, out: out, outLayout: qLayout)
    }

    /// Cross-attention of each sample's `n` queries to its own `lengths[b]` packed caption tokens:
    /// `q` `[B, n, C]`, `kv` `[Σ lengths, 2C]` (k | v), `out` `[B, n, C]`.
    static func crossAttention(q: UnsafePointer<Float>, kv: UnsafePointer<Float>, lengths: [Int], queries n: Int,
                               heads: Int, headDim d: Int, encodings: AttentionEncodings? = nil,
                               out: UnsafeMutablePointer<Float>) throws {
        let c = heads * d
        let total = lengths.reduce(0, +)
        // Integer codes of q, k and v (dense, k | v per token like `kv`), once for all samples.
        let codes = encodings.map { e in
            (q: IntegerAttention.codes(q, rows: lengths.count * n, width: c, stride: c, e.q),
             kv: interleave(IntegerAttention.codes(kv, rows: total, width: c, stride: 2 * c, e.k),
                            IntegerAttention.codes(kv + c, rows: total, width: c, stride: 2 * c, e.v), rows: total, width: c))
        }
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
            if let e = encodings, let codes {
                try codes.q.withUnsafeBufferPointer { qc in
                    try codes.kv.withUnsafeBufferPointer { kvc in
                        let kvB = kvc.baseAddress! + offset * 2 * c
                        try integerProducts(qc: qc.baseAddress! + b * n * c, qLayout, kc: kvB, kT, vc: kvB + c, vLayout, scores: scores,
                                            p: &p, rows: heads * n, width: length, headDim: d, e, out: outB, outLayout: qLayout)
                    }
                }
            } else {
                try p.withUnsafeMutableBufferPointer { pb in
                    try BatchedMatmul.run(a: q + b * n * c, qLayout, b: kv + offset * 2 * c, kT, c: pb.baseAddress!, scores,
                                          scale: 1 / Float(d).squareRoot())
                    try Ops.softmaxRows(pb.baseAddress!, rows: heads * n, width: length)
                    try BatchedMatmul.run(a: pb.baseAddress!, scores, b: kv + offset * 2 * c + c, vLayout, c: outB, qLayout)
                }
            }
            offset += length
        }
    }

    /// `[rows, w]` k and v → `[rows, 2w]` (k | v), the packed layout of `kv`.
    private static func interleave(_ k: [Float], _ v: [Float], rows: Int, width w: Int) -> [Float] {
        var out = [Float](repeating: 0, count: rows * 2 * w)
        for r in 0..<rows {
            for i in 0..<w {
                out[r * 2 * w + i] = k[r * w + i]
                out[r * 2 * w + w + i] = v[r * w + i]
            }
        }
        return out
    }

    /// QKᵀ on codes, float softmax, P to its codes, P·V on codes (see `AttentionEncodings`).
    private static func integerProducts(qc: UnsafePointer<Float>, _ qLayout: MatrixBatch, kc: UnsafePointer<Float>, _ kT: MatrixBatch,
                                        vc: UnsafePointer<Float>, _ vLayout: MatrixBatch, scores: MatrixBatch, p: inout [Float],
                                        rows: Int, width: Int, headDim d: Int, _ e: AttentionEncodings,
                                        out: UnsafeMutablePointer<Float>, outLayout: MatrixBatch) throws {
        let magnitude = IntegerAttention.codeMagnitude
        try p.withUnsafeMutableBufferPointer { pb in
            try IntegerAttention.product(a: qc, qLayout, b: kc, kT, c: pb.baseAddress!, scores, multiplier: e.scoreMultiplier(headDim: d),
                                         exactTerms: IntegerAttention.exactTerms(magnitude(e.q), magnitude(e.k)))
            try Ops.softmaxRows(pb.baseAddress!, rows: rows, width: width)
            for i in 0..<pb.count { pb[i] = Float(e.p.code(pb[i]) - e.p.zeroPoint) }
            try IntegerAttention.product(a: pb.baseAddress!, scores, b: vc, vLayout, c: out, outLayout, multiplier: e.outputMultiplier,
                                         exactTerms: IntegerAttention.exactTerms(magnitude(e.p), magnitude(e.v)))
        }
    }
}
