import Foundation
import Tensors

/// `stsq-tui bench forward`: times one model evaluation of a given size with random weights and
/// reports milliseconds, achieved GFLOP/s and the share of time spent in the block linears.
public enum ForwardBenchmark {
    public struct Case: Sendable {
        public let name: String
        public let config: ModelConfig
        /// Model input `[B, Cin, T, H, W]`; B = 2 is one CFG pair.
        public let inputShape: [Int]
        public let pixelHeight: Float, pixelWidth: Float
    }

    public struct Result: Sendable {
        public let name: String
        public let medianMilliseconds: Double
        public let gflops: Double
        public let linearShare: Double
        public let runs: Int
    }

    /// (a) demo-size STDiT3 (hidden 192, depth 4, 8×32×32 RGB, patch (1,4,4)) and (b) the XL width
    /// (hidden 1152, 16 heads, depth 2, latent 4×4×16×16, patch (1,2,2)), both as a CFG batch of 2.
    public static func standardCases() throws -> [Case] {
        let demo = try ModelConfig(json: try JSONValue.parse("""
            {"model_type":"STDiT3","hidden_size":192,"depth":4,"num_heads":3,"patch_size":[1,4,4],"in_channels":3,
             "pred_sigma":false,"caption_channels":32,"model_max_length":12,"mlp_ratio":4.0,"qk_norm":true,"input_sq_size":32}
            """), source: "demo-size case")
        let xl = try ModelConfig(json: try JSONValue.parse("""
            {"model_type":"STDiT3","hidden_size":1152,"depth":2,"num_heads":16,"patch_size":[1,2,2],"in_channels":4,
             "pred_sigma":true,"caption_channels":4096,"model_max_length":300,"mlp_ratio":4.0,"qk_norm":true,"input_sq_size":512}
            """), source: "XL-width case")
        return [Case(name: "demo-size (C=192, depth 4, 2×3×8×32×32)", config: demo, inputShape: [2, 3, 8, 32, 32],
                     pixelHeight: 32, pixelWidth: 32),
                Case(name: "XL width (C=1152, depth 2, 2×4×4×16×16)", config: xl, inputShape: [2, 4, 4, 16, 16],
                     pixelHeight: 128, pixelWidth: 128)]
    }

    /// A random-weight checkpoint with the config's exact state dict, written to `path`.
    public static func writeRandomCheckpoint(_ config: ModelConfig, to path: String, seed: UInt64 = 1) throws {
        var generator = NoiseGenerator(seed: seed)
        var writer = SafetensorsWriter()
        writer.metadata = [("note", "random weights for benchmarking")]
        for (name, shape) in StateDictSchema.stdit3(config) {
            let fanIn = shape.count >= 2 ? shape.dropFirst().reduce(1, *) : shape[0]
            let scale: Float = name.hasSuffix("norm.weight") ? 0 : 1 / Float(fanIn).squareRoot()
            var t = generator.gaussian(shape: shape)
            for i in t.scalars.indices { t.scalars[i] = name.hasSuffix("norm.weight") ? 1 : t.scalars[i] * scale }
            writer.add(name, t)
        }
        try writer.write(to: path)
    }

    /// FLOPs (2 per multiply-add) of the block linears and attention products of one STDiT3
    /// forward; embeddings and the final layer are negligible and left out.
    static func flops(_ c: ModelConfig, inputShape s: [Int], captionTokens L: Int) -> Double {
        let B = Double(s[0])
        let Tn = Double((s[2] + c.patchSize[0] - 1) / c.patchSize[0])
        let S = Double(((s[3] + c.patchSize[1] - 1) / c.patchSize[1]) * ((s[4] + c.patchSize[2] - 1) / c.patchSize[2]))
        let (C, M, N, Lt) = (Double(c.hiddenSize), Double(c.mlpHidden), Tn * S, Double(L))
        // Per block, spatial or temporal: the seven linears, and cross-attention's QKᵀ and P·V.
        let perBlock = B * N * (6 * C * C + 2 * C * M) + B * Lt * 2 * C * C + B * 2 * N * Lt * C
        let spatialAttention = B * Tn * 2 * S * S * C
        let temporalAttention = B * S * 2 * Tn * Tn * C
        return 2 * Double(c.depth) * (2 * perBlock + spatialAttention + temporalAttention)
    }

    public static func run(_ benchCase: Case, minSeconds: Double = 2) throws -> Result {
        let path = NSTemporaryDirectory() + "stsq-bench-\(getpid()).safetensors"
        defer { unlink(path) }
        try writeRandomCheckpoint(benchCase.config, to: path)
        let model = try STDiT3(file: try SafetensorsFile(path: path), config: benchCase.config)
        var generator = NoiseGenerator(seed: 2)
        let L = benchCase.config.modelMaxLength, cc = benchCase.config.captionChannels
        let inputs = ModelInputs(x: generator.gaussian(shape: benchCase.inputShape),
                                 timestep: [Float](repeating: 500, count: benchCase.inputShape[0]),
                                 y: generator.gaussian(shape: [benchCase.inputShape[0], 1, L, cc]),
                                 mask: [Array(repeating: 1, count: L)], fps: [24],
                                 height: [benchCase.pixelHeight], width: [benchCase.pixelWidth])
        let timer = TimingExecutor()
        let samples = try TimingSamples.measure(warmup: 2, minRuns: 5, maxRuns: 50, minSeconds: minSeconds) {
            timer.reset()
            _ = try model.forward(inputs, executor: timer)
        }
        let total = flops(benchCase.config, inputShape: benchCase.inputShape, captionTokens: L)
        return Result(name: benchCase.name, medianMilliseconds: samples.median * 1e3, gflops: total / samples.median / 1e9,
                      linearShare: timer.seconds / samples.seconds.last!, runs: samples.seconds.count)
    }
}

/// The fp32 executor with a stopwatch around every block linear.
final class TimingExecutor: LinearExecutor {
    private(set) var seconds = 0.0
    func reset() { seconds = 0 }
    func run(_ layer: BlockLinear, step: Int?, input: UnsafePointer<Float>, rows: Int, output: UnsafeMutablePointer<Float>) throws {
        let t0 = monotonicSeconds()
        try layer.float32.forward(input, rows: rows, into: output)
        seconds += monotonicSeconds() - t0
    }
}
