import Tensors

/// Hyper-parameters of an OpenSora transformer, as OpenSora's `config.json` names them.
///
/// STDiT3 (v1.2) uses `input_sq_size`; STDiT (v1.0) uses `input_size`, `space_scale`, `time_scale`.
public struct ModelConfig: Sendable, Equatable {
    public var architecture: Architecture
    /// C, the token width.
    public var hiddenSize: Int
    /// Blocks of each kind (STDiT3 has `depth` spatial and `depth` temporal blocks).
    public var depth: Int
    /// H; head width D = C / H.
    public var numHeads: Int
    /// (pt, ph, pw).
    public var patchSize: [Int]
    public var inChannels: Int
    /// Output channels are 2·Cin when true (the second half is the learned variance).
    public var predSigma: Bool
    public var captionChannels: Int
    public var modelMaxLength: Int
    public var mlpRatio: Double
    public var qkNorm: Bool
    /// v1.2: the pixel size the positional scale is relative to (512 for OpenSora).
    public var inputSquareSize: Double
    /// v1.0: spatial / temporal positional scales.
    public var spaceScale: Double
    public var timeScale: Double

    public var outChannels: Int { predSigma ? 2 * inChannels : inChannels }
    public var headDim: Int { hiddenSize / numHeads }
    public var mlpHidden: Int { Int(Double(hiddenSize) * mlpRatio) }
    public var patchVolume: Int { patchSize.reduce(1, *) }

    /// Largest values the engine accepts, far above any OpenSora model; beyond them a config is
    /// corrupt, and sizes computed from it could overflow.
    public enum Limits {
        public static let hiddenSize = 65_536
        public static let depth = 1024
        public static let numHeads = 1024
        public static let channels = 1024
        public static let captionChannels = 65_536
        public static let modelMaxLength = 65_536
        public static let patchSize = 64
        public static let mlpRatio = 64.0
        public static let inputSquareSize = 65_536.0
        public static let positionalScale = 1e-3...1e3
    }

    /// Reads OpenSora's config keys; `source` names the file for errors.
    public init(json: JSONValue, source: String) throws {
        func fail(_ key: String, _ message: String) -> ModelLoadError {
            ModelLoadError("\(source): '\(key)' \(message)")
        }
        func int(_ key: String, default value: Int, max: Int) throws -> Int {
            guard let v = json[key] else { return value }
            guard let i = v.intValue ?? v.doubleValue.flatMap({ Int(exactly: $0) }), (1...max).contains(i) else {
                throw fail(key, "must be an integer in 1…\(max), found \(v.serialized())")
            }
            return i
        }
        // Bounded both ways: beyond these a Float positional scale overflows to inf or 0 and the
        // whole forward pass turns NaN.
        func double(_ key: String, default value: Double, min: Double, max: Double) throws -> Double {
            guard let v = json[key] else { return value }
            guard let d = v.doubleValue, d.isFinite, d >= min, d <= max else {
                throw fail(key, "must be a number in \(min)…\(max), found \(v.serialized())")
            }
            return d
        }
        func bool(_ key: String, default value: Bool) throws -> Bool {
            guard let v = json[key] else { return value }
            guard let b = v.boolValue else { throw fail(key, "must be true or false, found \(v.serialized())") }
            return b
        }
        guard json.objectValue != nil else { throw ModelLoadError("\(source): the config must be a JSON object") }
        if let v = json["model_type"], v.stringValue == nil { throw fail("model_type", "must be a string, found \(v.serialized())") }
        let type = json["model_type"]?.stringValue ?? "STDiT3"
        guard let architecture = Architecture(rawValue: type) ?? (type.hasPrefix("STDiT3") ? .stdit3 : type.hasPrefix("STDiT") ? .stdit : nil) else {
            throw fail("model_type", "is \"\(type)\"; known: STDiT3, STDiT")
        }
        self.architecture = architecture
        hiddenSize = try int("hidden_size", default: 1152, max: Limits.hiddenSize)
        depth = try int("depth", default: 28, max: Limits.depth)
        numHeads = try int("num_heads", default: 16, max: Limits.numHeads)
        inChannels = try int("in_channels", default: 4, max: Limits.channels)
        captionChannels = try int("caption_channels", default: 4096, max: Limits.captionChannels)
        modelMaxLength = try int("model_max_length", default: architecture == .stdit3 ? 300 : 120, max: Limits.modelMaxLength)
        mlpRatio = try double("mlp_ratio", default: 4, min: 1e-6, max: Limits.mlpRatio)
        predSigma = try bool("pred_sigma", default: true)
        qkNorm = try bool("qk_norm", default: architecture == .stdit3)
        inputSquareSize = try double("input_sq_size", default: 512, min: 1, max: Limits.inputSquareSize)
        spaceScale = try double("space_scale", default: 1, min: Limits.positionalScale.lowerBound, max: Limits.positionalScale.upperBound)
        timeScale = try double("time_scale", default: 1, min: Limits.positionalScale.lowerBound, max: Limits.positionalScale.upperBound)
        if let patch = json["patch_size"] {
            guard let items = patch.arrayValue, items.count == 3, items.allSatisfy({ $0.intValue != nil }),
                  case let values = items.compactMap(\.intValue),
                  values.allSatisfy({ (1...Limits.patchSize).contains($0) }) else {
                throw fail("patch_size", "must be three integers in 1…\(Limits.patchSize), found \(patch.serialized())")
            }
            patchSize = values
        } else {
            patchSize = [1, 2, 2]
        }
        guard Int(Double(hiddenSize) * mlpRatio) >= 1 else {
            throw fail("mlp_ratio", "(\(mlpRatio)) gives no MLP hidden units for hidden_size \(hiddenSize)")
        }
        guard hiddenSize % numHeads == 0 else { throw fail("num_heads", "(\(numHeads)) must divide hidden_size (\(hiddenSize))") }
        guard headDim % 2 == 0 else { throw fail("num_heads", "gives an odd head width \(headDim); RoPE needs pairs") }
        guard hiddenSize % 4 == 0 else { throw fail("hidden_size", "must be a multiple of 4 for the 2-D positional embedding") }
    }

    /// The config for a checkpoint: `NAME.config.json` or `config.json` beside `NAME.safetensors`,
    /// else the safetensors metadata key `config`.
    public static func resolve(for file: SafetensorsFile) throws -> ModelConfig {
        let folder = file.path.contains("/") ? String(file.path[..<file.path.lastIndex(of: "/")!]) : "."
        let stem = file.path.hasSuffix(".safetensors") ? String(file.path.dropLast(".safetensors".count)) : file.path
        let candidates = [stem + ".config.json", folder + "/config.json"]
        // A config that is there but cannot be read is an error, never a silent fall-back to shapes.
        if let beside = candidates.first(where: FileInput.exists) {
            let text: String
            do { text = try FileInput.readText(beside, limit: FileInput.Limit.config) } catch let error as FileInputError {
                throw ModelLoadError("\(error) (the checkpoint's config; remove it to read the config off the tensor shapes)")
            }
            do {
                return try ModelConfig(json: try JSONValue.parse(text), source: beside)
            } catch let error as JSONParseError {
                throw ModelLoadError("\(beside): not valid JSON: \(error)")
            }
        }
        if let text = file.metadataValue("config") {
            do {
                return try ModelConfig(json: try JSONValue.parse(text), source: "\(file.path) metadata 'config'")
            } catch let error as JSONParseError {
                throw ModelLoadError("\(file.path): metadata 'config' is not valid JSON: \(error)")
            }
        }
        return try inferred(from: file)
    }

    /// The config read off the tensor shapes (OPENSORA.md §2.3), for checkpoints shipped without
    /// one. Heads come from `q_norm` (C/H) in v1.2; v1.0 has no such tensor, so its head width is
    /// taken as OpenSora's 72.
    public static func inferred(from file: SafetensorsFile) throws -> ModelConfig {
        guard let architecture = Architecture.detect(names: file.names) else {
            throw ModelLoadError("\(file.path): no model config and no transformer blocks: put OpenSora's config.json beside the checkpoint, or a JSON 'config' entry in its safetensors metadata")
        }
        func shape(_ name: String, _ layout: String, dimensions: Int) throws -> [Int] {
            guard let entry = file[name] else {
                throw ModelLoadError("\(file.path): no config, and '\(name)' is missing, so the config cannot be read off the shapes")
            }
            guard entry.shape.count == dimensions, entry.shape.allSatisfy({ $0 > 0 }) else {
                throw ModelLoadError("\(file.path): '\(name)' is \(entry.shape), expected \(layout) with every size positive")
            }
            return entry.shape
        }
        let conv = try shape("x_embedder.proj.weight", "[C, Cin, pt, ph, pw]", dimensions: 5)
        let C = conv[0]
        let patch = Array(conv[2...])
        guard C <= Limits.hiddenSize, conv[1] <= Limits.channels, patch.allSatisfy({ $0 <= Limits.patchSize }) else {
            throw ModelLoadError("\(file.path): 'x_embedder.proj.weight' is \(conv): C ≤ \(Limits.hiddenSize), Cin ≤ \(Limits.channels), patch ≤ \(Limits.patchSize) expected")
        }
        let prefix = architecture == .stdit3 ? "spatial_blocks" : "blocks"
        let blockIndices = file.names.compactMap { name -> Int? in
            guard name.hasPrefix(prefix + ".") else { return nil }
            return Int(name.dropFirst(prefix.count + 1).prefix { $0 != "." })
        }
        guard let lastBlock = blockIndices.max(), (0..<Limits.depth).contains(lastBlock) else {
            throw ModelLoadError("\(file.path): block numbers of '\(prefix).N' must run from 0 to at most \(Limits.depth - 1), found \(blockIndices.max().map(String.init) ?? "none")")
        }
        let fc1 = try shape("\(prefix).0.mlp.fc1.weight", "[hidden, C]", dimensions: 2)
        let caption = try shape("y_embedder.y_embedding", "[L, caption_channels]", dimensions: 2)
        let finalRows = try shape("final_layer.linear.weight", "[P·Cout, C]", dimensions: 2)[0]
        let cout = finalRows / patch.reduce(1, *)
        let headDim = file["\(prefix).0.attn.q_norm.weight"]?.shape.first ?? 72
        guard headDim > 0 else { throw ModelLoadError("\(file.path): '\(prefix).0.attn.q_norm.weight' is empty, so the head width is unknown") }
        // OpenSora takes int(C · mlp_ratio) hidden units: the shortest ratio of up to 4 decimals that
        // gives back fc1's rows (3072 rows for C = 1152 read as 2.667), else the quotient, nudged up
        // until the truncation gives them back.
        let exact = Double(fc1[0]) / Double(C)
        var mlpRatio = [10.0, 100, 1000, 10_000].lazy.map { ((exact * $0).rounded() / $0) }
            .first { Int(Double(C) * $0) == fc1[0] } ?? exact
        while Int(Double(C) * mlpRatio) < fc1[0] { mlpRatio = mlpRatio.nextUp }
        var members: [(String, JSONValue)] = [
            ("model_type", .string(architecture.rawValue)), ("hidden_size", .int(C)), ("depth", .int(lastBlock + 1)),
            ("num_heads", .int(max(C / headDim, 1))), ("patch_size", .array(patch.map { .int($0) })),
            ("in_channels", .int(conv[1])), ("pred_sigma", .bool(cout == 2 * conv[1])),
            ("caption_channels", .int(caption[1])), ("model_max_length", .int(caption[0])),
            ("mlp_ratio", .double(mlpRatio)),
            ("qk_norm", .bool(file["\(prefix).0.attn.q_norm.weight"] != nil)),
        ]
        if architecture == .stdit3 { members.append(("input_sq_size", .int(512))) }
        return try ModelConfig(json: .object(members), source: "\(file.path) (config read off the tensor shapes)")
    }
}

/// A checkpoint or config the engine cannot run, with the file and the keys at fault.
public struct ModelLoadError: Error, CustomStringConvertible, Equatable {
    public let description: String
    public init(_ description: String) { self.description = description }
}
