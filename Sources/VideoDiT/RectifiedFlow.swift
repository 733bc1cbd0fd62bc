import Foundation
import Tensors

/// OpenSora v1.2's rectified-flow schedule (OPENSORA.md §9.2), in float32: `t_i = (1 − i/S)·1000`,
/// optionally transformed by the resolution and length ratio `r`, `dt_i = (t'_i − t'_{i+1})/1000`
/// and the last step going to 0.
public struct RectifiedFlowSchedule: Sendable, Equatable {
    /// Model-time value of each step (`t'`), noisiest first.
    public let timesteps: [Float]
    /// Step sizes in units of the unit interval.
    public let dt: [Float]

    /// The timestep transform's inputs: pixel height and width and the frame count of the video.
    public struct Transform: Sendable, Equatable {
        public var height: Float, width: Float, numFrames: Float
        public init(height: Float, width: Float, numFrames: Float) {
            self.height = height
            self.width = width
            self.numFrames = numFrames
        }

        /// r = sqrt(H·W/512²) · sqrt(n_lat), n_lat = 1 for one frame else (frames // 17)·5.
        public var ratio: Float {
            let space = (height * width / 262_144).squareRoot()
            let latentFrames: Float = numFrames == 1 ? 1 : (numFrames / 17).rounded(.down) * 5
            return space * latentFrames.squareRoot()
        }
    }

    public init(steps: Int, transform: Transform?, numTimesteps: Float = 1000) {
        self.init(steps: steps, ratio: transform?.ratio, numTimesteps: numTimesteps)
    }

    /// With an explicit transform ratio r (`u' = r·u / (1 + (r − 1)·u)`), or none.
    public init(steps: Int, ratio: Float?, numTimesteps: Float = 1000) {
        precondition(steps > 0, "a schedule needs at least one step")
        var ts: [Float] = []
        for i in 0..<steps {
            var t = Float((1.0 - Double(i) / Double(steps)) * Double(numTimesteps))
            if let r = ratio {
                let u = t / numTimesteps
                t = r * u / (1 + (r - 1) * u) * numTimesteps
            }
            ts.append(t)
        }
        timesteps = ts
        dt = (0..<steps).map { i in (i < steps - 1 ? ts[i] - ts[i + 1] : ts[i]) / numTimesteps }
    }
}

/// Text conditioning for a batch of prompts: `y` `[n, 1, L, caption_channels]` and a `[n, L]` mask.
public struct TextCondition: Sendable {
    public var embeddings: Tensor
    public var mask: [[Int]]

    public init(embeddings: Tensor, mask: [[Int]]) {
        self.embeddings = embeddings
        self.mask = mask
    }

    public var count: Int { embeddings.shape[0] }
}

/// The v1.2 sampling loop with classifier-free guidance (§8): the batch is `[cond; uncond]` with
/// the null caption `y_embedding`, the conditional mask (tiled by the model), and
/// `v = v_u + s·(v_c − v_u)` on the first channel half; `z ← z + v·dt`.
public struct RectifiedFlowSampler {
    public let model: STDiT3
    public var cfgScale: Float
    public var fps: Float

    public init(model: STDiT3, cfgScale: Float, fps: Float = 24) {
        self.model = model
        self.cfgScale = cfgScale
        self.fps = fps
    }

    /// One guided evaluation: the CFG batch `[cond; uncond]` at timestep `t`, combined as
    /// `v = v_u + s·(v_c − v_u)` on the first `Cin` channels. Returns `v` with `z`'s shape.
    public func guidedVelocity(_ z: Tensor, condition: TextCondition, timestep t: Float, step: Int?, height: Float, width: Float,
                               executor: LinearExecutor = Float32Executor()) throws -> [Float] {
        let n = z.shape[0]
        let cin = model.config.inChannels
        let perSample = z.count / n
        let out = try model.forward(try guidedInputs(z, condition: condition, timestep: t, height: height, width: width),
                                    executor: executor, step: step)
        let cout = model.config.outChannels
        let frame = perSample / cin   // T·H·W
        var v = [Float](repeating: 0, count: z.count)
        for b in 0..<n {
            for c in 0..<cin {
                let cond = (b * cout + c) * frame, uncond = ((n + b) * cout + c) * frame
                let dst = (b * cin + c) * frame
                for j in 0..<frame {
                    let vu = out.scalars[uncond + j]
                    v[dst + j] = vu + cfgScale * (out.scalars[cond + j] - vu)
                }
            }
        }
        return v
    }

    /// The model inputs of one guided evaluation: the CFG batch `[cond; uncond]` of `z`
    /// `[n, Cin, T, H, W]` at timestep `t`, the null caption for the unconditional half.
    public func guidedInputs(_ z: Tensor, condition: TextCondition, timestep t: Float, height: Float, width: Float) throws -> ModelInputs {
        let n = z.shape[0]
        precondition(condition.count == n, "\(condition.count) prompts for \(n) latents")
        let L = condition.embeddings.shape[2], cc = condition.embeddings.shape[3]
        guard L <= model.config.modelMaxLength, cc == model.config.captionChannels else {
            throw ModelLoadError("caption embeddings are [\(L), \(cc)], the model takes at most [\(model.config.modelMaxLength), \(model.config.captionChannels)]")
        }
        var y = condition.embeddings.scalars
        for _ in 0..<n { y += model.nullCaption.prefix(L * cc) }
        return ModelInputs(x: Tensor(shape: [2 * n] + Array(z.shape.dropFirst()), scalars: z.scalars + z.scalars),
                           timestep: [Float](repeating: t, count: 2 * n), y: Tensor(shape: [2 * n, 1, L, cc], scalars: y),
                           mask: condition.mask, fps: [fps], height: [height], width: [width])
    }

    /// Runs every step from `noise` `[n, Cin, T, H, W]`; `height`/`width` are the pixel sizes the
    /// model's positional scale uses. `onStep(i, z)` sees the latent after each step.
    public func sample(noise: Tensor, condition: TextCondition, schedule: RectifiedFlowSchedule, height: Float, width: Float,
                       executor: LinearExecutor = Float32Executor(),
                       onStep: (Int, Tensor) throws -> Void = { _, _ in }) throws -> Tensor {
        var z = noise
        for (i, t) in schedule.timesteps.enumerated() {
            let v = try guidedVelocity(z, condition: condition, timestep: t, step: i, height: height, width: width, executor: executor)
            let dt = schedule.dt[i]
            for j in 0..<z.count { z.scalars[j] += v[j] * dt }
            try onStep(i, z)
        }
        return z
    }
}
