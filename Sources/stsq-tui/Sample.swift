import ArgumentParser
import Foundation
import Tensors
import VideoDiT

/// `stsq-tui sample CHECKPOINT (--embeddings FILE | --null-caption) …`: a full sampling run.
struct Sample: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Sample videos with rectified flow and classifier-free guidance (STDiT3).")

    @Argument(help: "An STDiT3 .safetensors checkpoint.")
    var checkpoint: String

    @Option(help: "Precomputed caption embeddings: 'y' [P, L, C], 'mask' [P, L], prompts in metadata.")
    var embeddings: String?

    @Flag(help: "Condition on the null caption only (unconditional sampling).")
    var nullCaption = false

    @Option(help: "Text prompt (needs a checkpoint with its own text encoder).")
    var prompt: String?

    @Option(help: "Sampler steps.") var steps = 30
    @Option(help: "Classifier-free guidance scale.") var cfg: Float = 7
    @Option(help: "Noise seed (PCG32 + Box-Muller; the same on every machine).") var seed: UInt64 = 0
    @Option(help: "Model-input size T,H,W (latent frames and size; pixels for pixel-space models).")
    var size = "4,16,16"
    @Option(help: "Frames per second passed to the fps embedder.") var fps: Float = 24
    @Flag(help: "Skip OpenSora's resolution/length timestep transform.") var noTransform = false
    @Option(help: "Output .safetensors ('samples' [n, C, T, H, W]); pixel-space models also get .y4m and .png per sample.")
    var out: String

    func run() throws {
        try reportingErrors {
            let model = try ModelLoader.loadSTDiT3(path: checkpoint)
            let condition = try textCondition(model)
            let dims = size.split(separator: ",").compactMap { Int($0) }
            guard dims.count == 3, dims.allSatisfy({ $0 > 0 }) else {
                throw ValidationError("--size must be T,H,W positive integers, got '\(size)'")
            }
            let pixelSpace = model.config.inChannels == 3
            let (pixelHeight, pixelWidth) = pixelSpace ? (Float(dims[1]), Float(dims[2])) : (Float(dims[1] * 8), Float(dims[2] * 8))
            let frames: Float = pixelSpace ? Float(dims[0]) : Float(dims[0] / 5 * 17)
            let schedule = RectifiedFlowSchedule(steps: steps, transform: noTransform ? nil :
                .init(height: pixelHeight, width: pixelWidth, numFrames: frames))
            var generator = NoiseGenerator(seed: seed)
            let n = condition.count
            let noise = generator.gaussian(shape: [n, model.config.inChannels] + dims)
            let sampler = RectifiedFlowSampler(model: model, cfgScale: cfg, fps: fps)
            let start = monotonicSeconds()
            let result = try sampler.sample(noise: noise, condition: condition, schedule: schedule,
                                            height: pixelHeight, width: pixelWidth) { i, _ in
                FileHandleStderr.write("\rstep \(i + 1)/\(steps)")
            }
            FileHandleStderr.write(String(format: "\rsampled %d video(s) in %.2f s\n", n, monotonicSeconds() - start))
            var writer = SafetensorsWriter()
            writer.metadata = [("checkpoint", checkpoint), ("steps", "\(steps)"), ("cfg", "\(cfg)"), ("seed", "\(seed)")]
            writer.add("samples", result)
            try writer.write(to: out)
            print("wrote \(out)")
            guard pixelSpace else { return }
            let stem = out.hasSuffix(".safetensors") ? String(out.dropLast(12)) : out
            let perSample = result.count / n
            for i in 0..<n {
                let video = Tensor(shape: Array(result.shape.dropFirst()), scalars: Array(result.scalars[(i * perSample)..<((i + 1) * perSample)]))
                try AtomicFile.write(VideoWriters.y4m(video, fps: Int(fps)), to: "\(stem).\(i).y4m")
                try AtomicFile.write(VideoWriters.contactSheet(video), to: "\(stem).\(i).png")
                print("wrote \(stem).\(i).y4m and \(stem).\(i).png")
            }
        }
    }

    private func textCondition(_ model: STDiT3) throws -> TextCondition {
        if let embeddings { return try CaptionEmbeddingsFile(path: embeddings).condition }
        if nullCaption {
            let L = model.config.modelMaxLength, cc = model.config.captionChannels
            return TextCondition(embeddings: Tensor(shape: [1, 1, L, cc], scalars: model.nullCaption),
                                 mask: [Array(repeating: 1, count: L)])
        }
        if prompt != nil {
            throw ValidationError("\(checkpoint) has no text encoder: give --embeddings FILE (precomputed T5 output: 'y' [P, L, C] and 'mask' [P, L]) or --null-caption")
        }
        throw ValidationError("no conditioning: give --embeddings FILE (precomputed T5 output), --prompt TEXT (models with their own text encoder) or --null-caption")
    }
}
