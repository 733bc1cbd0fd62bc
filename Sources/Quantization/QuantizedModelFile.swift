import Tensors
import VideoDiT

/// A quantized model read back from `quantized.safetensors` (format `stsq-quantized/6`, /5, /4, /3 or /2, written by
/// `QuantizedModelExport`): everything a runtime needs besides the checkpoint's own float layers —
/// integer weights with their scales and zero points, folded biases, explicit `1/s` multipliers,
/// per-step activation encodings, per-step modulation tables, per-block caption projections and
/// the encodings of integer attention products. Every tensor is checked by name, dtype and shape against the model it is for; a tensor the
/// format does not have is an error, not ignored. `QuantizedFileExecutor` runs it.
public struct QuantizedModelFile: Sendable {
    /// One block linear as deployed.
    public struct Layer: Sendable {
        public let name: String
        public let outputs: Int
        public let inputs: Int
        /// One, or one per step group.
        public let weightSets: [WeightSet]
        /// Per step, the static encoding of the input; empty for dynamic and float layers.
        public let encodings: [ActivationEncoding]
        /// Quantized with per-token scales computed at run time (no `act_scale`).
        public let dynamic: Bool
        /// The activation code range (`act_range`): symmetric int8 or asymmetric uint8.
        public let activationKind: ActivationEncoding.Kind
        /// With a channel shift: per step `[S·C]`, `W'·(z/s)` added to the product's output.
        public let shiftBias: [Float]?
        /// With a channel shift: per step `[S·K]`, the `z` subtracted from the input (already folded
        /// into the modulation tables; for runtimes that do not use those tables).
        public let channelShift: [Float]?
        /// With a Hadamard rotation of the input: the block size of `H` (`HadamardRotation`).
        public let rotationBlock: Int?
    }

    /// One weight set: integer weights (or, for a layer kept in float, folded float weights).
    public struct WeightSet: Sendable {
        /// `[C, K]` codes, nil for a float layer.
        public let values: [Int8]?
        /// Δw `[C]` (empty for a float layer).
        public let scales: [Float]
        /// zw `[C]`, nil for symmetric weights.
        public let zeroPoints: [Int32]?
        /// `[C, K]` for a float layer whose rows carry a fold, else nil.
        public let floatWeight: [Float]?
        public let bias: [Float]?
        /// SmoothQuant's `s` `[K]`, nil where α = 0.
        public let smoothing: [Float]?
        /// `1/s` `[K]` for explicit folds, nil otherwise.
        public let inputMultiplier: [Float]?

        /// `Δw[c]·(q[c, k] − zw[c])`, as the fake-quant path computes it.
        func dequantized(outputs: Int, inputs: Int) -> [Float] {
            guard let values else { return floatWeight ?? [] }
            var out = [Float](repeating: 0, count: values.count)
            for c in 0..<outputs {
                let s = scales[c], z = zeroPoints?[c] ?? 0
                for k in 0..<inputs { out[c * inputs + k] = s * Float(Int32(values[c * inputs + k]) - z) }
            }
            return out
        }
    }

    public let path: String
    public let steps: Int
    /// Step group of each step.
    public let stepGroup: [Int]
    /// Block linears present in the file (the others run the checkpoint's float weights).
    public let layers: [String: Layer]
    /// Per block, the modulation rows `[S, 6, C]` with `1/s` folded in.
    public let modulation: [String: [Float]]
    /// Per block with a folded caption projection: one copy, or one per step group.
    public let captionProjections: [String: [(weight: [Float], bias: [Float]?)]]
    /// `y_embedder.y_proj.fc2`'s `[outputs, inputs]`, the shape of every copy.
    public let captionProjectionShape: (outputs: Int, inputs: Int)
    public let checkpointHash: String
    public let fps: Float
    /// Per attention whose products run on integers, per step (`AttentionEncodings`).
    public let attentionEncodings: [String: [AttentionEncodings]]

    /// Reads and checks `path` against `model` (the checkpoint the file was made from).
    public init(path: String, model: VideoModel & ModulatedBlocks) throws {
        let file = try SafetensorsFile(path: path)
        var reader = Reader(file: file)
        guard let format = file.metadataValue("format"), QuantizedModelExport.readableFormats.contains(format) else {
            throw reader.error(nil, "metadata 'format' is \(file.metadataValue("format").map { "'\($0)'" } ?? "missing"), expected '\(QuantizedModelExport.format)'")
        }
        guard let hash = file.metadataValue("checkpoint_hash"), let fpsText = file.metadataValue("fps"), let fps = Float(fpsText) else {
            throw reader.error(nil, "metadata needs 'checkpoint_hash' and a numeric 'fps'")
        }
        // The plan written beside it must be the one it was built from (an interrupted export can
        // leave a new file beside an old plan).
        let planPath = (path.contains("/") ? String(path[..<path.lastIndex(of: "/")!]) : ".") + "/plan.json"
        if let recorded = file.metadataValue("plan_fnv1a"), FileInput.exists(planPath) {
            let actual = QuantizedModelExport.planDigest(try FileInput.read(planPath, limit: FileInput.Limit.plan))
            guard actual == recorded else {
                throw reader.error(nil, "was built from another plan than the plan.json beside it (plan digest \(recorded), plan.json \(actual)): an export was interrupted or mixed; run `stsq-tui quantize` again")
            }
        }
        self.path = path
        checkpointHash = hash
        self.fps = fps

        let groups = try reader.steps("step_group")
        let S = groups.count
        guard S > 0, groups.first == 0, zip(groups, groups.dropFirst()).allSatisfy({ $1 == $0 || $1 == $0 + 1 }) else {
            throw reader.error("step_group", "must number contiguous groups from 0, found \(groups)")
        }
        steps = S
        stepGroup = groups
        let G = (groups.last ?? 0) + 1

        var layers: [String: Layer] = [:]
        for linear in model.quantizableLinears where file["\(linear.name).w0.weight"] != nil {
            let (C, K) = (linear.outputs, linear.inputs)
            var sets: [WeightSet] = []
            while file["\(linear.name).w\(sets.count).weight"] != nil {
                let p = "\(linear.name).w\(sets.count)"
                let dtype = file["\(p).weight"]?.dtype
                let integer = dtype == .i8 || dtype == .u8
                sets.append(WeightSet(
                    values: dtype == .u8 ? Int4Packing.unpack(try reader.uint8s("\(p).weight", shape: [C, (K + 1) / 2]), rows: C, columns: K)
                        : integer ? try reader.int8s("\(p).weight", shape: [C, K]) : nil,
                    scales: integer ? try reader.floats("\(p).weight_scale", shape: [C]) : [],
                    zeroPoints: integer && file["\(p).weight_zero_point"] != nil ? try reader.int32s("\(p).weight_zero_point", shape: [C]) : nil,
                    floatWeight: integer ? nil : try reader.floats("\(p).weight", shape: [C, K]),
                    bias: try reader.optionalFloats("\(p).bias", shape: [C]),
                    smoothing: try reader.optionalFloats("\(p).smoothing", shape: [K]),
                    inputMultiplier: try reader.optionalFloats("\(p).input_multiplier", shape: [K])))
            }
            guard sets.count == 1 || sets.count == G else {
                throw reader.error("\(linear.name).w\(sets.count - 1).weight", "\(sets.count) weight sets; expected 1 or one per step group (\(G))")
            }
            let quantized = sets[0].values != nil
            guard sets.allSatisfy({ ($0.values != nil) == quantized }) else {
                throw reader.error("\(linear.name).w0.weight", "some weight sets are integer and some float")
            }
            var encodings: [ActivationEncoding] = []
            var dynamic = false
            var activationKind = ActivationEncoding.Kind.symmetricInt8
            if quantized {
                let range = try reader.int32s("\(linear.name).act_range", shape: [2])
                guard let kind = ActivationEncoding.Kind.allCases.first(where: { $0.codes == range[0]...range[1] }) else {
                    throw reader.error("\(linear.name).act_range", "code range \(range) is neither −127…127 (int8) nor 0…255 (uint8)")
                }
                activationKind = kind
                if file["\(linear.name).act_scale"] != nil || file["\(linear.name).act_zero_point"] != nil {
                    let scales = try reader.floats("\(linear.name).act_scale", shape: [S])
                    let zeros = try reader.int32s("\(linear.name).act_zero_point", shape: [S])
                    for (step, (scale, zero)) in zip(scales, zeros).enumerated() {
                        guard scale > 0, scale.isFinite, kind.codes.contains(zero), kind == .asymmetricUInt8 || zero == 0 else {
                            throw reader.error("\(linear.name).act_scale", "step \(step): scale \(scale), zero point \(zero) is not a \(kind.rawValue) encoding")
                        }
                        encodings.append(ActivationEncoding(kind: kind, scale: scale, zeroPoint: zero))
                    }
                } else {
                    dynamic = true
                }
                for (g, set) in sets.enumerated() where !set.scales.allSatisfy({ $0 > 0 && $0.isFinite }) {
                    throw reader.error("\(linear.name).w\(g).weight_scale", "weight scales must be positive and finite")
                }
            }
            let shiftBias = try reader.optionalFloats("\(linear.name).bias_shift", shape: [S, C])
            guard shiftBias == nil || (quantized && !dynamic) else {
                throw reader.error("\(linear.name).bias_shift", "a channel shift belongs to a static quantized layer only")
            }
            let channelShift = try reader.optionalFloats("\(linear.name).channel_shift", shape: [S, K])
            guard channelShift == nil || shiftBias != nil else {
                throw reader.error("\(linear.name).channel_shift", "a channel shift comes with its bias_shift")
            }
            var rotationBlock: Int?
            if file["\(linear.name).hadamard_block"] != nil {
                let block = Int(try reader.int32s("\(linear.name).hadamard_block", shape: [1])[0])
                guard quantized, !dynamic, block > 0, block & (block - 1) == 0, K % block == 0 else {
                    throw reader.error("\(linear.name).hadamard_block", "must be a power of two dividing \(K), on a static quantized layer; found \(block)")
                }
                rotationBlock = block
            }
            layers[linear.name] = Layer(name: linear.name, outputs: C, inputs: K, weightSets: sets, encodings: encodings, dynamic: dynamic,
                                        activationKind: activationKind, shiftBias: shiftBias, channelShift: channelShift,
                                        rotationBlock: rotationBlock)
        }
        self.layers = layers

        var modulation: [String: [Float]] = [:]
        var captions: [String: [(weight: [Float], bias: [Float]?)]] = [:]
        let projection = model.captionProjectionOutput
        captionProjectionShape = (projection.outputFeatures, projection.inputFeatures)
        // The model's blocks in forward order and the width of their rows (the timestep is irrelevant here).
        for (block, rows) in try model.modulationRows(timestep: 1000, fps: fps) {
            modulation[block] = try reader.floats("\(block).modulation", shape: [S, 6, rows.count / 6])
            var copies: [(weight: [Float], bias: [Float]?)] = []
            while file["\(block).caption_projection.w\(copies.count).weight"] != nil {
                let p = "\(block).caption_projection.w\(copies.count)"
                copies.append((try reader.floats("\(p).weight", shape: [projection.outputFeatures, projection.inputFeatures]),
                               try reader.optionalFloats("\(p).bias", shape: [projection.outputFeatures])))
            }
            guard copies.isEmpty || copies.count == 1 || copies.count == G else {
                throw reader.error("\(block).caption_projection.w0.weight", "\(copies.count) copies; expected 1 or one per step group (\(G))")
            }
            if !copies.isEmpty { captions[block] = copies }
        }
        self.modulation = modulation
        captionProjections = captions

        var attention: [String: [AttentionEncodings]] = [:]
        for a in QuantizationPlan.attentions(layerNames: model.blockLinears.map(\.name)) where file[a + ".q_scale"] != nil {
            var scales: [[Float]] = []
            for operand in ["q", "k", "v"] {
                let values = try reader.floats("\(a).\(operand)_scale", shape: [S])
                guard values.allSatisfy({ $0 > 0 && $0.isFinite }) else { throw reader.error("\(a).\(operand)_scale", "scales must be positive and finite") }
                scales.append(values)
            }
            let p = try reader.floats("\(a).p_scale", shape: [1])[0]
            guard p > 0, p.isFinite else { throw reader.error("\(a).p_scale", "scale must be positive and finite") }
            attention[a] = (0..<S).map { step in
                AttentionEncodings(q: ActivationEncoding(kind: .symmetricInt8, scale: scales[0][step], zeroPoint: 0),
                                   k: ActivationEncoding(kind: .symmetricInt8, scale: scales[1][step], zeroPoint: 0),
                                   v: ActivationEncoding(kind: .symmetricInt8, scale: scales[2][step], zeroPoint: 0),
                                   p: ActivationEncoding(kind: .asymmetricUInt8, scale: p, zeroPoint: 0))
            }
        }
        attentionEncodings = attention
        if let unexpected = file.names.first(where: { !reader.read.contains($0) }) {
            throw reader.error(unexpected, "is not part of the \(QuantizedModelExport.format) format for this model")
        }
    }

    /// Typed reads that check dtype and shape, naming the file and the tensor on failure, and
    /// remember what was read.
    private struct Reader {
        let file: SafetensorsFile
        var read: Set<String> = []

        func error(_ tensor: String?, _ message: String) -> QuantizedFileError {
            QuantizedFileError("\(file.path)\(tensor.map { ": \($0)" } ?? ""): \(message)")
        }

        private mutating func view(_ name: String, _ dtype: DType, shape: [Int]?) throws -> TensorView {
            guard file[name] != nil else { throw error(name, "missing") }
            let view = try file.view(name)
            guard view.dtype == dtype else { throw error(name, "stored as \(view.dtype.rawValue), expected \(dtype.rawValue)") }
            if let shape, view.shape != shape { throw error(name, "has shape \(view.shape), expected \(shape)") }
            read.insert(name)
            return view
        }

        mutating func floats(_ name: String, shape: [Int]) throws -> [Float] {
            let values = try view(name, .f32, shape: shape).withElements(as: Float.self) { Array($0) }
            guard values.allSatisfy(\.isFinite) else { throw error(name, "holds non-finite values") }
            return values
        }

        mutating func optionalFloats(_ name: String, shape: [Int]) throws -> [Float]? {
            file[name] == nil ? nil : try floats(name, shape: shape)
        }

        mutating func int8s(_ name: String, shape: [Int]) throws -> [Int8] {
            try view(name, .i8, shape: shape).withElements(as: Int8.self) { Array($0) }
        }

        mutating func uint8s(_ name: String, shape: [Int]) throws -> [UInt8] {
            try view(name, .u8, shape: shape).withElements(as: UInt8.self) { Array($0) }
        }

        mutating func int32s(_ name: String, shape: [Int]) throws -> [Int32] {
            try view(name, .i32, shape: shape).withElements(as: Int32.self) { Array($0) }
        }

        /// A 1-D I32 tensor of any length (one value per sampler step).
        mutating func steps(_ name: String) throws -> [Int] {
            let v = try view(name, .i32, shape: nil)
            guard v.shape.count == 1 else { throw error(name, "has shape \(v.shape), expected [steps]") }
            return try v.withElements(as: Int32.self) { $0.map(Int.init) }
        }
    }
}

/// A `quantized.safetensors` that cannot be used, naming the file and the tensor.
public struct QuantizedFileError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
