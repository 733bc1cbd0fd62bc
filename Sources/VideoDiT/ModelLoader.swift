import Tensors

/// A model the engine can evaluate: STDiT3 (v1.2) or STDiT (v1.0).
public protocol VideoModel: AnyObject, Sendable {
    var config: ModelConfig { get }
    /// Quantizable block linears in forward order.
    var blockLinears: [BlockLinear] { get }
    /// The two linears outside the blocks that run on every token at every step, through the same
    /// seam: `x_embedder.proj` (the patch embedding over flattened patches) and `final_layer.linear`.
    /// Kept in float unless a plan's own entry for one of them quantizes it.
    var outerLinears: [BlockLinear] { get }
    /// The learned null caption `[L, caption_channels]`.
    var nullCaption: [Float] { get }
    func forward(_ inputs: ModelInputs, executor: LinearExecutor, step: Int?) throws -> Tensor
}

extension VideoModel {
    /// Every linear a plan can quantize: the block linears, then the outer ones.
    public var quantizableLinears: [BlockLinear] { blockLinears + outerLinears }
}

extension STDiT3: VideoModel {}
extension STDiT: VideoModel {}

/// Sampling settings a checkpoint recommends (metadata key `sampler`, as the demo model writes it).
public struct SamplerDefaults: Sendable {
    public var steps: Int?
    public var cfgScale: Float?
    public var useTimestepTransform: Bool?
    /// An explicit transform ratio r (`timestep_shift`), used when the transform is on.
    public var timestepShift: Float?
    public var frames: Int?, height: Int?, width: Int?
    public var fps: Float?

    init(json: JSONValue) {
        steps = json["num_sampling_steps"]?.intValue
        cfgScale = json["cfg_scale"]?.doubleValue.map(Float.init)
        useTimestepTransform = json["use_timestep_transform"]?.boolValue
        timestepShift = json["timestep_shift"]?.doubleValue.map(Float.init)
        frames = json["frames"]?.intValue
        height = json["height"]?.intValue
        width = json["width"]?.intValue
        fps = json["fps"]?.doubleValue.map(Float.init)
    }
}

/// An opened checkpoint: the model, its own text encoder if it has one, recommended sampler settings.
public struct LoadedCheckpoint: Sendable {
    public let path: String
    public let model: VideoModel
    public let textEncoder: WordTextEncoder?
    public let samplerDefaults: SamplerDefaults?
}

/// Opens a checkpoint for the engine: resolves its config, checks architecture and weights.
public enum ModelLoader {
    /// Tensors a checkpoint may carry beside the transformer (the demo model's text encoder).
    public static let auxiliaryPrefixes = ["text_encoder."]

    /// `facts` remembers that every weight is finite, so a multi-GB checkpoint is scanned once per
    /// file identity; nil scans at every load. Block linears read their weights on first use.
    public static func load(path: String, facts: FileFacts? = .standard) throws -> LoadedCheckpoint {
        let file = try SafetensorsFile(path: path)
        let scan = { () throws -> String in
            defer { file.releaseAllPages() }
            try file.checkFinite()
            return "yes"
        }
        _ = try FileFacts.fact(path, "all-floats-finite", in: facts, compute: scan)
        let config = try ModelConfig.resolve(for: file)
        if let detected = Architecture.detect(names: file.names), detected != config.architecture {
            throw ModelLoadError("\(path): the config says \(config.architecture.rawValue) but the tensor names are \(detected.rawValue)'s")
        }
        let model: VideoModel = config.architecture == .stdit3
            ? try STDiT3(file: file, config: config, ignoringPrefixes: auxiliaryPrefixes)
            : try STDiT(file: file, config: config, ignoringPrefixes: auxiliaryPrefixes)
        let defaults = file.metadataValue("sampler").flatMap { try? JSONValue.parse($0) }.map(SamplerDefaults.init)
        return LoadedCheckpoint(path: path, model: model, textEncoder: try WordTextEncoder(file: file), samplerDefaults: defaults)
    }
}

/// Precomputed caption embeddings, as OpenSora users bring T5 output: tensors `y` `[P, L, C]` and
/// `mask` `[P, L]`, prompt strings in the metadata key `prompts` (a JSON array).
public struct CaptionEmbeddingsFile {
    public let prompts: [String]
    public let condition: TextCondition

    public init(path: String) throws {
        let file = try SafetensorsFile(path: path)
        guard let y = file["y"], y.shape.count == 3 else {
            throw ModelLoadError("\(path): needs a tensor 'y' [prompts, tokens, caption_channels]")
        }
        guard let m = file["mask"], m.shape == [y.shape[0], y.shape[1]] else {
            throw ModelLoadError("\(path): needs a tensor 'mask' [\(y.shape[0]), \(y.shape[1])]")
        }
        guard y.shape.allSatisfy({ $0 > 0 }) else {
            throw ModelLoadError("\(path): 'y' is \(y.shape): needs at least one prompt, one token and one channel")
        }
        try file.checkFinite { $0 == "y" }
        let embeddings = try file.tensor("y")
        let flat = try file.view("mask").toInts()
        let (p, l) = (y.shape[0], y.shape[1])
        condition = TextCondition(embeddings: embeddings.reshaped([p, 1, l, y.shape[2]]),
                                  mask: (0..<p).map { Array(flat[($0 * l)..<(($0 + 1) * l)]) })
        if let text = file.metadataValue("prompts"), let array = try? JSONValue.parse(text).arrayValue {
            prompts = array.map { $0.stringValue ?? "" }
        } else {
            prompts = (0..<p).map { "prompt \($0)" }
        }
    }
}
