import ArgumentParser
import DemoModel
import Evaluation
import Foundation
import Quantization
import Tensors
import VideoDiT

/// `stsq-tui calibrate [CHECKPOINT] [--prompts FILE] [--steps --cfg --seeds]`.
struct Calibrate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Record per-step activation statistics of every block linear over the calibration prompts (cached).")

    @Argument(help: "An STDiT3 checkpoint with its own text encoder; default: the bundled demo model.")
    var checkpoint: String?
    @Option(help: "Prompt list, one a line.") var prompts = "sample-prompts/calibration.txt"
    @Option(help: "Comma-separated noise seeds.") var seeds = "0"
    @Option(help: "Sampler steps (default: the checkpoint's).") var steps: Int?
    @Option(help: "CFG scale (default: the checkpoint's).") var cfg: Float?
    @Option(help: "Cache folder.") var cacheDirectory = CalibrationCache.defaultDirectory

    func run() throws {
        try reportingErrors {
            guard let path = checkpoint ?? DemoModel.checkpointPath else { throw ValidationError("no checkpoint and no bundled demo model") }
            let loaded = try ModelLoader.load(path: path)
            guard let model = loaded.model as? STDiT3, let encoder = loaded.textEncoder else {
                throw ValidationError("\(path): calibration here needs an STDiT3 checkpoint with its own text encoder (the demo model)")
            }
            guard let text = try? String(contentsOfFile: prompts, encoding: .utf8) else { throw ValidationError("cannot read \(prompts)") }
            let list = FidelityRun.readPrompts(text)
            let seedList = seeds.split(separator: ",").compactMap { UInt64($0.trimmingCharacters(in: .whitespaces)) }
            let d = loaded.samplerDefaults
            let stepCount = steps ?? d?.steps ?? 30, scale = cfg ?? d?.cfgScale ?? 7
            let size = [d?.frames ?? 8, d?.height ?? 32, d?.width ?? 32]
            let key = CalibrationCache.Key(checkpointHash: try CalibrationCache.checkpointHash(path: path), prompts: list,
                                           sampler: "rflow", steps: stepCount, cfgScale: scale, seeds: seedList)
            let cache = CalibrationCache(directory: cacheDirectory)
            let start = monotonicSeconds()
            if let cached = try cache.load(key) {
                print("calibration \(key.digest): loaded from \(cacheDirectory) (\(cached.count) layers) in \(String(format: "%.2f", monotonicSeconds() - start)) s")
                return
            }
            let pixelScale: Float = model.config.inChannels == 3 ? 1 : 8
            let schedule = try RectifiedFlowSchedule.forSampling(steps: stepCount, defaults: d, disableTransform: false, frames: size[0],
                                                                 pixelHeight: Float(size[1]) * pixelScale, pixelWidth: Float(size[2]) * pixelScale,
                                                                 pixelSpace: model.config.inChannels == 3)
            let calibrator = Calibrator(model: model, schedule: schedule, cfgScale: scale, size: size, fps: d?.fps ?? 24)
            let statistics = try calibrator.run(conditions: try list.map { try encoder.encode([$0]) }, seeds: seedList) { done, total in
                FileHandleStderr.write("\rcalibrating: \(done)/\(total) sampler steps")
            }
            FileHandleStderr.write("\n")
            try cache.save(statistics, for: key)
            let entries = statistics.values.reduce(0) { $0 + $1.count }
            print(String(format: "calibration %@: %d prompts × %d seeds × %d steps, %d layers × steps recorded in %.1f s; saved to %@",
                         key.digest, list.count, seedList.count, stepCount, entries, monotonicSeconds() - start, cacheDirectory))
        }
    }
}
