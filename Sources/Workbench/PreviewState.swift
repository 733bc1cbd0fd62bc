import Evaluation
import Tensors

/// One sampled video of the preview: pixels `[3, T, H, W]` in [-1, 1] (the demo models are
/// pixel-space), what the scene judge saw in it, and the latent after every sampler step.
public struct PreviewVideo: Sendable {
    /// The prompt it was sampled for (a result for a prompt no longer shown is dropped).
    public let prompt: String
    public let frames: Int
    public let height: Int
    public let width: Int
    public let pixels: [Float]
    public let judged: SceneWorld.Attributes
    public let fidelity: PromptFidelity.Score?
    let stepLatents: [[Float]]

    public init(video: Tensor, prompt: String, stepLatents: [[Float]]) {
        self.prompt = prompt
        frames = video.shape[1]
        height = video.shape[2]
        width = video.shape[3]
        pixels = video.scalars
        judged = PromptFidelity.judge(video)
        fidelity = PromptFidelity.score(video, prompt: prompt)
        self.stepLatents = stepLatents
    }

    var tensor: Tensor { Tensor(shape: [3, frames, height, width], scalars: pixels) }

    /// RGB of pixel (x, y) of frame t, each in [0, 1].
    public func rgb(frame t: Int, x: Int, y: Int) -> (Float, Float, Float) {
        func channel(_ c: Int) -> Float { (pixels[((c * frames + t) * height + y) * width + x] + 1) / 2 }
        return (min(max(channel(0), 0), 1), min(max(channel(1), 0), 1), min(max(channel(2), 0), 1))
    }
}

/// The quantized video against the FP one: video metrics and, per sampler step, the relative
/// RMS difference of the latents (the step-error curve).
public struct PreviewMetrics: Sendable, Equatable {
    public let psnr: Double
    public let ssim: Double
    public let flickerRatio: Double
    public let stepError: [Double]

    init(quantized: PreviewVideo, reference: PreviewVideo) {
        psnr = VideoMetrics.psnr(quantized.tensor, reference: reference.tensor)
        ssim = VideoMetrics.ssim(quantized.tensor, reference: reference.tensor)
        flickerRatio = VideoMetrics.flickerRatio(quantized.tensor, reference: reference.tensor)
        stepError = zip(quantized.stepLatents, reference.stepLatents).map { q, r in
            var difference = 0.0, energy = 0.0
            for i in r.indices {
                let d = Double(q[i]) - Double(r[i])
                difference += d * d
                energy += Double(r[i]) * Double(r[i])
            }
            return energy > 0 ? (difference / energy).squareRoot() : 0
        }
    }
}

/// The FP and quantized videos of one prompt side by side on the plan screen, animated.
public struct PreviewState: Sendable {
    public var prompt: String
    /// The prompts `P` cycles through (the bundled eval prompts); the first is `prompt`.
    public var prompts: [String]
    public var seed: UInt64 = 0
    public var reference: PreviewVideo?
    public var quantized: PreviewVideo?
    /// The plan generation `quantized` was sampled with.
    public var quantizedGeneration: Int?
    public var metrics: PreviewMetrics?
    /// From the edit to the quantized video of its plan on screen, in milliseconds.
    public var editToPreviewMilliseconds: Double?
    public var frame = 0
    public var playing = true
    public var failure: String?
    /// A prompt being typed (`i`); Enter samples both videos for it.
    public var promptEntry: String?

    public init(prompt: String, prompts: [String] = []) {
        self.prompt = prompt
        self.prompts = prompts.isEmpty ? [prompt] : prompts
    }
}
