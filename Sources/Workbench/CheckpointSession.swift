import Quantization
import Tensors
import VideoDiT

/// An open checkpoint: the mapped file, its layer catalog and the statistics computed so far.
/// A reference type because it owns the mapping; statistics are computed on demand, off the main
/// thread, and cached, so a multi-GB checkpoint opens in the time it takes to read its header.
public final class CheckpointSession: @unchecked Sendable {
    public let file: SafetensorsFile
    public let catalog: LayerCatalog

    public init(path: String) throws {
        file = try SafetensorsFile(path: path)
        catalog = try LayerCatalog(file: file)
    }

    public var path: String { file.path }

    /// The file name without folders.
    public var displayName: String {
        path.split(separator: "/").last.map(String.init) ?? path
    }

    /// Reads the layer's weight (converting f16/bf16 to f32) and computes its range statistics.
    /// Runs for tens of milliseconds on an XL layer: call it from a background job.
    public func weightStatistics(for layer: LinearLayer) throws -> WeightRangeStatistics {
        let weight = try file.view(layer.weightName).toFloat32()
        return WeightRangeStatistics(weight: weight.scalars, outputs: layer.outputs, inputs: layer.inputs)
    }
}
