import Tensors
import VideoDiT

/// How one block linear is quantized (QUANTIZATION.md): weights, activations, SmoothQuant.
public struct LayerSettings: Sendable, Equatable {
    public enum Activations: String, Sendable, CaseIterable {
        /// Static per-tensor, symmetric int8 (z = 0, [−127, 127]).
        case int8
        /// Static per-tensor, asymmetric uint8 ([0, 255], integer z).
        case uint8
        /// Dynamic per-token symmetric int8 (not deployable on static hardware; a baseline).
        case dynamic
        /// Dynamic per-token asymmetric uint8, each row's own [min, max]: ViDiT-Q's OpenSora W8A8
        /// setting (`per_group: token`, `dynamic: True`, `sym: False`), the anchor baseline.
        case dynamicUInt8 = "dynamic_uint8"

        /// Scales computed per token at run time (a baseline, not static hardware's arithmetic).
        public var isDynamic: Bool { self == .dynamic || self == .dynamicUInt8 }

        /// The code range: symmetric int8 or asymmetric uint8.
        public var kind: ActivationEncoding.Kind { self == .uint8 || self == .dynamicUInt8 ? .asymmetricUInt8 : .symmetricInt8 }
    }
    /// Which steps share one static activation encoding.
    public enum ActivationGranularity: String, Sendable, CaseIterable { case step, group, global }
    public enum Estimator: String, Sendable, CaseIterable { case minmax, percentile, mse }
    /// Aggregated: one smoothing vector (and weight set) for all steps; timestep: one per step group.
    public enum Smoothing: String, Sendable, CaseIterable { case aggregated, timestep }

    public var keepFloat = false
    /// 4…8.
    public var weightBits = 8
    public var weightGranularity: QuantizedWeights.Granularity = .perChannel
    public var weightClip: WeightQuantizer.Clip = .minmax
    /// Symmetric (z = 0, the default) or asymmetric (per-channel integer zero point) weights.
    public var weightSymmetric = true
    public var activations: Activations = .int8
    public var activationGranularity: ActivationGranularity = .step
    public var estimator: Estimator = .minmax
    /// For the percentile estimator, in (0, 100].
    public var percentile: Double = 99.99
    /// SmoothQuant migration strength in [0, 1]; 0 disables.
    public var alpha: Double = 0
    /// With time-step-wise smoothing, α per step group (one per group of the plan), in place of
    /// `alpha`; ignored with aggregated smoothing (one vector for all steps has one α).
    public var groupAlpha: [Double]?
    public var smoothing: Smoothing = .aggregated
    /// Channel-wise shifting (Outlier Suppression+, Wei et al. 2023), per step: each input channel
    /// is centred on the midpoint `z` of its calibrated range before smoothing and quantization, so
    /// a static per-tensor scale covers half-ranges instead of one-sided ones. Only where it is
    /// free: the layers reading the modulated LayerNorm (`attn.qkv`, `mlp.fc1`), whose `z` folds
    /// into the per-step modulation shift row and whose `W·z` joins the per-step bias.
    public var shift = false
    /// How weights take their grid points: nearest (the default) or GPTQ from the calibration rows.
    public var weightRounding: WeightRounding = .nearest
    public enum WeightRounding: String, Sendable, CaseIterable { case nearest, gptq }
    /// An attention's two products (QKᵀ, P·V): float32, the default, or static integer
    /// (`AttentionEncodings`: q, k, v int8 per-tensor with the encoding granularity and estimator
    /// of these settings, P uint8 on [0, 1]). Set in `defaults`, a block, or a layer entry named
    /// by the attention (`spatial_blocks.0.attn`, `spatial_blocks.0.cross_attn`).
    public var attentionProducts: AttentionProducts = .float
    public enum AttentionProducts: String, Sendable, CaseIterable { case float, int8 }
    /// An online rotation of the layer's input before it is quantized (`HadamardRotation`), folded
    /// into the weights as `W·Hᵀ`. Static layers only; a rotated layer takes no SmoothQuant α and
    /// no channel shift (its calibrated range is that of `H·x`, recorded for every layer).
    public var rotation: Rotation = .none
    public enum Rotation: String, Sendable, CaseIterable { case none, hadamard }

    public init() {}

    /// The α that builds the smoothing vector of step group `group`.
    public func alpha(group: Int) -> Double {
        guard smoothing == .timestep, let groupAlpha, groupAlpha.indices.contains(group) else { return alpha }
        return groupAlpha[group]
    }

    /// Whether any step group is smoothed.
    public var smooths: Bool {
        smoothing == .timestep && groupAlpha != nil ? groupAlpha!.contains { $0 > 0 } : alpha > 0
    }
}

/// A user's error in a plan: names the file and the field.
public struct PlanError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// `plan.json` (schema `stsq-plan`, version 1, documented in the README): which checkpoint and
/// schedule it was made for, the step groups, defaults, per-block α and per-layer overrides.
/// Settings resolve layer override → block setting → default.
public struct QuantizationPlan: Sendable, Equatable {
    public static let format = "stsq-plan"
    public static let version = 1

    /// The checkpoint's content hash (`CalibrationCache.checkpointHash`).
    public var checkpointHash: String
    public var architecture: String
    /// The calibration this plan's statistics come from (prompts, seeds, sampler, steps, CFG).
    public var calibration: CalibrationCache.Key
    /// Sampler timesteps `t` per step (0 = noisiest), from the schedule.
    public var timesteps: [Float]
    /// Contiguous inclusive step ranges covering `0 ..< steps`.
    public var stepGroups: [ClosedRange<Int>]
    public var defaults: LayerSettings
    /// Per block (state-dict prefix, e.g. `spatial_blocks.0`), partial settings as JSON members.
    public var blocks: [(String, JSONValue)]
    /// Per layer (e.g. `spatial_blocks.0.attn.qkv`), partial settings as JSON members.
    public var layers: [(String, JSONValue)]

    public var steps: Int { timesteps.count }

    public init(checkpointHash: String, architecture: String, calibration: CalibrationCache.Key, timesteps: [Float],
                stepGroups: [ClosedRange<Int>], defaults: LayerSettings = LayerSettings(),
                blocks: [(String, JSONValue)] = [], layers: [(String, JSONValue)] = []) {
        self.checkpointHash = checkpointHash
        self.architecture = architecture
        self.calibration = calibration
        self.timesteps = timesteps
        self.stepGroups = stepGroups
        self.defaults = defaults
        self.blocks = blocks
        self.layers = layers
    }

    public static func == (a: QuantizationPlan, b: QuantizationPlan) -> Bool { a.json == b.json }

    /// `count` contiguous groups of (nearly) equal length over `steps` steps.
    public static func equalGroups(steps: Int, count: Int) -> [ClosedRange<Int>] {
        let g = max(1, min(count, steps))
        return (0..<g).map { i in (i * steps / g)...((i + 1) * steps / g - 1) }
    }

    /// The group index of each step.
    public var groupOfStep: [Int] {
        var out = [Int](repeating: 0, count: steps)
        for (g, range) in stepGroups.enumerated() { for s in range { out[s] = g } }
        return out
    }

    /// `entries` (the plan's `blocks` or `layers`) with one member of `name`'s entry set: replaced
    /// in place, else added at the end; `nil` removes it, and an entry left empty is dropped. A new
    /// entry goes where `order` (model order) puts it, so the written plan reads like the model.
    public static func entries(_ entries: [(String, JSONValue)], setting key: String, to value: JSONValue?, of name: String,
                               order: [String]) -> [(String, JSONValue)] {
        var result = entries
        var members = result.first { $0.0 == name }?.1.objectValue ?? []
        if let i = members.firstIndex(where: { $0.0 == key }) {
            if let value { members[i].1 = value } else { members.remove(at: i) }
        } else if let value {
            members.append((key, value))
        }
        if let i = result.firstIndex(where: { $0.0 == name }) {
            if members.isEmpty { result.remove(at: i) } else { result[i].1 = .object(members) }
        } else if !members.isEmpty {
            let position = order.firstIndex(of: name) ?? .max
            let at = result.firstIndex { (order.firstIndex(of: $0.0) ?? .max) > position } ?? result.count
            result.insert((name, .object(members)), at: at)
        }
        return result
    }

    /// The block (state-dict prefix) a block linear belongs to.
    public static func block(of layer: String) -> String {
        let parts = layer.split(separator: ".")
        return parts.count >= 2 ? parts[0...1].joined(separator: ".") : layer
    }

    /// The linears outside the blocks that a plan may quantize (`VideoModel.outerLinears`): kept
    /// in float unless their own layer entry says `"keep_fp": false`; no block entry or default
    /// reaches them, and they take no α, shift or attention setting.
    public static let outerLayers: Set<String> = ["x_embedder.proj", "final_layer.linear"]
    static let outerKeysRefused = ["alpha", "group_alpha", "smoothing", "shift", "attention_products"]

    /// The settings an attention's entry may hold (its products' encodings).
    static let attentionKeys = ["attention_products", "activation_granularity", "estimator", "percentile"]

    /// The attentions among a model's block linears (the modules of `qkv` and `q_linear`), in order.
    public static func attentions(layerNames: [String]) -> [String] {
        layerNames.filter { $0.hasSuffix(".qkv") || $0.hasSuffix(".q_linear") }.map(attentionName(of:))
    }

    /// Settings of one layer. A block's α applies to the layers whose `1/s` folds; the others
    /// (`cross_attn.q_linear`, `mlp.fc2`, v1.0 `attn_temp.qkv`) take α only from their own entry.
    public func settings(for layer: String, foldable: Bool) throws -> LayerSettings {
        var s = defaults
        if Self.outerLayers.contains(layer) {
            (s.keepFloat, s.alpha, s.groupAlpha, s.shift, s.attentionProducts) = (true, 0, nil, false, .float)
            if let entry = layers.first(where: { $0.0 == layer })?.1 {
                try Self.apply(entry, to: &s, path: "layers.\"\(layer)\"", alphaApplies: false)
            }
            return s
        }
        if !foldable {
            s.alpha = 0
            s.groupAlpha = nil
        }
        if let entry = blocks.first(where: { $0.0 == Self.block(of: layer) })?.1 {
            try Self.apply(entry, to: &s, path: "blocks.\"\(Self.block(of: layer))\"", alphaApplies: foldable)
        }
        if let entry = layers.first(where: { $0.0 == layer })?.1 {
            try Self.apply(entry, to: &s, path: "layers.\"\(layer)\"", alphaApplies: true)
        }
        return s
    }

    /// A block's own settings, before any layer entry: the defaults with the block's entry applied
    /// (α and α per group as its foldable layers take them).
    public func blockSettings(_ block: String) throws -> LayerSettings {
        var s = defaults
        if let entry = blocks.first(where: { $0.0 == block })?.1 {
            try Self.apply(entry, to: &s, path: "blocks.\"\(block)\"", alphaApplies: true)
        }
        return s
    }

    /// Checks every name and value against the model's block linears.
    public func validate(layerNames: [String]) throws {
        let known = Set(layerNames)
        let knownBlocks = Set(layerNames.map(Self.block(of:)))
        for (name, entry) in blocks {
            guard knownBlocks.contains(name) else { throw PlanError("blocks.\"\(name)\": no such block in the checkpoint (blocks: \(knownBlocks.sorted().prefix(4).joined(separator: ", ")), …)") }
            var s = defaults
            try Self.apply(entry, to: &s, path: "blocks.\"\(name)\"", alphaApplies: true)
        }
        let attentions = Set(Self.attentions(layerNames: layerNames))
        for (name, entry) in layers {
            if attentions.contains(name) {
                let members = entry.objectValue ?? []
                if let key = members.first(where: { !Self.attentionKeys.contains($0.0) })?.0 {
                    throw PlanError("layers.\"\(name)\".\(key): an attention takes only \(Self.attentionKeys.joined(separator: ", "))")
                }
                var s = defaults
                try Self.apply(entry, to: &s, path: "layers.\"\(name)\"", alphaApplies: true)
                continue
            }
            guard known.contains(name) else { throw PlanError("layers.\"\(name)\": no such quantizable layer or attention in the checkpoint") }
            if Self.outerLayers.contains(name), let key = entry.objectValue?.first(where: { Self.outerKeysRefused.contains($0.0) })?.0 {
                throw PlanError("layers.\"\(name)\".\(key): a layer outside the blocks takes no smoothing, shift or attention setting")
            }
            if entry.objectValue?.contains(where: { $0.0 == "attention_products" }) == true {
                throw PlanError("layers.\"\(name)\".attention_products: set it on the attention (\(attentionName(of: name))), its block or the defaults")
            }
            var s = defaults
            try Self.apply(entry, to: &s, path: "layers.\"\(name)\"", alphaApplies: true)
            if let members = entry.objectValue, members.contains(where: { $0.0 == "rotation" && $0.1.stringValue == "hadamard" }),
               let key = members.first(where: { ($0.0 == "alpha" && ($0.1.doubleValue ?? 0) > 0) || ($0.0 == "shift" && $0.1.boolValue == true)
                                                || $0.0 == "group_alpha" })?.0 {
                throw PlanError("layers.\"\(name)\".\(key): a rotated layer takes no smoothing or shift (its static range is that of the rotated input)")
            }
            if entry.objectValue?.contains(where: { $0.0 == "shift" && $0.1.boolValue == true }) == true, !SmoothQuant.fold(of: name).takesShift {
                throw PlanError("layers.\"\(name)\".shift: a channel shift folds only into the modulation rows, so only attn.qkv and mlp.fc1 (v1.0: attn.qkv, mlp.fc1) take it")
            }
        }
        try validateGroupAlphas()
        guard !stepGroups.isEmpty, stepGroups.first?.lowerBound == 0, stepGroups.last?.upperBound == steps - 1,
              zip(stepGroups, stepGroups.dropFirst()).allSatisfy({ $0.upperBound < $1.lowerBound && $1.lowerBound - $0.upperBound == 1 }) else {
            throw PlanError("step_groups: must be contiguous [first, last] ranges covering steps 0…\(steps - 1), got \(stepGroups.map { [$0.lowerBound, $0.upperBound] })")
        }
    }

    // MARK: JSON

    public var json: JSONValue {
        .object([
            ("format", .string(Self.format)), ("version", .int(Self.version)),
            ("checkpoint", .object([("hash", .string(checkpointHash)), ("architecture", .string(architecture))])),
            ("calibration", calibration.json),
            ("sampler", .object([("name", .string(calibration.sampler)), ("steps", .int(steps)),
                                 ("cfg_scale", .float(calibration.cfgScale)), ("t", .array(timesteps.map { .float($0) }))])),
            ("step_groups", .array(stepGroups.map { .array([.int($0.lowerBound), .int($0.upperBound)]) })),
            ("defaults", Self.json(of: defaults)),
            ("blocks", .object(blocks)),
            ("layers", .object(layers)),
        ])
    }

    public static func json(of s: LayerSettings) -> JSONValue {
        .object([
            ("keep_fp", .bool(s.keepFloat)), ("weight_bits", .int(s.weightBits)),
            ("weight_granularity", .string(s.weightGranularity.rawValue)), ("weight_clip", .string(s.weightClip.rawValue)),
            ("weight_symmetric", .bool(s.weightSymmetric)),
            ("activations", .string(s.activations.rawValue)),
            ("activation_granularity", .string(s.activationGranularity.rawValue)),
            ("estimator", .string(s.estimator.rawValue)), ("percentile", .double(s.percentile)),
            ("alpha", .double(s.alpha)), ("smoothing", .string(s.smoothing.rawValue)),
        ] + (s.groupAlpha.map { [("group_alpha", .array($0.map { .double($0) }))] } ?? [])
          + (s.shift ? [("shift", .bool(true))] : [])
          + (s.weightRounding != .nearest ? [("weight_rounding", .string(s.weightRounding.rawValue))] : [])
          + (s.attentionProducts != .float ? [("attention_products", .string(s.attentionProducts.rawValue))] : [])
          + (s.rotation != .none ? [("rotation", .string(s.rotation.rawValue))] : []))
    }

    /// Parses and checks a plan's own structure (names are checked later against a model by `validate`).
    /// Strict: an unknown key or a value of the wrong type is an error naming its JSON path, so a
    /// typo can never quietly give a default model.
    public init(json: JSONValue, source: String) throws {
        func fail(_ field: String, _ why: String) -> PlanError { PlanError("\(source): \(field): \(why)") }
        func object(_ value: JSONValue?, _ path: String, known: [String]) throws -> JSONValue {
            guard let value else { throw fail(path, "missing") }
            guard let members = value.objectValue else { throw fail(path, "must be an object, found \(value.typeName)") }
            for (key, _) in members where !known.contains(key) {
                throw fail(path.isEmpty ? key : "\(path).\(key)", "unknown key (known: \(known.joined(separator: ", ")))")
            }
            return value
        }
        func string(_ value: JSONValue?, _ path: String) throws -> String {
            guard let value else { throw fail(path, "missing") }
            guard let text = value.stringValue else { throw fail(path, "must be a string, found \(value.typeName)") }
            return text
        }
        func int(_ value: JSONValue?, _ path: String, _ range: ClosedRange<Int>) throws -> Int {
            guard let value else { throw fail(path, "missing") }
            guard let i = value.intValue, range.contains(i) else { throw fail(path, "must be an integer in \(range.lowerBound)…\(range.upperBound), found \(value.serializedShort)") }
            return i
        }
        func number(_ value: JSONValue?, _ path: String) throws -> Double {
            guard let value else { throw fail(path, "missing") }
            guard let d = value.doubleValue, d.isFinite else { throw fail(path, "must be a finite number, found \(value.serializedShort)") }
            return d
        }
        func array(_ value: JSONValue?, _ path: String) throws -> [JSONValue] {
            guard let value else { throw fail(path, "missing") }
            guard let items = value.arrayValue else { throw fail(path, "must be an array, found \(value.typeName)") }
            return items
        }
        let top = try object(json, "", known: ["format", "version", "checkpoint", "calibration", "sampler", "step_groups", "defaults", "blocks", "layers"])
        guard top["format"]?.stringValue == Self.format else { throw fail("format", "expected \"\(Self.format)\"") }
        let version = try int(top["version"], "version", 0...Int.max)
        guard version == Self.version else { throw fail("version", "\(version) is not supported (this build reads \(Self.version))") }
        let checkpoint = try object(top["checkpoint"], "checkpoint", known: ["hash", "architecture"])
        checkpointHash = try string(checkpoint["hash"], "checkpoint.hash")
        if checkpoint["architecture"] == nil {
            architecture = "STDiT3"
        } else {
            architecture = try string(checkpoint["architecture"], "checkpoint.architecture")
            guard ["STDiT3", "STDiT"].contains(architecture) else { throw fail("checkpoint.architecture", "\"\(architecture)\" is not one of \"STDiT3\", \"STDiT\"") }
        }
        let c = try object(top["calibration"], "calibration", known: ["checkpoint_hash", "prompts", "sampler", "steps", "cfg_scale", "seeds"])
        let prompts = try array(c["prompts"], "calibration.prompts").enumerated().map { i, v in try string(v, "calibration.prompts[\(i)]") }
        guard !prompts.isEmpty else { throw fail("calibration.prompts", "must be a non-empty list of strings") }
        let seedValues = try array(c["seeds"], "calibration.seeds")
        guard !seedValues.isEmpty else { throw fail("calibration.seeds", "must be a non-empty list of non-negative integers") }
        let seeds = try seedValues.enumerated().map { i, v -> UInt64 in
            guard case .number(let literal) = v, let seed = UInt64(literal) else { throw fail("calibration.seeds[\(i)]", "must be a non-negative integer, found \(v.serializedShort)") }
            return seed
        }
        let sampler = try string(c["sampler"], "calibration.sampler")
        guard sampler == "rflow" else { throw fail("calibration.sampler", "\"\(sampler)\" is not supported: calibration and quantized sampling run rectified flow (\"rflow\")") }
        let steps = try int(c["steps"], "calibration.steps", 1...1000)
        let cfg = try number(c["cfg_scale"], "calibration.cfg_scale")
        let hashOfCalibration = try string(c["checkpoint_hash"], "calibration.checkpoint_hash")
        calibration = CalibrationCache.Key(checkpointHash: hashOfCalibration, prompts: prompts, sampler: sampler, steps: steps,
                                           cfgScale: Float(cfg), seeds: seeds)
        let samplerObject = try object(top["sampler"], "sampler", known: ["name", "steps", "cfg_scale", "t"])
        let t = try array(samplerObject["t"], "sampler.t").enumerated().map { i, v in try number(v, "sampler.t[\(i)]") }
        guard t.count == steps else { throw fail("sampler.t", "must list \(steps) timesteps (calibration.steps), found \(t.count)") }
        timesteps = t.map(Float.init)
        if samplerObject["name"] != nil {
            let name = try string(samplerObject["name"], "sampler.name")
            guard name == sampler else { throw fail("sampler.name", "\"\(name)\" differs from calibration.sampler \"\(sampler)\"") }
        }
        if samplerObject["steps"] != nil, try int(samplerObject["steps"], "sampler.steps", 1...1000) != steps {
            throw fail("sampler.steps", "differs from calibration.steps (\(steps))")
        }
        if samplerObject["cfg_scale"] != nil, Float(try number(samplerObject["cfg_scale"], "sampler.cfg_scale")) != Float(cfg) {
            throw fail("sampler.cfg_scale", "differs from calibration.cfg_scale (\(cfg))")
        }
        // Bounded by the step count, so no range arithmetic on user numbers can overflow.
        stepGroups = try array(top["step_groups"], "step_groups").enumerated().map { i, g in
            guard let items = g.arrayValue, items.count == 2, let first = items[0].intValue, let last = items[1].intValue,
                  first >= 0, first <= last, last < steps else {
                throw fail("step_groups[\(i)]", "must be [first, last] step indices with 0 ≤ first ≤ last < \(steps), found \(g.serializedShort)")
            }
            return first...last
        }
        defaults = LayerSettings()
        if let d = top["defaults"] { try Self.apply(d, to: &defaults, path: "\(source): defaults", alphaApplies: true) }
        guard let b = (top["blocks"] ?? .object([])).objectValue else { throw fail("blocks", "must be an object, found \(top["blocks"]!.typeName)") }
        guard let l = (top["layers"] ?? .object([])).objectValue else { throw fail("layers", "must be an object, found \(top["layers"]!.typeName)") }
        blocks = b
        layers = l
        do { try validateStructureOnly() } catch let e as PlanError { throw PlanError("\(source): \(e.description)") }
    }

    private func validateStructureOnly() throws {
        for (name, entry) in blocks { var s = defaults; try Self.apply(entry, to: &s, path: "blocks.\"\(name)\"", alphaApplies: true) }
        for (name, entry) in layers { var s = defaults; try Self.apply(entry, to: &s, path: "layers.\"\(name)\"", alphaApplies: true) }
        try validateGroupAlphas()
    }

    /// Every `group_alpha` lists one α per step group.
    private func validateGroupAlphas() throws {
        func check(_ entry: JSONValue?, _ path: String) throws {
            guard let list = entry?["group_alpha"]?.arrayValue, list.count != stepGroups.count else { return }
            throw PlanError("\(path).group_alpha: must list one α per step group (\(stepGroups.count)), found \(list.count)")
        }
        try check(Self.json(of: defaults), "defaults")
        for (name, entry) in blocks { try check(entry, "blocks.\"\(name)\"") }
        for (name, entry) in layers { try check(entry, "layers.\"\(name)\"") }
    }

    /// The plan over `newGroups`: every `group_alpha` (defaults, blocks, layers) remapped so each
    /// new group takes the α of the old group holding its first step (a split group's halves keep
    /// its α; a merged group keeps the earlier group's).
    public func regrouped(_ newGroups: [ClosedRange<Int>]) -> QuantizationPlan {
        let oldGroup = groupOfStep
        func remap(_ members: [(String, JSONValue)]) -> [(String, JSONValue)] {
            members.map { key, value in
                guard key == "group_alpha", let list = value.arrayValue, list.count == stepGroups.count else { return (key, value) }
                return (key, .array(newGroups.map { list[oldGroup[$0.lowerBound]] }))
            }
        }
        var next = self
        next.stepGroups = newGroups
        if let list = defaults.groupAlpha, list.count == stepGroups.count {
            next.defaults.groupAlpha = newGroups.map { list[oldGroup[$0.lowerBound]] }
        }
        next.blocks = blocks.map { ($0.0, .object(remap($0.1.objectValue ?? []))) }
        next.layers = layers.map { ($0.0, .object(remap($0.1.objectValue ?? []))) }
        return next
    }

    /// Applies a settings object (as in `defaults`) to `s`.
    public static func applySettings(_ entry: JSONValue, to s: inout LayerSettings, path: String) throws {
        try apply(entry, to: &s, path: path, alphaApplies: true)
    }

    /// Applies the members of one settings object; unknown keys and bad values name the field.
    static func apply(_ entry: JSONValue, to s: inout LayerSettings, path: String, alphaApplies: Bool) throws {
        guard let members = entry.objectValue else { throw PlanError("\(path): must be an object, found \(entry.typeName)") }
        func fail(_ key: String, _ why: String) -> PlanError { PlanError("\(path).\(key): \(why)") }
        func choice<T: RawRepresentable & CaseIterable>(_ key: String, _ value: JSONValue, _: T.Type) throws -> T where T.RawValue == String {
            guard let text = value.stringValue, let v = T(rawValue: text) else {
                throw fail(key, "must be one of \(T.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: ", ")), found \(value.stringValue.map { "\"\($0)\"" } ?? value.typeName)")
            }
            return v
        }
        for (key, value) in members {
            switch key {
            case "keep_fp":
                guard let b = value.boolValue else { throw fail(key, "must be true or false") }
                s.keepFloat = b
            case "weight_bits":
                guard let bits = value.intValue, (4...8).contains(bits) else { throw fail(key, "\(value.doubleValue.map { "\($0)" } ?? value.typeName) is outside 4…8") }
                s.weightBits = bits
            case "weight_granularity": s.weightGranularity = try choice(key, value, QuantizedWeights.Granularity.self)
            case "weight_clip": s.weightClip = try choice(key, value, WeightQuantizer.Clip.self)
            case "weight_symmetric":
                guard let b = value.boolValue else { throw fail(key, "must be true or false") }
                s.weightSymmetric = b
            case "activations": s.activations = try choice(key, value, LayerSettings.Activations.self)
            case "activation_granularity": s.activationGranularity = try choice(key, value, LayerSettings.ActivationGranularity.self)
            case "estimator": s.estimator = try choice(key, value, LayerSettings.Estimator.self)
            case "percentile":
                guard let p = value.doubleValue, p > 0, p <= 100 else { throw fail(key, "must be in (0, 100]") }
                s.percentile = p
            case "alpha":
                guard let a = value.doubleValue, a >= 0, a <= 1 else { throw fail(key, "\(value.doubleValue.map { "\($0)" } ?? value.typeName) is outside [0, 1]") }
                guard alphaApplies else { break }
                s.alpha = a
                // A more specific entry's one α replaces a wider entry's α per group.
                if !members.contains(where: { $0.0 == "group_alpha" }) { s.groupAlpha = nil }
            case "group_alpha":
                guard let list = value.arrayValue, !list.isEmpty else { throw fail(key, "must be a non-empty list of α in [0, 1], one per step group") }
                let alphas = try list.enumerated().map { i, v -> Double in
                    guard let a = v.doubleValue, a >= 0, a <= 1 else { throw fail("\(key)[\(i)]", "\(v.serializedShort) is outside [0, 1]") }
                    return a
                }
                if alphaApplies { s.groupAlpha = alphas }
            case "smoothing": s.smoothing = try choice(key, value, LayerSettings.Smoothing.self)
            case "shift":
                guard let b = value.boolValue else { throw fail(key, "must be true or false") }
                s.shift = b
            case "weight_rounding": s.weightRounding = try choice(key, value, LayerSettings.WeightRounding.self)
            case "attention_products": s.attentionProducts = try choice(key, value, LayerSettings.AttentionProducts.self)
            case "rotation": s.rotation = try choice(key, value, LayerSettings.Rotation.self)
            default:
                throw fail(key, "unknown setting (known: keep_fp, weight_bits, weight_granularity, weight_clip, weight_symmetric, weight_rounding, activations, activation_granularity, estimator, percentile, alpha, group_alpha, smoothing, shift, attention_products, rotation)")
            }
        }
    }
}
