import DemoModel
import Foundation
import Testing
import Tensors
@testable import Quantization
@testable import VideoDiT

@Test func calibrationRecordsEveryLayerAndStepAndTheCacheRoundTrips() throws {
    let path = try #require(DemoModel.checkpointPath)
    let loaded = try ModelLoader.load(path: path)
    let model = try #require(loaded.model as? STDiT3)
    let encoder = try #require(loaded.textEncoder)
    let prompts = ["a red circle moving left on a blue background", "a green square growing on a black background"]
    let calibrator = Calibrator(model: model, steps: 2, cfgScale: 5, size: [8, 32, 32], transformRatio: nil)
    let statistics = try calibrator.run(conditions: try prompts.map { try encoder.encode([$0]) }, seeds: [3])
    #expect(statistics.count == model.blockLinears.count)
    let qkv = try #require(statistics["spatial_blocks.0.attn.qkv"])
    #expect(Set(qkv.keys) == [0, 1])
    // One CFG batch of 2 prompts × (cond, uncond) × all video tokens per step.
    let patch = model.config.patchSize
    let tokens = (8 / patch[0]) * (32 / patch[1]) * (32 / patch[2])
    #expect(qkv[0]!.rows == 4 * tokens)
    #expect(qkv[0]!.reservoir.count == 32 * 128)
    // Caption tokens: 9 words + EOS and 8 words + EOS, for the conditional and (tiled mask) unconditional halves.
    #expect(statistics["spatial_blocks.0.cross_attn.kv_linear"]![1]!.rows == 2 * (10 + 9))

    let cache = CalibrationCache(directory: NSTemporaryDirectory() + "calibration-\(UUID().uuidString)")
    let key = CalibrationCache.Key(checkpointHash: try CalibrationCache.checkpointHash(path: path), prompts: prompts,
                                   sampler: "rflow", steps: 2, cfgScale: 5, seeds: [3])
    #expect(try cache.load(key) == nil)
    try cache.save(statistics, for: key)
    let loadedBack = try #require(try cache.load(key))
    let same = loadedBack == statistics
    #expect(same, "statistics changed on the way through the cache")
    var other = key
    other.seeds = [4]
    #expect(try cache.load(other) == nil)
}

@Test func promptListsSkipCommentsAndBlankLines() {
    #expect(CalibrationSetup.readPrompts("# eval\n\n a red circle moving left on a blue background \n#x\n") ==
            ["a red circle moving left on a blue background"])
}
