import Foundation
import Tensors
import VideoDiT

/// A checkpoint ready to calibrate and quantize on this machine: the model, its text encoder, its
/// sampler settings and the calibration key. One construction serves the command line and the
/// workbench, so both find each other's cache entries.
public struct CalibrationSetup: Sendable {
    /// What a calibration samples: prompts, noise seeds, and overrides of the checkpoint's sampler.
    public struct Options: Sendable {
        public var prompts: [String]
        public var seeds: [UInt64]
        public var steps: Int?
        public var cfg: Float?

        public init(prompts: [String], seeds: [UInt64] = [0], steps: Int? = nil, cfg: Float? = nil) {
            self.prompts = prompts
            self.seeds = seeds
            self.steps = steps
            self.cfg = cfg
        }
    }

    public let path: String
    public let model: STDiT3
    /// The checkpoint's own text encoder (the demo model's); nil for checkpoints whose captions
    /// come from T5 (real OpenSora): those work on imported statistics (`stsq-collect`), and
    /// whatever needs sampling says so (`textEncoder()`).
    public let encoder: WordTextEncoder?
    public let schedule: RectifiedFlowSchedule
    public let cfgScale: Float
    public let fps: Float
    /// T, H, W (pixels: the demo-style models are pixel-space).
    public let size: [Int]
    public let key: CalibrationCache.Key
    public let checkpointHash: String

    /// Loads `path`; `overridingKey` (a plan's calibration) replaces the options' key.
    /// - Throws: `CalibrationSetupError` when the checkpoint cannot be quantized here (not an
    ///   STDiT3) or the options are unusable.
    public init(path: String, options: Options, overridingKey: CalibrationCache.Key? = nil) throws {
        // The checkpoint's hash and its finite scan each read the whole file the first time it is seen.
        let (hashed, opened) = bothAtOnce({ try CalibrationCache.checkpointHash(path: path) }, { try ModelLoader.load(path: path) })
        let loaded = try opened.get()
        let hash = try hashed.get()
        guard let model = loaded.model as? STDiT3 else {
            throw CalibrationSetupError("\(path): quantization here needs an STDiT3 (v1.2) checkpoint; this one is \(loaded.model.config.architecture.rawValue)")
        }
        let encoder = loaded.textEncoder
        let d = loaded.samplerDefaults
        let size = [d?.frames ?? 8, d?.height ?? 32, d?.width ?? 32]
        let pixelSpace = model.config.inChannels == 3
        let steps = overridingKey?.steps ?? options.steps ?? d?.steps ?? 30
        let schedule = try RectifiedFlowSchedule.forSampling(
            steps: steps, defaults: d, disableTransform: false, frames: size[0],
            pixelHeight: Float(size[1]) * (pixelSpace ? 1 : 8), pixelWidth: Float(size[2]) * (pixelSpace ? 1 : 8), pixelSpace: pixelSpace)
        if let overridingKey {
            key = overridingKey
        } else {
            guard !options.prompts.isEmpty else { throw CalibrationSetupError("no calibration prompts") }
            guard !options.seeds.isEmpty else { throw CalibrationSetupError("no calibration seeds") }
            key = CalibrationCache.Key(checkpointHash: hash, prompts: options.prompts, sampler: "rflow", steps: steps,
                                       cfgScale: options.cfg ?? d?.cfgScale ?? 7, seeds: options.seeds)
        }
        self.path = path
        self.model = model
        self.encoder = encoder
        self.schedule = schedule
        cfgScale = key.cfgScale
        fps = d?.fps ?? 24
        self.size = size
        checkpointHash = hash
    }

    /// The prompts of a prompt file: one a line, blank lines and `#` comments skipped.
    public static func readPrompts(_ text: String) -> [String] {
        text.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty && !$0.hasPrefix("#") }
    }

    /// The text encoder sampling needs (calibration, previews, video metrics), or why there is none.
    public func textEncoder() throws -> WordTextEncoder {
        guard let encoder else { throw CalibrationSetupError(Self.cannotSample(path)) }
        return encoder
    }

    /// Why a checkpoint without its own text encoder cannot be sampled here, and what to do.
    public static func cannotSample(_ path: String) -> String {
        "\(path) has no text encoder of its own (its captions come from T5), so this tool cannot sample it: "
            + "calibrate it with stsq-collect where the GPUs are (README, \"Real OpenSora\"); its statistics open here"
    }

    /// The statistics cached for this key, or nil.
    public func cachedStatistics(in directory: String) throws -> [String: [Int: LayerStepStatistics]]? {
        try CalibrationCache(directory: directory).load(key)
    }

    /// Records the statistics now. `progress(done, total)` follows every sampler step; when
    /// `shouldStop()` turns true the run ends with `CalibrationCancelled` (nothing is saved).
    public func calibrate(progress: (_ done: Int, _ total: Int) -> Void = { _, _ in },
                          shouldStop: @escaping () -> Bool = { false }) throws -> [String: [Int: LayerStepStatistics]] {
        let calibrator = Calibrator(model: model, schedule: schedule, cfgScale: cfgScale, size: size, fps: fps)
        let encoder = try textEncoder()
        return try calibrator.run(conditions: try key.prompts.map { try encoder.encode([$0]) }, seeds: key.seeds,
                                  progress: progress, shouldStop: shouldStop)
    }

    /// A plan for this checkpoint and calibration with the given defaults.
    public func plan(defaults: LayerSettings, groups: Int) -> QuantizationPlan {
        QuantizationPlan(checkpointHash: checkpointHash, architecture: model.config.architecture.rawValue, calibration: key,
                         timesteps: schedule.timesteps, stepGroups: QuantizationPlan.equalGroups(steps: schedule.timesteps.count, count: groups),
                         defaults: defaults)
    }

    /// Refuses a plan made for another checkpoint or schedule, naming the field.
    public func check(_ plan: QuantizationPlan, source: String) throws {
        guard plan.checkpointHash == checkpointHash else {
            throw CalibrationSetupError("\(source): checkpoint.hash is \(plan.checkpointHash) but \(path) hashes to \(checkpointHash): the plan was made for another checkpoint")
        }
        guard plan.calibration.checkpointHash == checkpointHash else {
            throw CalibrationSetupError("\(source): calibration.checkpoint_hash \(plan.calibration.checkpointHash) does not match \(path) (\(checkpointHash))")
        }
        guard plan.timesteps.count == schedule.timesteps.count,
              zip(plan.timesteps, schedule.timesteps).allSatisfy({ abs($0 - $1) <= 1e-3 * max(1, abs($1)) }) else {
            throw CalibrationSetupError("\(source): sampler.t (\(plan.timesteps.count) steps) does not match this checkpoint's schedule "
                                        + "(\(schedule.timesteps.count) steps, t = \(schedule.timesteps.prefix(3).map { String(format: "%.1f", $0) }.joined(separator: ", "))…): "
                                        + "the plan was made for another schedule")
        }
    }
}

/// Why a checkpoint or its calibration options cannot be used, in words a user can act on.
public struct CalibrationSetupError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
