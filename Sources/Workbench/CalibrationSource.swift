import Foundation
import Quantization
import Tensors
import VideoDiT

/// Where the activation screen's statistics come from: the calibration `stsq-tui calibrate` would
/// run with the same options, looked up in the same cache (so either finds the other's entry).
public struct CalibrationSource: Sendable {
    public let options: CalibrationSetup.Options
    public let cacheDirectory: String
    /// A plan opened with the checkpoint (`--plan`) and its path: its calibration replaces the
    /// options', and the tuning screen edits it.
    public let plan: (plan: QuantizationPlan, path: String)?
    /// The prompts the plan screen previews (FP vs quantized video), the first shown first; empty:
    /// the first calibration prompt.
    public let previewPrompts: [String]

    public init(options: CalibrationSetup.Options, cacheDirectory: String, plan: (plan: QuantizationPlan, path: String)? = nil,
                previewPrompts: [String] = []) {
        self.options = options
        self.cacheDirectory = cacheDirectory
        self.plan = plan
        self.previewPrompts = previewPrompts
    }
}

extension CheckpointSession {
    /// The checkpoint as a model to calibrate; throws `CalibrationSetupError` (with the reason in
    /// words) for a checkpoint this machine cannot sample. Loads the model: call it off the UI thread.
    func calibrationSetup(_ source: CalibrationSource) throws -> CalibrationSetup {
        let setup = try CalibrationSetup(path: path, options: source.options, overridingKey: source.plan?.plan.calibration)
        if let (plan, path) = source.plan { try setup.check(plan, source: path) }
        return setup
    }

    /// The activation data of a cached calibration, or nil when the cache has no entry for it.
    func cachedActivations(_ setup: CalibrationSetup, _ source: CalibrationSource) throws -> ActivationData? {
        guard let statistics = try setup.cachedStatistics(in: source.cacheDirectory) else { return nil }
        return try ActivationData(model: setup.model, statistics: statistics, plan: Self.defaultPlan(setup))
    }

    /// Calibrates now and saves the cache entry once complete; a stopped run saves nothing.
    func calibrate(_ setup: CalibrationSetup, _ source: CalibrationSource, progress: (Int, Int) -> Void,
                   shouldStop: @escaping () -> Bool) throws -> ActivationData {
        let statistics = try setup.calibrate(progress: progress, shouldStop: shouldStop)
        try CalibrationCache(directory: source.cacheDirectory).save(statistics, for: setup.key)
        return try ActivationData(model: setup.model, statistics: statistics, plan: Self.defaultPlan(setup))
    }

    /// `stsq-tui plan`'s defaults: W8 per channel, int8 activations with per-step min-max scales, α 0.
    /// The activation screen and `stsq-tui stats` show their statistics under it.
    public static func defaultPlan(_ setup: CalibrationSetup) -> QuantizationPlan {
        setup.plan(defaults: LayerSettings(), groups: 1)
    }
}
