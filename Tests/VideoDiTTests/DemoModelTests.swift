import DemoModel
import Evaluation
import Foundation
import Testing
import Tensors
@testable import VideoDiT

// The shipped demo checkpoint against PyTorch (tools/export_demo_model.py: the training script's
// own model class, float32 compute on the same fp16 weights). The checkpoint stores rope.freqs in
// fp16 and PyTorch's module uses the stored buffer, as the forward here now does: agreement to
// 3e-6 of max|out| (float32 summation order); with recomputed exact frequencies it was 1.4e-5.

@Test func bundledDemoModelMatchesPyTorch() throws {
    let path = try #require(DemoModel.checkpointPath, "the demo model resource is missing")
    let loaded = try ModelLoader.load(path: path)
    #expect(loaded.model.config.inChannels == 3 && loaded.model.config.architecture == .stdit3)
    let golden = try fixtureFile("../demo-golden.safetensors")
    let out = try loaded.model.forward(try ModelInputs(file: golden), executor: Float32Executor(), step: nil)
    expectClose(out.scalars, try golden.tensor("out").scalars, "demo model out", tolerance: 3e-6)
    #expect((loaded.model as? STDiT3)?.ropeSource == "the checkpoint's rope.freqs")
    // Its text encoder gives the same caption embedding as the training script's.
    let encoder = try #require(loaded.textEncoder)
    let condition = try encoder.encode([try #require(golden.metadataValue("prompt"))])
    expectClose(condition.embeddings.scalars, try golden.tensor("y_cond").scalars, "caption embedding", tolerance: 1e-6)
    #expect(condition.mask == [try golden.view("mask").toInts()])
    #expect(loaded.samplerDefaults?.steps == 30 && loaded.samplerDefaults?.useTimestepTransform == false)
}

/// Opening a checkpoint reads none of its block linears' weights: each is read on first use, and
/// a copy or its column maxima can be had without keeping it.
@Test func blockLinearsReadTheirWeightsOnFirstUse() throws {
    let path = try #require(DemoModel.checkpointPath)
    let model = try ModelLoader.load(path: path, facts: nil).model
    #expect(model.blockLinears.allSatisfy { !$0.isLoaded })
    let file = try SafetensorsFile(path: path)
    let fc2 = try #require(model.blockLinears.first { $0.name.hasSuffix("mlp.fc2") })
    let expected = try file.tensor(fc2.name + ".weight").scalars
    #expect(fc2.weightCopy() == expected)
    let columnMaxima = (0..<fc2.inputs).map { k in (0..<fc2.outputs).map { abs(expected[$0 * fc2.inputs + k]) }.max()! }
    #expect(fc2.inputAbsMax == columnMaxima)
    #expect(!fc2.isLoaded)
    #expect(fc2.weight == expected && fc2.isLoaded)
    #expect(fc2.weightCopy() == expected && fc2.inputAbsMax == columnMaxima)
}
