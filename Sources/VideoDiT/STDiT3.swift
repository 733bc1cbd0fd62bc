import Foundation
import Tensors

/// OpenSora v1.2's STDiT3 forward pass in float32 (OPENSORA.md §6), with every quantizable block
/// linear run through a `LinearExecutor`.
public final class STDiT3: @unchecked Sendable {
    public let config: ModelConfig
    let weights: STDiT3Weights
    /// RoPE frequencies `1/10000^(2k/D)`, k < D/2 (recomputed; `rope.freqs` in a file is ignored).
    let ropeFrequencies: [Float]

    /// Loads and validates an STDiT3 checkpoint. `ignoringPrefixes` lets a checkpoint carry extra
    /// tensors (e.g. the demo model's `text_encoder.`).
    public init(file: SafetensorsFile, config: ModelConfig, ignoringPrefixes: [String] = []) throws {
        guard config.architecture == .stdit3 else {
            throw ModelLoadError("\(file.path): config says \(config.architecture.rawValue), not STDiT3")
        }
        self.config = config
        weights = try STDiT3Weights(file: file, config: config, ignoringPrefixes: ignoringPrefixes)
        let d = config.headDim
        ropeFrequencies = (0..<(d / 2)).map { 1 / powf(10000, Float(2 * $0) / Float(d)) }
    }

    /// Block linears in forward order (spatial 0, temporal 0, spatial 1, …).
    public var blockLinears: [BlockLinear] { weights.blocks.flatMap(\.linears) }

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

        // §6.4–5: t_emb = t_embedder(t) + fps_embedder(fps); t6 = t_block(SiLU(t_emb)).
        let fps = try tile(inputs.fps, to: B, name: "fps")
        var tEmb = try embed(inputs.timestep, weights.tEmbed0, weights.tEmbed2)
        let fpsEmb = try embed(fps, weights.fpsEmbed0, weights.fpsEmbed2)
        for i in tEmb.indices { tEmb[i] += fpsEmb[i] }
        let t6 = try weights.tBlock(Tensor(shape: [B, C], scalars: Ops.silu(tEmb))).scalars   // [B, 6C]

        // §4.7: project and pack the caption tokens.
        let (yPacked, lengths) = try packCaptions(inputs, batch: B, length: L)

        // §4.1 + positions: tokens [B, N, C] in (t, h, w) order.
        var h = try patchEmbed(inputs.x, B: B, T: T, H: Hl, W: Wl, Tn: Tn, Hn: Hn, Wn: Wn)
        for b in 0..<B { for t in 0..<Tn { for s in 0..<S { for i in 0..<C { h[((b * Tn + t) * S + s) * C + i] += pos[s * C + i] } } } }

        let geometry = Geometry(B: B, Tn: Tn, S: S, N: N, C: C, H: H, D: D)
        for block in weights.blocks {
            try runBlock(block, &h, t6: t6, yPacked: yPacked, lengths: lengths, g: geometry, executor: executor, step: step)
        }

        // §4.10: final layer on t_emb (not t6), unpatchify, crop.
        var xn = [Float](repeating: 0, count: B * N * C)
        h.withUnsafeBufferPointer { hp in xn.withUnsafeMutableBufferPointer { Ops.layerNorm(hp.baseAddress!, rows: B * N, width: C, into: $0.baseAddress!) } }
        var shifts = [Float](repeating: 0, count: B * C), scales = shifts
        for b in 0..<B { for i in 0..<C {
            shifts[b * C + i] = weights.finalTable[i] + tEmb[b * C + i]
            scales[b * C + i] = weights.finalTable[C + i] + tEmb[b * C + i]
        } }
        xn.withUnsafeMutableBufferPointer { x in
            shifts.withUnsafeBufferPointer { sh in scales.withUnsafeBufferPointer { sc in
                Ops.modulate(x.baseAddress!, batch: B, tokens: N, width: C,
                             shift: { sh.baseAddress! + $0 * C }, scale: { sc.baseAddress! + $0 * C })
            } }
        }
        let patches = try weights.finalLinear(Tensor(shape: [B * N, C], scalars: xn)).scalars   // [B·N, P·Cout]
        return unpatchify(patches, B: B, Tn: Tn, Hn: Hn, Wn: Wn, T: T, H: Hl, W: Wl)
    }

    struct Geometry { let B, Tn, S, N, C, H, D: Int }

    private func tile(_ values: [Float], to batch: Int, name: String) throws -> [Float] {
        if values.count == batch { return values }
        guard !values.isEmpty, batch % values.count == 0 else {
            throw ModelLoadError("'\(name)' has \(values.count) values, which does not tile to batch \(batch)")
        }
        return Array((0..<(batch / values.count)).map { _ in values }.joined())
    }

    /// sinusoid(256) → Linear → SiLU → Linear: `[B, C]`.
    private func embed(_ values: [Float], _ first: LinearFP32, _ second: LinearFP32) throws -> [Float] {
        let features = Tensor(shape: [values.count, 256], scalars: Ops.timestepFeatures(values))
        let hidden = try first(features)
        return try second(Tensor(shape: hidden.shape, scalars: Ops.silu(hidden.scalars))).scalars
    }

    /// y_proj on the valid tokens of every sample, in batch order (mask tiled when n < B).
    private func packCaptions(_ inputs: ModelInputs, batch B: Int, length L: Int) throws -> ([Float], [Int]) {
        let cc = config.captionChannels
        var masks: [[Int]]
        if let mask = inputs.mask {
            guard !mask.isEmpty, B % mask.count == 0, mask.allSatisfy({ $0.count == L }) else {
                throw ModelLoadError("'mask' must be [n, \(L)] with n dividing the batch \(B)")
            }
            masks = Array((0..<(B / mask.count)).map { _ in mask }.joined())
        } else {
            masks = Array(repeating: Array(repeating: 1, count: L), count: B)
        }
        var rows: [Float] = []
        var lengths: [Int] = []
        for b in 0..<B {
            var count = 0
            for l in 0..<L where masks[b][l] != 0 {
                let start = (b * L + l) * cc
                rows.append(contentsOf: inputs.y.scalars[start..<(start + cc)])
                count += 1
            }
            lengths.append(count)
        }
        let total = lengths.reduce(0, +)
        guard total > 0 else { return ([], lengths) }
        var hidden = try weights.yProj1(Tensor(shape: [total, cc], scalars: rows))
        hidden.withUnsafeMutableBufferPointer { Ops.geluTanh($0.baseAddress!, count: $0.count) }
        return (try weights.yProj2(hidden).scalars, lengths)
    }

    /// Conv3d with kernel = stride = patch, zero padding at the end: gathers each patch (c, kt, kh,
    /// kw order, as the conv weight is laid out) and runs one product. Returns `[B, N, C]`.
    private func patchEmbed(_ x: Tensor, B: Int, T: Int, H: Int, W: Int, Tn: Int, Hn: Int, Wn: Int) throws -> [Float] {
        let cin = config.inChannels
        let (pt, ph, pw) = (config.patchSize[0], config.patchSize[1], config.patchSize[2])
        let patch = cin * pt * ph * pw
        let N = Tn * Hn * Wn
        var rows = [Float](repeating: 0, count: B * N * patch)
        for b in 0..<B {
            for tn in 0..<Tn { for hn in 0..<Hn { for wn in 0..<Wn {
                let token = (b * N) + (tn * Hn + hn) * Wn + wn
                var k = token * patch
                for ch in 0..<cin { for kt in 0..<pt { for kh in 0..<ph { for kw in 0..<pw {
                    let (t, y, xx) = (tn * pt + kt, hn * ph + kh, wn * pw + kw)
                    if t < T && y < H && xx < W { rows[k] = x.scalars[(((b * cin + ch) * T + t) * H + y) * W + xx] }
                    k += 1
                } } } }
            } } }
        }
        return try weights.patchEmbed(Tensor(shape: [B * N, patch], scalars: rows)).scalars
    }

    /// `[B·N, pt·ph·pw·Cout]` (features ordered pt, ph, pw, c) → `[B, Cout, T, H, W]` cropped.
    private func unpatchify(_ patches: [Float], B: Int, Tn: Int, Hn: Int, Wn: Int, T: Int, H: Int, W: Int) -> Tensor {
        let cout = config.outChannels
        let (pt, ph, pw) = (config.patchSize[0], config.patchSize[1], config.patchSize[2])
        let features = pt * ph * pw * cout
        var out = Tensor(zeros: [B, cout, T, H, W])
        for b in 0..<B { for tn in 0..<Tn { for hn in 0..<Hn { for wn in 0..<Wn {
            let token = ((b * Tn + tn) * Hn + hn) * Wn + wn
            for it in 0..<pt { for ih in 0..<ph { for iw in 0..<pw {
                let (t, y, x) = (tn * pt + it, hn * ph + ih, wn * pw + iw)
                guard t < T, y < H, x < W else { continue }
                for ch in 0..<cout {
                    let f = ((it * ph + ih) * pw + iw) * cout + ch
                    out.scalars[(((b * cout + ch) * T + t) * H + y) * W + x] = patches[token * features + f]
                }
            } } }
        } } } }
        return out
    }
}
