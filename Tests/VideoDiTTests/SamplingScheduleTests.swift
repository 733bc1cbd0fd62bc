import DemoModel
import Foundation
import Testing
import Tensors
@testable import VideoDiT

// `RectifiedFlowSchedule.forSampling`: the one schedule `sample`, calibration and fidelity build.

private func defaults(_ json: String) throws -> SamplerDefaults { SamplerDefaults(json: try JSONValue.parse(json)) }

@Test func demoModelScheduleIsTheUntransformedOne() throws {
    let path = try #require(DemoModel.checkpointPath)
    let d = try #require(try ModelLoader.load(path: path).samplerDefaults)
    let frames = try #require(d.frames), height = try #require(d.height), width = try #require(d.width)
    let schedule = try RectifiedFlowSchedule.forSampling(steps: try #require(d.steps), defaults: d, disableTransform: false, frames: frames,
                                                         pixelHeight: Float(height), pixelWidth: Float(width), pixelSpace: true)
    // The demo was trained and has always been sampled without the transform (use_timestep_transform false).
    #expect(schedule == RectifiedFlowSchedule(steps: 30, ratio: nil))
    #expect(schedule.timesteps == (try fixtureFile("samplers.safetensors").tensor("rf.no_transform.timesteps").scalars))
}

@Test func latentFramesStandForOpenSorasVideoFrames() throws {
    // Latent T = 15 is OpenSora's 51 frames (15 / 5 · 17).
    let schedule = try RectifiedFlowSchedule.forSampling(steps: 30, defaults: nil, disableTransform: false, frames: 15,
                                                         pixelHeight: 240, pixelWidth: 426, pixelSpace: false)
    expectULPs(schedule.timesteps, try fixtureFile("samplers.safetensors").tensor("rf.240x426x51.timesteps").scalars, "t'")
    // One latent frame is one video frame: only the spatial ratio.
    let single = try RectifiedFlowSchedule.transformRatio(defaults: nil, disableTransform: false, frames: 1,
                                                          pixelHeight: 1024, pixelWidth: 1024, pixelSpace: false)
    #expect(single == 2)
}

@Test(arguments: [(2, false), (3, false), (4, false), (0, false), (8, true), (16, true), (0, true)])
func undefinedTransformRatiosAreRefused(frames: Int, pixelSpace: Bool) throws {
    #expect(throws: SamplingError.self) {
        _ = try RectifiedFlowSchedule.forSampling(steps: 30, defaults: nil, disableTransform: false, frames: frames,
                                                  pixelHeight: 256, pixelWidth: 256, pixelSpace: pixelSpace)
    }
    // Without the transform the same size samples.
    let plain = try RectifiedFlowSchedule.forSampling(steps: 30, defaults: nil, disableTransform: true, frames: frames,
                                                      pixelHeight: 256, pixelWidth: 256, pixelSpace: pixelSpace)
    let finite = plain.timesteps.allSatisfy { $0.isFinite }
    #expect(finite)
}

@Test func timestepShiftAppliesOnlyWithTheTransformOn() throws {
    func ratio(_ json: String, disable: Bool = false) throws -> Float? {
        try RectifiedFlowSchedule.transformRatio(defaults: try defaults(json), disableTransform: disable, frames: 15,
                                                 pixelHeight: 240, pixelWidth: 426, pixelSpace: false)
    }
    #expect(try ratio(#"{"use_timestep_transform": true, "timestep_shift": 3.0}"#) == 3)
    #expect(try ratio(#"{"timestep_shift": 3.0}"#) == 3)
    #expect(try ratio(#"{"use_timestep_transform": false, "timestep_shift": 3.0}"#) == nil)
    #expect(try ratio(#"{"use_timestep_transform": true, "timestep_shift": 3.0}"#, disable: true) == nil)
    let resolution = RectifiedFlowSchedule.Transform(height: 240, width: 426, numFrames: 51).ratio
    #expect(try ratio(#"{"use_timestep_transform": true}"#) == resolution)
    for bad in ["0", "-2"] {
        #expect(throws: SamplingError.self) { try ratio(#"{"timestep_shift": \#(bad)}"#) }
    }
}

@Test(arguments: [0, -1, RectifiedFlowSchedule.maximumSteps + 1])
func rectifiedFlowStepsOutOfRangeAreRefused(steps: Int) {
    #expect(throws: SamplingError.self) {
        _ = try RectifiedFlowSchedule.forSampling(steps: steps, defaults: nil, disableTransform: true, frames: 1,
                                                  pixelHeight: 32, pixelWidth: 32, pixelSpace: true)
    }
}
