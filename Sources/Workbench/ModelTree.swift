import Tensors
import VideoDiT

/// One visible line of the model tree: a section, a block or kept group, a linear layer or
/// another tensor. `id` is stable across expansions (used for the expanded set and selection).
public struct TreeRow: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        case section(title: String)
        case block(TransformerBlock.Kind)
        case keptGroup
        case linear(LinearLayer)
        case tensor(SafetensorsEntry)
    }

    public let id: String
    public let depth: Int
    public let label: String
    public let kind: Kind
    public let isExpandable: Bool
    public let isExpanded: Bool
    /// Parameter count of everything under the row.
    public let parameters: Int

    public var linear: LinearLayer? {
        if case .linear(let l) = kind { return l }
        return nil
    }
}

public enum ModelTree {
    public static let quantizedSection = "§quantized"
    public static let keptSection = "§kept"

    /// Rows visible with the given expanded ids, in display order.
    public static func rows(_ catalog: LayerCatalog, expanded: Set<String>) -> [TreeRow] {
        var rows: [TreeRow] = []
        let quantizedParameters = catalog.blocks.reduce(0) { $0 + $1.linears.reduce(0) { $0 + $1.parameterCount } }
        let quantizedOpen = expanded.contains(quantizedSection)
        rows.append(TreeRow(id: quantizedSection, depth: 0,
                            label: "Blocks · \(catalog.quantizableLinears.count) quantized linears",
                            kind: .section(title: "blocks"), isExpandable: true, isExpanded: quantizedOpen,
                            parameters: quantizedParameters))
        if quantizedOpen {
            for block in catalog.blocks {
                let open = expanded.contains(block.name)
                rows.append(TreeRow(id: block.name, depth: 1, label: block.name, kind: .block(block.kind),
                                    isExpandable: !block.linears.isEmpty, isExpanded: open,
                                    parameters: block.linears.reduce(0) { $0 + $1.parameterCount }))
                if open {
                    for layer in block.linears {
                        rows.append(TreeRow(id: layer.name, depth: 2, label: layer.role?.rawValue ?? layer.name,
                                            kind: .linear(layer), isExpandable: false, isExpanded: false,
                                            parameters: layer.parameterCount))
                    }
                }
            }
        }
        let keptOpen = expanded.contains(keptSection)
        rows.append(TreeRow(id: keptSection, depth: 0, label: "Kept in floating point",
                            kind: .section(title: "kept"), isExpandable: true, isExpanded: keptOpen,
                            parameters: catalog.kept.reduce(0) { $0 + $1.parameterCount }))
        if keptOpen {
            for group in catalog.kept {
                let id = "§kept." + group.name
                let open = expanded.contains(id)
                rows.append(TreeRow(id: id, depth: 1, label: group.name, kind: .keptGroup, isExpandable: true,
                                    isExpanded: open, parameters: group.parameterCount))
                if open {
                    for layer in group.linears {
                        rows.append(TreeRow(id: layer.name, depth: 2, label: String(layer.name.dropFirst(group.name.count + 1)),
                                            kind: .linear(layer), isExpandable: false, isExpanded: false,
                                            parameters: layer.parameterCount))
                    }
                    for tensor in group.otherTensors {
                        let label = tensor.name == group.name ? tensor.name : String(tensor.name.dropFirst(group.name.count + 1))
                        rows.append(TreeRow(id: tensor.name, depth: 2, label: label, kind: .tensor(tensor),
                                            isExpandable: false, isExpanded: false, parameters: tensor.elementCount))
                    }
                }
            }
        }
        return rows
    }

    /// The id of the row that contains `id` (its block or section), or nil at the top.
    public static func parent(of index: Int, in rows: [TreeRow]) -> Int? {
        let depth = rows[index].depth
        guard depth > 0 else { return nil }
        var i = index - 1
        while i >= 0 {
            if rows[i].depth < depth { return i }
            i -= 1
        }
        return nil
    }
}

extension LayerCatalog {
    /// Every linear the tree lists, in its order: the blocks' quantizable linears, then the kept ones.
    public var layersInTreeOrder: [LinearLayer] { quantizableLinears + kept.flatMap(\.linears) }
}
