import Tensors

extension STDiT3 {
    /// One spatial or temporal block (OPENSORA.md §6.8), updating `h` `[B, N, C]` in place.
    func runBlock(_ block: STDiT3BlockWeights, _ h: inout [Float], t6: [Float], yPacked: [Float], lengths: [Int],
                  g: Geometry, executor: LinearExecutor, step: Int?) throws {
        let (B, N, C) = (g.B, g.N, g.C)
        // mod[b, r] = table[r] + t6[b, r·C ..< (r+1)·C], rows: shift/scale/gate msa, shift/scale/gate mlp.
        var mod = [Float](repeating: 0, count: B * 6 * C)
        for b in 0..<B { for r in 0..<6 { for i in 0..<C { mod[(b * 6 + r) * C + i] = block.table[r * C + i] + t6[b * 6 * C + r * C + i] } } }

        try mod.withUnsafeBufferPointer { modBuffer in
            let m = modBuffer.baseAddress!
            func row(_ r: Int) -> (Int) -> UnsafePointer<Float> { { b in m + (b * 6 + r) * C } }
            // Self-attention branch.
            var a = [Float](repeating: 0, count: B * N * C)
            try h.withUnsafeBufferPointer { hp in
                try a.withUnsafeMutableBufferPointer { ap in
                    Ops.layerNorm(hp.baseAddress!, rows: B * N, width: C, into: ap.baseAddress!)
                    Ops.modulate(ap.baseAddress!, batch: B, tokens: N, width: C, shift: row(0), scale: row(1))
                    let out = try selfAttention(block, ap.baseAddress!, g: g, executor: executor, step: step)
                    ap.baseAddress!.update(from: out, count: B * N * C)
                }
            }
            try h.withUnsafeMutableBufferPointer { hp in
                a.withUnsafeBufferPointer { Ops.addGated(hp.baseAddress!, $0.baseAddress!, batch: B, tokens: N, width: C, gate: row(2)) }
                // Cross-attention: plain residual.
                let cross = try crossAttention(block, hp.baseAddress!, yPacked: yPacked, lengths: lengths, g: g,
                                               executor: executor, step: step)
                for i in 0..<(B * N * C) { hp[i] += cross[i] }
                // MLP branch.
                var xn = [Float](repeating: 0, count: B * N * C)
                try xn.withUnsafeMutableBufferPointer { xp in
                    Ops.layerNorm(hp.baseAddress!, rows: B * N, width: C, into: xp.baseAddress!)
                    Ops.modulate(xp.baseAddress!, batch: B, tokens: N, width: C, shift: row(3), scale: row(4))
                    var hidden = [Float](repeating: 0, count: B * N * block.fc1.outputs)
                    try hidden.withUnsafeMutableBufferPointer { hb in
                        try executor.run(block.fc1, step: step, input: xp.baseAddress!, rows: B * N, output: hb.baseAddress!)
                        Ops.geluTanh(hb.baseAddress!, count: hb.count)
                        try executor.run(block.fc2, step: step, input: hb.baseAddress!, rows: B * N, output: xp.baseAddress!)
                    }
                    Ops.addGated(hp.baseAddress!, xp.baseAddress!, batch: B, tokens: N, width: C, gate: row(5))
                }
            }
        }
    }

    /// Spatial: sequences of S tokens per (b, t). Temporal: sequences of Tn frames per (b, s), with
    /// the tokens permuted to `[B, S, Tn, C]` around the attention. Returns `[B, N, C]`.
    private func selfAttention(_ block: STDiT3BlockWeights, _ a: UnsafePointer<Float>, g: Geometry,
                               executor: LinearExecutor, step: Int?) throws -> [Float] {
        let (B, Tn, S, N, C) = (g.B, g.Tn, g.S, g.N, g.C)
        var input = [Float](repeating: 0, count: B * N * C)
        input.withUnsafeMutableBufferPointer { ip in
            if block.temporal {
                for b in 0..<B { for t in 0..<Tn { for s in 0..<S {
                    (ip.baseAddress! + ((b * S + s) * Tn + t) * C).update(from: a + ((b * Tn + t) * S + s) * C, count: C)
                } } }
            } else {
                ip.baseAddress!.update(from: a, count: B * N * C)
            }
        }
        let (sequences, length) = block.temporal ? (B * S, Tn) : (B * Tn, S)
        var qkv = [Float](repeating: 0, count: B * N * 3 * C)
        var q = [Float](repeating: 0, count: B * N * C), k = q, o = q, projected = q
        try input.withUnsafeBufferPointer { ip in
            try qkv.withUnsafeMutableBufferPointer { qp in
                try executor.run(block.qkv, step: step, input: ip.baseAddress!, rows: B * N, output: qp.baseAddress!)
            }
        }
        for r in 0..<(B * N) {
            for i in 0..<C {
                q[r * C + i] = qkv[r * 3 * C + i]
                k[r * C + i] = qkv[r * 3 * C + C + i]
            }
        }
        try q.withUnsafeMutableBufferPointer { qp in
            try k.withUnsafeMutableBufferPointer { kp in
                if let qNorm = block.qNorm, let kNorm = block.kNorm {
                    Ops.rmsNorm(qp.baseAddress!, groups: B * N * g.H, width: g.D, weight: qNorm)
                    Ops.rmsNorm(kp.baseAddress!, groups: B * N * g.H, width: g.D, weight: kNorm)
                }
                if block.temporal {
                    Ops.rope(qp.baseAddress!, sequences: sequences, length: length, heads: g.H, headDim: g.D, frequencies: ropeFrequencies)
                    Ops.rope(kp.baseAddress!, sequences: sequences, length: length, heads: g.H, headDim: g.D, frequencies: ropeFrequencies)
                }
                try qkv.withUnsafeBufferPointer { vp in
                    try o.withUnsafeMutableBufferPointer { op in
                        try Attention.selfAttention(q: qp.baseAddress!, k: kp.baseAddress!, v: vp.baseAddress! + 2 * C,
                                                    vRowStride: 3 * C, sequences: sequences, length: length,
                                                    heads: g.H, headDim: g.D, out: op.baseAddress!)
                    }
                }
            }
        }
        try o.withUnsafeBufferPointer { op in
            try projected.withUnsafeMutableBufferPointer { pp in
                try executor.run(block.proj, step: step, input: op.baseAddress!, rows: B * N, output: pp.baseAddress!)
            }
        }
        guard block.temporal else { return projected }
        var back = [Float](repeating: 0, count: B * N * C)
        for b in 0..<B { for t in 0..<Tn { for s in 0..<S {
            for i in 0..<C { back[((b * Tn + t) * S + s) * C + i] = projected[((b * S + s) * Tn + t) * C + i] }
        } } }
        return back
    }

    private func crossAttention(_ block: STDiT3BlockWeights, _ x: UnsafePointer<Float>, yPacked: [Float], lengths: [Int],
                                g: Geometry, executor: LinearExecutor, step: Int?) throws -> [Float] {
        let (B, N, C) = (g.B, g.N, g.C)
        var q = [Float](repeating: 0, count: B * N * C), o = q, out = q
        let total = lengths.reduce(0, +)
        var kv = [Float](repeating: 0, count: max(total, 1) * 2 * C)
        try q.withUnsafeMutableBufferPointer { qp in
            try executor.run(block.qLinear, step: step, input: x, rows: B * N, output: qp.baseAddress!)
            if total > 0 {
                try yPacked.withUnsafeBufferPointer { yp in
                    try kv.withUnsafeMutableBufferPointer { kp in
                        try executor.run(block.kvLinear, step: step, input: yp.baseAddress!, rows: total, output: kp.baseAddress!)
                    }
                }
            }
            try kv.withUnsafeBufferPointer { kp in
                try o.withUnsafeMutableBufferPointer { op in
                    try Attention.crossAttention(q: qp.baseAddress!, kv: kp.baseAddress!, lengths: lengths, queries: N,
                                                 heads: g.H, headDim: g.D, out: op.baseAddress!)
                }
            }
        }
        try o.withUnsafeBufferPointer { op in
            try out.withUnsafeMutableBufferPointer { outp in
                try executor.run(block.crossProj, step: step, input: op.baseAddress!, rows: B * N, output: outp.baseAddress!)
            }
        }
        return out
    }
}
