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
    /// The block's modulation rows `[6, C]` at `step` with any `1/s` already folded in — a deployed
    /// model's per-step table, used for every sample of the batch instead of computing the rows
    /// from the timestep; nil (the default) to compute them and fold `modulationFold`.
    func modulationTable(block: String, step: Int?) -> [Float]?
    /// A channel shift `z` `[C]` (Outlier Suppression+) subtracted from the input of `attn.qkv`
    /// (`msa`) and of `fc1` (`mlp`) at `step`, before their `1/s`: folded into the shift row as
    /// `(shift − z)/s`; nil for none. The linear adds `W·z` back through its per-step bias.
    func modulationShift(block: String, step: Int?) -> (msa: [Float]?, mlp: [Float]?)
}

extension FoldingExecutor {
    public func modulationTable(block: String, step: Int?) -> [Float]? { nil }
    public func modulationShift(block: String, step: Int?) -> (msa: [Float]?, mlp: [Float]?) { (nil, nil) }
}

public enum SmoothingFolds {
    /// Folds `1/s` and a channel shift `z` into one sample's modulation rows `mod[offset ..< offset + 6C]`
    /// (rows 0/1 feed the attention input, 3/4 the MLP input): `(shift − z)/s` and `(1 + scale)/s − 1`,
    /// so the modulated input becomes `(x − z)/s`. A nil `1/s` is 1, a nil `z` is 0.
    public static func fold(_ mod: inout [Float], offset: Int, width C: Int, msa: [Float]?, mlp: [Float]?,
                            msaShift: [Float]? = nil, mlpShift: [Float]? = nil) {
        for (inverse, z, shiftRow) in [(msa, msaShift, 0), (mlp, mlpShift, 3)] {
            guard inverse != nil || z != nil else { continue }
            precondition(inverse.map { $0.count == C } ?? true && z.map { $0.count == C } ?? true,
                         "modulation fold has \(inverse?.count ?? z?.count ?? 0) values, expected \(C)")
            let shift = offset + shiftRow * C, scale = shift + C
            if let z { for i in 0..<C { mod[shift + i] -= z[i] } }
            guard let inverse else { continue }
            for i in 0..<C {
                mod[shift + i] *= inverse[i]
                mod[scale + i] = (1 + mod[scale + i]) * inverse[i] - 1
            }
        }
    }

    /// One block's modulation rows `[B, 6, C]` as the executor deploys them: its per-step table for
    /// every sample, or the rows of each sample (`rows[b]`, `[6, C]`) with its `1/s` folded in.
    static func modulation(_ rows: [[Float]], width C: Int, executor: LinearExecutor, block: String, step: Int?) -> [Float] {
        let folding = executor as? FoldingExecutor
        if let table = folding?.modulationTable(block: block, step: step) {
            precondition(table.count == 6 * C, "the modulation table of \(block) has \(table.count) values, expected \(6 * C)")
            return Array(Array(repeating: table, count: rows.count).joined())
        }
        var mod = Array(rows.joined())
        let folds = folding?.modulationFold(block: block, step: step) ?? (msa: nil, mlp: nil)
        let shifts = folding?.modulationShift(block: block, step: step) ?? (msa: nil, mlp: nil)
        guard folds.msa != nil || folds.mlp != nil || shifts.msa != nil || shifts.mlp != nil else { return mod }
        for b in 0..<rows.count {
            fold(&mod, offset: b * 6 * C, width: C, msa: folds.msa, mlp: folds.mlp, msaShift: shifts.msa, mlpShift: shifts.mlp)
        }
        return mod
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

extension ModulatedBlocks {
    /// Per sample, every block's modulation rows, computed once per distinct (timestep, fps) with
    /// `modulationRows` — so the forward pass uses exactly the rows an export's tables hold.
    func modulationPerSample(timesteps: [Float], fps: [Float]) throws -> [[(block: String, rows: [Float])]] {
        var computed: [[Float]: [(block: String, rows: [Float])]] = [:]
        return try zip(timesteps, fps).map { t, f in
            if let rows = computed[[t, f]] { return rows }
            let rows = try modulationRows(timestep: t, fps: f)
            computed[[t, f]] = rows
            return rows
        }
    }
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
