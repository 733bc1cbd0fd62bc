import Tensors

extension STDiT3 {
    /// One spatial or temporal block (OPENSORA.md §6.8), updating `h` `[B, N, C]` in place.
    /// `modulation[b]` is sample b's rows `[6, C]` (shift/scale/gate msa, shift/scale/gate mlp).
    func runBlock(_ block: STDiT3BlockWeights, _ h: inout [Float], modulation: [[Float]], captions: PackedCaptions,
                  g: Geometry, executor: LinearExecutor, step: Int?) throws {
        let (B, N, C) = (g.B, g.N, g.C)
        let mod = SmoothingFolds.modulation(modulation, width: C, executor: executor, block: block.name, step: step)
        let yPacked = try SmoothingFolds.caption(captions, executor: executor, block: block.name, step: step)

        try mod.withUnsafeBufferPointer { modBuffer in
            let m = modBuffer.baseAddress!
            func row(_ r: Int) -> (Int) -> UnsafePointer<Float> { { b in m + (b * 6 + r) * C } }
            // Self-attention branch.
            var a = [Float](repeating: 0, count: B * N * C)
            try h.withUnsafeBufferPointer { hp in
                try a.withUnsafeMutableBufferPointer { ap in
                    try Ops.layerNorm(hp.baseAddress!, rows: B * N, width: C, into: ap.baseAddress!)
                    Ops.modulate(ap.baseAddress!, batch: B, tokens: N, width: C, shift: row(0), scale: row(1))
                    let out = try SelfAttentionBranch(qkv: block.qkv, proj: block.proj, qNorm: block.qNorm, kNorm: block.kNorm,
                                                      temporal: block.temporal, ropeFrequencies: block.temporal ? ropeFrequencies : nil)
                        .run(ap.baseAddress!, g: g, executor: executor, step: step)
                    ap.baseAddress!.update(from: out, count: B * N * C)
                }
            }
            try h.withUnsafeMutableBufferPointer { hp in
                a.withUnsafeBufferPointer { Ops.addGated(hp.baseAddress!, $0.baseAddress!, batch: B, tokens: N, width: C, gate: row(2)) }
                // Cross-attention: plain residual.
                let cross = try crossAttentionBranch(query: block.qLinear, keyValue: block.kvLinear, projection: block.crossProj,
                                                     hp.baseAddress!, yPacked: yPacked, lengths: captions.lengths, g: g,
                                                     executor: executor, step: step)
                cross.withUnsafeBufferPointer { c in for i in 0..<(B * N * C) { hp[i] += c[i] } }
                // MLP branch.
                var xn = [Float](repeating: 0, count: B * N * C)
                try xn.withUnsafeMutableBufferPointer { xp in
                    try Ops.layerNorm(hp.baseAddress!, rows: B * N, width: C, into: xp.baseAddress!)
                    Ops.modulate(xp.baseAddress!, batch: B, tokens: N, width: C, shift: row(3), scale: row(4))
                    var hidden = [Float](repeating: 0, count: B * N * block.fc1.outputs)
                    try hidden.withUnsafeMutableBufferPointer { hb in
                        try executor.run(block.fc1, step: step, input: xp.baseAddress!, rows: B * N, output: hb.baseAddress!)
                        try Ops.geluTanh(hb.baseAddress!, count: hb.count)
                        try executor.run(block.fc2, step: step, input: hb.baseAddress!, rows: B * N, output: xp.baseAddress!)
                    }
                    Ops.addGated(hp.baseAddress!, xp.baseAddress!, batch: B, tokens: N, width: C, gate: row(5))
                }
            }
        }
    }

}
