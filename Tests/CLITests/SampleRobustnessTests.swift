import Foundation
import Testing

// Bad sampler settings end in exit status 1 and one line on stderr, never a signal or NaN samples.

/// Runs `arguments` and expects a clean refusal: status 1, no signal, one stderr line containing `text`.
func expectRefusal(_ arguments: [String], mentioning text: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
    let result = try runTool(arguments)
    #expect(!result.exitedBySignal, "\(arguments) died by a signal: \(result.stderr)", sourceLocation: sourceLocation)
    #expect(result.status == 1, "\(arguments): status \(result.status)", sourceLocation: sourceLocation)
    let lines = result.stderr.split(separator: "\n")
    #expect(lines.count == 1, "\(arguments): \(result.stderr)", sourceLocation: sourceLocation)
    #expect(result.stderr.contains(text), "\(arguments): \(result.stderr)", sourceLocation: sourceLocation)
}

func temporaryOutput() -> String { NSTemporaryDirectory() + "sample-\(UUID().uuidString).safetensors" }

@Test(arguments: ["2,4,4", "3,4,4", "4,4,4"])
func sampleRefusesLatentLengthsTheTimestepTransformCannotTake(size: String) throws {
    try expectRefusal(["sample", engineFixture("stdit3-tiny.safetensors"), "--null-caption", "--steps", "2", "--size", size,
                       "--out", temporaryOutput()], mentioning: "--no-transform")
}

@Test func sampleWithoutTheTransformTakesShortLatents() throws {
    let output = temporaryOutput()
    let result = try runTool(["sample", engineFixture("stdit3-tiny.safetensors"), "--null-caption", "--steps", "2", "--size", "2,4,4",
                              "--no-transform", "--out", output])
    #expect(result.status == 0, "\(result.stderr)")
    try expectFiniteValues(in: output, ["samples"], bound: 1e3)
}

/// A copy of a safetensors file with some tensors cut to their first `rows` rows, some replaced by
/// F32 zeros of another shape, and metadata entries replaced (Foundation only: the CLI tests drive
/// the binary, not the libraries).
func rewrittenCheckpoint(_ source: String, rows: [String: Int] = [:], zeros: [String: [Int]] = [:],
                         metadata: [String: String] = [:]) throws -> String {
    let file = try Data(contentsOf: URL(fileURLWithPath: source))
    let headerLength = Int(file.prefix(8).enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) })
    let header = try #require(try JSONSerialization.jsonObject(with: file.subdata(in: 8..<(8 + headerLength))) as? [String: Any])
    let data = file.subdata(in: (8 + headerLength)..<file.count)
    var newHeader: [String: Any] = [:]
    var newData = Data()
    var oldMetadata = header["__metadata__"] as? [String: String] ?? [:]
    for (key, value) in metadata { oldMetadata[key] = value }
    newHeader["__metadata__"] = oldMetadata
    for (name, value) in header where name != "__metadata__" {
        let entry = try #require(value as? [String: Any])
        var shape = try #require(entry["shape"] as? [Int])
        var dtype = try #require(entry["dtype"] as? String)
        let offsets = try #require(entry["data_offsets"] as? [Int])
        var bytes = data.subdata(in: offsets[0]..<offsets[1])
        if let keep = rows[name] {
            bytes = bytes.prefix(bytes.count / shape[0] * keep)
            shape[0] = keep
        }
        if let zeroShape = zeros[name] {
            (shape, dtype) = (zeroShape, "F32")
            bytes = Data(count: 4 * zeroShape.reduce(1, *))
        }
        newHeader[name] = ["dtype": dtype, "shape": shape, "data_offsets": [newData.count, newData.count + bytes.count]]
        newData.append(bytes)
    }
    let headerText = String(decoding: try JSONSerialization.data(withJSONObject: newHeader), as: UTF8.self)
    return writeTemporary(headerFile(headerText, data: [UInt8](newData)), name: "model.safetensors")
}

/// Caption embeddings: 'y' F32 [prompts, tokens, 32] of zeros and an all-ones I64 'mask'.
func embeddingsFile(prompts: Int, tokens: Int) -> String {
    let y = [UInt8](repeating: 0, count: prompts * tokens * 32 * 4)
    let mask = (0..<(prompts * tokens)).flatMap { _ in [UInt8]([1, 0, 0, 0, 0, 0, 0, 0]) }
    let header = #"{"y":{"dtype":"F32","shape":[\#(prompts),\#(tokens),32],"data_offsets":[0,\#(y.count)]},"#
        + #""mask":{"dtype":"I64","shape":[\#(prompts),\#(tokens)],"data_offsets":[\#(y.count),\#(y.count + mask.count)]}}"#
    return writeTemporary(headerFile(header, data: y + mask), name: "captions.safetensors")
}

@Test(arguments: [
    (["--steps", "0"], "steps"), (["--steps=-3"], "steps"), (["--steps", "10001"], "steps"),
    (["--fps", "nan"], "--fps"), (["--fps", "inf"], "--fps"), (["--fps", "0"], "--fps"), (["--fps=-24"], "--fps"),
    (["--cfg", "nan"], "--cfg"),
    (["--size", "0,4,4"], "--size"), (["--size", "4097,4,4"], "1…4096"), (["--size", "4096,4096,4096"], "values of noise"),
    (["--size", "99999999999999999999,1,1"], "--size"),
])
func sampleRefusesBadRectifiedFlowSettings(arguments: [String], text: String) throws {
    try expectRefusal(["sample", engineFixture("stdit3-tiny.safetensors"), "--null-caption", "--out", temporaryOutput()] + arguments,
                      mentioning: text)
}

@Test(arguments: [
    (["--sampler", "iddpm", "--steps", "0"], "1…1000"), (["--sampler", "ddim", "--steps=-5"], "1…1000"),
    (["--sampler", "iddpm", "--steps", "1001"], "1…1000"), (["--sampler", "ddim", "--steps", "100000"], "1…1000"),
    (["--cfg-channels", "0"], "--cfg-channels"), (["--cfg-channels=-1"], "--cfg-channels"), (["--cfg-channels", "9"], "--cfg-channels"),
    (["--fps", "nan"], "--fps"),
])
func sampleRefusesBadDiffusionSettings(arguments: [String], text: String) throws {
    try expectRefusal(["sample", engineFixture("stdit-tiny.safetensors"), "--null-caption", "--size", "3,4,6",
                       "--out", temporaryOutput()] + arguments, mentioning: text)
}

@Test func iddpmNeedsALearnedVariance() throws {
    let config = #"{"caption_channels": 32, "depth": 2, "hidden_size": 64, "in_channels": 4, "input_size": [3, 4, 6], "mlp_ratio": 4.0, "model_max_length": 12, "model_type": "STDiT", "num_heads": 4, "patch_size": [1, 2, 2], "pred_sigma": false, "space_scale": 0.5, "time_scale": 1.0}"#
    let model = try rewrittenCheckpoint(engineFixture("stdit-tiny.safetensors"),
                                        rows: ["final_layer.linear.weight": 16, "final_layer.linear.bias": 16], metadata: ["config": config])
    try expectRefusal(["sample", model, "--null-caption", "--sampler", "iddpm", "--steps", "2", "--out", temporaryOutput()],
                      mentioning: "pred_sigma")
    try expectRefusal(["sample", model, "--null-caption", "--sampler", "ddim", "--steps", "2", "--cfg-channels", "5",
                       "--out", temporaryOutput()], mentioning: "--cfg-channels")
    let ddim = try runTool(["sample", model, "--null-caption", "--sampler", "ddim", "--steps", "2", "--out", temporaryOutput()])
    #expect(ddim.status == 0, "\(ddim.stderr)")
}

@Test(arguments: ["stdit3-tiny.safetensors", "stdit-tiny.safetensors"])
func sampleRefusesCaptionFilesItCannotUse(checkpoint: String) throws {
    let empty = embeddingsFile(prompts: 0, tokens: 12)
    try expectRefusal(["sample", engineFixture(checkpoint), "--embeddings", empty, "--out", temporaryOutput()], mentioning: empty)
    try expectRefusal(["sample", engineFixture(checkpoint), "--embeddings", embeddingsFile(prompts: 1, tokens: 13), "--steps", "2",
                       "--size", "5,4,4", "--out", temporaryOutput()], mentioning: "caption embeddings")
}

@Test(arguments: [(#"{"fps": 1e999, "frames": 5, "height": 4, "width": 4}"#, "fps"),
                  (#"{"frames": 100000, "height": 4, "width": 4}"#, "1…4096"),
                  (#"{"frames": 5, "height": 4, "width": 4, "num_sampling_steps": 0}"#, "steps"),
                  (#"{"frames": 5, "height": 4, "width": 4, "timestep_shift": -1}"#, "timestep_shift")])
func sampleRefusesBadSamplerDefaultsOfTheCheckpoint(sampler: String, text: String) throws {
    let model = try rewrittenCheckpoint(engineFixture("stdit3-tiny.safetensors"), metadata: ["sampler": sampler])
    try expectRefusal(["sample", model, "--null-caption", "--out", temporaryOutput()], mentioning: text)
}

/// The quantized-model options: a folder without an export, a step out of range, the flags
/// without `--quantized`, and a step count the export does not have, each refused by name.
@Test(arguments: [
    (["--fake-quant"], "--fake-quant"),
    (["--quantized", "/nonexistent-stsq-export"], "quantized.safetensors"),
])
func sampleRefusesBadQuantizedOptions(arguments: [String], text: String) throws {
    try expectRefusal(["sample", engineFixture("stdit3-tiny.safetensors"), "--null-caption", "--out", temporaryOutput()] + arguments,
                      mentioning: text)
}
