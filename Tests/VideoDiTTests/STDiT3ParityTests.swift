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

/// A stored `rope.freqs` is what the forward rotates by (OpenSora's module uses its buffer): the
/// tiny fixture with its frequencies rounded to fp16 gives a different output than with them
/// removed (recomputed), and a `rope.freqs` of the wrong length is refused naming the tensor.
@Test func theCheckpointsRopeFrequenciesAreUsedAndChecked() throws {
    let file = try fixtureFile("stdit3-tiny.safetensors")
    let config = try ModelConfig.resolve(for: file)
    func variant(_ rope: Tensor?) throws -> SafetensorsFile {
        var w = SafetensorsWriter()
        for entry in file.entries where entry.name != "rope.freqs" { w.add(entry.name, try file.tensor(entry.name)) }
        if let rope { w.add("rope.freqs", rope) }
        let path = NSTemporaryDirectory() + "stsq-rope-\(UUID().uuidString).safetensors"
        try w.write(to: path)
        defer { try? FileManager.default.removeItem(atPath: path) }   // mapped: readable after unlinking
        return try SafetensorsFile(path: path)
    }
    let exact = try file.tensor("rope.freqs")
    let rounded = Tensor(shape: exact.shape, scalars: exact.scalars.map { Float(Float16($0)) })
    let withStored = try STDiT3(file: try variant(rounded), config: config)
    let recomputed = try STDiT3(file: try variant(nil), config: config)
    #expect(withStored.ropeSource == "the checkpoint's rope.freqs" && recomputed.ropeSource.hasPrefix("recomputed"))
    #expect(withStored.ropeFrequencies == rounded.scalars && withStored.ropeFrequencies != recomputed.ropeFrequencies)
    let inputs = try ModelInputs(file: try fixtureFile("stdit3-tiny.forward-cfg.safetensors"))
    #expect(try withStored.forward(inputs).scalars != recomputed.forward(inputs).scalars)
    #expect(throws: ModelLoadError.self) { try STDiT3(file: try variant(Tensor(shape: [3], scalars: [1, 0.5, 0.25])), config: config) }
}
