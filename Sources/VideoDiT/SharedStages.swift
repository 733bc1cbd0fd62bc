import Foundation
import Tensors

/// Token-grid sizes of one forward pass: batch, latent frames, tokens per frame, tokens, width, heads, head width.
struct Geometry { let B, Tn, S, N, C, H, D: Int }

/// The float32 layers outside the blocks that STDiT and STDiT3 share. The two that run on every
/// token at every step go through the executor's seam like the block linears (a plan may
/// quantize them); the others run per step or per prompt on their own.
protocol OpenSoraSharedWeights: AnyObject {
    /// Patch embedding as a linear over flattened patches: `[C, Cin·pt·ph·pw]`.
    var patchEmbed: BlockLinear { get }
    var tEmbed0: LinearFP32 { get }
    var tEmbed2: LinearFP32 { get }
    var tBlock: LinearFP32 { get }
    var yProj1: LinearFP32 { get }
    var yProj2: LinearFP32 { get }
    var finalLinear: BlockLinear { get }
    var nullCaption: [Float] { get }
    var finalTable: [Float] { get }
}

/// The stages both model versions run around their blocks: timestep embedding, caption packing,
/// patch embedding, the final layer and unpatchify (OPENSORA.md §4.1, §4.2, §4.7, §4.10).
struct SharedStages {
    let config: ModelConfig
    let weights: OpenSoraSharedWeights

    /// §4.10: LN, modulation by `table + t_emb` (not t6), linear, unpatchify and crop.
    func finalLayer(_ h: [Float], tEmb: [Float], B: Int, Tn: Int, Hn: Int, Wn: Int, T: Int, H: Int, W: Int,
                    executor: LinearExecutor, step: Int?) throws -> Tensor {
        let C = config.hiddenSize, N = Tn * Hn * Wn
        var xn = [Float](repeating: 0, count: B * N * C)
        try h.withUnsafeBufferPointer { hp in try xn.withUnsafeMutableBufferPointer { try Ops.layerNorm(hp.baseAddress!, rows: B * N, width: C, into: $0.baseAddress!) } }
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
        var patches = [Float](repeating: 0, count: B * N * weights.finalLinear.outputs)   // [B·N, P·Cout]
        try xn.withUnsafeBufferPointer { x in
            try patches.withUnsafeMutableBufferPointer { try executor.run(weights.finalLinear, step: step, input: x.baseAddress!, rows: B * N, output: $0.baseAddress!) }
        }
        return unpatchify(patches, B: B, Tn: Tn, Hn: Hn, Wn: Wn, T: T, H: H, W: W)
    }

    func tile(_ values: [Float], to batch: Int, name: String) throws -> [Float] {
        if values.count == batch { return values }
        guard !values.isEmpty, batch % values.count == 0 else {
            throw ModelLoadError("'\(name)' has \(values.count) values, which does not tile to batch \(batch)")
        }
        return Array((0..<(batch / values.count)).map { _ in values }.joined())
    }

    /// sinusoid(256) → Linear → SiLU → Linear: `[B, C]`.
    func embed(_ values: [Float], _ first: LinearFP32, _ second: LinearFP32) throws -> [Float] {
        let features = Tensor(shape: [values.count, 256], scalars: Ops.timestepFeatures(values))
        let hidden = try first(features)
        return try second(Tensor(shape: hidden.shape, scalars: try Ops.silu(hidden.scalars))).scalars
    }

    /// y_proj on the valid tokens of every sample, in batch order (mask tiled when n < B).
    func packCaptions(_ inputs: ModelInputs, batch B: Int, length L: Int) throws -> PackedCaptions {
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
        guard total > 0 else { return PackedCaptions(projected: [], hidden: [], hiddenWidth: 0, lengths: lengths) }
        var hidden = try weights.yProj1(Tensor(shape: [total, cc], scalars: rows))
        try hidden.withUnsafeMutableBufferPointer { try Ops.geluTanh($0.baseAddress!, count: $0.count) }
        return PackedCaptions(projected: try weights.yProj2(hidden).scalars, hidden: hidden.scalars,
                              hiddenWidth: hidden.shape[1], lengths: lengths)
    }

    /// Conv3d with kernel = stride = patch, zero padding at the end: gathers each patch (c, kt, kh,
    /// kw order, as the conv weight is laid out) and runs one product. Returns `[B, N, C]`.
    func patchEmbed(_ x: Tensor, B: Int, T: Int, H: Int, W: Int, Tn: Int, Hn: Int, Wn: Int,
                    executor: LinearExecutor, step: Int?) throws -> [Float] {
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
        var out = [Float](repeating: 0, count: B * N * weights.patchEmbed.outputs)
        try rows.withUnsafeBufferPointer { r in
            try out.withUnsafeMutableBufferPointer { try executor.run(weights.patchEmbed, step: step, input: r.baseAddress!, rows: B * N, output: $0.baseAddress!) }
        }
        return out
    }

    /// `[B·N, pt·ph·pw·Cout]` (features ordered pt, ph, pw, c) → `[B, Cout, T, H, W]` cropped.
    func unpatchify(_ patches: [Float], B: Int, Tn: Int, Hn: Int, Wn: Int, T: Int, H: Int, W: Int) -> Tensor {
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
