import ArgumentParser
import DemoModel
import Foundation
import Tensors
import VideoDiT

/// `stsq-tui sample CHECKPOINT (--prompt TEXT… | --embeddings FILE | --null-caption) …`.
struct Sample: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Sample videos: rectified flow (STDiT3) or IDDPM/DDIM (STDiT), with classifier-free guidance.",
        discussion: """
            Defaults come from the checkpoint's 'sampler' metadata when it has one (the demo model does), \
            else OpenSora's: 30 RF steps with the timestep transform, CFG 7.
            """)

    @Argument(help: "An STDiT3 or STDiT .safetensors checkpoint; default: the bundled demo model.")
    var checkpointArgument: String?

    private var checkpoint: String { checkpointArgument ?? DemoModel.checkpointPath ?? "demo model (missing from this build)" }

    @Option(name: .customLong("prompt"), help: "A prompt (repeatable; needs a checkpoint with its own text encoder).")
    var prompts: [String] = []

    @Option(help: "Precomputed caption embeddings: 'y' [P, L, C], 'mask' [P, L], prompts in metadata.")
    var embeddings: String?

    @Flag(help: "Condition on the null caption only.")
    var nullCaption = false

    @Option(help: "rflow (STDiT3), iddpm or ddim (STDiT).") var sampler: String?
    @Option(help: "Sampler steps.") var steps: Int?
    @Option(help: "Classifier-free guidance scale.") var cfg: Float?
    @Option(help: "STDiT: guided output channels (3 = the v1.0.0 release, 4 = the later fix).") var cfgChannels = 3
    @Option(help: "Noise seed (PCG32 + Box-Muller; the same on every machine).") var seed: UInt64 = 0
    @Option(help: "Model-input size T,H,W (latent; pixels for pixel-space models).") var size: String?
    @Option(help: "Frames per second for the fps embedder.") var fps: Float?
    @Flag(help: "Skip the rectified-flow timestep transform.") var noTransform = false
    @Option(help: "Output .safetensors ('samples' [n, C, T, H, W]); pixel-space models also get .y4m and .png per sample.")
    var out: String

    func run() throws {
        try reportingErrors {
            let loaded = try ModelLoader.load(path: checkpoint)
            let model = loaded.model
            let defaults = loaded.samplerDefaults
            let condition = try textCondition(loaded)
            let dims = try inputSize(defaults, model.config)
            let n = condition.count
            var generator = NoiseGenerator(seed: seed)
            let noise = generator.gaussian(shape: [n, model.config.inChannels] + dims)
            let pixelSpace = model.config.inChannels == 3
            let (pixelHeight, pixelWidth) = pixelSpace ? (Float(dims[1]), Float(dims[2])) : (Float(dims[1] * 8), Float(dims[2] * 8))
            let kind = sampler ?? (model.config.architecture == .stdit3 ? "rflow" : "iddpm")
            let start = monotonicSeconds()
            let progress: (Int, Int) -> Void = { i, total in FileHandleStderr.write("\rstep \(i + 1)/\(total)") }
            let result: Tensor
            switch (kind, model) {
            case ("rflow", let stdit3 as STDiT3):
                let stepCount = steps ?? defaults?.steps ?? 30
                let schedule = try RectifiedFlowSchedule.forSampling(steps: stepCount, defaults: defaults, disableTransform: noTransform,
                                                                     frames: dims[0], pixelHeight: pixelHeight, pixelWidth: pixelWidth,
                                                                     pixelSpace: pixelSpace)
                let rf = RectifiedFlowSampler(model: stdit3, cfgScale: cfg ?? defaults?.cfgScale ?? 7, fps: fps ?? defaults?.fps ?? 24)
                result = try rf.sample(noise: noise, condition: condition, schedule: schedule, height: pixelHeight,
                                       width: pixelWidth) { i, _ in progress(i, stepCount) }
            case ("iddpm", let stdit as STDiT), ("ddim", let stdit as STDiT):
                let stepCount = steps ?? (kind == "ddim" ? 20 : 100)
                let diffusion = DiffusionSampler(model: stdit, steps: stepCount, kind: kind == "ddim" ? .ddim : .iddpm,
                                                 cfgScale: cfg ?? 7, cfgChannels: cfgChannels)
                result = try diffusion.sample(noise: noise, condition: condition, stepNoise: { _ in
                    generator.gaussian(shape: [2 * n, model.config.inChannels] + dims)
                }) { i, _ in progress(i, stepCount) }
            default:
                throw ValidationError("sampler '\(kind)' does not fit \(model.config.architecture.rawValue): use rflow for STDiT3, iddpm or ddim for STDiT")
            }
            FileHandleStderr.write(String(format: "\rsampled %d video(s) in %.2f s\n", n, monotonicSeconds() - start))
            var writer = SafetensorsWriter()
            writer.metadata = [("checkpoint", checkpoint), ("sampler", kind), ("seed", "\(seed)")]
            writer.add("samples", result)
            try writer.write(to: out)
            print("wrote \(out)")
            guard pixelSpace else { return }
            let stem = out.hasSuffix(".safetensors") ? String(out.dropLast(12)) : out
            let perSample = result.count / n
            for i in 0..<n {
                let video = Tensor(shape: Array(result.shape.dropFirst()), scalars: Array(result.scalars[(i * perSample)..<((i + 1) * perSample)]))
                try AtomicFile.write(VideoWriters.y4m(video, fps: Int(fps ?? defaults?.fps ?? 8)), to: "\(stem).\(i).y4m")
                try AtomicFile.write(VideoWriters.contactSheet(video), to: "\(stem).\(i).png")
                print("wrote \(stem).\(i).y4m and \(stem).\(i).png")
            }
        }
    }

    private func inputSize(_ defaults: SamplerDefaults?, _ config: ModelConfig) throws -> [Int] {
        if let size {
            let dims = size.split(separator: ",").compactMap { Int($0) }
            guard dims.count == 3, dims.allSatisfy({ $0 > 0 }) else { throw ValidationError("--size must be T,H,W positive integers, got '\(size)'") }
            return dims
        }
        if let f = defaults?.frames, let h = defaults?.height, let w = defaults?.width { return [f, h, w] }
        // Latent T = 5 is the shortest that OpenSora's timestep transform is defined for (17 frames).
        return [config.architecture == .stdit3 && config.inChannels != 3 ? 5 : 4, 16, 16]
    }

    private func textCondition(_ loaded: LoadedCheckpoint) throws -> TextCondition {
        if let embeddings { return try CaptionEmbeddingsFile(path: embeddings).condition }
        if !prompts.isEmpty {
            guard let encoder = loaded.textEncoder else {
                throw ValidationError("\(checkpoint) has no text encoder: give --embeddings FILE (precomputed T5 output: 'y' [P, L, C] and 'mask' [P, L]) or --null-caption")
            }
            return try encoder.encode(prompts)
        }
        if nullCaption {
            let config = loaded.model.config
            return TextCondition(embeddings: Tensor(shape: [1, 1, config.modelMaxLength, config.captionChannels], scalars: loaded.model.nullCaption),
                                 mask: [Array(repeating: 1, count: config.modelMaxLength)])
        }
        throw ValidationError("no conditioning: give --prompt TEXT (models with their own text encoder), --embeddings FILE (precomputed T5 output) or --null-caption")
    }
}
