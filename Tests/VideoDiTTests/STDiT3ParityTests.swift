import Foundation
import Testing
import Tensors
@testable import VideoDiT

// Golden tensors from the independent PyTorch reference (tools/opensora_ref, written from
// OPENSORA.md; fixtures by tools/make_engine_fixtures.py). Tolerance: max|Δ| ≤ 1e-4·max|ref| per
// tensor — float32 with a different summation order (oneDNN blocking, our softmax and norms) drifts
// by ~1e-6 relative per layer; 1e-4 leaves room for depth, not for a wrong formula.

let engineFixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("Fixtures/engine")

func fixtureFile(_ name: String) throws -> SafetensorsFile {
    try SafetensorsFile(path: engineFixtures.appendingPathComponent(name).path)
}

/// max|Δ| / max|ref|, with a message naming the tensor on failure.
func expectClose(_ got: [Float], _ reference: [Float], _ what: String, tolerance: Float = 1e-4,
                 sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(got.count == reference.count, "\(what): \(got.count) values vs \(reference.count)", sourceLocation: sourceLocation)
    guard got.count == reference.count else { return }
    let scale = reference.reduce(0) { max($0, abs($1)) }
    var worst: Float = 0, at = 0
    for i in got.indices where abs(got[i] - reference[i]) > worst { worst = abs(got[i] - reference[i]); at = i }
    #expect(worst <= tolerance * max(scale, 1e-30),
            "\(what): max|Δ| \(worst) at \(at) (got \(got[at]), ref \(reference[at])), max|ref| \(scale), first got \(got.prefix(4)) ref \(reference.prefix(4))",
            sourceLocation: sourceLocation)
}

func loadSTDiT3() throws -> STDiT3 {
    let file = try fixtureFile("stdit3-tiny.safetensors")
    return try STDiT3(file: file, config: try ModelConfig.resolve(for: file))
}

@Test func stdit3ConfigComesFromTheFileBeside() throws {
    let config = try ModelConfig.resolve(for: try fixtureFile("stdit3-tiny.safetensors"))
    #expect(config.architecture == .stdit3)
    #expect(config.hiddenSize == 64 && config.numHeads == 4 && config.depth == 2)
    #expect(config.inputSquareSize == 64)
    #expect(config.outChannels == 8 && config.patchSize == [1, 2, 2])
}

@Test func stdit3ForwardMatchesPyTorchWithCFGPaddingAndMaskedText() throws {
    let model = try loadSTDiT3()
    let fixture = try fixtureFile("stdit3-tiny.forward-cfg.safetensors")
    let capture = CapturingExecutor(pattern: "*")
    let out = try model.forward(try ModelInputs(file: fixture), executor: capture)
    let reference = try fixture.tensor("out")
    #expect(out.shape == reference.shape)
    expectClose(out.scalars, reference.scalars, "out")
    // Every block linear's input, in the layout OpenSora feeds it.
    let names = (fixture.metadataValue("captured_layers") ?? "").split(separator: ",").map(String.init)
    #expect(names.count == 28)
    for name in names {
        let got = try #require(capture.captures.first { $0.layer == name }, "no capture of \(name)")
        expectClose(got.input, try fixture.tensor("capture." + name).scalars, "input of \(name)")
    }
}

@Test func stdit3ForwardMatchesPyTorchPerSampleTimestepsAndMasks() throws {
    let model = try loadSTDiT3()
    let fixture = try fixtureFile("stdit3-tiny.forward-batch.safetensors")
    let out = try model.forward(try ModelInputs(file: fixture))
    expectClose(out.scalars, try fixture.tensor("out").scalars, "out")
}

@Test func checkpointThatDoesNotMatchItsConfigListsTheKeys() throws {
    let file = try fixtureFile("stdit3-tiny.safetensors")
    var config = try ModelConfig.resolve(for: file)
    config.depth = 3
    config.mlpRatio = 2
    do {
        _ = try STDiT3(file: file, config: config)
        Issue.record("a wrong config was accepted")
    } catch let error as ModelLoadError {
        #expect(error.description.contains("missing 34: spatial_blocks.2.scale_shift_table"))
        #expect(error.description.contains("mis-shaped 12: spatial_blocks.0.mlp.fc1.weight is [256, 64], expected [128, 64]"))
    }
}

@Test func wildcardPatterns() {
    #expect(wildcardMatch("spatial_blocks.*.attn.qkv", "spatial_blocks.12.attn.qkv"))
    #expect(!wildcardMatch("spatial_blocks.*.attn.qkv", "temporal_blocks.1.attn.qkv"))
    #expect(wildcardMatch("*mlp*", "blocks.3.mlp.fc2"))
    #expect(wildcardMatch("*", "x"))
}

@Test func configIsReadOffTheShapesWhenNoneIsGiven() throws {
    for name in ["stdit3-tiny.safetensors", "stdit-tiny.safetensors"] {
        let file = try fixtureFile(name)
        var expected = try ModelConfig.resolve(for: file)
        let inferred = try ModelConfig.inferred(from: file)
        // Not in the shapes: the positional reference sizes; v1.0 heads assume D = 72 (here 16).
        expected.inputSquareSize = inferred.inputSquareSize
        expected.spaceScale = inferred.spaceScale
        if expected.architecture == .stdit { expected.numHeads = inferred.numHeads }
        #expect(inferred == expected, "\(name)")
    }
}
