import Tensors

/// An executor that also carries SmoothQuant's `1/s` folded *upstream* of some block linears
/// (QUANTIZATION.md, "Where 1/s goes"), so the forward pass applies it where the algebra puts it
/// instead of multiplying the linear's input:
/// - `attn.qkv` and `mlp.fc1` read `LN(x)·(1 + scale) + shift`; their `1/s` scales the block's
///   modulation rows (`shift/s`, `(1 + scale)/s − 1`). The rows depend only on the timestep and
///   fps, so per sampler step they are constants: this is the per-step modulation table.
/// - `cross_attn.kv_linear` reads the projected caption; its `1/s` folds into the rows and bias of
///   a per-block copy of the caption projection's last linear (`y_embedder.y_proj.fc2`).
/// Folds into other linears' rows (V rows of `qkv`/`kv_linear`) live in those linears' weights.
public protocol FoldingExecutor: LinearExecutor {
    /// `1/s` `[C]` for the input of the block's first self-attention linear (`msa`) and of `fc1`
    /// (`mlp`) at `step`; nil for no fold.
    func modulationFold(block: String, step: Int?) -> (msa: [Float]?, mlp: [Float]?)
    /// The block's own caption projection (fc2 with `1/s` folded into its rows), nil for the shared one.
    func captionProjection(block: String, step: Int?) -> LinearFP32?
}

public enum SmoothingFolds {
    /// Folds `1/s` into one sample's modulation rows `mod[offset ..< offset + 6C]` (rows 0/1 feed
    /// the attention input, 3/4 the MLP input): `shift/s` and `(1 + scale)/s − 1`.
    public static func fold(_ mod: inout [Float], offset: Int, width C: Int, msa: [Float]?, mlp: [Float]?) {
        for (inverse, shiftRow) in [(msa, 0), (mlp, 3)] {
            guard let inverse else { continue }
            precondition(inverse.count == C, "modulation fold has \(inverse.count) values, expected \(C)")
            let shift = offset + shiftRow * C, scale = shift + C
            for i in 0..<C {
                mod[shift + i] *= inverse[i]
                mod[scale + i] = (1 + mod[scale + i]) * inverse[i] - 1
            }
        }
    }

    /// Folds the executor's `1/s` into the modulation rows `mod` `[B, 6, C]` of one block.
    static func apply(to mod: inout [Float], batch B: Int, width C: Int, executor: LinearExecutor, block: String, step: Int?) {
        guard let folding = executor as? FoldingExecutor else { return }
        let folds = folding.modulationFold(block: block, step: step)
        guard folds.msa != nil || folds.mlp != nil else { return }
        for b in 0..<B { fold(&mod, offset: b * 6 * C, width: C, msa: folds.msa, mlp: folds.mlp) }
    }

    /// The packed caption tokens the block's `kv_linear` reads: the shared projection, or the
    /// block's folded copy applied to the GELU hidden layer.
    static func caption(_ captions: PackedCaptions, executor: LinearExecutor, block: String, step: Int?) throws -> [Float] {
        guard let folding = executor as? FoldingExecutor, let projection = folding.captionProjection(block: block, step: step),
              captions.total > 0 else { return captions.projected }
        return try projection(Tensor(shape: [captions.total, captions.hiddenWidth], scalars: captions.hidden)).scalars
    }
}

/// The caption tokens of a batch after `y_embedder`, packed without padding: `projected`
/// `[total, C]`, the GELU hidden layer before the last linear `[total, hiddenWidth]`, and each
/// sample's token count.
struct PackedCaptions {
    let projected: [Float]
    let hidden: [Float]
    let hiddenWidth: Int
    let lengths: [Int]
    var total: Int { lengths.reduce(0, +) }
}

/// What SmoothQuant's folds need from a model outside its block linears.
public protocol ModulatedBlocks: AnyObject {
    /// `y_embedder.y_proj.fc2`, the caption projection's last linear.
    var captionProjectionOutput: LinearFP32 { get }
    /// Per block in forward order, its modulation rows `[6, C]` (shift, scale, gate of the
    /// attention, then of the MLP: `scale_shift_table + t_block(SiLU(t_emb))`) at one timestep.
    /// `fps` is ignored by v1.0, which has no fps embedder.
    func modulationRows(timestep: Float, fps: Float) throws -> [(block: String, rows: [Float])]
}

extension STDiT3: ModulatedBlocks {
    public var captionProjectionOutput: LinearFP32 { weights.yProj2 }

    public func modulationRows(timestep: Float, fps: Float) throws -> [(block: String, rows: [Float])] {
        var tEmb = try stages.embed([timestep], weights.tEmbed0, weights.tEmbed2)
        let fpsEmb = try stages.embed([fps], weights.fpsEmbed0, weights.fpsEmbed2)
        for i in tEmb.indices { tEmb[i] += fpsEmb[i] }
        let t6 = try weights.tBlock(Tensor(shape: [1, config.hiddenSize], scalars: try Ops.silu(tEmb))).scalars
        return weights.blocks.map { block in (block.name, zip(block.table, t6).map { $0 + $1 }) }
    }
}

extension STDiT: ModulatedBlocks {
    public var captionProjectionOutput: LinearFP32 { weights.yProj2 }

    public func modulationRows(timestep: Float, fps: Float) throws -> [(block: String, rows: [Float])] {
        let tEmb = try stages.embed([timestep], weights.tEmbed0, weights.tEmbed2)
        let t6 = try weights.tBlock(Tensor(shape: [1, config.hiddenSize], scalars: try Ops.silu(tEmb))).scalars
        return weights.blocks.map { block in (block.name, zip(block.table, t6).map { $0 + $1 }) }
    }
}
