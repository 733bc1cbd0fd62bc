import Tensors

/// One model evaluation's inputs, named and shaped as OpenSora's `forward` takes them.
public struct ModelInputs: Sendable {
    /// `[B, Cin, T, H, W]` latent (or pixels for pixel-space models).
    public var x: Tensor
    /// `[B]` raw model-time values (v1.2 RF: (0, 1000]; v1.0: integer steps).
    public var timestep: [Float]
    /// `[B, 1, L, caption_channels]` caption embeddings.
    public var y: Tensor
    /// `[n, L]` token mask (n = B, or B/2 under CFG batching: tiled); nil means all tokens valid.
    public var mask: [[Int]]?
    /// v1.2: `[n]` frames per second, tiled to B.
    public var fps: [Float]
    /// v1.2: pixel height and width; only the first sample's are used (as OpenSora does).
    public var height: [Float]
    public var width: [Float]

    public init(x: Tensor, timestep: [Float], y: Tensor, mask: [[Int]]?, fps: [Float], height: [Float], width: [Float]) {
        self.x = x
        self.timestep = timestep
        self.y = y
        self.mask = mask
        self.fps = fps
        self.height = height
        self.width = width
    }

    /// Reads `x`, `timestep`, `y`, `mask`, `fps`, `height`, `width` from a safetensors file.
    public init(file: SafetensorsFile) throws {
        func need(_ name: String) throws -> TensorView {
            guard file[name] != nil else {
                throw ModelLoadError("\(file.path): input tensor '\(name)' is missing (inputs: x, timestep, y, mask, fps, height, width)")
            }
            return try file.view(name)
        }
        x = try need("x").toFloat32()
        timestep = try need("timestep").toFloat32().scalars
        y = try need("y").toFloat32()
        if file["mask"] != nil {
            let view = try file.view("mask")
            guard view.shape.count == 2 else { throw ModelLoadError("\(file.path): 'mask' must be [n, L], found \(view.shape)") }
            let flat = try view.toInts()
            mask = (0..<view.shape[0]).map { Array(flat[($0 * view.shape[1])..<(($0 + 1) * view.shape[1])]) }
        } else {
            mask = nil
        }
        fps = file["fps"] != nil ? try file.tensor("fps").scalars : [24]
        height = file["height"] != nil ? try file.tensor("height").scalars : []
        width = file["width"] != nil ? try file.tensor("width").scalars : []
    }
}
