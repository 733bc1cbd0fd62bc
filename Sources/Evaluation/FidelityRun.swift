import Quantization
import Tensors
import VideoDiT

/// Samples every prompt of a list with each seed (rectified flow, CFG, the checkpoint's own text
/// encoder) and judges the videos against their prompts: the demo model's quality figure.
public struct FidelityRun {
    public struct Result: Sendable {
        public var prompts: Int
        public var seeds: [UInt64]
        /// Mean over prompts × seeds.
        public var mean: PromptFidelity.Score
        /// (prompt, seed, score, what the judge saw) per video.
        public var videos: [(prompt: String, seed: UInt64, score: PromptFidelity.Score, judged: SceneWorld.Attributes)]
        public var seconds: Double
    }

    public let model: STDiT3
    public let encoder: WordTextEncoder
    /// The sampler schedule, built as `sample` builds it (`RectifiedFlowSchedule.forSampling`).
    public var schedule: RectifiedFlowSchedule
    public var cfgScale: Float
    /// Frames per second for the fps embedder.
    public var fps: Float
    /// Model-input size T, H, W (pixels: the judge reads the frames).
    public var size: [Int]

    public var steps: Int { schedule.timesteps.count }

    public init(model: STDiT3, encoder: WordTextEncoder, schedule: RectifiedFlowSchedule, cfgScale: Float, size: [Int], fps: Float = 24) {
        self.model = model
        self.encoder = encoder
        self.schedule = schedule
        self.cfgScale = cfgScale
        self.fps = fps
        self.size = size
    }

    /// One video per (prompt, seed). The noise of a video depends on its seed only, so batching
    /// (up to `batch` prompts per sampler run) changes a video at most by float rounding.
    public func run(prompts: [String], seeds: [UInt64], batch: Int = 16, executor: LinearExecutor = Float32Executor(),
                    progress: (Int, Int) -> Void = { _, _ in }) throws -> Result {
        let sampler = RectifiedFlowSampler(model: model, cfgScale: cfgScale, fps: fps)
        var videos: [(prompt: String, seed: UInt64, score: PromptFidelity.Score, judged: SceneWorld.Attributes)] = []
        let start = monotonicSeconds()
        let total = prompts.count * seeds.count
        let perVideo = model.config.inChannels * size.reduce(1, *)
        for seed in seeds {
            var generator = NoiseGenerator(seed: seed)
            let noise = generator.gaussian(shape: [model.config.inChannels] + size).scalars
            for chunkStart in stride(from: 0, to: prompts.count, by: max(batch, 1)) {
                let chunk = Array(prompts[chunkStart..<min(chunkStart + batch, prompts.count)])
                let latents = Tensor(shape: [chunk.count, model.config.inChannels] + size,
                                     scalars: Array(repeating: noise, count: chunk.count).flatMap { $0 })
                let result = try sampler.sample(noise: latents, condition: try encoder.encode(chunk), schedule: schedule,
                                                height: Float(size[1]), width: Float(size[2]), executor: executor)
                for (i, prompt) in chunk.enumerated() {
                    let frames = Tensor(shape: [model.config.inChannels] + size,
                                        scalars: Array(result.scalars[(i * perVideo)..<((i + 1) * perVideo)]))
                    guard let score = PromptFidelity.score(frames, prompt: prompt) else {
                        throw ModelLoadError("not a scene-world prompt: \"\(prompt)\"")
                    }
                    videos.append((prompt, seed, score, PromptFidelity.judge(frames)))
                }
                progress(videos.count, total)
            }
        }
        func mean(_ key: KeyPath<PromptFidelity.Score, Double>) -> Double {
            videos.map { $0.score[keyPath: key] }.reduce(0, +) / Double(max(videos.count, 1))
        }
        return Result(prompts: prompts.count, seeds: seeds,
                      mean: PromptFidelity.Score(colour: mean(\.colour), shape: mean(\.shape), motion: mean(\.motion),
                                                 background: mean(\.background)),
                      videos: videos, seconds: monotonicSeconds() - start)
    }
}
