import ArgumentParser
import DemoModel
import Evaluation
import Foundation
import Quantization
import Tensors
import VideoDiT

/// The calibration a plan is built from: options shared by `plan`, `quantize` and `eval`.
struct CalibrationOptions: ParsableArguments {
    @Option(help: "Calibration prompt list, one a line.") var calibrationPrompts = "sample-prompts/calibration.txt"
    @Option(help: "Comma-separated calibration noise seeds.") var calibrationSeeds = "0"
    @Option(help: "Sampler steps (default: the checkpoint's).") var steps: Int?
    @Option(help: "CFG scale (default: the checkpoint's).") var cfg: Float?
    @Option(help: "Calibration cache folder.") var cacheDirectory = CalibrationCache.defaultDirectory
}

/// A checkpoint ready to quantize: the model, its sampler settings and its calibration statistics
/// (loaded from the cache, or recorded now and cached).
struct QuantizationSetup {
    let path: String
    let model: STDiT3
    let encoder: WordTextEncoder
    let schedule: RectifiedFlowSchedule
    let cfgScale: Float
    let fps: Float
    /// T, H, W (pixels: the demo-style models are pixel-space).
    let size: [Int]
    let key: CalibrationCache.Key
    let checkpointHash: String

    init(checkpoint: String?, options: CalibrationOptions, overridingKey: CalibrationCache.Key? = nil) throws {
        guard let path = checkpoint ?? DemoModel.checkpointPath else { throw ValidationError("no checkpoint and no bundled demo model") }
        let loaded = try ModelLoader.load(path: path)
        guard let model = loaded.model as? STDiT3, let encoder = loaded.textEncoder else {
            throw ValidationError("\(path): quantization here needs an STDiT3 checkpoint with its own text encoder (the demo model); "
                                  + "other checkpoints need precomputed calibration captions, which this command does not take yet")
        }
        let d = loaded.samplerDefaults
        let size = [d?.frames ?? 8, d?.height ?? 32, d?.width ?? 32]
        let pixelSpace = model.config.inChannels == 3
        let steps = overridingKey?.steps ?? options.steps ?? d?.steps ?? 30
        let schedule = try RectifiedFlowSchedule.forSampling(
            steps: steps, defaults: d, disableTransform: false, frames: size[0],
            pixelHeight: Float(size[1]) * (pixelSpace ? 1 : 8), pixelWidth: Float(size[2]) * (pixelSpace ? 1 : 8), pixelSpace: pixelSpace)
        let hash = try CalibrationCache.checkpointHash(path: path)
        if let overridingKey {
            key = overridingKey
        } else {
            guard let text = try? String(contentsOfFile: options.calibrationPrompts, encoding: .utf8) else {
                throw ValidationError("cannot read \(options.calibrationPrompts)")
            }
            key = CalibrationCache.Key(checkpointHash: hash, prompts: FidelityRun.readPrompts(text), sampler: "rflow",
                                       steps: steps, cfgScale: options.cfg ?? d?.cfgScale ?? 7,
                                       seeds: try parseSeeds(options.calibrationSeeds, option: "--calibration-seeds"))
        }
        self.path = path
        self.model = model
        self.encoder = encoder
        self.schedule = schedule
        self.cfgScale = key.cfgScale
        self.fps = d?.fps ?? 24
        self.size = size
        self.checkpointHash = hash
    }

    /// Cached statistics, or a calibration run (progress on stderr) saved to the cache.
    func statistics(cacheDirectory: String) throws -> [String: [Int: LayerStepStatistics]] {
        if let cached = try CalibrationCache(directory: cacheDirectory).load(key) { return cached }
        let start = monotonicSeconds()
        let statistics = try calibrate(cacheDirectory: cacheDirectory)
        FileHandleStderr.write(String(format: "calibrated %d prompts × %d seeds in %.1f s\n", key.prompts.count, key.seeds.count,
                                      monotonicSeconds() - start))
        return statistics
    }

    /// Records the statistics now (progress on stderr) and saves them to the cache.
    func calibrate(cacheDirectory: String) throws -> [String: [Int: LayerStepStatistics]] {
        let calibrator = Calibrator(model: model, schedule: schedule, cfgScale: cfgScale, size: size, fps: fps)
        let statistics = try calibrator.run(conditions: try key.prompts.map { try encoder.encode([$0]) }, seeds: key.seeds) { done, total in
            FileHandleStderr.write("\rcalibrating: \(done)/\(total) sampler steps")
        }
        FileHandleStderr.write("\n")
        try CalibrationCache(directory: cacheDirectory).save(statistics, for: key)
        return statistics
    }

    /// A plan for this checkpoint and calibration with the given defaults.
    func plan(defaults: LayerSettings, groups: Int) -> QuantizationPlan {
        QuantizationPlan(checkpointHash: checkpointHash, architecture: model.config.architecture.rawValue, calibration: key,
                         timesteps: schedule.timesteps, stepGroups: QuantizationPlan.equalGroups(steps: schedule.timesteps.count, count: groups),
                         defaults: defaults)
    }

    /// Refuses a plan made for another checkpoint or schedule, naming the field.
    func check(_ plan: QuantizationPlan, source: String) throws {
        guard plan.checkpointHash == checkpointHash else {
            throw ValidationError("\(source): checkpoint.hash is \(plan.checkpointHash) but \(path) hashes to \(checkpointHash): the plan was made for another checkpoint")
        }
        guard plan.calibration.checkpointHash == checkpointHash else {
            throw ValidationError("\(source): calibration.checkpoint_hash \(plan.calibration.checkpointHash) does not match \(path) (\(checkpointHash))")
        }
        guard plan.timesteps.count == schedule.timesteps.count,
              zip(plan.timesteps, schedule.timesteps).allSatisfy({ abs($0 - $1) <= 1e-3 * max(1, abs($1)) }) else {
            throw ValidationError("\(source): sampler.t (\(plan.timesteps.count) steps) does not match this checkpoint's schedule "
                                  + "(\(schedule.timesteps.count) steps, t = \(schedule.timesteps.prefix(3).map { String(format: "%.1f", $0) }.joined(separator: ", "))…): "
                                  + "the plan was made for another schedule")
        }
    }
}

func parseSeeds(_ text: String, option: String) throws -> [UInt64] {
    let seeds = try text.split(separator: ",").map { s -> UInt64 in
        guard let v = UInt64(s.trimmingCharacters(in: .whitespaces)) else { throw ValidationError("\(option): bad seed '\(s)'") }
        return v
    }
    guard !seeds.isEmpty else { throw ValidationError("\(option): no seeds") }
    return seeds
}

/// Reads and parses a `plan.json`.
func readPlan(_ path: String) throws -> QuantizationPlan {
    guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw ValidationError("cannot read \(path)") }
    let json: JSONValue
    do { json = try JSONValue.parse(text) } catch { throw ValidationError("\(path): not valid JSON: \(error)") }
    do { return try QuantizationPlan(json: json, source: path) } catch let e as PlanError { throw ValidationError(e.description) }
}
