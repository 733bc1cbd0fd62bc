import Tensors

/// The expected state dict of a model (OPENSORA.md §2), checked before anything runs.
enum StateDictSchema {
    /// Required tensors and their shapes for STDiT3 (v1.2).
    static func stdit3(_ c: ModelConfig) -> [(String, [Int])] {
        let C = c.hiddenSize, D = c.headDim, M = c.mlpHidden
        var keys: [(String, [Int])] = []
        for kind in ["spatial_blocks", "temporal_blocks"] {
            for i in 0..<c.depth {
                let p = "\(kind).\(i)."
                keys += [
                    (p + "scale_shift_table", [6, C]),
                    (p + "attn.qkv.weight", [3 * C, C]), (p + "attn.qkv.bias", [3 * C]),
                    (p + "attn.proj.weight", [C, C]), (p + "attn.proj.bias", [C]),
                    (p + "cross_attn.q_linear.weight", [C, C]), (p + "cross_attn.q_linear.bias", [C]),
                    (p + "cross_attn.kv_linear.weight", [2 * C, C]), (p + "cross_attn.kv_linear.bias", [2 * C]),
                    (p + "cross_attn.proj.weight", [C, C]), (p + "cross_attn.proj.bias", [C]),
                    (p + "mlp.fc1.weight", [M, C]), (p + "mlp.fc1.bias", [M]),
                    (p + "mlp.fc2.weight", [C, M]), (p + "mlp.fc2.bias", [C]),
                ]
                if c.qkNorm { keys += [(p + "attn.q_norm.weight", [D]), (p + "attn.k_norm.weight", [D])] }
            }
        }
        keys += [
            ("x_embedder.proj.weight", [C, c.inChannels] + c.patchSize), ("x_embedder.proj.bias", [C]),
            ("t_embedder.mlp.0.weight", [C, 256]), ("t_embedder.mlp.0.bias", [C]),
            ("t_embedder.mlp.2.weight", [C, C]), ("t_embedder.mlp.2.bias", [C]),
            ("fps_embedder.mlp.0.weight", [C, 256]), ("fps_embedder.mlp.0.bias", [C]),
            ("fps_embedder.mlp.2.weight", [C, C]), ("fps_embedder.mlp.2.bias", [C]),
            ("t_block.1.weight", [6 * C, C]), ("t_block.1.bias", [6 * C]),
            ("y_embedder.y_proj.fc1.weight", [C, c.captionChannels]), ("y_embedder.y_proj.fc1.bias", [C]),
            ("y_embedder.y_proj.fc2.weight", [C, C]), ("y_embedder.y_proj.fc2.bias", [C]),
            ("y_embedder.y_embedding", [c.modelMaxLength, c.captionChannels]),
            ("final_layer.scale_shift_table", [2, C]),
            ("final_layer.linear.weight", [c.patchVolume * c.outChannels, C]),
            ("final_layer.linear.bias", [c.patchVolume * c.outChannels]),
        ]
        return keys
    }

    /// Buffers OpenSora recomputes: allowed, not required, shapes not checked beyond the name.
    static func isRecomputedBuffer(_ name: String) -> Bool {
        name.hasPrefix("pos_embed") || name == "rope.freqs"
    }

    /// Checks names and shapes; one error listing every missing, unexpected and mis-shaped key.
    static func validate(_ file: SafetensorsFile, expected: [(String, [Int])], ignoringPrefixes: [String] = []) throws {
        var problems: [String] = []
        let names = Set(file.names)
        let expectedNames = Set(expected.map(\.0))
        let missing = expected.filter { !names.contains($0.0) }.map(\.0)
        if !missing.isEmpty { problems.append("missing \(missing.count): " + summarize(missing)) }
        let unexpected = file.names.filter {
            !expectedNames.contains($0) && !isRecomputedBuffer($0) && !ignoringPrefixes.contains(where: $0.hasPrefix)
        }
        if !unexpected.isEmpty { problems.append("unexpected \(unexpected.count): " + summarize(unexpected)) }
        var misShaped: [String] = []
        for (name, shape) in expected {
            if let entry = file[name], entry.shape != shape { misShaped.append("\(name) is \(entry.shape), expected \(shape)") }
            if let entry = file[name], !entry.dtype.isFloatingPoint { misShaped.append("\(name) is \(entry.dtype.name), expected a float dtype") }
        }
        if !misShaped.isEmpty { problems.append("mis-shaped \(misShaped.count): " + summarize(misShaped)) }
        guard problems.isEmpty else {
            throw ModelLoadError("\(file.path) does not match the config: " + problems.joined(separator: "; "))
        }
    }

    private static func summarize(_ items: [String]) -> String {
        items.count <= 8 ? items.joined(separator: ", ") : items.prefix(8).joined(separator: ", ") + ", … (\(items.count - 8) more)"
    }
}

/// The weights of one STDiT3 block, converted to float32; linears ready on oneDNN.
final class STDiT3BlockWeights {
    let name: String
    let temporal: Bool
    /// `[6, C]` modulation table.
    let table: [Float]
    let qkv, proj, qLinear, kvLinear, crossProj, fc1, fc2: BlockLinear
    let qNorm: [Float]?, kNorm: [Float]?

    init(_ file: SafetensorsFile, name: String, temporal: Bool, qkNorm: Bool) throws {
        self.name = name
        self.temporal = temporal
        func linear(_ suffix: String) throws -> BlockLinear {
            try BlockLinear(name: "\(name).\(suffix)", file: file, weight: "\(name).\(suffix).weight",
                            bias: "\(name).\(suffix).bias")
        }
        table = try file.tensor("\(name).scale_shift_table").scalars
        qkv = try linear("attn.qkv")
        proj = try linear("attn.proj")
        qLinear = try linear("cross_attn.q_linear")
        kvLinear = try linear("cross_attn.kv_linear")
        crossProj = try linear("cross_attn.proj")
        fc1 = try linear("mlp.fc1")
        fc2 = try linear("mlp.fc2")
        qNorm = qkNorm ? try file.tensor("\(name).attn.q_norm.weight").scalars : nil
        kNorm = qkNorm ? try file.tensor("\(name).attn.k_norm.weight").scalars : nil
    }

    /// In forward order.
    var linears: [BlockLinear] { [qkv, proj, qLinear, kvLinear, crossProj, fc1, fc2] }
}

/// All weights of an STDiT3 checkpoint as the forward pass uses them (float32; of the layers
/// outside the blocks, the patch embedding and the final linear run through the executor's seam,
/// the per-step and per-prompt ones through `LinearFP32` directly).
final class STDiT3Weights: OpenSoraSharedWeights {
    let config: ModelConfig
    /// Patch embedding as a linear over flattened patches: `[C, Cin·pt·ph·pw]`.
    let patchEmbed: BlockLinear
    let finalLinear: BlockLinear
    let tEmbed0, tEmbed2, fpsEmbed0, fpsEmbed2, tBlock, yProj1, yProj2: LinearFP32
    /// `[L, caption_channels]`, the learned null caption.
    let nullCaption: [Float]
    let finalTable: [Float]
    /// The checkpoint's `rope.freqs` `[D/2]` as float32, when it has one (OpenSora's RotaryEmbedding
    /// uses the stored buffer, at the precision it was saved in).
    let storedRopeFrequencies: [Float]?
    /// Spatial i then temporal i for each i.
    let blocks: [STDiT3BlockWeights]

    init(file: SafetensorsFile, config: ModelConfig, ignoringPrefixes: [String] = []) throws {
        self.config = config
        try StateDictSchema.validate(file, expected: StateDictSchema.stdit3(config), ignoringPrefixes: ignoringPrefixes)
        func linear(_ prefix: String) throws -> LinearFP32 {
            try LinearFP32(weight: try file.tensor(prefix + ".weight"), bias: try file.tensor(prefix + ".bias"))
        }
        patchEmbed = try BlockLinear(name: "x_embedder.proj", file: file, weight: "x_embedder.proj.weight", bias: "x_embedder.proj.bias",
                                     flattening: true)
        tEmbed0 = try linear("t_embedder.mlp.0")
        tEmbed2 = try linear("t_embedder.mlp.2")
        fpsEmbed0 = try linear("fps_embedder.mlp.0")
        fpsEmbed2 = try linear("fps_embedder.mlp.2")
        tBlock = try linear("t_block.1")
        yProj1 = try linear("y_embedder.y_proj.fc1")
        yProj2 = try linear("y_embedder.y_proj.fc2")
        finalLinear = try BlockLinear(name: "final_layer.linear", file: file, weight: "final_layer.linear.weight", bias: "final_layer.linear.bias")
        nullCaption = try file.tensor("y_embedder.y_embedding").scalars
        if file["rope.freqs"] != nil {
            let freqs = try file.tensor("rope.freqs")
            let half = config.headDim / 2
            guard freqs.shape == [half] else {
                throw ModelLoadError("\(file.path): rope.freqs must hold \(half) frequencies (head dim \(config.headDim) / 2), found shape \(freqs.shape)")
            }
            if let bad = freqs.scalars.firstIndex(where: { !($0.isFinite && $0 > 0) }) {
                throw ModelLoadError("\(file.path): rope.freqs[\(bad)] is \(freqs.scalars[bad]); rotary frequencies must be positive and finite")
            }
            storedRopeFrequencies = freqs.scalars
        } else {
            storedRopeFrequencies = nil
        }
        finalTable = try file.tensor("final_layer.scale_shift_table").scalars
        var blocks: [STDiT3BlockWeights] = []
        for i in 0..<config.depth {
            blocks.append(try STDiT3BlockWeights(file, name: "spatial_blocks.\(i)", temporal: false, qkNorm: config.qkNorm))
            blocks.append(try STDiT3BlockWeights(file, name: "temporal_blocks.\(i)", temporal: true, qkNorm: config.qkNorm))
        }
        self.blocks = blocks
        // What was copied out above stays in memory; the file's pages need not.
        file.releaseAllPages()
    }
}
