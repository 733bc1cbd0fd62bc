import Foundation
import Tensors

/// The weights of one STDiT (v1.0) block; linears ready on oneDNN.
final class STDiTBlockWeights {
    let name: String
    /// `[6, C]` modulation table.
    let table: [Float]
    let qkv, proj, temporalQKV, temporalProj, qLinear, kvLinear, crossProj, fc1, fc2: BlockLinear

    init(_ file: SafetensorsFile, name: String) throws {
        self.name = name
        func linear(_ suffix: String) throws -> BlockLinear {
            try BlockLinear(name: "\(name).\(suffix)", file: file, weight: "\(name).\(suffix).weight",
                            bias: "\(name).\(suffix).bias")
        }
        table = try file.tensor("\(name).scale_shift_table").scalars
        qkv = try linear("attn.qkv")
        proj = try linear("attn.proj")
        temporalQKV = try linear("attn_temp.qkv")
        temporalProj = try linear("attn_temp.proj")
        qLinear = try linear("cross_attn.q_linear")
        kvLinear = try linear("cross_attn.kv_linear")
        crossProj = try linear("cross_attn.proj")
        fc1 = try linear("mlp.fc1")
        fc2 = try linear("mlp.fc2")
    }

    /// In forward order.
    var linears: [BlockLinear] { [qkv, proj, temporalQKV, temporalProj, qLinear, kvLinear, crossProj, fc1, fc2] }
}

final class STDiTWeights: OpenSoraSharedWeights {
    let patchEmbed, finalLinear: BlockLinear
    let tEmbed0, tEmbed2, tBlock, yProj1, yProj2: LinearFP32
    let nullCaption: [Float]
    let finalTable: [Float]
    let blocks: [STDiTBlockWeights]

    init(file: SafetensorsFile, config c: ModelConfig, ignoringPrefixes: [String]) throws {
        let C = c.hiddenSize, M = c.mlpHidden
        var expected: [(String, [Int])] = []
        for i in 0..<c.depth {
            let p = "blocks.\(i)."
            expected += [(p + "scale_shift_table", [6, C])]
            for (suffix, out, inp) in [("attn.qkv", 3 * C, C), ("attn.proj", C, C), ("attn_temp.qkv", 3 * C, C),
                                       ("attn_temp.proj", C, C), ("cross_attn.q_linear", C, C), ("cross_attn.kv_linear", 2 * C, C),
                                       ("cross_attn.proj", C, C), ("mlp.fc1", M, C), ("mlp.fc2", C, M)] {
                expected += [(p + suffix + ".weight", [out, inp]), (p + suffix + ".bias", [out])]
            }
        }
        expected += StateDictSchema.stdit3(c).filter {
            !$0.0.hasPrefix("spatial_blocks.") && !$0.0.hasPrefix("temporal_blocks.") && !$0.0.hasPrefix("fps_embedder.")
        }
        try StateDictSchema.validate(file, expected: expected, ignoringPrefixes: ignoringPrefixes)
        func linear(_ prefix: String) throws -> LinearFP32 {
            try LinearFP32(weight: try file.tensor(prefix + ".weight"), bias: try file.tensor(prefix + ".bias"))
        }
        patchEmbed = try BlockLinear(name: "x_embedder.proj", file: file, weight: "x_embedder.proj.weight", bias: "x_embedder.proj.bias",
                                     flattening: true)
        tEmbed0 = try linear("t_embedder.mlp.0")
        tEmbed2 = try linear("t_embedder.mlp.2")
        tBlock = try linear("t_block.1")
        yProj1 = try linear("y_embedder.y_proj.fc1")
        yProj2 = try linear("y_embedder.y_proj.fc2")
        finalLinear = try BlockLinear(name: "final_layer.linear", file: file, weight: "final_layer.linear.weight", bias: "final_layer.linear.bias")
        nullCaption = try file.tensor("y_embedder.y_embedding").scalars
        finalTable = try file.tensor("final_layer.scale_shift_table").scalars
        blocks = try (0..<c.depth).map { try STDiTBlockWeights(file, name: "blocks.\($0)") }
    }
}

/// OpenSora v1.0's STDiT forward pass in float32 (OPENSORA.md §5): spatial attention with adaLN,
/// un-normalised temporal attention sharing the spatial gate (block 0 adds the temporal position
/// table to its input), cross-attention, MLP. Positions are recomputed for the actual token grid.
public final class STDiT: @unchecked Sendable {
    public let config: ModelConfig
    let weights: STDiTWeights
    var stages: SharedStages { SharedStages(config: config, weights: weights) }

    public init(file: SafetensorsFile, config: ModelConfig, ignoringPrefixes: [String] = []) throws {
        guard config.architecture == .stdit else {
            throw ModelLoadError("\(file.path): config says \(config.architecture.rawValue), not STDiT")
        }
        self.config = config
        weights = try STDiTWeights(file: file, config: config, ignoringPrefixes: ignoringPrefixes)
    }

    public var blockLinears: [BlockLinear] { weights.blocks.flatMap(\.linears) }
    public var outerLinears: [BlockLinear] { [weights.patchEmbed, weights.finalLinear] }
    public var nullCaption: [Float] { weights.nullCaption }

    /// v1.0 1-D sincos of width d at `positions`: `[sin | cos]`, ω_k = 10000^(−k/(d/2)), in Double.
    static func sincos(width d: Int, positions: [Double]) -> [Float] {
        let half = d / 2
        let omega = (0..<half).map { 1 / pow(10000, Double($0) / Double(half)) }
        var out = [Float](repeating: 0, count: positions.count * d)
        for (i, p) in positions.enumerated() {
            for k in 0..<half {
                out[i * d + k] = Float(sin(p * omega[k]))
                out[i * d + half + k] = Float(cos(p * omega[k]))
            }
        }
        return out
    }

    /// `[S, C]`: column half then row half, positions `index / space_scale` (float32 grid, as numpy).
    static func spatialPositions(width c: Int, rows hn: Int, columns wn: Int, scale: Double) -> [Float] {
        let s = Float(scale)
        let cols = sincos(width: c / 2, positions: (0..<(hn * wn)).map { Double(Float($0 % wn) / s) })
        let rows = sincos(width: c / 2, positions: (0..<(hn * wn)).map { Double(Float($0 / wn) / s) })
        var out = [Float](repeating: 0, count: hn * wn * c)
        for t in 0..<(hn * wn) {
            for i in 0..<(c / 2) {
                out[t * c + i] = cols[t * (c / 2) + i]
                out[t * c + c / 2 + i] = rows[t * (c / 2) + i]
            }
        }
        return out
    }

    /// One evaluation: returns `[B, Cout, T, H, W]`.
    public func forward(_ inputs: ModelInputs, executor: LinearExecutor = Float32Executor(), step: Int? = nil) throws -> Tensor {
        let c = config
        let C = c.hiddenSize
        let shape = inputs.x.shape
        guard shape.count == 5, shape[1] == c.inChannels else {
            throw ModelLoadError("input 'x' must be [B, \(c.inChannels), T, H, W], found \(shape)")
        }
        let (B, T, Hl, Wl) = (shape[0], shape[2], shape[3], shape[4])
        let (pt, ph, pw) = (c.patchSize[0], c.patchSize[1], c.patchSize[2])
        let (Tn, Hn, Wn) = ((T + pt - 1) / pt, (Hl + ph - 1) / ph, (Wl + pw - 1) / pw)
        let S = Hn * Wn, N = Tn * S
        guard inputs.timestep.count == B else { throw ModelLoadError("'timestep' has \(inputs.timestep.count) values for batch \(B)") }
        let L = inputs.y.shape.count == 4 ? inputs.y.shape[2] : 0
        guard inputs.y.shape == [B, 1, L, c.captionChannels] else {
            throw ModelLoadError("input 'y' must be [\(B), 1, L, \(c.captionChannels)], found \(inputs.y.shape)")
        }
        let pos = STDiT.spatialPositions(width: C, rows: Hn, columns: Wn, scale: c.spaceScale)
        let temporalPositions = STDiT.sincos(width: C, positions: (0..<Tn).map { Double($0) / c.timeScale })

        let tEmb = try stages.embed(inputs.timestep, weights.tEmbed0, weights.tEmbed2)
        // Each block's modulation rows table + t_block(SiLU(t_emb)), once per distinct timestep.
        let modulation = try modulationPerSample(timesteps: inputs.timestep, fps: [Float](repeating: 0, count: B))
        let captions = try stages.packCaptions(inputs, batch: B, length: L)
        var h = try stages.patchEmbed(inputs.x, B: B, T: T, H: Hl, W: Wl, Tn: Tn, Hn: Hn, Wn: Wn, executor: executor, step: step)
        for b in 0..<B { for t in 0..<Tn { for s in 0..<S { for i in 0..<C { h[((b * Tn + t) * S + s) * C + i] += pos[s * C + i] } } } }

        let g = Geometry(B: B, Tn: Tn, S: S, N: N, C: C, H: c.numHeads, D: c.headDim)
        for (index, block) in weights.blocks.enumerated() {
            try runBlock(block, &h, modulation: modulation.map { $0[index].rows }, captions: captions, g: g,
                         temporalPositions: index == 0 ? temporalPositions : nil, executor: executor, step: step)
        }
        return try stages.finalLayer(h, tEmb: tEmb, B: B, Tn: Tn, Hn: Hn, Wn: Wn, T: T, H: Hl, W: Wl, executor: executor, step: step)
    }

    /// `modulation[b]`: sample b's rows `[6, C]` of this block.
    private func runBlock(_ block: STDiTBlockWeights, _ h: inout [Float], modulation: [[Float]], captions: PackedCaptions,
                          g: Geometry, temporalPositions: [Float]?, executor: LinearExecutor, step: Int?) throws {
        let (B, N, C) = (g.B, g.N, g.C)
        let mod = SmoothingFolds.modulation(modulation, width: C, executor: executor, block: block.name, step: step)
        let yPacked = try SmoothingFolds.caption(captions, executor: executor, block: block.name, step: step)
        try mod.withUnsafeBufferPointer { modBuffer in
            let m = modBuffer.baseAddress!
            func row(_ r: Int) -> (Int) -> UnsafePointer<Float> { { b in m + (b * 6 + r) * C } }
            let spatial = SelfAttentionBranch(qkv: block.qkv, proj: block.proj, qNorm: nil, kNorm: nil, temporal: false,
                                              ropeFrequencies: nil)
            var temporal = SelfAttentionBranch(qkv: block.temporalQKV, proj: block.temporalProj, qNorm: nil, kNorm: nil,
                                               temporal: true, ropeFrequencies: nil)
            temporal.addedPositions = temporalPositions
            var a = [Float](repeating: 0, count: B * N * C)
            try h.withUnsafeMutableBufferPointer { hp in
                try a.withUnsafeMutableBufferPointer { ap in
                    try Ops.layerNorm(hp.baseAddress!, rows: B * N, width: C, into: ap.baseAddress!)
                    Ops.modulate(ap.baseAddress!, batch: B, tokens: N, width: C, shift: row(0), scale: row(1))
                    let out = try spatial.run(ap.baseAddress!, g: g, executor: executor, step: step)
                    out.withUnsafeBufferPointer { Ops.addGated(hp.baseAddress!, $0.baseAddress!, batch: B, tokens: N, width: C, gate: row(2)) }
                    // Temporal attention on the updated stream, no norm, same gate (gate_msa).
                    let temporalOut = try temporal.run(hp.baseAddress!, g: g, executor: executor, step: step)
                    temporalOut.withUnsafeBufferPointer { Ops.addGated(hp.baseAddress!, $0.baseAddress!, batch: B, tokens: N, width: C, gate: row(2)) }
                }
                let cross = try crossAttentionBranch(query: block.qLinear, keyValue: block.kvLinear, projection: block.crossProj,
                                                     hp.baseAddress!, yPacked: yPacked, lengths: captions.lengths, g: g,
                                                     executor: executor, step: step)
                cross.withUnsafeBufferPointer { c in for i in 0..<(B * N * C) { hp[i] += c[i] } }
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
