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
        let file = try SafetensorsFile(path: path)
        self.file = file
        if let format = file.metadata.first(where: { $0.key == "format" })?.value, format.hasPrefix("stsq-quantized/") {
            let value = { (key: String) in file.metadata.first { $0.key == key }?.value ?? "?" }
            throw QuantizedModelOpened(file: path, format: format, checkpointHash: value("checkpoint_hash"), calibration: value("calibration"))
        }
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
        let view = try file.view(layer.weightName)
        // Prefetching visits every layer: read once, the pages need not stay resident.
        defer { file.releasePages(of: view.entry) }
        let weight = view.toFloat32()
        return WeightRangeStatistics(weight: weight.scalars, outputs: layer.outputs, inputs: layer.inputs)
    }
}

/// The file is a model `stsq-tui quantize` wrote, not a floating-point checkpoint: the workbench
/// inspects the checkpoint it came from (`checkpointHash`, as in its `plan.json`).
public struct QuantizedModelOpened: Error, CustomStringConvertible {
    public let file: String
    public let format: String
    public let checkpointHash: String
    public let calibration: String

    public var description: String {
        "\(file) is a quantized model written by `stsq-tui quantize` (\(format); checkpoint hash \(checkpointHash), calibration \(calibration)). "
            + "The workbench opens the floating-point checkpoint it came from; the plan beside it (plan.json) rebuilds it: "
            + "stsq-tui quantize CHECKPOINT --plan plan.json"
    }
}
