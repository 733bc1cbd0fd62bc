import Foundation
import Testing
import Tensors
@testable import VideoDiT

@Test(arguments: [100, 20, 5])
func respacedScheduleMatchesGuidedDiffusion(steps: Int) throws {
    let fixture = try fixtureFile("samplers.safetensors")
    let diffusion = RespacedDiffusion(samplingSteps: steps)
    #expect(diffusion.timestepMap == (try fixture.view("iddpm.respaced\(steps)").toInts()))
    // Float64 tables from the same float64 formulas: equal to ~1e-15 relative.
    let betas = try fixture.view("iddpm.respaced\(steps).betas").withElements(as: Double.self, Array.init)
    let alphas = try fixture.view("iddpm.respaced\(steps).alphas_cumprod").withElements(as: Double.self, Array.init)
    for k in betas.indices {
        #expect(abs(diffusion.betas[k] - betas[k]) <= 1e-12 * betas[k], "beta[\(k)]")
        #expect(abs(diffusion.alphasCumprod[k] - alphas[k]) <= 1e-12 * alphas[k], "alpha_bar[\(k)]")
    }
}

@Test func respacedHundredStepListIsTheDocumentedOne() {
    let map = RespacedDiffusion(samplingSteps: 100).timestepMap
    #expect(map.prefix(8) == [0, 10, 20, 30, 40, 50, 61, 71])
    #expect(map.suffix(3) == [979, 989, 999])
}

@Test(arguments: [("stdit-tiny.iddpm5-cfgch3.safetensors", DiffusionSampler.Kind.iddpm, 3),
                  ("stdit-tiny.iddpm5-cfgch4.safetensors", .iddpm, 4),
                  ("stdit-tiny.ddim5-cfgch3.safetensors", .ddim, 3)])
func diffusionTrajectoriesMatchPyTorch(name: String, kind: DiffusionSampler.Kind, channels: Int) throws {
    let model = try loadSTDiT()
    let fixture = try fixtureFile(name)
    let x = try fixture.tensor("x")                         // [6, 2n, C, T, H, W]
    let state = x.count / x.shape[0]
    let n = x.shape[1] / 2
    let noise = Tensor(shape: [n] + Array(x.shape.dropFirst(2)), scalars: Array(x.scalars[0..<(state / 2)]))
    let draws = kind == .iddpm ? try fixture.tensor("noise") : nil
    let condition = TextCondition(embeddings: try fixture.tensor("y_cond"), mask: [try fixture.view("mask").toInts()])
    let sampler = try DiffusionSampler(model: model, steps: 5, kind: kind, cfgScale: 7, cfgChannels: channels)
    #expect(sampler.diffusion.timestepMap.reversed() == (try fixture.view("timesteps").toInts()))
    _ = try sampler.sample(noise: noise, condition: condition, stepNoise: { i in
        Tensor(shape: Array(x.shape.dropFirst()), scalars: Array(draws!.scalars[(i * state)..<((i + 1) * state)]))
    }) { i, latent in
        expectClose(latent.scalars, Array(x.scalars[((i + 1) * state)..<((i + 2) * state)]), "\(kind) x after step \(i)")
    }
}
