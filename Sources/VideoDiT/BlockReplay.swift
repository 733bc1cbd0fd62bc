import Tensors

/// One block's input as an STDiT3 forward pass produced it: everything `STDiT3.replay` needs to
/// run that block again, alone, under another executor (a candidate quantization), so a search can
/// score a block by its output on the FP trajectory without running the rest of the model.
public struct BlockInput: @unchecked Sendable {
    /// Index of the block in forward order (spatial 0, temporal 0, spatial 1, …).
    public let index: Int
    /// The block's state-dict prefix, e.g. `temporal_blocks.2`.
    public let name: String
    /// Sampler step (nil outside a sampler).
    public let step: Int?
    /// `[B, N, C]` tokens entering the block.
    public let hidden: [Float]
    /// Per sample, the block's modulation rows `[6, C]` before any SmoothQuant fold.
    let modulation: [[Float]]
    let captions: PackedCaptions
    let geometry: Geometry
}

/// An executor that also wants every block's input as the forward pass reaches it (before the
/// block runs). The forward pass asks the executor it was given, as it asks for folds.
public protocol BlockInputObserver: LinearExecutor {
    func observe(_ input: BlockInput)
}

/// The fp32 path, keeping every block input it sees.
public final class BlockInputRecorder: BlockInputObserver {
    public private(set) var inputs: [BlockInput] = []

    public init() {}

    public func observe(_ input: BlockInput) { inputs.append(input) }

    public func run(_ layer: BlockLinear, step: Int?, input: UnsafePointer<Float>, rows: Int,
                    output: UnsafeMutablePointer<Float>) throws {
        try layer.float32.forward(input, rows: rows, into: output)
    }
}

extension STDiT3 {
    /// Block state-dict prefixes in forward order.
    public var blockNames: [String] { weights.blocks.map(\.name) }

    /// Runs the recorded block again on its recorded input under `executor` (its folds included)
    /// at the recorded step; returns the block's output `[B, N, C]`. The same executor as the
    /// recording gives the same output as the forward pass did, bit for bit.
    public func replay(_ input: BlockInput, executor: LinearExecutor) throws -> [Float] {
        guard weights.blocks.indices.contains(input.index), weights.blocks[input.index].name == input.name else {
            throw ModelLoadError("block input of \(input.name) does not belong to this model")
        }
        var h = input.hidden
        try runBlock(weights.blocks[input.index], &h, modulation: input.modulation, captions: input.captions, g: input.geometry,
                     executor: executor, step: input.step)
        return h
    }
}
