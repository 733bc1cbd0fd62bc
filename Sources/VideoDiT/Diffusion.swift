import Foundation
import Tensors

/// OpenSora v1.0's respaced Gaussian diffusion (OPENSORA.md §9.1): linear β over 1000 steps,
/// guided-diffusion's `space_timesteps` respacing, float64 tables gathered as float32.
public struct RespacedDiffusion: Sendable {
    /// Original timestep τ of each respaced index, ascending (the model is called with τ).
    public let timestepMap: [Int]
    public let betas: [Double]
    public let alphasCumprod: [Double]
    let alphasCumprodPrevious: [Double]

    public init(samplingSteps: Int, numTimesteps: Int = 1000) {
        precondition(samplingSteps >= 1 && samplingSteps <= numTimesteps, "steps must be 1…\(numTimesteps)")
        // np.linspace(1e-4, 0.02, T): start + i·step, last value exactly the end.
        let step = (0.02 - 0.0001) / Double(numTimesteps - 1)
        let base = (0..<numTimesteps).map { $0 == numTimesteps - 1 ? 0.02 : 0.0001 + Double($0) * step }
        var cumulative: [Double] = []
        var product = 1.0
        for beta in base { product *= 1 - beta; cumulative.append(product) }
        // One section: stride (T−1)/(K−1), kept indices round(k·stride) with the stride accumulated.
        var kept = Set<Int>()
        let stride = samplingSteps <= 1 ? 1 : Double(numTimesteps - 1) / Double(samplingSteps - 1)
        var current = 0.0
        for _ in 0..<samplingSteps {
            kept.insert(Int(current.rounded(.toNearestOrEven)))
            current += stride
        }
        timestepMap = kept.sorted()
        var last = 1.0
        var respaced: [Double] = []
        for tau in timestepMap {
            respaced.append(1 - cumulative[tau] / last)
            last = cumulative[tau]
        }
        betas = respaced
        var ac: [Double] = []
        product = 1
        for beta in respaced { product *= 1 - beta; ac.append(product) }
        alphasCumprod = ac
        alphasCumprodPrevious = [1] + ac.dropLast()
    }

    /// Coefficients of respaced index k, as float32.
    struct Coefficients {
        let sqrtRecipAlphaBar, sqrtRecipAlphaBarMinusOne, meanCoefficient1, meanCoefficient2: Float
        let logVarianceClipped, logBeta, alphaBarPrevious: Float
    }

    func coefficients(_ k: Int) -> Coefficients {
        let (b, ac, prev) = (betas[k], alphasCumprod[k], alphasCumprodPrevious[k])
        func posteriorVariance(_ i: Int) -> Double { betas[i] * (1 - alphasCumprodPrevious[i]) / (1 - alphasCumprod[i]) }
        let clipped = betas.count > 1 ? (k == 0 ? posteriorVariance(1) : posteriorVariance(k)) : posteriorVariance(k)
        return Coefficients(sqrtRecipAlphaBar: Float((1 / ac).squareRoot()), sqrtRecipAlphaBarMinusOne: Float((1 / ac - 1).squareRoot()),
                            meanCoefficient1: Float(b * prev.squareRoot() / (1 - ac)),
                            meanCoefficient2: Float((1 - prev) * (1 - b).squareRoot() / (1 - ac)),
                            logVarianceClipped: Float(log(clipped)), logBeta: Float(log(b)), alphaBarPrevious: Float(prev))
    }
}

/// v1.0 sampling with CFG (§8): the latent batch is `[z; z]`, only its first half is fed (twice) to
/// the model, the first `cfgChannels` output channels are guided and shared by both halves.
public struct DiffusionSampler {
    public enum Kind: String, Sendable { case iddpm, ddim }

    public let model: STDiT
    public let diffusion: RespacedDiffusion
    public var kind: Kind
    public var cfgScale: Float
    /// 3 reproduces the v1.0.0 release, 4 the later fix (all ε channels guided).
    public var cfgChannels: Int

    /// - Throws: `SamplingError` for steps outside 1…1000, guided channels outside 1…Cout, or IDDPM
    ///   on a model without a learned variance (`pred_sigma`).
    public init(model: STDiT, steps: Int, kind: Kind, cfgScale: Float, cfgChannels: Int = 3) throws {
        guard (1...1000).contains(steps) else {
            throw SamplingError("\(kind.rawValue) takes 1…1000 steps (respaced from OpenSora's 1000), got \(steps)")
        }
        let cout = model.config.outChannels
        guard (1...cout).contains(cfgChannels) else {
            throw SamplingError("guided channels (--cfg-channels) must be 1…\(cout) for a model with \(cout) output channels, got \(cfgChannels)")
        }
        guard kind == .ddim || model.config.predSigma else {
            throw SamplingError("iddpm needs a model that predicts its variance (pred_sigma); this one does not: use ddim")
        }
        self.model = model
        diffusion = RespacedDiffusion(samplingSteps: steps)
        self.kind = kind
        self.cfgScale = cfgScale
        self.cfgChannels = cfgChannels
    }

    /// `noise` `[n, Cin, T, H, W]`; `stepNoise(i)` gives the `[2n, Cin, T, H, W]` draw of step i
    /// (IDDPM only). `onStep(i, x)` sees the whole `[2n, …]` latent after step i. Returns `[n, …]`.
    public func sample(noise: Tensor, condition: TextCondition, executor: LinearExecutor = Float32Executor(),
                       stepNoise: (Int) -> Tensor, onStep: (Int, Tensor) throws -> Void = { _, _ in }) throws -> Tensor {
        let cin = model.config.inChannels, cout = model.config.outChannels
        guard noise.shape.count == 5, noise.shape[0] >= 1, noise.shape[1] == cin, noise.count > 0 else {
            throw SamplingError("noise must be [n ≥ 1, \(cin), T, H, W] with every size positive, found \(noise.shape)")
        }
        let n = noise.shape[0]
        guard condition.count == n, condition.mask.count == n else {
            throw SamplingError("\(condition.count) captions (\(condition.mask.count) masks) for \(n) latents")
        }
        guard (1...cout).contains(cfgChannels) else {
            throw SamplingError("guided channels must be 1…\(cout) for a model with \(cout) output channels, got \(cfgChannels)")
        }
        guard kind == .ddim || cout == 2 * cin else {
            throw SamplingError("iddpm needs a model that predicts its variance (pred_sigma); this one does not: use ddim")
        }
        let frame = noise.count / (n * cin)
        guard condition.embeddings.shape.count == 4 else {
            throw SamplingError("caption embeddings must be [n, 1, L, C], found \(condition.embeddings.shape)")
        }
        let L = condition.embeddings.shape[2], cc = condition.embeddings.shape[3]
        guard L >= 1, L <= model.config.modelMaxLength, cc == model.config.captionChannels else {
            throw ModelLoadError("caption embeddings are [\(L), \(cc)], the model takes 1…\(model.config.modelMaxLength) tokens of \(model.config.captionChannels) channels")
        }
        var y = condition.embeddings.scalars
        for _ in 0..<n { y += model.nullCaption.prefix(L * cc) }
        let yBatch = Tensor(shape: [2 * n, 1, L, cc], scalars: y)
        var x = Tensor(shape: [2 * n] + Array(noise.shape.dropFirst()), scalars: noise.scalars + noise.scalars)
        let K = diffusion.timestepMap.count
        for (step, k) in (0..<K).reversed().enumerated() {
            let tau = Float(diffusion.timestepMap[k])
            let half = Array(x.scalars[0..<(n * cin * frame)])
            let inputs = ModelInputs(x: Tensor(shape: x.shape, scalars: half + half), timestep: [Float](repeating: tau, count: 2 * n),
                                     y: yBatch, mask: condition.mask, fps: [], height: [], width: [])
            var out = try model.forward(inputs, executor: executor, step: step).scalars
            for b in 0..<n {
                for c in 0..<cfgChannels {
                    let cond = (b * cout + c) * frame, uncond = ((n + b) * cout + c) * frame
                    for j in 0..<frame {
                        let g = out[uncond + j] + cfgScale * (out[cond + j] - out[uncond + j])
                        out[cond + j] = g
                        out[uncond + j] = g
                    }
                }
            }
            let co = diffusion.coefficients(k)
            let draw = kind == .iddpm ? stepNoise(step) : nil
            if let draw, draw.count != x.count {
                throw SamplingError("step \(step)'s noise has \(draw.count) values, the [2n, …] latent \(x.count)")
            }
            for b in 0..<(2 * n) {
                for c in 0..<cin {
                    for j in 0..<frame {
                        let xi = (b * cin + c) * frame + j
                        let eps = out[(b * cout + c) * frame + j]
                        let xv = x.scalars[xi]
                        let x0 = co.sqrtRecipAlphaBar * xv - co.sqrtRecipAlphaBarMinusOne * eps
                        switch kind {
                        case .iddpm:
                            let v = out[(b * cout + cin + c) * frame + j]
                            let fraction = (v + 1) / 2
                            let logVariance = fraction * co.logBeta + (1 - fraction) * co.logVarianceClipped
                            let mean = co.meanCoefficient1 * x0 + co.meanCoefficient2 * xv
                            x.scalars[xi] = k == 0 ? mean : mean + expf(0.5 * logVariance) * draw!.scalars[xi]
                        case .ddim:
                            let epsilon = (co.sqrtRecipAlphaBar * xv - x0) / co.sqrtRecipAlphaBarMinusOne
                            x.scalars[xi] = x0 * co.alphaBarPrevious.squareRoot() + (1 - co.alphaBarPrevious).squareRoot() * epsilon
                        }
                    }
                }
            }
            try onStep(step, x)
        }
        return Tensor(shape: noise.shape, scalars: Array(x.scalars[0..<noise.count]))
    }
}
