import ArgumentParser
import DemoModel
import Foundation
import Tensors
import VideoDiT
import Quantization

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
    @Option(help: "Sample the quantized model exported to this folder (its quantized.safetensors; STDiT3, rflow) on the int8 path.")
    var quantized: String?
    @Flag(help: "With --quantized: fake-quant instead of int8 products (the reference for other implementations).")
    var fakeQuant = false
    @Option(help: "Output .safetensors ('samples' [n, C, T, H, W]); pixel-space models also get .y4m and .png per sample.")
    var out: String

    func run() throws {
        try reportingErrors {
            try OutputFolder.checkWritable(AtomicFile.folder(of: out), purpose: "the samples")
            let loaded = try ModelLoader.load(path: checkpoint)
            let model = loaded.model
            let defaults = loaded.samplerDefaults
            let condition = try textCondition(loaded)
            let n = condition.count
            guard n >= 1 else { throw ValidationError("no captions to sample: the conditioning holds 0 prompts") }
            let dims = try inputSize(defaults, model.config, videos: n)
            try checkFPS(defaults)
            if let cfg, !cfg.isFinite { throw ValidationError("--cfg must be a finite number, got \(cfg)") }
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
                let scale = cfg ?? defaults?.cfgScale ?? 7
                guard scale.isFinite else { throw ValidationError("\(checkpoint): the sampler 'cfg_scale' must be finite, found \(scale)") }
                let rf = RectifiedFlowSampler(model: stdit3, cfgScale: scale, fps: fps ?? defaults?.fps ?? 24)
                var executor: LinearExecutor = Float32Executor()
                guard quantized != nil || !fakeQuant else { throw ValidationError("--fake-quant goes with --quantized DIR") }
                if let quantized {
                    let file = try QuantizedModelFile(path: quantized + "/quantized.safetensors", model: stdit3)
                    guard file.steps == stepCount else {
                        throw ValidationError("\(quantized)/quantized.safetensors holds \(file.steps) steps, the sampler runs \(stepCount): give --steps \(file.steps)")
                    }
                    try checkQuantized(file, folder: quantized, timesteps: schedule.timesteps, fps: rf.fps)
                    executor = QuantizedFileExecutor(file: file, fakeQuant: fakeQuant)
                }
                result = try rf.sample(noise: noise, condition: condition, schedule: schedule, height: pixelHeight,
                                       width: pixelWidth, executor: executor) { i, _ in progress(i, stepCount) }
            case ("iddpm", let stdit as STDiT), ("ddim", let stdit as STDiT):
                guard quantized == nil else { throw ValidationError("--quantized samples STDiT3 checkpoints (rflow)") }
                let stepCount = steps ?? (kind == "ddim" ? 20 : 100)
                let diffusion = try DiffusionSampler(model: stdit, steps: stepCount, kind: kind == "ddim" ? .ddim : .iddpm,
                                                     cfgScale: cfg ?? 7, cfgChannels: cfgChannels)
                result = try diffusion.sample(noise: noise, condition: condition, stepNoise: { _ in
                    generator.gaussian(shape: [2 * n, model.config.inChannels] + dims)
                }) { i, _ in progress(i, stepCount) }
            default:
                throw ValidationError("sampler '\(kind)' does not fit \(model.config.architecture.rawValue): use rflow for STDiT3, iddpm or ddim for STDiT")
            }
            FileHandleStderr.write(String(format: "\rsampled %d video(s) in %.2f s\n", n, monotonicSeconds() - start))
            try refuseNonFinite(result, what: "the sampled videos")
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
                try AtomicFile.write(VideoWriters.y4m(video, fps: max(1, Int((fps ?? defaults?.fps ?? 8).rounded()))), to: "\(stem).\(i).y4m")
                try AtomicFile.write(VideoWriters.contactSheet(video), to: "\(stem).\(i).png")
                print("wrote \(stem).\(i).y4m and \(stem).\(i).png")
            }
        }
    }

    /// An export's per-step scales and modulation tables belong to its checkpoint, its plan's
    /// timesteps and its fps: sampling it with others would run a silently different model.
    private func checkQuantized(_ file: QuantizedModelFile, folder: String, timesteps: [Float], fps: Float) throws {
        try file.requireBuilt(for: checkpoint, folder: folder)
        let plan = try readPlan(folder + "/plan.json")
        guard plan.timesteps.count == timesteps.count,
              zip(plan.timesteps, timesteps).allSatisfy({ abs($0 - $1) <= 1e-3 * max(1, abs($1)) }) else {
            throw ValidationError("\(folder)/plan.json: sampler.t does not match this run's timesteps (\(timesteps.prefix(3).map { String(format: "%.1f", $0) }.joined(separator: ", "))…): "
                                  + "the export was made for another size or timestep transform")
        }
        guard file.fps == fps else {
            throw ValidationError("\(folder)/quantized.safetensors holds modulation tables for fps \(file.fps), this run uses \(fps): give --fps \(file.fps)")
        }
    }

    /// Largest size per dimension, and largest noise tensor (`n·Cin·T·H·W` values), `sample` takes.
    static let maximumDimension = 4096
    static let maximumElements = 1 << 31

    /// T, H, W from `--size`, else the checkpoint's defaults, else a small clip; checked so that the
    /// noise for `videos` samples stays within `maximumElements`.
    private func inputSize(_ defaults: SamplerDefaults?, _ config: ModelConfig, videos: Int) throws -> [Int] {
        let dims: [Int], source: String
        if let size {
            dims = size.split(separator: ",", omittingEmptySubsequences: false).compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
            source = "--size '\(size)'"
            guard dims.count == 3 else { throw ValidationError("--size must be T,H,W positive integers, got '\(size)'") }
        } else if let f = defaults?.frames, let h = defaults?.height, let w = defaults?.width {
            dims = [f, h, w]
            source = "\(checkpoint): the sampler's frames, height, width \(dims)"
        } else {
            // Latent T = 5 is the shortest that OpenSora's timestep transform is defined for (17 frames).
            return [config.architecture == .stdit3 && config.inChannels != 3 ? 5 : 4, 16, 16]
        }
        guard dims.allSatisfy({ (1...Self.maximumDimension).contains($0) }) else {
            throw ValidationError("\(source): each of T, H, W must be 1…\(Self.maximumDimension)")
        }
        let elements = ([videos, config.inChannels] + dims).reduce(Double(1)) { $0 * Double($1) }
        guard elements <= Double(Self.maximumElements) else {
            throw ValidationError("\(source): \(videos) × \(config.inChannels) × \(dims.map(String.init).joined(separator: " × ")) values of noise, more than the \(Self.maximumElements) sample takes")
        }
        return dims
    }

    private func checkFPS(_ defaults: SamplerDefaults?) throws {
        func valid(_ value: Float) -> Bool { value.isFinite && value > 0 && value <= 1000 }
        if let fps, !valid(fps) { throw ValidationError("--fps must be a number in (0, 1000], got \(fps)") }
        if fps == nil, let value = defaults?.fps, !valid(value) {
            throw ValidationError("\(checkpoint): the sampler's 'fps' must be a number in (0, 1000], found \(value); give --fps")
        }
    }

    private func textCondition(_ loaded: LoadedCheckpoint) throws -> TextCondition {
        if let embeddings { return try CaptionEmbeddingsFile(path: embeddings).condition }
        if !prompts.isEmpty {
            guard let encoder = loaded.textEncoder else {
                throw ValidationError("\(checkpoint) has no text encoder: give --embeddings FILE (precomputed T5 output: 'y' [P, L, C] and 'mask' [P, L]) or --null-caption")
            }
            if let (i, empty) = prompts.enumerated().first(where: { !$0.1.contains(where: { $0.isLetter || $0.isNumber }) }) {
                throw ValidationError("--prompt #\(i + 1) \"\(empty)\" has no words: an empty caption is not a prompt; use --null-caption to sample the unconditional (null) caption")
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

extension QuantizedModelFile {
    /// Refuses an export built for another checkpoint (its `checkpoint_hash` against the file's FNV-1a).
    func requireBuilt(for checkpoint: String, folder: String) throws {
        let hash = try CalibrationCache.checkpointHash(path: checkpoint)
        guard checkpointHash == hash else {
            throw ValidationError("\(folder)/quantized.safetensors was built for checkpoint \(checkpointHash), but \(checkpoint) hashes to \(hash): export the plan again for this checkpoint")
        }
    }
}
