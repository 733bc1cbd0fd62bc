/// Sampler settings that cannot run, with the setting at fault and what would work.
public struct SamplingError: Error, CustomStringConvertible, Equatable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

public extension RectifiedFlowSchedule {
    /// Most rectified-flow steps accepted (the schedule is continuous, so more than the 1000
    /// training timesteps is allowed; beyond this it is a typo).
    static let maximumSteps = 10_000

    /// The schedule a sampling run uses, built one way by `sample`, calibration and fidelity from
    /// the checkpoint's sampler defaults (OPENSORA.md §9.2).
    ///
    /// The transform is on unless `disableTransform` or the checkpoint's `use_timestep_transform`
    /// is false; when on, its ratio is the checkpoint's explicit `timestep_shift` if it has one,
    /// else the resolution and length ratio of the video.
    ///
    /// - Parameters:
    ///   - frames: the model-input T: latent frames, or video frames when `pixelSpace`. A latent T
    ///     stands for OpenSora's `num_frames` = 1 for T = 1, else T // 5 · 17 (the VAE turns each
    ///     17 frames into 5), which the transform maps back to T // 5 · 5 latent frames.
    ///   - pixelHeight, pixelWidth: the video's size in pixels.
    /// - Throws: `SamplingError` for steps outside 1…`maximumSteps`, or a transform ratio that is
    ///   not finite and positive (latent T of 2…4, video frames 2…16: OpenSora's ratio is 0 there).
    static func forSampling(steps: Int, defaults: SamplerDefaults?, disableTransform: Bool, frames: Int,
                            pixelHeight: Float, pixelWidth: Float, pixelSpace: Bool) throws -> RectifiedFlowSchedule {
        guard (1...maximumSteps).contains(steps) else {
            throw SamplingError("rectified flow needs 1…\(maximumSteps) steps, got \(steps)")
        }
        let ratio = try transformRatio(defaults: defaults, disableTransform: disableTransform, frames: frames,
                                       pixelHeight: pixelHeight, pixelWidth: pixelWidth, pixelSpace: pixelSpace)
        return RectifiedFlowSchedule(steps: steps, ratio: ratio)
    }

    /// The transform ratio r `forSampling` uses, or nil for no transform.
    static func transformRatio(defaults: SamplerDefaults?, disableTransform: Bool, frames: Int,
                               pixelHeight: Float, pixelWidth: Float, pixelSpace: Bool) throws -> Float? {
        if disableTransform || defaults?.useTimestepTransform == false { return nil }
        if let shift = defaults?.timestepShift {
            guard shift.isFinite, shift > 0 else {
                throw SamplingError("the checkpoint's sampler 'timestep_shift' must be a positive number, found \(shift)")
            }
            return shift
        }
        let videoFrames: Float = pixelSpace || frames == 1 ? Float(frames) : Float(frames / 5) * 17
        let ratio = Transform(height: pixelHeight, width: pixelWidth, numFrames: videoFrames).ratio
        guard ratio.isFinite, ratio > 0 else {
            let what = pixelSpace ? "\(frames) frames" : "latent T = \(frames) (\(pixels(videoFrames)) video frames)"
            let need = pixelSpace ? "1 or at least 17 frames" : "latent T = 1 or at least 5"
            throw SamplingError("the timestep transform is undefined for \(what) at \(pixels(pixelHeight))×\(pixels(pixelWidth)) px (ratio \(ratio)): "
                                + "use \(need), or turn the transform off (--no-transform)")
        }
        return ratio
    }
}

private func pixels(_ value: Float) -> String {
    value.isFinite && value.magnitude < 1e9 && value == value.rounded() ? String(Int(value)) : "\(value)"
}
