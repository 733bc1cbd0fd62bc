import Tensors

/// Opens a checkpoint for the engine: resolves its config, checks architecture and weights.
public enum ModelLoader {
    /// Tensors a checkpoint may carry beside the transformer (the demo model's text encoder).
    public static let auxiliaryPrefixes = ["text_encoder."]

    public static func loadSTDiT3(path: String) throws -> STDiT3 {
        let file = try SafetensorsFile(path: path)
        let config = try ModelConfig.resolve(for: file)
        if let detected = Architecture.detect(names: file.names), detected != config.architecture {
            throw ModelLoadError("\(path): the config says \(config.architecture.rawValue) but the tensor names are \(detected.rawValue)'s")
        }
        guard config.architecture == .stdit3 else {
            throw ModelLoadError("\(path): \(config.architecture.rawValue) (OpenSora v1.0) checkpoints can be browsed and inspected; running them is not implemented yet — the engine runs STDiT3 (v1.2)")
        }
        return try STDiT3(file: file, config: config, ignoringPrefixes: auxiliaryPrefixes)
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
