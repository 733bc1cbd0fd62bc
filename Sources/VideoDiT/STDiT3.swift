import Foundation
import Tensors

/// OpenSora v1.2's STDiT3 forward pass in float32 (OPENSORA.md §6), with every quantizable block
/// linear run through a `LinearExecutor`.
public final class STDiT3: @unchecked Sendable {
    public let config: ModelConfig
    let weights: STDiT3Weights
    var stages: SharedStages { SharedStages(config: config, weights: weights) }
    /// RoPE frequencies `[D/2]`: the checkpoint's `rope.freqs` when it has one (as OpenSora's own
    /// module uses its stored buffer, e.g. fp16-rounded), else `1/10000^(2k/D)`, k < D/2.
    let ropeFrequencies: [Float]
    /// Where `ropeFrequencies` came from, for reports.
    public var ropeSource: String {
        weights.storedRopeFrequencies == nil ? "recomputed (1/10000^(2k/D); the checkpoint has no rope.freqs)" : "the checkpoint's rope.freqs"
    }

    /// Loads and validates an STDiT3 checkpoint. `ignoringPrefixes` lets a checkpoint carry extra
    /// tensors (e.g. the demo model's `text_encoder.`).
    public init(file: SafetensorsFile, config: ModelConfig, ignoringPrefixes: [String] = []) throws {
        guard config.architecture == .stdit3 else {
            throw ModelLoadError("\(file.path): config says \(config.architecture.rawValue), not STDiT3")
        }
        self.config = config
        weights = try STDiT3Weights(file: file, config: config, ignoringPrefixes: ignoringPrefixes)
        let d = config.headDim
        ropeFrequencies = weights.storedRopeFrequencies ?? (0..<(d / 2)).map { 1 / powf(10000, Float(2 * $0) / Float(d)) }
    }

    /// Block linears in forward order (spatial 0, temporal 0, spatial 1, …).
    public var blockLinears: [BlockLinear] { weights.blocks.flatMap(\.linears) }
    public var outerLinears: [BlockLinear] { [weights.patchEmbed, weights.finalLinear] }

    /// The learned null caption `[L, caption_channels]` (CFG's unconditional input).
    public var nullCaption: [Float] { weights.nullCaption }

    /// One evaluation: returns `[B, Cout, T, H, W]`.
    public func forward(_ inputs: ModelInputs, executor: LinearExecutor = Float32Executor(), step: Int? = nil) throws -> Tensor {
        let c = config
        let C = c.hiddenSize, H = c.numHeads, D = c.headDim
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
        guard !inputs.height.isEmpty, !inputs.width.isEmpty else { throw ModelLoadError("STDiT3 needs 'height' and 'width' (pixels)") }

        // §6.2–3: positions.
        let baseSize = Int(Double(S).squareRoot().rounded(.toNearestOrEven))
        let scale = (inputs.height[0] * inputs.width[0]).squareRoot() / Float(c.inputSquareSize)
        let pos = Ops.positionEmbedding2D(width: C, rows: Hn, columns: Wn, scale: scale, baseSize: baseSize)

        // §6.4–5: t_emb = t_embedder(t) + fps_embedder(fps) (the final layer's); each block's
        // modulation rows table + t_block(SiLU(t_emb)), computed once per distinct (t, fps) by
        // `modulationRows`, the function a quantized export's per-step tables come from.
        let fps = try stages.tile(inputs.fps, to: B, name: "fps")
        var tEmb = try stages.embed(inputs.timestep, weights.tEmbed0, weights.tEmbed2)
        let fpsEmb = try stages.embed(fps, weights.fpsEmbed0, weights.fpsEmbed2)
        for i in tEmb.indices { tEmb[i] += fpsEmb[i] }
        let modulation = try modulationPerSample(timesteps: inputs.timestep, fps: fps)

        // §4.7: project and pack the caption tokens.
        let captions = try stages.packCaptions(inputs, batch: B, length: L)

        // §4.1 + positions: tokens [B, N, C] in (t, h, w) order.
        var h = try stages.patchEmbed(inputs.x, B: B, T: T, H: Hl, W: Wl, Tn: Tn, Hn: Hn, Wn: Wn, executor: executor, step: step)
        for b in 0..<B { for t in 0..<Tn { for s in 0..<S { for i in 0..<C { h[((b * Tn + t) * S + s) * C + i] += pos[s * C + i] } } } }

        let geometry = Geometry(B: B, Tn: Tn, S: S, N: N, C: C, H: H, D: D)
        let observer = executor as? BlockInputObserver
        for (index, block) in weights.blocks.enumerated() {
            let rows = modulation.map { $0[index].rows }
            observer?.observe(BlockInput(index: index, name: block.name, step: step, hidden: h, modulation: rows,
                                         captions: captions, geometry: geometry))
            try runBlock(block, &h, modulation: rows, captions: captions, g: geometry,
                         executor: executor, step: step)
        }

        // §4.10: final layer on t_emb (not t6), unpatchify, crop.
        return try stages.finalLayer(h, tEmb: tEmb, B: B, Tn: Tn, Hn: Hn, Wn: Wn, T: T, H: Hl, W: Wl, executor: executor, step: step)
    }


}
