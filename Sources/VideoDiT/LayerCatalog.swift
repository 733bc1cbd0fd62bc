import Tensors

/// What a linear layer computes in its block, which decides where SmoothQuant's `1/s` can fold
/// (QUANTIZATION.md, "Where 1/s goes").
public enum LinearRole: String, Sendable, Hashable, CaseIterable {
    case selfAttentionQKV = "attn.qkv"
    case selfAttentionProjection = "attn.proj"
    case crossAttentionQuery = "cross_attn.q_linear"
    case crossAttentionKeyValue = "cross_attn.kv_linear"
    case crossAttentionProjection = "cross_attn.proj"
    case mlpUp = "mlp.fc1"
    case mlpDown = "mlp.fc2"
    case temporalAttentionQKV = "attn_temp.qkv"
    case temporalAttentionProjection = "attn_temp.proj"

    /// Block-relative order in which the forward pass runs them.
    static let forwardOrder: [LinearRole] = [
        .selfAttentionQKV, .selfAttentionProjection, .temporalAttentionQKV, .temporalAttentionProjection,
        .crossAttentionQuery, .crossAttentionKeyValue, .crossAttentionProjection, .mlpUp, .mlpDown,
    ]
}

/// One linear layer of the checkpoint: `weight` `[outputs, inputs]` (+ optional bias), named by
/// its state-dict prefix (`spatial_blocks.3.attn.qkv`), the name used everywhere in the tool.
public struct LinearLayer: Sendable, Hashable {
    public let name: String
    public let outputs: Int
    public let inputs: Int
    public let dtype: DType
    public let hasBias: Bool
    /// The block's role for block linears; nil for the FP-kept layers outside blocks.
    public let role: LinearRole?

    public var weightName: String { name + ".weight" }
    public var biasName: String { name + ".bias" }
    public var parameterCount: Int { outputs * inputs + (hasBias ? outputs : 0) }
}

/// A transformer block and its quantizable linears, in forward order.
public struct TransformerBlock: Sendable, Hashable {
    public enum Kind: String, Sendable { case spatial, temporal, combined }
    /// State-dict prefix without the trailing dot, e.g. `temporal_blocks.2` or `blocks.12`.
    public let name: String
    public let kind: Kind
    public let index: Int
    public let linears: [LinearLayer]
}

/// A group of tensors kept in floating point (embedders, `t_block`, final layer, buffers).
public struct KeptGroup: Sendable, Hashable {
    public let name: String
    public let linears: [LinearLayer]
    /// Other tensors of the group (tables, norms, conv weights, buffers), with their shapes.
    public let otherTensors: [SafetensorsEntry]
    public var parameterCount: Int {
        linears.reduce(0) { $0 + $1.parameterCount } + otherTensors.reduce(0) { $0 + $1.elementCount }
    }
}

/// The layer structure of a checkpoint, read from its state-dict names and shapes alone (no
/// config needed), so the workbench can browse a model before the engine can run it.
public struct LayerCatalog: Sendable {
    public let architecture: Architecture
    /// Blocks in forward order: for STDiT3, spatial N then temporal N for each N.
    public let blocks: [TransformerBlock]
    public let kept: [KeptGroup]
    public let totalParameters: Int
    public let totalBytes: Int

    public var quantizableLinears: [LinearLayer] { blocks.flatMap(\.linears) }

    public func linear(named name: String) -> LinearLayer? {
        for block in blocks { if let l = block.linears.first(where: { $0.name == name }) { return l } }
        for group in kept { if let l = group.linears.first(where: { $0.name == name }) { return l } }
        return nil
    }

    public init(file: SafetensorsFile) throws {
        guard let architecture = Architecture.detect(names: file.names) else {
            throw CatalogError(file: file.path, message: "no transformer blocks found: expected 'spatial_blocks.N.' / 'temporal_blocks.N.' (STDiT3) or 'blocks.N.' (STDiT) tensors")
        }
        self.architecture = architecture
        totalParameters = file.entries.reduce(0) { $0 + $1.elementCount }
        totalBytes = file.entries.reduce(0) { $0 + $1.byteCount }

        func linear(_ prefix: String, role: LinearRole?) throws -> LinearLayer? {
            guard let weight = file[prefix + ".weight"] else { return nil }
            guard weight.shape.count == 2 else {
                throw CatalogError(file: file.path, message: "tensor '\(prefix).weight' has shape \(weight.shape), a linear weight is [out, in]")
            }
            let bias = file[prefix + ".bias"]
            if let bias, bias.shape != [weight.shape[0]] {
                throw CatalogError(file: file.path, message: "tensor '\(prefix).bias' has shape \(bias.shape), expected [\(weight.shape[0])]")
            }
            return LinearLayer(name: prefix, outputs: weight.shape[0], inputs: weight.shape[1], dtype: weight.dtype,
                               hasBias: bias != nil, role: role)
        }

        // Block prefixes and indices present in the file.
        let blockKinds: [(String, TransformerBlock.Kind)] = architecture == .stdit3
            ? [("spatial_blocks", .spatial), ("temporal_blocks", .temporal)]
            : [("blocks", .combined)]
        var indices: [String: Set<Int>] = [:]
        for name in file.names {
            for (prefix, _) in blockKinds where name.hasPrefix(prefix + ".") {
                let rest = name.dropFirst(prefix.count + 1)
                if let dot = rest.firstIndex(of: "."), let i = Int(rest[..<dot]) { indices[prefix, default: []].insert(i) }
            }
        }
        let depth = (indices.values.compactMap { $0.max() }.max() ?? -1) + 1
        var blocks: [TransformerBlock] = []
        for i in 0..<depth {
            for (prefix, kind) in blockKinds where indices[prefix]?.contains(i) == true {
                let blockName = "\(prefix).\(i)"
                var linears: [LinearLayer] = []
                for role in LinearRole.forwardOrder {
                    if let l = try linear("\(blockName).\(role.rawValue)", role: role) { linears.append(l) }
                }
                blocks.append(TransformerBlock(name: blockName, kind: kind, index: i, linears: linears))
            }
        }
        self.blocks = blocks

        // Everything outside the blocks is kept in floating point by default (QUANTIZATION.md).
        let blockPrefixes = blockKinds.map { $0.0 + "." }
        var groups: [String: (linears: [LinearLayer], other: [SafetensorsEntry])] = [:]
        var order: [String] = []
        var linearNames = Set<String>()
        for entry in file.entries where !blockPrefixes.contains(where: { entry.name.hasPrefix($0) }) {
            let group = String(entry.name.prefix { $0 != "." })
            if groups[group] == nil { order.append(group); groups[group] = ([], []) }
            if entry.name.hasSuffix(".weight"), entry.shape.count == 2 {
                let prefix = String(entry.name.dropLast(".weight".count))
                if let l = try linear(prefix, role: nil), linearNames.insert(prefix).inserted {
                    groups[group]!.linears.append(l)
                    continue
                }
            }
            if entry.name.hasSuffix(".bias"), linearNames.contains(String(entry.name.dropLast(".bias".count))) { continue }
            if entry.name.hasSuffix(".bias"), file[String(entry.name.dropLast(".bias".count)) + ".weight"]?.shape.count == 2 { continue }
            groups[group]!.other.append(entry)
        }
        kept = order.map { KeptGroup(name: $0, linears: groups[$0]!.linears, otherTensors: groups[$0]!.other) }
    }
}

/// A checkpoint whose names do not describe an OpenSora transformer.
public struct CatalogError: Error, CustomStringConvertible {
    public let file: String
    public let message: String
    public var description: String { "\(file): \(message)" }
}
