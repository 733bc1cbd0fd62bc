import Tensors
import VideoDiT

/// Calibration (QUANTIZATION.md, "Calibration statistics"): FP rectified-flow sampling over the
/// calibration prompts — same sampler, steps, CFG and size as deployment — with the recording
/// executor on the seam, so every block linear's inputs are summarised per sampler step. The
/// conditional and unconditional halves of the CFG batch share statistics (one NPU batch).
public struct Calibrator {
    public let model: STDiT3
    /// The sampler schedule, built as deployment builds it (`RectifiedFlowSchedule.forSampling`).
    public var schedule: RectifiedFlowSchedule
    public var cfgScale: Float
    /// Frames per second for the fps embedder.
    public var fps: Float
    /// Model-input size T, H, W.
    public var size: [Int]
    public var batch: Int = 8
    public var reservoirRows: Int = 32

    public var steps: Int { schedule.timesteps.count }

    public init(model: STDiT3, schedule: RectifiedFlowSchedule, cfgScale: Float, size: [Int], fps: Float = 24) {
        self.model = model
        self.schedule = schedule
        self.cfgScale = cfgScale
        self.fps = fps
        self.size = size
    }

    /// With an explicit rectified-flow transform ratio, or nil for none.
    public init(model: STDiT3, steps: Int, cfgScale: Float, size: [Int], transformRatio: Float?) {
        self.init(model: model, schedule: RectifiedFlowSchedule(steps: steps, ratio: transformRatio), cfgScale: cfgScale, size: size)
    }

    /// `conditions`: one `TextCondition` per prompt batch entry source (each of count 1).
    /// `progress` follows every sampler step; when `shouldStop()` turns true the run throws
    /// `CalibrationCancelled` after the current step.
    public func run(conditions: [TextCondition], seeds: [UInt64],
                    progress: (_ done: Int, _ total: Int) -> Void = { _, _ in },
                    shouldStop: () -> Bool = { false }) throws -> [String: [Int: LayerStepStatistics]] {
        let observer = CalibrationObserver(reservoirRows: reservoirRows)
        let sampler = RectifiedFlowSampler(model: model, cfgScale: cfgScale, fps: fps)
        let pixelScale: Float = model.config.inChannels == 3 ? 1 : 8
        let total = seeds.count * ((conditions.count + batch - 1) / batch) * steps
        var done = 0
        for seed in seeds {
            var generator = NoiseGenerator(seed: seed)
            for start in stride(from: 0, to: conditions.count, by: batch) {
                let chunk = Array(conditions[start..<min(start + batch, conditions.count)])
                let noise = generator.gaussian(shape: [chunk.count, model.config.inChannels] + size)
                let joined = TextCondition(embeddings: Tensor(shape: [chunk.count] + Array(chunk[0].embeddings.shape.dropFirst()),
                                                              scalars: chunk.flatMap(\.embeddings.scalars)),
                                           mask: chunk.flatMap(\.mask))
                _ = try sampler.sample(noise: noise, condition: joined, schedule: schedule,
                                       height: Float(size[1]) * pixelScale, width: Float(size[2]) * pixelScale,
                                       executor: observer) { _, _ in
                    done += 1
                    progress(done, total)
                    if shouldStop() { throw CalibrationCancelled() }
                }
            }
        }
        return observer.statistics
    }
}

/// A calibration stopped on request before it finished; nothing was recorded.
public struct CalibrationCancelled: Error, CustomStringConvertible {
    public init() {}
    public var description: String { "calibration cancelled" }
}
