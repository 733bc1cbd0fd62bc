import Tensors

/// Self-attention with its two linears (OPENSORA.md §4.5): spatial over the S tokens of each
/// (b, t), or temporal over the Tn frames of each (b, s) with the tokens permuted to
/// `[B, S, Tn, C]` around it — the layout the linears see, so captures match OpenSora's.
struct SelfAttentionBranch {
    let qkv: BlockLinear
    let proj: BlockLinear
    /// qk RMSNorm weights (v1.2), nil without qk_norm.
    let qNorm: [Float]?
    let kNorm: [Float]?
    let temporal: Bool
    /// Interleaved RoPE frequencies (v1.2 temporal), nil for none.
    let ropeFrequencies: [Float]?
    /// `[Tn, C]` added to the permuted input before qkv (v1.0 block 0's temporal positions).
    var addedPositions: [Float]? = nil

    /// `a` `[B, N, C]` in (t, s) token order → `[B, N, C]`.
    func run(_ a: UnsafePointer<Float>, g: Geometry, executor: LinearExecutor, step: Int?) throws -> [Float] {
        let (B, Tn, S, N, C) = (g.B, g.Tn, g.S, g.N, g.C)
        var input = [Float](repeating: 0, count: B * N * C)
        input.withUnsafeMutableBufferPointer { ip in
            if temporal {
                for b in 0..<B { for t in 0..<Tn { for s in 0..<S {
                    (ip.baseAddress! + ((b * S + s) * Tn + t) * C).update(from: a + ((b * Tn + t) * S + s) * C, count: C)
                } } }
            } else {
                ip.baseAddress!.update(from: a, count: B * N * C)
            }
            // v1.0 block 0: the temporal position table joins the attention input only.
            if let addedPositions {
                for sequence in 0..<(B * S) { for t in 0..<Tn { for i in 0..<C { ip[(sequence * Tn + t) * C + i] += addedPositions[t * C + i] } } }
            }
        }
        let (sequences, length) = temporal ? (B * S, Tn) : (B * Tn, S)
        var fused = [Float](repeating: 0, count: B * N * 3 * C)   // q | k | v per token
        var q = [Float](repeating: 0, count: B * N * C), k = q, o = q, projected = q
        try input.withUnsafeBufferPointer { ip in
            try fused.withUnsafeMutableBufferPointer { qp in
                try executor.run(self.qkv, step: step, input: ip.baseAddress!, rows: B * N, output: qp.baseAddress!)
            }
        }
        fused.withUnsafeBufferPointer { f in
            q.withUnsafeMutableBufferPointer { qp in
                k.withUnsafeMutableBufferPointer { kp in
                    for r in 0..<(B * N) {
                        (qp.baseAddress! + r * C).update(from: f.baseAddress! + r * 3 * C, count: C)
                        (kp.baseAddress! + r * C).update(from: f.baseAddress! + r * 3 * C + C, count: C)
                    }
                }
            }
        }
        try q.withUnsafeMutableBufferPointer { qp in
            try k.withUnsafeMutableBufferPointer { kp in
                if let qNorm = qNorm, let kNorm = kNorm {
                    Ops.rmsNorm(qp.baseAddress!, groups: B * N * g.H, width: g.D, weight: qNorm)
                    Ops.rmsNorm(kp.baseAddress!, groups: B * N * g.H, width: g.D, weight: kNorm)
                }
                if let ropeFrequencies {
                    Ops.rope(qp.baseAddress!, sequences: sequences, length: length, heads: g.H, headDim: g.D, frequencies: ropeFrequencies)
                    Ops.rope(kp.baseAddress!, sequences: sequences, length: length, heads: g.H, headDim: g.D, frequencies: ropeFrequencies)
                }
                let products = executor as? AttentionProductExecutor, attention = attentionName(of: qkv.name)
                try fused.withUnsafeBufferPointer { vp in
                    if let products, products.observesAttentionOperands {
                        let v = (0..<(B * N)).flatMap { r in UnsafeBufferPointer(start: vp.baseAddress! + r * 3 * C + 2 * C, count: C) }
                        products.observeAttentionOperands(attention, step: step, q: qp.baseAddress!, queryRows: B * N,
                                                          k: kp.baseAddress!, v: v, keyRows: B * N, width: C)
                    }
                    try o.withUnsafeMutableBufferPointer { op in
                        try Attention.selfAttention(q: qp.baseAddress!, k: kp.baseAddress!, v: vp.baseAddress! + 2 * C,
                                                    vRowStride: 3 * C, sequences: sequences, length: length,
                                                    heads: g.H, headDim: g.D,
                                                    encodings: products?.attentionEncodings(attention, step: step), out: op.baseAddress!)
                    }
                }
            }
        }
        try o.withUnsafeBufferPointer { op in
            try projected.withUnsafeMutableBufferPointer { pp in
                try executor.run(proj, step: step, input: op.baseAddress!, rows: B * N, output: pp.baseAddress!)
            }
        }
        guard temporal else { return projected }
        var back = [Float](repeating: 0, count: B * N * C)
        back.withUnsafeMutableBufferPointer { bp in
            projected.withUnsafeBufferPointer { pp in
                for b in 0..<B { for t in 0..<Tn { for s in 0..<S {
                    (bp.baseAddress! + ((b * Tn + t) * S + s) * C).update(from: pp.baseAddress! + ((b * S + s) * Tn + t) * C, count: C)
                } } }
            }
        }
        return back
    }

}

/// Cross-attention with its three linears (§4.7): `x` `[B, N, C]` queries, packed caption tokens.
func crossAttentionBranch(query: BlockLinear, keyValue: BlockLinear, projection: BlockLinear, _ x: UnsafePointer<Float>,
                          yPacked: [Float], lengths: [Int], g: Geometry, executor: LinearExecutor, step: Int?) throws -> [Float] {

    let (B, N, C) = (g.B, g.N, g.C)
    var q = [Float](repeating: 0, count: B * N * C), o = q, out = q
    let total = lengths.reduce(0, +)
    var kv = [Float](repeating: 0, count: max(total, 1) * 2 * C)
    try q.withUnsafeMutableBufferPointer { qp in
        try executor.run(query, step: step, input: x, rows: B * N, output: qp.baseAddress!)
        if total > 0 {
            try yPacked.withUnsafeBufferPointer { yp in
                try kv.withUnsafeMutableBufferPointer { kp in
                    try executor.run(keyValue, step: step, input: yp.baseAddress!, rows: total, output: kp.baseAddress!)
                }
            }
        }
        let products = executor as? AttentionProductExecutor, attention = attentionName(of: query.name)
        try kv.withUnsafeBufferPointer { kp in
            if let products, products.observesAttentionOperands {
                let k = (0..<total).flatMap { r in UnsafeBufferPointer(start: kp.baseAddress! + r * 2 * C, count: C) }
                let v = (0..<total).flatMap { r in UnsafeBufferPointer(start: kp.baseAddress! + r * 2 * C + C, count: C) }
                products.observeAttentionOperands(attention, step: step, q: qp.baseAddress!, queryRows: B * N,
                                                  k: k, v: v, keyRows: total, width: C)
            }
            try o.withUnsafeMutableBufferPointer { op in
                try Attention.crossAttention(q: qp.baseAddress!, kv: kp.baseAddress!, lengths: lengths, queries: N,
                                             heads: g.H, headDim: g.D, encodings: products?.attentionEncodings(attention, step: step),
                                             out: op.baseAddress!)
            }
        }
    }
    try o.withUnsafeBufferPointer { op in
        try out.withUnsafeMutableBufferPointer { outp in
            try executor.run(projection, step: step, input: op.baseAddress!, rows: B * N, output: outp.baseAddress!)
        }
    }
    return out
}

/// The attention module a linear belongs to: its name without the last component
/// (`spatial_blocks.0.attn.qkv` → `spatial_blocks.0.attn`).
public func attentionName(of linear: String) -> String {
    guard let dot = linear.lastIndex(of: ".") else { return linear }
    return String(linear[..<dot])
}
