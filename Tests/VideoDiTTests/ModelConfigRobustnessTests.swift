import Foundation
import Testing
import Tensors
@testable import VideoDiT

// Corrupt configs and degenerate shapes are refused with the file and the key, never a trap.

private func config(_ members: String) throws -> ModelConfig {
    try ModelConfig(json: try JSONValue.parse(#"{"model_type": "STDiT3", \#(members)}"#), source: "bad/config.json")
}

private func expectRefusal(_ members: String, naming key: String, sourceLocation: SourceLocation = #_sourceLocation) {
    do {
        _ = try config(members)
        Issue.record("\(members) was accepted", sourceLocation: sourceLocation)
    } catch let error as ModelLoadError {
        #expect(error.description.contains("bad/config.json") && error.description.contains("'\(key)'"), "\(error)",
                sourceLocation: sourceLocation)
    } catch {
        Issue.record("\(members): \(error)", sourceLocation: sourceLocation)
    }
}

@Test(arguments: ["hidden_size", "depth", "num_heads", "in_channels", "caption_channels", "model_max_length"])
func integerKeysOutOfRangeAreRefused(key: String) {
    for value in ["1e300", "-1e300", "1e20", "99999999999999999999", "9999999", "0", "-4", "2.5", "\"4\"", "null"] {
        expectRefusal(#""\#(key)": \#(value)"#, naming: key)
    }
}

@Test func realNumberKeysMustBeFiniteAndPositive() {
    for key in ["mlp_ratio", "input_sq_size", "space_scale", "time_scale"] {
        for value in ["1e999", "-1e999", "0", "-2", "\"4\""] {
            expectRefusal(#""\#(key)": \#(value)"#, naming: key)
        }
    }
    expectRefusal(#""mlp_ratio": 1e300"#, naming: "mlp_ratio")
    expectRefusal(#""mlp_ratio": 0.0001"#, naming: "mlp_ratio")
    for patch in ["[1, 1e300, 2]", "[1, 100, 2]", "[1, 0, 2]", "[1, 2]"] {
        expectRefusal(#""patch_size": \#(patch)"#, naming: "patch_size")
    }
}

/// Values that parse but would overflow the Float positional scales to inf or 0 (the whole forward
/// pass NaN), and wrong types that a lenient reader dropped.
@Test func scalesThatOverflowAFloatAndWrongTypesAreRefused() {
    for value in ["1e308", "1e39", "0.5", "70000"] { expectRefusal(#""input_sq_size": \#(value)"#, naming: "input_sq_size") }
    for key in ["space_scale", "time_scale"] {
        for value in ["1e308", "1e-40", "5000"] { expectRefusal(#""\#(key)": \#(value)"#, naming: key) }
    }
    expectRefusal(#""patch_size": [2, 4, 4, "x"]"#, naming: "patch_size")
    expectRefusal(#""patch_size": [1, "2", 2]"#, naming: "patch_size")
    expectRefusal(#""patch_size": [1, null, 2]"#, naming: "patch_size")
    do { _ = try ModelConfig(json: try JSONValue.parse(#"{"model_type": 5}"#), source: "bad/config.json"); Issue.record("model_type 5 read") } catch {
        #expect("\(error)".contains("'model_type'"), "\(error)")
    }
}

/// A config.json beside the checkpoint that is there but cannot be read (not UTF-8, a symlink
/// loop, a FIFO, /dev/zero) is an error; it is never skipped for a config read off the shapes.
@Test func anUnreadableConfigBesideTheCheckpointIsAnError() throws {
    let source = try shapesFile(validShapes)
    let folder = NSTemporaryDirectory() + "config-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    let checkpoint = folder + "/model.safetensors"
    try FileManager.default.copyItem(atPath: source.path, toPath: checkpoint)
    let config = folder + "/config.json"
    let cases: [(String, () throws -> Void)] = [
        ("not UTF-8", { try Data([0x7B, 0xFF, 0x7D]).write(to: URL(fileURLWithPath: config)) }),
        ("symbolic links", { try FileManager.default.createSymbolicLink(atPath: config, withDestinationPath: config) }),
        ("FIFO", { #expect(mkfifo(config, 0o644) == 0) }),
        ("character device", { try FileManager.default.createSymbolicLink(atPath: config, withDestinationPath: "/dev/zero") }),
    ]
    for (reason, make) in cases {
        try? FileManager.default.removeItem(atPath: config)
        try make()
        do { _ = try ModelConfig.resolve(for: try SafetensorsFile(path: checkpoint)); Issue.record("\(reason): config skipped") } catch {
            #expect("\(error)".contains(config) && "\(error)".contains(reason), "\(error)")
        }
    }
    try FileManager.default.removeItem(atPath: config)
    #expect(try ModelConfig.resolve(for: try SafetensorsFile(path: checkpoint)).hiddenSize == 28)
}

@Test func integralDoublesAreStillIntegers() throws {
    #expect(try config(#""hidden_size": 128.0, "num_heads": 2, "depth": 4e0"#).depth == 4)
}

/// A checkpoint of U8 tensors with the given shapes (only the shapes matter to `inferred`).
private func shapesFile(_ shapes: [(String, [Int])]) throws -> SafetensorsFile {
    var writer = SafetensorsWriter()
    for (name, shape) in shapes { writer.add(name, dtype: .u8, shape: shape, bytes: [UInt8](repeating: 0, count: shape.reduce(1, *))) }
    let path = NSTemporaryDirectory() + "shapes-\(UUID().uuidString).safetensors"
    try writer.write(to: path)
    return try SafetensorsFile(path: path)
}

private let validShapes: [(String, [Int])] = [
    ("x_embedder.proj.weight", [28, 4, 1, 2, 2]), ("spatial_blocks.0.mlp.fc1.weight", [61, 28]),
    ("spatial_blocks.0.attn.q_norm.weight", [14]), ("y_embedder.y_embedding", [12, 32]),
    ("final_layer.linear.weight", [32, 28]), ("spatial_blocks.1.mlp.fc2.weight", [28, 61]),
]

@Test func inferredMLPRatioGivesBackTheHiddenWidth() throws {
    // 61 / 28 = 2.178571…, and int(28 · 2.178571…) is 60: the ratio must read back 61 rows.
    let config = try ModelConfig.inferred(from: try shapesFile(validShapes))
    #expect(config.mlpHidden == 61)
    #expect(config.mlpRatio == 2.2)
    #expect(config.depth == 2 && config.numHeads == 2 && config.hiddenSize == 28)
}

@Test(arguments: [
    ("x_embedder.proj.weight", [4, 4, 0, 2, 2]), ("x_embedder.proj.weight", [0, 4, 1, 2, 2]),
    ("x_embedder.proj.weight", [4, 4, 2, 2]), ("spatial_blocks.0.attn.q_norm.weight", [0]),
    ("y_embedder.y_embedding", [12]), ("final_layer.linear.weight", []), ("spatial_blocks.0.mlp.fc1.weight", [61]),
    ("spatial_blocks.0.mlp.fc1.weight", [0, 28]),
])
func inferredRefusesDegenerateShapes(name: String, shape: [Int]) throws {
    let file = try shapesFile(validShapes.filter { $0.0 != name } + [(name, shape)])
    #expect(throws: ModelLoadError.self) { _ = try ModelConfig.inferred(from: file) }
}

@Test func inferredRefusesAbsurdBlockNumbers() throws {
    for index in ["9223372036854775807", "5000"] {
        let file = try shapesFile(validShapes + [("spatial_blocks.\(index).norm1.weight", [1])])
        #expect(throws: ModelLoadError.self) { _ = try ModelConfig.inferred(from: file) }
    }
}
