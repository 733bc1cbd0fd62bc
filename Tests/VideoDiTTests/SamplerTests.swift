import Foundation
import Testing
import Tensors
@testable import VideoDiT

/// Float32 schedule arithmetic in the same order as the reference: equal to within 2 ulps.
func expectULPs(_ got: [Float], _ reference: [Float], _ what: String, ulps: Float = 2,
                sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(got.count == reference.count, sourceLocation: sourceLocation)
    for (i, (g, r)) in zip(got, reference).enumerated() where abs(g - r) > ulps * r.ulp {
        Issue.record("\(what)[\(i)]: \(g) vs \(r)", sourceLocation: sourceLocation)
        return
    }
}

@Test(arguments: [("240x426x51", 240, 426, 51), ("480x854x51", 480, 854, 51),
                  ("720x1280x51", 720, 1280, 51), ("720x1280x102", 720, 1280, 102)])
func rectifiedFlowScheduleMatchesThePresets(name: String, height: Int, width: Int, frames: Int) throws {
    let fixture = try fixtureFile("samplers.safetensors")
    let schedule = RectifiedFlowSchedule(steps: 30, transform: .init(height: Float(height), width: Float(width), numFrames: Float(frames)))
    expectULPs(schedule.timesteps, try fixture.tensor("rf.\(name).timesteps").scalars, "t'")
    expectULPs(schedule.dt, try fixture.tensor("rf.\(name).dt").scalars, "dt")
}

@Test func rectifiedFlowWithoutTransformIsLinear() throws {
    let schedule = RectifiedFlowSchedule(steps: 30, transform: nil)
    expectULPs(schedule.timesteps, try fixtureFile("samplers.safetensors").tensor("rf.no_transform.timesteps").scalars, "t")
    #expect(schedule.timesteps.first == 1000)
    #expect(abs(schedule.dt.reduce(0, +) - 1) < 1e-6)
}

@Test func rectifiedFlowTrajectoryMatchesPyTorch() throws {
    let model = try loadSTDiT3()
    let fixture = try fixtureFile("stdit3-tiny.rf5.safetensors")
    let z = try fixture.tensor("z")                    // [6, n, C, T, H, W]: z[0] noise, z[i+1] after step i
    let perState = z.count / z.shape[0]
    let noise = Tensor(shape: Array(z.shape.dropFirst()), scalars: Array(z.scalars[0..<perState]))
    let schedule = RectifiedFlowSchedule(steps: 5, transform: .init(height: 32, width: 40, numFrames: 51))
    expectULPs(schedule.timesteps, try fixture.tensor("timesteps").scalars, "t'")
    expectULPs(schedule.dt, try fixture.tensor("dt").scalars, "dt")
    let mask = try fixture.view("mask").toInts()
    let condition = TextCondition(embeddings: try fixture.tensor("y_cond"), mask: [mask])
    let sampler = RectifiedFlowSampler(model: model, cfgScale: 7, fps: 24)
    _ = try sampler.sample(noise: noise, condition: condition, schedule: schedule, height: 32, width: 40) { i, latent in
        let reference = Array(z.scalars[((i + 1) * perState)..<((i + 2) * perState)])
        expectClose(latent.scalars, reference, "z after step \(i)")
    }
}

@Test func noiseIsReproducibleAndStandardNormal() {
    var a = NoiseGenerator(seed: 42), b = NoiseGenerator(seed: 42), c = NoiseGenerator(seed: 43)
    let x = a.gaussian(shape: [20_000]).scalars
    #expect(x == b.gaussian(shape: [20_000]).scalars)
    #expect(x != c.gaussian(shape: [20_000]).scalars)
    let mean = x.reduce(0, +) / Float(x.count)
    let variance = x.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Float(x.count)
    #expect(abs(mean) < 0.03 && abs(variance - 1) < 0.04)
    // PCG32's published first outputs for seed 42, stream 54 (pcg32-demo).
    var pcg = NoiseGenerator(seed: 42, stream: 54)
    #expect((0..<3).map { _ in pcg.nextUInt32() } == [0xa15c02b7, 0x7b47f409, 0xba1d3330])
}
